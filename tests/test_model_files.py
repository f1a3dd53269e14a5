"""How the model arrives (`make model`) and how a bad one is refused at start."""

import json
import os
import subprocess
import sys

import pytest

from app.classifier import Classifier
from app.manifest import ModelError, sha256_of

from .paths import REAL_MODEL, ROOT, shared_file
from .reference import MODEL_NAME, MODEL_VERSION
from .reference import MODEL_SHA256 as SHA


def write_manifest(folder, **fields):
    path = folder / "m.json"
    path.write_text(json.dumps({"file": "m.ftz", **fields}))
    return path


def run_fetch(manifest, **env):
    return subprocess.run([sys.executable, str(ROOT / "models" / "fetch.py"), str(manifest)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **env})


def test_committed_manifest_matches_shared_readme():
    manifest = json.loads((ROOT / "models" / "amazon_review_full.json").read_text())
    assert manifest["sha256"] == SHA
    assert SHA in shared_file("README.md").read_text()
    assert manifest["preprocessing"] == "fasttext-classification-results"


def test_fetch_falls_back_to_shared_and_verifies(tmp_path):
    source = shared_file("models", "amazon_review_full.ftz")
    # An unreachable URL (nothing listens on port 1) must not stop the fallback.
    manifest = write_manifest(tmp_path, sha256=SHA, url="http://127.0.0.1:1/m.ftz", fallback=str(source))
    result = run_fetch(manifest)
    assert result.returncode == 0, result.stderr
    assert "sha256 verified" in result.stdout
    assert sha256_of(tmp_path / "m.ftz") == SHA
    again = run_fetch(manifest)
    assert "present, sha256 verified" in again.stdout


def test_fetch_with_no_internet_and_no_shared_says_how_to_use_a_local_copy(tmp_path):
    manifest = write_manifest(tmp_path, sha256=SHA, url="http://127.0.0.1:1/m.ftz",
                              fallback=str(tmp_path / "no-shared" / "m.ftz"))
    result = run_fetch(manifest)
    assert result.returncode == 1
    assert "`make model MODEL_FROM=/path/to/m.ftz`" in result.stderr, result.stderr
    assert not (tmp_path / "m.ftz").exists()
    # ... and that way works, verified
    copy = run_fetch(manifest, MODEL_FROM=str(shared_file("models", "amazon_review_full.ftz")))
    assert copy.returncode == 0, copy.stderr
    assert sha256_of(tmp_path / "m.ftz") == SHA


def test_fetch_refuses_a_file_with_the_wrong_checksum(tmp_path):
    manifest = write_manifest(tmp_path, sha256="0" * 64,
                              fallback=str(shared_file("models", "amazon_review_full.ftz")))
    result = run_fetch(manifest)
    assert result.returncode == 1
    assert "expected 0000" in result.stderr
    assert not (tmp_path / "m.ftz").exists()


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match=r"not found .*make model"):
        Classifier.load(tmp_path / "absent.ftz")


def test_corrupt_model_is_refused_by_checksum(tmp_path):
    data = bytearray(REAL_MODEL.read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "m.ftz").write_bytes(data)
    manifest = write_manifest(tmp_path, sha256=SHA)
    with pytest.raises(ModelError, match="corrupt"):
        Classifier.load(tmp_path / "m.ftz", manifest)


@pytest.mark.parametrize("content", [b"", b"not a model at all", REAL_MODEL.read_bytes()[:5000]])
def test_unloadable_model_without_manifest_is_a_clear_error(tmp_path, content):
    # A file cut short early made fastText allocate and fill gigabytes for
    # minutes: it must end as a prompt, clear error. (A file cut near its end
    # may load, garbage and all: only the manifest's checksum catches that.)
    (tmp_path / "m.ftz").write_bytes(content)
    with pytest.raises(ModelError, match="cannot be loaded by fastText"):
        Classifier.load(tmp_path / "m.ftz")


def test_the_protocols_name_and_version_come_from_the_manifest(real_classifier):
    assert (real_classifier.name, real_classifier.version) == (MODEL_NAME, MODEL_VERSION)


@pytest.mark.parametrize("field,value", [("name", "a/b"), ("name", ""), ("version", 2), ("version", "x" * 65)])
def test_a_name_or_version_unfit_for_a_url_is_refused(tmp_path, field, value):
    manifest = write_manifest(tmp_path, **{field: value})
    with pytest.raises(ModelError, match=f"`{field}` must be 1 to 64"):
        Classifier.load(REAL_MODEL, manifest)


def test_manifest_with_unknown_preprocessing_is_refused(tmp_path):
    manifest = write_manifest(tmp_path, preprocessing="stemming")
    with pytest.raises(ModelError, match="unknown preprocessing"):
        Classifier.load(REAL_MODEL, manifest)


@pytest.mark.parametrize("env,message", [
    ({"MODEL_PATH": "/nonexistent/model.ftz"}, "not found"),
    ({"PORT": "eighty"}, "PORT='eighty' is not a valid int"),
])
def test_worker_refuses_to_start_with_a_message_not_a_traceback(env, message):
    result = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, capture_output=True, text=True,
                            timeout=30, env={**os.environ, **env})
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
