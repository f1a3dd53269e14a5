//! wrk2: giltene/wrk2's constant-throughput, coordinated-omission-corrected
//! HTTP load generator, with its command line and its `-L` report, on one mio
//! event loop per thread (many connections each). See loadtest/GENERATOR.md.
//!
//!   wrk2 -t1 -c64 -d20s -R2000 -L URL ['text=form+encoded+body']
//!
//! Schedule (wrk2's): connection i of C sends its k-th request at
//! t0 + i/R + k*C/R (R total rate; the phases interleave the connections), and
//! latency = completion - that intended time, whenever the request really went.
//! Waiting is wrk2's: a connection that is early waits on the event loop's
//! millisecond timer (round(us/1000 + 0.5) ms on a ms clock, as wrk2's
//! delay_request on ae), so requests leave on 1 ms ticks in small bursts and
//! carry wrk2's ~1 ms.

mod report;
mod script;

use std::collections::BinaryHeap;
use std::cmp::Reverse;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const MAX_LATENCY_US: u64 = 24 * 3600 * 1_000_000; // wrk2's MAX_LATENCY
const CALIBRATE_DELAY_US: u64 = 10_000_000; // wrk2's CALIBRATE_DELAY_MS
const TIMEOUT_INTERVAL_US: u64 = 2_000_000; // wrk2's TIMEOUT_INTERVAL_MS
const BUCKET_US: u64 = 100_000; // Req/Sec sampling interval
const RECVBUF: usize = 16384;
const MAX_RESPONSE: usize = 64 << 20;

pub struct Config {
    pub threads: usize,
    pub conns: usize,
    pub duration_us: u64,
    pub rate: f64,
    pub latency: bool,
    pub timeout_us: u64,
    pub record_all: bool,
    pub catch_up: f64,
    pub url: String,
    pub request: Vec<u8>,
}

#[derive(Default, Clone, Copy)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
    pub status: u64,
}

pub struct ThreadResult {
    pub hist: Histogram<u64>,
    pub pre: Histogram<u64>,
    pub buckets: Vec<u64>,
    pub completed: u64,
    pub bytes: u64,
    pub errors: Errors,
    pub calibrated: bool,
}

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("histogram bounds")
}

fn die(msg: &str) -> ! {
    eprintln!("wrk2: {msg}");
    std::process::exit(1);
}

const USAGE: &str = "Usage: wrk2 <options> <url> [form-encoded body]
  Options:
    -c, --connections <N>  Connections to keep open (default 10)
    -d, --duration    <T>  Duration of test, e.g. 20s, 2m (default 10s)
    -t, --threads     <N>  Number of threads, one event loop each (default 2)
    -R, --rate        <T>  Total requests/sec, e.g. 2000, 2k (required)
    -L, --latency          Print the latency spectrum (HdrHistogram)
    -H, --header      <H>  Add header to request ('Name: value', repeatable)
    -T, --timeout     <T>  Socket/request timeout (default 2s)
    -s, --script      <S>  A static wrk script: wrk.method, wrk.body, wrk.headers[...] only
        --record-all       Keep the first 10 s that wrk2 drops as calibration
        --catch-up    <F>  A late connection sends its overdue requests at F x its
                           rate (default 0 = at once; 2 = wrk2's source)
  With a body the request is a POST of it as application/x-www-form-urlencoded;
  without, GET.";

/// "2k" -> 2000, like wrk2's scan_metric.
fn scan_metric(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let n: f64 = s[..split].parse().ok()?;
    let mult = match s[split..].to_ascii_lowercase().as_str() {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        _ => return None,
    };
    Some(n * mult)
}

/// "20s", "2m", "1h", "20", "500ms" -> microseconds.
fn scan_time_us(s: &str) -> Option<u64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let n: f64 = s[..split].parse().ok()?;
    let mult = match s[split..].to_ascii_lowercase().as_str() {
        "" | "s" => 1e6,
        "ms" => 1e3,
        "us" => 1.0,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some((n * mult) as u64)
}

struct Target {
    host_header: String,
    path: String,
    addr: SocketAddr,
}

fn parse_url(url: &str) -> Target {
    let rest = url.strip_prefix("http://").unwrap_or_else(|| {
        die(&format!("invalid URL (only http:// is supported): {url}"))
    });
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        die(&format!("invalid URL: {url}"));
    }
    let with_port = if authority.rsplit_once(':').map_or(false, |(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| die(&format!("unable to resolve {authority}")));
    Target { host_header: authority.to_string(), path: path.to_string(), addr }
}

fn build_request(t: &Target, method: &str, headers: &[(String, String)], body: Option<&str>) -> Vec<u8> {
    let mut r = format!("{method} {} HTTP/1.1\r\n", t.path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        r.push_str(&format!("Host: {}\r\n", t.host_header));
    }
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
            r.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
    }
    r.push_str("\r\n");
    if let Some(b) = body {
        r.push_str(b);
    }
    r.into_bytes()
}

fn parse_args() -> (Config, std::net::SocketAddr) {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_env();
    let (mut threads, mut conns, mut duration_us, mut rate) = (2usize, 10usize, 10_000_000u64, None);
    let (mut latency, mut timeout_us, mut record_all, mut catch_up) = (false, 2_000_000u64, false, 0.0f64);
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut script_path: Option<String> = None;
    let mut pos: Vec<String> = Vec::new();
    let bad = |what: &str, v: &str| -> ! { die(&format!("invalid {what}: {v}\n{USAGE}")) };
    let val = |p: &mut lexopt::Parser| -> String {
        p.value().ok().and_then(|v| v.into_string().ok()).unwrap_or_else(|| die(USAGE))
    };
    loop {
        let arg = match p.next() {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => die(&format!("{e}\n{USAGE}")),
        };
        match arg {
            Short('t') | Long("threads") => {
                let v = val(&mut p);
                threads = v.parse().unwrap_or_else(|_| bad("thread count", &v));
            }
            Short('c') | Long("connections") => {
                let v = val(&mut p);
                conns = scan_metric(&v).map(|x| x as usize).unwrap_or_else(|| bad("connections", &v));
            }
            Short('d') | Long("duration") => {
                let v = val(&mut p);
                duration_us = scan_time_us(&v).unwrap_or_else(|| bad("duration", &v));
            }
            Short('R') | Long("rate") => {
                let v = val(&mut p);
                rate = Some(scan_metric(&v).unwrap_or_else(|| bad("rate", &v)));
            }
            Short('H') | Long("header") => {
                let v = val(&mut p);
                let (k, hv) = v.split_once(':').unwrap_or_else(|| bad("header", &v));
                headers.push((k.trim().to_string(), hv.trim().to_string()));
            }
            Short('T') | Long("timeout") => {
                let v = val(&mut p);
                timeout_us = scan_time_us(&v).unwrap_or_else(|| bad("timeout", &v));
            }
            Short('s') | Long("script") => script_path = Some(val(&mut p)),
            Short('L') | Long("latency") => latency = true,
            Long("record-all") => record_all = true,
            Long("catch-up") => {
                let v = val(&mut p);
                catch_up = v.parse().unwrap_or_else(|_| bad("catch-up factor", &v));
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Value(v) => pos.push(v.into_string().unwrap_or_else(|_| die("non-UTF-8 argument"))),
            other => die(&format!("{}\n{USAGE}", other.unexpected())),
        }
    }
    let rate = rate.unwrap_or_else(|| die(&format!("-R/--rate is required\n{USAGE}")));
    if pos.is_empty() || pos.len() > 2 {
        die(USAGE);
    }
    if threads == 0 || conns < threads {
        die("number of connections must be >= threads");
    }
    if !(rate > 0.0) {
        die("rate must be > 0");
    }
    let url = pos[0].clone();
    let target = parse_url(&url);
    let (mut method, mut body) = ("GET".to_string(), None::<String>);
    if let Some(path) = &script_path {
        let s = script::load(path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
        if let Some(m) = s.method {
            method = m;
        }
        body = s.body;
        for (k, v) in s.headers {
            if !headers.iter().any(|(hk, _)| hk.eq_ignore_ascii_case(&k)) {
                headers.push((k, v));
            }
        }
    }
    if pos.len() == 2 {
        if script_path.is_some() {
            die("give the body either positionally or in the script, not both");
        }
        method = "POST".into();
        body = Some(pos[1].clone());
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
        }
    }
    let request = build_request(&target, &method, &headers, body.as_deref());
    let cfg = Config {
        threads,
        conns: conns / threads * threads,
        duration_us,
        rate,
        latency,
        timeout_us,
        record_all,
        catch_up,
        url,
        request,
    };
    (cfg, target.addr)
}

fn main() {
    let (cfg, addr) = parse_args();
    let cfg = Arc::new(cfg);
    println!("Running {} test @ {}", report::format_time_s(cfg.duration_us / 1_000_000), cfg.url);
    println!("  {} threads and {} connections", cfg.threads, cfg.conns);
    // One t0 for every thread: the schedule starts once all have connected (~ms).
    let t0 = Instant::now() + Duration::from_millis(20);
    let per = cfg.conns / cfg.threads;
    let handles: Vec<_> = (0..cfg.threads)
        .map(|i| {
            let cfg = Arc::clone(&cfg);
            std::thread::spawn(move || Worker::new(cfg, addr, t0, i * per, per).run())
        })
        .collect();
    let mut results: Vec<ThreadResult> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    if let Ok(path) = std::env::var("WRK2_SELFTEST") {
        // tests/test_loadtest_hdr.py: report these values (us) instead of the run's
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
        let mut h = new_hist();
        for v in text.split_whitespace() {
            h.saturating_record(v.parse().unwrap_or_else(|_| die("WRK2_SELFTEST: bad value")));
        }
        for r in &mut results {
            r.hist = new_hist();
        }
        results[0].hist = h;
    }
    report::print(&cfg, &results);
}

#[derive(PartialEq, Clone, Copy)]
enum State {
    Connecting, // connect in progress; send (slot k) once connected
    Idle,       // connected, waiting in the timer heap for slot k's send
    Writing,    // request partly written
    Reading,    // request sent, response pending
    Down,       // connect failed; retried from the timer heap
    Done,       // window over
}

struct Conn {
    stream: Option<TcpStream>,
    state: State,
    connected: bool,
    k: u64,          // slot of the next (or in-flight) request
    phase_us: f64,   // i/R
    written: usize,
    sent_at: u64,    // us since t0 of the actual send (timeouts)
    caught_up: bool,
    cu_start: u64,
    cu_k: u64,
    buf: Vec<u8>, // read buffer, grown for large responses
    len: usize,
}

struct Worker {
    cfg: Arc<Config>,
    addr: SocketAddr,
    t0: Instant,
    interval_us: f64,
    calib_us: u64,
    end_us: u64,
    poll: Poll,
    conns: Vec<Conn>,
    heap: BinaryHeap<Reverse<(u64, usize, u64)>>, // (when, conn, its slot then)
    hist: Histogram<u64>,
    pre: Histogram<u64>,
    buckets: Vec<u64>,
    completed: u64,
    bytes: u64,
    errors: Errors,
    calibrated: bool,
}

enum Parsed {
    Partial,
    Complete { len: usize, status: u16, close: bool },
    Bad,
}

/// One response at the start of buf: its length once complete (httparse for
/// the head; Content-Length or chunked body).
fn parse_response(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Bad,
    };
    let status = resp.code.unwrap_or(0);
    let mut close = resp.version == Some(0);
    let (mut length, mut chunked) = (None, false);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse::<usize>().ok()) {
                Some(n) => length = Some(n),
                None => return Parsed::Bad,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h.value.windows(7).any(|w| w.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    if status < 200 || status == 204 || status == 304 {
        return Parsed::Complete { len: head, status, close };
    }
    if chunked {
        let mut at = head;
        loop {
            match httparse::parse_chunk_size(&buf[at..]) {
                Ok(httparse::Status::Complete((n, size))) => {
                    at += n;
                    if size == 0 {
                        // no trailers: the last chunk is followed by an empty line
                        if buf.len() < at + 2 {
                            return Parsed::Partial;
                        }
                        if &buf[at..at + 2] != b"\r\n" {
                            return Parsed::Bad;
                        }
                        return Parsed::Complete { len: at + 2, status, close };
                    }
                    let end = at.saturating_add(size as usize).saturating_add(2);
                    if buf.len() < end {
                        return Parsed::Partial;
                    }
                    at = end;
                }
                Ok(httparse::Status::Partial) => return Parsed::Partial,
                Err(_) => return Parsed::Bad,
            }
        }
    }
    match length {
        Some(n) if buf.len() >= head + n => Parsed::Complete { len: head + n, status, close },
        Some(_) => Parsed::Partial,
        None => Parsed::Bad, // a body delimited by close: not supported (a read error)
    }
}

impl Worker {
    fn new(cfg: Arc<Config>, addr: SocketAddr, t0: Instant, first: usize, n: usize) -> Worker {
        let interval_us = 1e6 * cfg.conns as f64 / cfg.rate;
        let conns = (0..n)
            .map(|i| Conn {
                stream: None,
                state: State::Down,
                connected: false,
                k: 0,
                phase_us: (first + i) as f64 * 1e6 / cfg.rate,
                written: 0,
                sent_at: 0,
                caught_up: true,
                cu_start: 0,
                cu_k: 0,
                buf: vec![0u8; RECVBUF],
                len: 0,
            })
            .collect();
        Worker {
            calib_us: CALIBRATE_DELAY_US + n as u64 * 5000,
            end_us: cfg.duration_us,
            buckets: vec![0; (cfg.duration_us / BUCKET_US + 1) as usize],
            cfg,
            addr,
            t0,
            interval_us,
            poll: Poll::new().expect("epoll"),
            conns,
            heap: BinaryHeap::new(),
            hist: new_hist(),
            pre: new_hist(),
            completed: 0,
            bytes: 0,
            errors: Errors::default(),
            calibrated: false,
        }
    }

    /// Microseconds since t0 (0 before it).
    fn now(&self) -> u64 {
        Instant::now().saturating_duration_since(self.t0).as_micros() as u64
    }

    fn intended(&self, i: usize, k: u64) -> f64 {
        self.conns[i].phase_us + k as f64 * self.interval_us
    }

    fn connect(&mut self, i: usize) {
        let c = &mut self.conns[i];
        if let Some(mut s) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        c.connected = false;
        c.written = 0;
        c.len = 0;
        match TcpStream::connect(self.addr) {
            Ok(mut s) => {
                let _ = s.set_nodelay(true);
                self.poll
                    .registry()
                    .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                    .expect("register");
                c.stream = Some(s);
                c.state = State::Connecting;
            }
            Err(_) => self.connect_failed(i),
        }
    }

    fn connect_failed(&mut self, i: usize) {
        self.errors.connect += 1;
        let c = &mut self.conns[i];
        if let Some(mut s) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        c.state = State::Down;
        let k = c.k;
        let at = self.now() + 1000; // retry in 1 ms, not in a tight loop
        self.heap.push(Reverse((at, i, k)));
    }

    /// An error on an established connection: count it, reconnect, and send
    /// the same slot again (as wrk2 does).
    fn reconnect(&mut self, i: usize, write: bool) {
        if write {
            self.errors.write += 1;
        } else {
            self.errors.read += 1;
        }
        self.connect(i);
    }

    /// Connection i is ready for slot k: send now, or wait on the ms timer.
    fn schedule(&mut self, i: usize, now: u64) {
        let k = self.conns[i].k;
        let intended = self.intended(i, k);
        if intended >= self.end_us as f64 {
            self.conns[i].state = State::Done;
            return;
        }
        let c = &mut self.conns[i];
        if Instant::now() < self.t0 {
            c.state = State::Idle; // connected before the schedule starts
            self.heap.push(Reverse((intended.ceil() as u64, i, k)));
            return;
        }
        let mut send_at = intended;
        if intended > now as f64 {
            c.caught_up = true;
        } else if self.cfg.catch_up > 0.0 {
            if c.caught_up {
                c.caught_up = false;
                c.cu_start = now;
                c.cu_k = k;
            }
            send_at = c.cu_start as f64 + (k - c.cu_k) as f64 * self.interval_us / self.cfg.catch_up;
        }
        if send_at <= now as f64 {
            self.send(i, now);
        } else {
            // wrk2's delay_request: an ae timer of round(us/1000 + 0.5) ms,
            // which ae fires at the first loop pass in or after that ms (ms
            // clock): the timers due in one ms go out together, in a burst
            let ms = ((send_at - now as f64) / 1000.0 + 0.5).round() as u64;
            c.state = State::Idle;
            self.heap.push(Reverse(((now / 1000 + ms) * 1000, i, k)));
        }
    }

    fn send(&mut self, i: usize, now: u64) {
        let c = &mut self.conns[i];
        if !c.connected {
            c.state = State::Connecting; // sent once the connect completes
            return;
        }
        c.state = State::Writing;
        c.written = 0;
        c.sent_at = now;
        self.write(i);
    }

    fn write(&mut self, i: usize) {
        let req = &self.cfg.request;
        let c = &mut self.conns[i];
        let s = c.stream.as_mut().expect("stream");
        while c.written < req.len() {
            match s.write(&req[c.written..]) {
                Ok(0) => return self.reconnect(i, true),
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.reconnect(i, true),
            }
        }
        c.state = State::Reading;
    }

    fn on_writable(&mut self, i: usize) {
        let now = self.now();
        let c = &mut self.conns[i];
        if !c.connected && c.state == State::Connecting {
            let s = c.stream.as_mut().expect("stream");
            match s.take_error() {
                Ok(None) => {}
                _ => return self.connect_failed(i),
            }
            match s.peer_addr() {
                Ok(_) => c.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(_) => return self.connect_failed(i),
            }
            return self.schedule(i, now);
        }
        if c.state == State::Writing {
            self.write(i);
        }
    }

    fn on_readable(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            let Some(s) = c.stream.as_mut() else { return };
            if c.len == c.buf.len() {
                if c.buf.len() >= MAX_RESPONSE {
                    die(&format!("a response larger than {MAX_RESPONSE} bytes"));
                }
                let grown = c.buf.len() * 2; // a response larger than the buffer
                c.buf.resize(grown, 0);
            }
            let n = match s.read(&mut c.buf[c.len..]) {
                Ok(0) => {
                    if c.connected && c.state != State::Done {
                        return self.reconnect(i, false);
                    }
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    if c.state == State::Connecting {
                        return self.connect_failed(i);
                    }
                    return self.reconnect(i, false);
                }
            };
            let room = c.buf.len() - c.len;
            c.len += n;
            if c.state == State::Reading || c.state == State::Writing {
                match parse_response(&c.buf[..c.len]) {
                    Parsed::Partial => {}
                    Parsed::Bad => return self.reconnect(i, false),
                    Parsed::Complete { len, status, close } => {
                        c.buf.copy_within(len..c.len, 0);
                        c.len -= len;
                        self.complete(i, status, len as u64, close);
                    }
                }
            } else {
                c.len = 0; // nothing asked for: ignore
            }
            // a short read emptied the socket: the next data brings a new edge
            if n < room {
                return;
            }
        }
    }

    fn complete(&mut self, i: usize, status: u16, bytes: u64, close: bool) {
        let now = self.now();
        if now >= self.end_us {
            self.conns[i].state = State::Done;
            return;
        }
        let k = self.conns[i].k;
        let lat = (now as f64 - self.intended(i, k)).max(0.0) as u64;
        if !self.cfg.record_all && now < self.calib_us {
            self.pre.saturating_record(lat.min(MAX_LATENCY_US));
        } else {
            self.calibrated = !self.cfg.record_all;
            self.hist.saturating_record(lat.min(MAX_LATENCY_US));
        }
        self.buckets[(now / BUCKET_US) as usize] += 1;
        self.completed += 1;
        self.bytes += bytes;
        if status > 399 {
            self.errors.status += 1;
        }
        self.conns[i].k = k + 1;
        if close {
            self.connect(i);
        } else {
            self.schedule(i, now);
        }
    }

    fn check_timeouts(&mut self, now: u64) {
        for c in &self.conns {
            if matches!(c.state, State::Reading | State::Writing) && now > c.sent_at + self.cfg.timeout_us {
                self.errors.timeout += 1;
            }
        }
    }

    fn run(mut self) -> ThreadResult {
        for i in 0..self.conns.len() {
            self.connect(i);
        }
        let mut events = Events::with_capacity(1024);
        let mut next_timeout_check = TIMEOUT_INTERVAL_US;
        loop {
            let now = self.now();
            if now >= self.end_us {
                break;
            }
            let started = Instant::now() >= self.t0;
            while let Some(&Reverse((at, i, k))) = self.heap.peek() {
                if at > now || !started {
                    break;
                }
                self.heap.pop();
                if self.conns[i].k != k {
                    continue; // stale: that slot was served another way
                }
                match self.conns[i].state {
                    // wrk2's delay_request: send if due, else wait another timer
                    State::Idle => self.schedule(i, now),
                    State::Down => self.connect(i),
                    _ => {}
                }
            }
            if now >= next_timeout_check {
                self.check_timeouts(now);
                next_timeout_check += TIMEOUT_INTERVAL_US;
            }
            let mut wake = self.end_us.min(next_timeout_check);
            if let Some(&Reverse((at, _, _))) = self.heap.peek() {
                wake = wake.min(at);
            }
            // before t0, wait for it; mio rounds the timeout up to whole ms
            let timeout = Duration::from_micros(wake.saturating_sub(now).max(1))
                + self.t0.saturating_duration_since(Instant::now());
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    die(&format!("poll: {e}"));
                }
            }
            for ev in events.iter() {
                let i = ev.token().0;
                if ev.is_writable() || ev.is_error() {
                    self.on_writable(i);
                }
                if ev.is_readable() || ev.is_read_closed() {
                    self.on_readable(i);
                }
            }
        }
        ThreadResult {
            hist: self.hist,
            pre: self.pre,
            buckets: self.buckets,
            completed: self.completed,
            bytes: self.bytes,
            errors: self.errors,
            calibrated: self.calibrated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn len(r: Parsed) -> Option<usize> {
        match r {
            Parsed::Complete { len, .. } => Some(len),
            _ => None,
        }
    }

    #[test]
    fn responses_are_delimited() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
        assert_eq!(len(parse_response(ok)), Some(43));
        assert!(matches!(parse_response(&ok[..40]), Parsed::Partial));
        let chunked = b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(matches!(parse_response(chunked), Parsed::Complete { status: 503, close: false, .. }));
        assert_eq!(len(parse_response(chunked)), Some(chunked.len()));
        assert!(matches!(parse_response(&chunked[..chunked.len() - 1]), Parsed::Partial));
        let close = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        assert!(matches!(parse_response(close), Parsed::Complete { status: 204, close: true, .. }));
        assert!(matches!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n"), Parsed::Bad));
        assert!(matches!(parse_response(b"garbage\r\n\r\n"), Parsed::Bad));
    }
}
