// The worker's compiled part: fastText's C++ (built from the pinned
// fasttext-wheel sdist, see setup.py), loaded once, and the whole of
// POST /inferreview's common case in one call: form body in, JSON body out.
//
// Model.predict/predict_many/labels/... are what app/classifier.py used from
// fasttext_pybind (same fastText calls, so the same figures). The responder
// answers only the plain case (one ASCII `text` field); for anything else it
// returns None and the Python path answers, with its own errors. It reads the
// line itself (LineReader: no istream, no string per token) and keeps
// fastText's Model::State; tests/test_native_line.py holds it to getLine's ids
// and the `fasttext` module's probabilities, bit for bit.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <charconv>
#include <cmath>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fasttext.h"

namespace py = pybind11;

namespace {

using fasttext::real;

// Per-byte classes for the loops below, made once from the rules they state:
// one table look-up a char instead of up to nine comparisons.
struct CharTables {
  enum : uint8_t { COPY, PLUS, PERCENT, REJECT };  // decode_form
  enum : uint8_t { KEEP, SPACE_OUT, DROP };        // normalize, pass one
  uint8_t form[256], pass_one[256];
  int8_t hex[256];                                    // a hex digit's value, else -1
  char lower[256], pass_two[256];                     // the char written by pass one / pass two
  bool fasttext_space[256];                           // Dictionary::readWord's separators
  CharTables() {
    for (int c = 0; c < 256; c++) {
      form[c] = c == '&' || c >= 0x80 ? REJECT : c == '+' ? PLUS : c == '%' ? PERCENT : COPY;
      hex[c] = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
               : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      lower[c] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      pass_one[c] = c == '\'' || c == '.' || c == ',' || c == '(' || c == ')' || c == '!' || c == '?' ? SPACE_OUT
                    : c == '"' ? DROP : KEEP;
      pass_two[c] = static_cast<char>(c == ';' || c == ':' || c < 0x20 || c == 0x7f ? ' ' : c);
      fasttext_space[c] = c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == '\0';
    }
  }
};
const CharTables tables;

// fastText's protected parts this file calls rather than copies: a derived
// class may name them, and a pointer to a member reaches them on the object
// fastText made. No object of these types is ever created.
struct DictionaryAccess : fasttext::Dictionary {
  static constexpr auto word2int = &DictionaryAccess::word2int_;
  static constexpr auto words = &DictionaryAccess::words_;
  static constexpr auto add_word_ngrams = &DictionaryAccess::addWordNgrams;
};
struct FastTextAccess : fasttext::FastText {
  static constexpr auto model = &FastTextAccess::model_;
};

// Dictionary::getLine(in, words, labels) on a char range and a newline,
// without an istream or a std::string per token: the same tokens (readWord's
// whitespace: space \n \r \t \v \f \0; a newline ends the line with EOS), the
// same FNV-1a hash as Dictionary::hash (on signed chars), the same probing as
// Dictionary::find, then fastText's own getSubwords/computeSubwords and
// addWordNgrams. Scratch buffers kept across calls.
struct LineReader {
  const fasttext::Dictionary* dict = nullptr;
  const std::vector<int32_t>* word2int = nullptr;       // Dictionary::word2int_
  const std::vector<fasttext::entry>* entries = nullptr;  // Dictionary::words_
  std::string label;  // args.label, the prefix getType(string) checks
  int32_t word_ngrams = 1, maxn = 0;
  // EOS, which ends every line: looked up once.
  uint32_t eos_hash = 0;
  int32_t eos_id = -1;
  bool eos_is_label = false;
  std::vector<int32_t> hashes;
  std::string bow_token_eow;

  explicit LineReader(const fasttext::FastText& ft)
      : dict(ft.getDictionary().get()),
        word2int(&(dict->*DictionaryAccess::word2int)),
        entries(&(dict->*DictionaryAccess::words)) {
    const fasttext::Args args = ft.getArgs();
    label = args.label;
    word_ngrams = args.wordNgrams;
    maxn = args.maxn;
    eos_hash = hash(fasttext::Dictionary::EOS);
    eos_id = id(fasttext::Dictionary::EOS, eos_hash);
    eos_is_label = is_label(fasttext::Dictionary::EOS, eos_id);
  }

  static bool is_space(char c) { return tables.fasttext_space[static_cast<unsigned char>(c)]; }

  // Dictionary::hash (FNV-1a on signed chars): its start, one char's step, a whole token.
  static constexpr uint32_t HASH_START = 2166136261;
  static uint32_t hash_step(uint32_t h, char c) { return (h ^ uint32_t(int8_t(c))) * 16777619; }
  static uint32_t hash(std::string_view s) {
    uint32_t h = HASH_START;
    for (char c : s) h = hash_step(h, c);
    return h;
  }

  // Dictionary::getId(token, h): -1 when out of vocabulary.
  int32_t id(std::string_view token, uint32_t h) const {
    const std::vector<int32_t>& w2i = *word2int;
    int32_t size = w2i.size();
    int32_t i = h % size;
    while (w2i[i] != -1 && std::string_view((*entries)[w2i[i]].word) != token) i = (i + 1) % size;
    return w2i[i];
  }

  // getType(wid) for a known word (words_[wid].type), getType(token) for an unknown one.
  bool is_label(std::string_view token, int32_t wid) const {
    return wid < 0 ? token.substr(0, label.size()) == label : (*entries)[wid].type == fasttext::entry_type::label;
  }

  // One token of getLine's loop, its hash and id already known.
  void add(std::string_view token, uint32_t h, int32_t wid, bool label_token, bool eos,
           std::vector<int32_t>& words) {
    if (label_token) return;  // labels go to getLine's other vector, unused here
    // Dictionary::addSubwords, then the word's hash for the n-grams
    if (wid < 0) {
      // computeSubwords adds n-grams of 1..maxn chars only: none when maxn <= 0
      // (supervised models' default), so the BOW+token+EOW string is skipped then.
      if (!eos && maxn > 0) {
        bow_token_eow.assign(fasttext::Dictionary::BOW).append(token).append(fasttext::Dictionary::EOW);
        dict->computeSubwords(bow_token_eow, words);
      }
    } else if (maxn <= 0) {
      words.push_back(wid);
    } else {
      const std::vector<int32_t>& ngrams = dict->getSubwords(wid);
      words.insert(words.end(), ngrams.cbegin(), ngrams.cend());
    }
    hashes.push_back(static_cast<int32_t>(h));
  }

  // The words getLine gives for `text` followed by a newline (labels dropped);
  // each token hashed as it is scanned.
  void read(std::string_view text, std::vector<int32_t>& words) {
    words.clear();
    hashes.clear();
    const char* p = text.data();
    const char* const end = p + text.size();
    for (;;) {
      while (p != end && *p != '\n' && is_space(*p)) p++;
      if (p == end || *p == '\n') {  // readWord's EOS: the line ends
        add(fasttext::Dictionary::EOS, eos_hash, eos_id, eos_is_label, true, words);
        break;
      }
      const char* const start = p;
      uint32_t h = HASH_START;  // Dictionary::hash, as the token's chars go by
      do {
        h = hash_step(h, *p++);
      } while (p != end && !is_space(*p));
      const std::string_view token(start, p - start);
      const int32_t wid = id(token, h);
      const bool eos = token == fasttext::Dictionary::EOS;  // a literal </s> ends the line too
      add(token, h, wid, is_label(token, wid), eos, words);
      if (eos) break;
    }
    (dict->*DictionaryAccess::add_word_ngrams)(words, hashes, word_ngrams);
  }
};

struct Model;

// What one POST /inferreview needs between calls: buffers, vectors and
// fastText's Model::State reused, so that a request allocates nothing but the
// bytes object of its answer (once the buffers have grown to its size).
struct Responder {
  Model* model = nullptr;
  py::object owner;  // keeps the Model alive as long as the responder
  std::vector<std::string> heads;  // per label: `{"5 star":` as ujson writes it
  size_t max_chars = 0;
  std::string decoded, spaced, normal, response;  // buffers: sizes kept, only grown
  bool supervised = false;  // FastText::predict refuses the others
  std::unique_ptr<LineReader> reader;
  std::unique_ptr<fasttext::Model::State> state;  // kept: FastText::predict makes one a call
  std::vector<int32_t> words;
  fasttext::Predictions predictions;
  std::vector<unsigned long long> counts;  // predictions served, by label
};

struct Model {
  fasttext::FastText ft;

  explicit Model(const std::string& path) { ft.loadModel(path); }

  bool supervised() const { return ft.getArgs().model == fasttext::model_name::sup; }

  std::vector<std::string> labels() const {
    auto d = ft.getDictionary();
    std::vector<std::string> out;
    for (int32_t i = 0; i < d->nlabels(); i++) out.push_back(d->getLabel(i));
    return out;
  }

  // fasttext_pybind's predict: predictLine on the text (ending in "\n" as the CLI reads it).
  std::vector<std::pair<real, std::string>> predict(const std::string& text, int32_t k, real threshold) const {
    std::stringstream in(text);
    std::vector<std::pair<real, std::string>> out;
    ft.predictLine(in, out, k, threshold);
    return out;
  }
};

// At least n chars of `buffer`, which keeps its size between calls (it only
// grows): the steps below write through a pointer, not push_back per char.
char* room(std::string& buffer, size_t n) {
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// `text=VALUE` with nothing else, VALUE percent-decoded (+ is a space) as
// Falcon's parse_query_string does, into `buffer`; false for whatever is not
// that plain case (other fields, bad escapes, non-ASCII), which Python then reads.
bool decode_form(const char* body, size_t n, std::string& buffer, std::string_view& decoded) {
  static const char key[] = "text=";
  if (n < 5 || std::char_traits<char>::compare(body, key, 5) != 0) return false;
  char* const out = room(buffer, n - 5);
  char* o = out;
  for (size_t i = 5; i < n; i++) {
    unsigned char c = body[i];
    switch (tables.form[c]) {
      case CharTables::COPY:
        *o++ = static_cast<char>(c);
        break;
      case CharTables::PLUS:
        *o++ = ' ';
        break;
      case CharTables::PERCENT: {
        if (i + 2 >= n) return false;
        int hi = tables.hex[static_cast<unsigned char>(body[i + 1])];
        int lo = tables.hex[static_cast<unsigned char>(body[i + 2])];
        if (hi < 0 || lo < 0) return false;
        int byte = hi * 16 + lo;
        if (byte >= 0x80) return false;  // UTF-8: Python's lower() and checks decide
        *o++ = static_cast<char>(byte);
        i += 2;
        break;
      }
      default:  // '&' (another field) or non-ASCII
        return false;
    }
  }
  decoded = std::string_view(out, o - out);
  return true;
}

// app/normalize.py's normalize_classification_results on ASCII text, in its
// order: lower-case, space out '.,()!? and ', delete ", then (pass two)
// `<br />` -> space, ; : and control characters -> space, spaces squeezed,
// ends stripped. Pass two matches `<br />` on pass one's output, as Python's
// replace() does after the quotes are gone.
std::string_view normalize(std::string_view text, std::string& spaced_buffer, std::string& out_buffer) {
  char* const spaced = room(spaced_buffer, 3 * text.size());
  char* s = spaced;
  for (unsigned char c : text) {
    switch (tables.pass_one[c]) {
      case CharTables::KEEP:
        *s++ = tables.lower[c];
        break;
      case CharTables::SPACE_OUT:
        s[0] = ' ';
        s[1] = static_cast<char>(c);
        s[2] = ' ';
        s += 3;
        break;
      default:  // '"'
        break;
    }
  }
  const size_t n = s - spaced;
  char* const out = room(out_buffer, n);
  char* o = out;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = spaced[i];
    if (c == '<' && n - i >= 6 && std::char_traits<char>::compare(spaced + i, "<br />", 6) == 0) {
      c = ' ';
      i += 5;
    } else {
      c = tables.pass_two[c];  // ; : and control characters -> space
    }
    if (c == ' ' && (o == out || o[-1] == ' ')) continue;
    *o++ = static_cast<char>(c);
  }
  if (o != out && o[-1] == ' ') o--;
  return std::string_view(out, o - out);
}

// Python's repr of a float (what ujson writes), for the range a top-1
// probability of a model with several labels falls in; false outside it.
bool format_probability(double p, std::string& out) {
  if (!(p >= 1e-3 && p < 10.0)) return false;
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, p);  // shortest round-trip, as repr
  if (res.ec != std::errc()) return false;
  std::string_view s(buf, res.ptr - buf);
  if (s.find_first_of("eE") != std::string_view::npos) return false;
  out.append(s);
  if (s.find('.') == std::string_view::npos) out.append(".0");
  return true;
}

// The hot call: METH_O on a capsule, no per-call argument machinery.
PyObject* respond(PyObject* capsule, PyObject* body) {
  auto* r = static_cast<Responder*>(PyCapsule_GetPointer(capsule, "reviewrating_native.Responder"));
  if (r == nullptr) return nullptr;
  char* data;
  Py_ssize_t n;
  if (!PyBytes_Check(body)) Py_RETURN_NONE;
  if (PyBytes_AsStringAndSize(body, &data, &n) < 0) return nullptr;
  std::string_view decoded;
  if (!decode_form(data, static_cast<size_t>(n), r->decoded, decoded) || decoded.size() > r->max_chars)
    Py_RETURN_NONE;
  const std::string_view normal = normalize(decoded, r->spaced, r->normal);
  if (normal.empty() || !r->supervised) Py_RETURN_NONE;  // Python says why (400)
  std::string& response = r->response;
  int32_t label = -1;
  try {
    const fasttext::FastText& ft = r->model->ft;
    r->reader->read(normal, r->words);  // getLine on the text and a newline
    r->predictions.clear();
    if (r->words.empty()) Py_RETURN_NONE;  // FastText::predict: no predictions
    (ft.*FastTextAccess::model)->predict(r->words, 1, 0.0, r->predictions, *r->state);
    if (r->predictions.empty()) Py_RETURN_NONE;
    label = r->predictions[0].second;
    if (label < 0 || static_cast<size_t>(label) >= r->heads.size()) Py_RETURN_NONE;
    real p = std::exp(r->predictions[0].first);  // predictLine's figure, a float
    response = r->heads[label];
    if (!format_probability(static_cast<double>(p), response)) Py_RETURN_NONE;
    response.push_back('}');
  } catch (const std::exception&) {
    Py_RETURN_NONE;  // Python's path raises it properly
  }
  r->counts[label]++;
  return PyBytes_FromStringAndSize(response.data(), static_cast<Py_ssize_t>(response.size()));
}

PyMethodDef respond_def = {"respond", respond, METH_O,
                           "respond(form_body: bytes) -> bytes | None: the JSON answer to POST "
                           "/inferreview's plain case, or None for Python to answer."};

// The capsule behind `respond` holds a reference to the Python Responder that owns *r.
void release_responder(PyObject* capsule) { Py_XDECREF(static_cast<PyObject*>(PyCapsule_GetContext(capsule))); }

}  // namespace

PYBIND11_MODULE(reviewrating_native, m) {
  m.doc() = "fastText (from the pinned fasttext-wheel sdist) and the worker's compiled /inferreview.";
  py::class_<Model>(m, "Model")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def_property_readonly("supervised", &Model::supervised)
      .def_property_readonly("labels", &Model::labels)
      .def_property_readonly("dimension", [](const Model& self) { return self.ft.getDimension(); })
      .def_property_readonly("quantized", [](const Model& self) { return self.ft.isQuant(); })
      .def("predict", &Model::predict, py::arg("text"), py::arg("k") = 1, py::arg("threshold") = 0.0,
           "(probability, label) pairs, best first; the text ends with a newline.")
      .def(
          "predict_many",
          [](const Model& self, const std::vector<std::string>& texts, int32_t k, real threshold) {
            std::vector<std::vector<std::pair<real, std::string>>> out;
            out.reserve(texts.size());
            for (const auto& text : texts) out.push_back(self.predict(text, k, threshold));
            return out;
          },
          py::arg("texts"), py::arg("k") = 1, py::arg("threshold") = 0.0)
      .def(
          "line",
          [](const Model& self, const std::string& text) {
            std::istringstream in(text + "\n");
            std::vector<int32_t> words, labels;
            self.ft.getDictionary()->getLine(in, words, labels);
            return words;
          },
          py::arg("text"), "(tests) fastText's own getLine on `text` and a newline: the input ids")
      .def(
          "responder",
          [](py::object self, std::vector<std::string> heads, size_t max_chars) {
            Model& model = self.cast<Model&>();
            if (heads.size() != static_cast<size_t>(model.ft.getDictionary()->nlabels()))
              throw py::value_error("one head per label");
            auto r = std::make_unique<Responder>();
            r->model = &model;
            r->owner = self;
            const int32_t heads_size = static_cast<int32_t>(heads.size());
            r->heads = std::move(heads);
            r->max_chars = max_chars;
            r->counts.assign(r->heads.size(), 0);
            r->supervised = model.supervised();
            r->reader = std::make_unique<LineReader>(model.ft);
            r->state = std::make_unique<fasttext::Model::State>(model.ft.getDimension(), heads_size, 0);
            return r;
          },
          py::arg("heads"), py::arg("max_chars"),
          "A Responder for POST /inferreview; heads[i] is `{\"<label i>\":` as the JSON starts.");
  py::class_<Responder>(m, "Responder")
      .def(
          "line",
          [](Responder& self, const std::string& text) {
            self.reader->read(text, self.words);
            return self.words;
          },
          "(tests) the input ids respond() gives fastText for `text` and a newline")
      .def(
          "predict",
          [](Responder& self, const std::string& text) -> py::object {
            self.reader->read(text, self.words);
            self.predictions.clear();
            if (self.words.empty() || !self.supervised) return py::none();
            (self.model->ft.*FastTextAccess::model)->predict(self.words, 1, 0.0, self.predictions, *self.state);
            if (self.predictions.empty()) return py::none();
            return py::make_tuple(std::exp(self.predictions[0].first), self.predictions[0].second);
          },
          "(tests) respond()'s top (probability, label index) for the already normalised `text`")
      .def("counts", [](const Responder& self) { return self.counts; }, "predictions served, by label index")
      .def_property_readonly(
          "respond",
          [](py::object self) {
            Responder* r = self.cast<Responder*>();
            PyObject* capsule = PyCapsule_New(r, "reviewrating_native.Responder", release_responder);
            if (capsule == nullptr) throw py::error_already_set();
            Py_INCREF(self.ptr());
            PyCapsule_SetContext(capsule, self.ptr());
            PyObject* fn = PyCFunction_New(&respond_def, capsule);
            Py_DECREF(capsule);
            if (fn == nullptr) throw py::error_already_set();
            return py::reinterpret_steal<py::object>(fn);
          },
          "respond(form_body: bytes) -> bytes | None, a plain C function (no argument machinery).");
}
