//! The footprint and per-request cost of freellmapi, side by side with a direct call and an
//! nginx hop, on loopback. Run through `benches/run.sh` (see benches/README.md).
//!
//! One run: a fast mock provider (below, std threads), the proxy under test (a release binary
//! with one key pointing at the mock) and nginx (Debian's, with a temporary config proxying to
//! the same mock). Measures idle RSS, added latency p50/p99, CPU per request and requests/s at
//! concurrency 1 and 32 in interleaved rounds (direct, proxy, nginx), the same for burst streams
//! (a whole 22-frame answer in one upstream write) at concurrency 1 and 8, `/v1/messages` and
//! `/v1/responses` at concurrency 1 beside chat, anonymous RSS and the data file over 1 000 000
//! mixed requests, paced streams' time to first frame and per-frame delay, and RSS with 1 000
//! open streams. Prints a table and writes it as JSON under target/bench/.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn nanos() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed answer from the benchmark's mock provider."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":14,"total_tokens":23}}"#;
const REQUEST: &str = r#"{"model":"openai/gpt-oss-120b","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one sentence."}],"temperature":0.2}"#;
/// The same request as Anthropic Messages and as Responses.
const MESSAGES_REQUEST: &str = r#"{"model":"openai/gpt-oss-120b","max_tokens":1024,"system":"You are a helpful assistant.","messages":[{"role":"user","content":"Say hello in one sentence."}],"temperature":0.2}"#;
const RESPONSES_REQUEST: &str = r#"{"model":"openai/gpt-oss-120b","instructions":"You are a helpful assistant.","input":"Say hello in one sentence.","temperature":0.2}"#;

// ----- mock provider ------------------------------------------------------------------------

/// Streams carry `frames` frames `interval_ms` apart; each frame holds the mock's send time.
#[derive(Clone, Copy)]
struct StreamShape {
    frames: usize,
    interval_ms: u64,
}

/// A burst: 22 frames, the finish frame, `[DONE]` and the body's end in one write.
const BURST: StreamShape = StreamShape {
    frames: 22,
    interval_ms: 0,
};
/// The paced stream's shape: 25 frames, 10 ms apart.
const PACED: StreamShape = StreamShape {
    frames: 25,
    interval_ms: 10,
};

/// [`REQUEST`] asking for a stream.
fn stream_request() -> &'static str {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| REQUEST.replace("{\"model\"", "{\"stream\":true,\"model\""))
}

fn start_mock(shape: Arc<std::sync::Mutex<StreamShape>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Room for 1 000 streams connecting at once (std binds with a backlog of 128).
    // SAFETY: listen(2) on the listener's own descriptor, which it keeps open.
    unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 4096) };
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let shape = shape.clone();
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || mock_conn(conn, shape))
                .unwrap();
        }
    });
    addr
}

fn mock_conn(conn: TcpStream, shape: Arc<std::sync::Mutex<StreamShape>>) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    let mut line = String::new();
    loop {
        let mut len = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if line.len() > 15 && line[..15].eq_ignore_ascii_case("content-length:") {
                len = line[15..].trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if !body.windows(13).any(|w| w == b"\"stream\":true") {
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{COMPLETION}",
                COMPLETION.len()
            );
            if out.write_all(resp.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let s = *shape.lock().unwrap();
        if out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n").is_err() {
            return;
        }
        let frame = |i: usize| {
            format!(
                "data: {{\"id\":\"b\",\"object\":\"chat.completion.chunk\",\"t\":{},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"w{i} \"}},\"finish_reason\":null}}]}}\n\n",
                nanos()
            )
        };
        let end = "data: {\"id\":\"b\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
        if s.interval_ms == 0 {
            // A burst: every frame, [DONE] and the body's end in one write, as a fast provider
            // sends them when tokens come faster than the round trip.
            let body: String = (0..s.frames).map(frame).chain([end.to_string()]).collect();
            if out
                .write_all(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes())
                .is_err()
            {
                return;
            }
            continue;
        }
        for i in 0..s.frames {
            if i > 0 {
                thread::sleep(Duration::from_millis(s.interval_ms));
            }
            let frame = frame(i);
            if out
                .write_all(format!("{:x}\r\n{frame}\r\n", frame.len()).as_bytes())
                .is_err()
            {
                return;
            }
        }
        if out
            .write_all(format!("{:x}\r\n{end}\r\n0\r\n\r\n", end.len()).as_bytes())
            .is_err()
        {
            return;
        }
    }
}

// ----- client -------------------------------------------------------------------------------

struct Client {
    addr: SocketAddr,
    calls: u64,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    request: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr, path: &str, token: &str, body: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        Client {
            addr,
            calls: 0,
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            request,
        }
    }

    /// One request; returns its latency in µs.
    fn call(&mut self) -> f64 {
        let t = Instant::now();
        self.calls += 1;
        self.writer.write_all(&self.request).unwrap();
        let mut line = String::new();
        let mut len = 0usize;
        let mut chunked = false;
        let mut status = 0;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).unwrap() == 0 {
                panic!(
                    "{} closed a keep-alive connection after {} requests (local {:?})",
                    self.addr,
                    self.calls,
                    self.writer.local_addr()
                );
            }
            if status == 0 {
                status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
            if line.len() > 15 && line[..15].eq_ignore_ascii_case("content-length:") {
                len = line[15..].trim().parse().unwrap();
            }
            chunked |= line.eq_ignore_ascii_case("transfer-encoding: chunked\r\n");
        }
        let mut body = vec![0u8; len];
        self.reader.read_exact(&mut body).unwrap();
        // A stream: every chunk up to the last (a burst's latency is the whole answer's).
        while chunked {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            body.resize(n + 2, 0);
            self.reader.read_exact(&mut body).unwrap();
            chunked = n > 0;
        }
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        t.elapsed().as_nanos() as f64 / 1000.0
    }

    /// One streamed request: (time to first data frame in µs, per-frame delays in µs).
    fn stream(&mut self) -> (f64, Vec<f64>) {
        let t = Instant::now();
        self.writer.write_all(&self.request).unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).unwrap() == 0 {
                panic!("the server closed the stream before its head ended");
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut ttfb = None;
        let mut delays = Vec::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).unwrap() == 0 {
                panic!("the server closed the stream before its last chunk");
            }
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0u8; n + 2];
            self.reader.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            let now = nanos();
            let text = String::from_utf8_lossy(&chunk[..n]);
            for frame in text.split("\n\n").filter(|f| f.starts_with("data: {")) {
                if let Some(i) = frame.find("\"t\":") {
                    let stamp: u64 = frame[i + 4..]
                        .split([',', '}'])
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    ttfb.get_or_insert(t.elapsed().as_nanos() as f64 / 1000.0);
                    delays.push(now.saturating_sub(stamp) as f64 / 1000.0);
                }
            }
        }
        (ttfb.unwrap_or(f64::NAN), delays)
    }
}

/// Runs `total` chat requests over `conc` keep-alive connections; returns all latencies (µs).
fn load(addr: SocketAddr, path: &str, token: &str, conc: usize, total: usize) -> Vec<f64> {
    load_body(addr, path, token, REQUEST, conc, total)
}

/// [`load`] with another body (the other client APIs).
fn load_body(
    addr: SocketAddr,
    path: &str,
    token: &str,
    body: &'static str,
    conc: usize,
    total: usize,
) -> Vec<f64> {
    let per = total / conc;
    let barrier = Arc::new(Barrier::new(conc));
    let threads: Vec<_> = (0..conc)
        .map(|_| {
            let (path, token, barrier) = (path.to_string(), token.to_string(), barrier.clone());
            thread::spawn(move || {
                let mut c = Client::new(addr, &path, &token, body);
                c.call(); // warm the connection (and the upstream pool behind it)
                barrier.wait();
                (0..per).map(|_| c.call()).collect::<Vec<f64>>()
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// The status of one request (connection closed after it).
fn status_of(addr: SocketAddr, path: &str, token: &str, body: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    match s.read_exact(&mut head) {
        Ok(()) => std::str::from_utf8(&head[9..12])
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        Err(_) => 0,
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The median over rounds of `via[i] - direct[i]`.
fn added(via: &[f64], direct: &[f64]) -> f64 {
    median(via.iter().zip(direct).map(|(v, d)| v - d).collect())
}

fn median(mut v: Vec<f64>) -> f64 {
    pct(&mut v, 0.5)
}

// ----- processes ----------------------------------------------------------------------------

struct Proc {
    child: Child,
    pids: Vec<u32>,
}

impl Proc {
    /// CPU time of every thread of every process, in nanoseconds.
    fn cpu_ns(&self) -> u64 {
        self.pids.iter().map(|p| cpu_ns(*p)).sum()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

/// Sum of /proc/<pid>/task/*/schedstat run times: nanosecond resolution, unlike clock ticks.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

/// (RSS, anonymous, file-backed) in KiB.
fn rss(pid: u32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

fn start_proxy(bin: &Path, dir: &Path, mock: SocketAddr) -> (Proc, SocketAddr, String) {
    let _ = std::fs::remove_dir_all(dir);
    let env = [
        ("FREELLMAPI_UPSTREAM_GROQ", format!("http://{mock}/v1")),
        ("FREELLMAPI_LOG", "warn".to_string()),
        // A scheduled catalog sync mid-run would be noise in the figures.
        ("FREELLMAPI_SYNC_HOURS", "0".to_string()),
    ];
    let mut add = Command::new(bin);
    add.args(["keys", "add", "groq", "--unlimited", "--data-dir"])
        .arg(dir)
        .envs(env.clone())
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = add.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"gsk_benchmark_key\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let mut cmd = Command::new(bin);
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "info",
        "--data-dir",
    ])
    .arg(dir)
    .envs(env)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(i) = line.find("listening on http://") {
                let _ = tx.send(
                    line[i + 20..]
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .to_string(),
                );
            } else if line.contains("ERROR") {
                eprintln!("proxy: {line}");
            }
        }
    });
    let addr: SocketAddr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the proxy started")
        .parse()
        .unwrap();
    let out = Command::new(bin)
        .args(["token", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let pid = child.id();
    (
        Proc {
            child,
            pids: vec![pid],
        },
        addr,
        token,
    )
}

fn start_nginx(dir: &Path, mock: SocketAddr) -> Option<(Proc, SocketAddr)> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    std::fs::create_dir_all(dir.join("logs")).ok()?;
    let conf = format!(
        "worker_processes auto;\nerror_log {d}/logs/error.log warn;\npid {d}/nginx.pid;\ndaemon off;\nevents {{ worker_connections 4096; }}\n\
         http {{\n access_log off;\n keepalive_requests 10000000;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         upstream mock {{ server {mock}; keepalive 64; keepalive_requests 10000000; }}\n\
         server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; }} }}\n}}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).ok()?;
    let child = Command::new(nginx)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(dir)
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let master = child.id();
    // The master plus its workers: every process whose parent is the master.
    let mut pids = vec![master];
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(master) {
                pids.push(pid);
            }
        }
    }
    Some((Proc { child, pids }, addr))
}

/// `streams` paced streams one after another on one connection: (time to the first data
/// frame, every frame's delay), in µs.
fn paced(
    addr: SocketAddr,
    path: &str,
    token: &str,
    body: &str,
    streams: usize,
) -> (Vec<f64>, Vec<f64>) {
    let mut c = Client::new(addr, path, token, body);
    let mut ttfb = Vec::new();
    let mut delays = Vec::new();
    for _ in 0..streams {
        let (t, d) = c.stream();
        ttfb.push(t);
        delays.extend(d);
    }
    (ttfb, delays)
}

/// `--paced ROUNDS`: only the paced streams, direct → freellmapi → nginx in each round, one
/// line per round; for comparing builds on what the full run measures last.
fn paced_rounds(targets: &Targets, rounds: usize, streams: usize) {
    let path = "/v1/chat/completions";
    for round in 1..=rounds {
        let first = |addr: SocketAddr, token: &str| {
            let (mut ttfb, mut delay) = paced(addr, path, token, stream_request(), streams);
            (
                pct(&mut ttfb, 0.5),
                pct(&mut delay, 0.5),
                pct(&mut delay, 0.99),
            )
        };
        let direct = first(targets.mock, "x");
        let ours = first(targets.proxy.1, targets.proxy.2);
        let line = |(t, d50, d99): (f64, f64, f64)| {
            format!(
                "first frame +{:.0} µs, frame delay +{:.0} / +{:.0} µs",
                t - direct.0,
                d50 - direct.1,
                d99 - direct.2
            )
        };
        let mut out = format!("round {round}: freellmapi {}", line(ours));
        if let Some((_, addr)) = targets.nginx {
            let theirs = first(*addr, "x");
            out.push_str(&format!(
                "; nginx {}; first frame ratio {:.2}×",
                line(theirs),
                (ours.0 - direct.0) / (theirs.0 - direct.0)
            ));
        }
        println!("{out}");
    }
}

/// `--chat ROUNDS` (chat at c=1) or `--burst ROUNDS` (burst streams at c=8): only that
/// scenario, interleaved as in the full run, one line per round with the ratios to nginx.
fn scenario_only(targets: &Targets, body: &'static str, conc: usize, total: usize, rounds: usize) {
    let [direct, ours, theirs] = targets.interleaved(body, conc, total, rounds);
    for i in 0..rounds {
        let added = |side: &Side| side.p50[i] - direct.p50[i];
        let mut out = format!(
            "round {}: c={conc} freellmapi +{:.0} µs p50, {:.0} µs CPU, {:.0}/s",
            i + 1,
            added(&ours),
            ours.cpu_us[i],
            ours.rps[i]
        );
        if targets.nginx.is_some() {
            out.push_str(&format!(
                "; nginx +{:.0} µs, {:.0} µs CPU, {:.0}/s; ratios {:.2}× p50, {:.2}× CPU, {:.2}× req/s",
                added(&theirs),
                theirs.cpu_us[i],
                theirs.rps[i],
                added(&ours) / added(&theirs),
                ours.cpu_us[i] / theirs.cpu_us[i],
                ours.rps[i] / theirs.rps[i]
            ));
        }
        println!("{out}");
    }
}

/// Ten batches of `batch` requests at concurrency 16, a quarter of them burst streams (the
/// mock must be set to bursts); after each, 2 s of rest, then the RSS (total, anon, file KiB)
/// and the data file's size. Starts the list with `warm` (0 requests).
fn soak(
    addr: SocketAddr,
    token: &str,
    pid: u32,
    data_dir: &Path,
    batch: usize,
    warm: (u64, u64, u64),
) -> Vec<(usize, (u64, u64, u64), u64)> {
    let path = "/v1/chat/completions";
    let stream_body = stream_request();
    let mut soak = vec![(0usize, warm, data_file_kib(data_dir))];
    for i in 1..=10 {
        let streams = thread::spawn({
            let token = token.to_string();
            move || load_body(addr, path, &token, stream_body, 4, batch / 4)
        });
        load_body(addr, path, token, REQUEST, 12, batch - batch / 4);
        streams.join().unwrap();
        thread::sleep(Duration::from_secs(2));
        let (r, data) = (rss(pid), data_file_kib(data_dir));
        eprintln!(
            "after {} requests: RSS {} KiB (anon {}, file {}), data file {data} KiB",
            i * batch,
            r.0,
            r.1,
            r.2
        );
        soak.push((i * batch, r, data));
    }
    soak
}

// ----- the run ------------------------------------------------------------------------------

/// The printed table and the JSON fields, built row by row.
#[derive(Default)]
struct Report {
    table: String,
    json: Vec<String>,
}

impl Report {
    fn row(&mut self, name: &str, value: String, target: &str, key: &str, num: f64) {
        self.table
            .push_str(&format!("| {name} | {value} | {target} |\n"));
        self.extra(key, num);
    }

    fn extra(&mut self, key: &str, num: f64) {
        self.json.push(format!("\"{key}\":{num:.3}"));
    }
}

#[derive(Default)]
struct Side {
    p50: Vec<f64>,
    p99: Vec<f64>,
    cpu_us: Vec<f64>,
    rps: Vec<f64>,
}

impl Side {
    /// One round's latencies, CPU (ns, over the round) and wall time.
    fn add(&mut self, mut lat: Vec<f64>, cpu_ns: Option<u64>, wall: Duration) {
        let n = lat.len() as f64;
        self.p50.push(pct(&mut lat, 0.5));
        self.p99.push(pct(&mut lat, 0.99));
        if let Some(cpu) = cpu_ns {
            self.cpu_us.push(cpu as f64 / 1000.0 / n);
        }
        self.rps.push(n / wall.as_secs_f64());
    }
}

/// Where one scenario is run: the mock directly, freellmapi and (if found) nginx.
struct Targets<'a> {
    mock: SocketAddr,
    proxy: (&'a Proc, SocketAddr, &'a str),
    nginx: Option<&'a (Proc, SocketAddr)>,
}

impl Targets<'_> {
    /// `rounds` interleaved rounds of `total` requests at `conc`: direct, freellmapi, nginx.
    fn interleaved(
        &self,
        body: &'static str,
        conc: usize,
        total: usize,
        rounds: usize,
    ) -> [Side; 3] {
        let path = "/v1/chat/completions";
        let (proc, addr, token) = self.proxy;
        let mut sides: [Side; 3] = Default::default();
        load_body(addr, path, token, body, conc, conc * 10);
        for _ in 0..rounds {
            let t = Instant::now();
            let d = load_body(self.mock, path, "x", body, conc, total);
            sides[0].add(d, None, t.elapsed());
            let (before, t) = (proc.cpu_ns(), Instant::now());
            let p = load_body(addr, path, token, body, conc, total);
            sides[1].add(p, Some(proc.cpu_ns() - before), t.elapsed());
            if let Some((n, addr)) = self.nginx {
                let (before, t) = (n.cpu_ns(), Instant::now());
                let x = load_body(*addr, path, "x", body, conc, total);
                sides[2].add(x, Some(n.cpu_ns() - before), t.elapsed());
            }
        }
        sides
    }
}

/// The data file's size in KiB.
fn data_file_kib(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("data.mdb")).map_or(0, |m| m.len() / 1024)
}

/// The rows of one interleaved scenario: direct, freellmapi and nginx (added p50/p99, CPU,
/// requests/s) and the freellmapi / nginx ratios.
fn scenario_rows(
    r: &mut Report,
    label: &str,
    key: &str,
    conc: usize,
    [direct, via_proxy, via_nginx]: [&Side; 3],
    target: &str,
) {
    let dp50 = median(direct.p50.clone());
    let dp99 = median(direct.p99.clone());
    // Added latency per round (that round's direct call subtracted), then the median over
    // rounds: drift between rounds cancels instead of landing in the difference.
    let pp50 = added(&via_proxy.p50, &direct.p50);
    let pp99 = added(&via_proxy.p99, &direct.p99);
    let pcpu = median(via_proxy.cpu_us.clone());
    let prps = median(via_proxy.rps.clone());
    r.row(
        &format!("{label}c={conc} direct to the mock p50 / p99"),
        format!("{dp50:.0} / {dp99:.0} µs"),
        "(baseline)",
        &format!("{key}c{conc}_direct_p50_us"),
        dp50,
    );
    r.row(
        &format!("{label}c={conc} added by freellmapi p50 / p99"),
        format!("{pp50:.0} / {pp99:.0} µs"),
        "",
        &format!("{key}c{conc}_proxy_added_p50_us"),
        pp50,
    );
    r.extra(&format!("{key}c{conc}_proxy_added_p99_us"), pp99);
    r.row(
        &format!("{label}c={conc} freellmapi CPU per request, requests/s"),
        format!("{pcpu:.0} µs, {prps:.0}/s"),
        "",
        &format!("{key}c{conc}_proxy_cpu_us"),
        pcpu,
    );
    r.extra(&format!("{key}c{conc}_proxy_rps"), prps);
    if via_nginx.p50.is_empty() {
        return;
    }
    let np50 = added(&via_nginx.p50, &direct.p50);
    let np99 = added(&via_nginx.p99, &direct.p99);
    let ncpu = median(via_nginx.cpu_us.clone());
    let nrps = median(via_nginx.rps.clone());
    r.row(
        &format!("{label}c={conc} added by nginx p50 / p99"),
        format!("{np50:.0} / {np99:.0} µs"),
        "(floor)",
        &format!("{key}c{conc}_nginx_added_p50_us"),
        np50,
    );
    r.extra(&format!("{key}c{conc}_nginx_added_p99_us"), np99);
    r.row(
        &format!("{label}c={conc} nginx CPU per request, requests/s"),
        format!("{ncpu:.0} µs, {nrps:.0}/s"),
        "",
        &format!("{key}c{conc}_nginx_cpu_us"),
        ncpu,
    );
    r.extra(&format!("{key}c{conc}_nginx_rps"), nrps);
    r.row(
        &format!("{label}c={conc} freellmapi / nginx: added p50, CPU, requests/s"),
        format!(
            "{:.2}×, {:.2}×, {:.2}×",
            pp50 / np50,
            pcpu / ncpu,
            prps / nrps
        ),
        target,
        &format!("{key}c{conc}_ratio_added_p50"),
        pp50 / np50,
    );
    r.extra(&format!("{key}c{conc}_ratio_cpu"), pcpu / ncpu);
    r.extra(&format!("{key}c{conc}_ratio_rps"), prps / nrps);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let quick = args.iter().any(|a| a == "--quick");
    let bin = PathBuf::from(arg("--proxy").unwrap_or_else(|| "target/release/freellmapi".into()));
    let out_dir = PathBuf::from(arg("--out").unwrap_or_else(|| "target/bench".into()));
    let scale = if quick { 10 } else { 1 };
    nanos();
    // SAFETY: getrlimit/setrlimit on a local, zero-initialised struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(65_536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }

    let work = std::env::temp_dir().join(format!("freellmapi-bench-{}", std::process::id()));
    let shape = Arc::new(std::sync::Mutex::new(PACED));
    let mock = start_mock(shape.clone());
    eprintln!("mock upstream on {mock}");
    let (proxy, proxy_addr, token) = start_proxy(&bin, &work.join("proxy"), mock);
    let nginx = start_nginx(&work.join("nginx"), mock);
    if nginx.is_none() {
        eprintln!("nginx not found: the nginx column is skipped (apt-get install nginx)");
    }
    eprintln!(
        "proxy on {proxy_addr}, nginx on {}",
        nginx
            .as_ref()
            .map_or("-".to_string(), |(_, a)| a.to_string())
    );
    let pid = proxy.child.id();
    thread::sleep(Duration::from_secs(2));
    let idle = rss(pid);
    eprintln!("idle RSS {} KiB (anon {}, file {})", idle.0, idle.1, idle.2);

    let path = "/v1/chat/completions";
    let targets = Targets {
        mock,
        proxy: (&proxy, proxy_addr, &token),
        nginx: nginx.as_ref(),
    };
    let soaking = args.iter().any(|a| a == "--soak");
    let soak_rows = || {
        *shape.lock().unwrap() = BURST;
        soak(
            proxy_addr,
            &token,
            pid,
            &work.join("proxy"),
            100_000 / scale,
            idle,
        );
    };
    if let Some(rounds) = arg("--paced").and_then(|n| n.parse().ok()) {
        if soaking {
            soak_rows();
            *shape.lock().unwrap() = PACED;
        }
        paced_rounds(&targets, rounds, 80 / scale.min(4));
        return;
    }
    if let Some(rounds) = arg("--chat").and_then(|n| n.parse().ok()) {
        scenario_only(&targets, REQUEST, 1, 2000 / scale, rounds);
        return;
    }
    if soaking {
        soak_rows();
        return;
    }
    if let Some(rounds) = arg("--burst").and_then(|n| n.parse().ok()) {
        *shape.lock().unwrap() = BURST;
        scenario_only(&targets, stream_request(), 8, 8000 / scale, rounds);
        return;
    }
    let mut results = Vec::new();
    for (conc, total) in [(1usize, 2000 / scale), (32, 20_000 / scale)] {
        let [direct, via_proxy, via_nginx] = targets.interleaved(REQUEST, conc, total, 5);
        results.push((conc, direct, via_proxy, via_nginx));
    }

    // Burst streams: the whole answer (22 frames, the finish frame and [DONE]) arrives in one
    // write, as from a provider generating faster than the round trip. Latency is the whole
    // stream's, request to last chunk.
    *shape.lock().unwrap() = BURST;
    let stream_body = stream_request();
    eprintln!("burst streams");
    let mut bursts = Vec::new();
    for (conc, total) in [(1usize, 2000 / scale), (8, 8000 / scale)] {
        let [direct, via_proxy, via_nginx] = targets.interleaved(stream_body, conc, total, 5);
        bursts.push((conc, direct, via_proxy, via_nginx));
    }

    // The other client APIs at c=1, interleaved with chat and the direct call, on the same
    // mock: what each front's translation adds over chat.
    let surfaces: [(&str, &str, &'static str); 2] = [
        ("/v1/messages", "messages", MESSAGES_REQUEST),
        ("/v1/responses", "responses", RESPONSES_REQUEST),
    ];
    let surface_total = 2000 / scale;
    let mut surface_rounds: Vec<(Vec<f64>, Vec<f64>, Vec<f64>)> =
        surfaces.iter().map(|_| Default::default()).collect();
    let mut chat_rounds: (Vec<f64>, Vec<f64>) = Default::default();
    // An older binary without these APIs (a before/after comparison) skips the rows.
    let has_surfaces = surfaces
        .iter()
        .all(|(spath, _, body)| status_of(proxy_addr, spath, &token, body) == 200);
    if !has_surfaces {
        eprintln!("this binary does not serve /v1/messages and /v1/responses: rows skipped");
    }
    for _ in 0..if has_surfaces { 5 } else { 0 } {
        let mut d = load(mock, path, "x", 1, surface_total);
        let d50 = pct(&mut d, 0.5);
        let mut c = load(proxy_addr, path, &token, 1, surface_total);
        chat_rounds.0.push(pct(&mut c, 0.5) - d50);
        for (i, (spath, _, body)) in surfaces.iter().enumerate() {
            let before = proxy.cpu_ns();
            let mut v = load_body(proxy_addr, spath, &token, body, 1, surface_total);
            let cpu = (proxy.cpu_ns() - before) as f64 / 1000.0 / surface_total as f64;
            surface_rounds[i].0.push(pct(&mut v, 0.5) - d50);
            surface_rounds[i].1.push(pct(&mut v, 0.99));
            surface_rounds[i].2.push(cpu);
        }
        chat_rounds.1.push(d50);
    }

    // Sustained load: 1 000 000 requests (a tenth with --quick), a quarter of them burst streams,
    // at concurrency 16; anonymous RSS and the data file after every 100 000. A leak keeps
    // climbing; an allocator or a bounded log settling flattens out.
    eprintln!("sustained load");
    thread::sleep(Duration::from_secs(2));
    let warm = rss(pid);
    eprintln!("RSS warm {} KiB (anon {}, file {})", warm.0, warm.1, warm.2);
    let data_dir = work.join("proxy");
    let batch = 100_000 / scale;
    let soak = soak(proxy_addr, &token, pid, &data_dir, batch, warm);

    // Streaming: time to first frame and per-frame delay, direct and through the proxy.
    *shape.lock().unwrap() = PACED;
    // 80 streams of 25 frames each: 20 s per target, enough for a steady p50 on a noisy VM.
    let streams = 80 / scale.min(4);
    let measure = |addr: SocketAddr, token: &str| paced(addr, path, token, stream_body, streams);
    let (mut d_ttfb, mut d_delay) = measure(mock, "x");
    // (added time to first frame p50, added frame delay p50, p99) over the direct stream.
    let mut added_over_direct = |(mut ttfb, mut delay): (Vec<f64>, Vec<f64>)| {
        (
            pct(&mut ttfb, 0.5) - pct(&mut d_ttfb, 0.5),
            pct(&mut delay, 0.5) - pct(&mut d_delay, 0.5),
            pct(&mut delay, 0.99) - pct(&mut d_delay, 0.99),
        )
    };
    let stream_stats = added_over_direct(measure(proxy_addr, &token));
    // The same through nginx: on a VM, much of a quiet stream's added delay is waking an idle
    // core, which any extra hop pays.
    let nginx_stream_stats = nginx
        .as_ref()
        .map(|(_, addr)| added_over_direct(measure(*addr, "x")));

    // 1 000 concurrent open streams through the proxy.
    let open = 1000 / scale;
    *shape.lock().unwrap() = StreamShape {
        frames: 30,
        interval_ms: 1000,
    };
    let ready = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Barrier::new(open + 1));
    let holders: Vec<_> = (0..open)
        .map(|_| {
            let (ready, release, token, body) =
                (ready.clone(), release.clone(), token.clone(), stream_body);
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let mut c = Client::new(proxy_addr, path, &token, body);
                    c.writer.write_all(&c.request.clone()).unwrap();
                    let mut line = String::new();
                    while line != "\r\n" {
                        line.clear();
                        c.reader.read_line(&mut line).unwrap();
                    }
                    line.clear();
                    c.reader.read_line(&mut line).unwrap(); // the first chunk's size line
                    ready.fetch_add(1, Ordering::SeqCst);
                    release.wait();
                })
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(Ordering::SeqCst) < open && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let opened = ready.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(500));
    let streams_rss = rss(pid);

    release.wait();
    for h in holders {
        let _ = h.join();
    }

    // ----- report -----
    let host = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let date = String::from_utf8(
        Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d %H:%M UTC")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let mut r = Report::default();
    r.table.push_str(&format!(
        "freellmapi benchmark, {} ({} cores), {}{}\n",
        host,
        cores,
        date.trim(),
        if quick { " [quick]" } else { "" }
    ));
    r.table.push_str(&format!(
        "binary: {} ({} bytes)\n\n",
        bin.display(),
        std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0)
    ));
    r.table
        .push_str("| measure | value | target |\n|---|---|---|\n");
    r.row(
        "idle RSS, one key, 2 s after start",
        format!("{:.2} MiB", idle.0 as f64 / 1024.0),
        "≤ 6 MiB",
        "idle_rss_kib",
        idle.0 as f64,
    );
    r.row(
        "RSS warm (after the latency rounds, c=32)",
        format!(
            "{:.2} MiB ({:+} KiB over idle)",
            warm.0 as f64 / 1024.0,
            warm.0 as i64 - idle.0 as i64
        ),
        "",
        "warm_rss_kib",
        warm.0 as f64,
    );
    // (total, anon, file) KiB before → after, as one row.
    for (conc, direct, via_proxy, via_nginx) in &results {
        let target = if *conc == 1 {
            "≤ 1.5× (p50), ≤ 2× (CPU)"
        } else {
            ""
        };
        scenario_rows(
            &mut r,
            "",
            "",
            *conc,
            [direct, via_proxy, via_nginx],
            target,
        );
    }
    for (conc, direct, via_proxy, via_nginx) in &bursts {
        let target = if *conc == 1 {
            "≤ 2× (p50), ≤ 3× (CPU)"
        } else {
            "≤ 3× (CPU); req/s ≥ 0.5×"
        };
        scenario_rows(
            &mut r,
            "burst stream ",
            "burst_",
            *conc,
            [direct, via_proxy, via_nginx],
            target,
        );
    }
    let (last, first_half) = (soak[soak.len() - 1], soak[soak.len() / 2]);
    r.row(
        &format!(
            "anonymous RSS over {} requests (¼ burst streams, c=16), every {batch}",
            last.0
        ),
        soak.iter()
            .map(|(_, m, _)| format!("{:.1}", m.1 as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" → ")
            + " MiB",
        "≤ 8 MiB, flat over the last half",
        "soak_anon_rss_kib",
        last.1.1 as f64,
    );
    r.extra("soak_requests", last.0 as f64);
    r.extra(
        "soak_anon_growth_last_half_kib",
        last.1.1 as f64 - first_half.1.1 as f64,
    );
    r.row(
        "data file over the same requests",
        soak.iter()
            .map(|(_, _, d)| format!("{:.1}", *d as f64 / 1024.0))
            .collect::<Vec<_>>()
            .join(" → ")
            + " MiB",
        "bounded (request log capped)",
        "soak_data_file_kib",
        last.2 as f64,
    );
    let chat_added = if has_surfaces {
        median(chat_rounds.0.clone())
    } else {
        f64::NAN
    };
    for ((_, name, _), (added_p50, _, cpu)) in surfaces
        .iter()
        .zip(&surface_rounds)
        .filter(|_| has_surfaces)
    {
        let a = median(added_p50.clone());
        let c = median(cpu.clone());
        r.row(
            &format!("c=1 /v1/{name}: added p50, CPU per request (chat beside it: added p50)"),
            format!("{a:.0} µs, {c:.0} µs ({chat_added:.0} µs)"),
            "no more than chat's + translation",
            &format!("c1_{name}_added_p50_us"),
            a,
        );
        r.extra(&format!("c1_{name}_cpu_us"), c);
    }
    if has_surfaces {
        r.extra("c1_chat_added_p50_same_rounds_us", chat_added);
    }
    r.row(
        "stream: added time to first frame (p50)",
        format!("{:.0} µs", stream_stats.0),
        "≤ 2× nginx's",
        "stream_added_ttfb_us",
        stream_stats.0,
    );
    r.row(
        "stream: added per-frame delay p50 / p99",
        format!("{:.0} / {:.0} µs", stream_stats.1, stream_stats.2),
        "p99 ≤ 100 µs",
        "stream_added_frame_p99_us",
        stream_stats.2,
    );
    r.extra("stream_added_frame_p50_us", stream_stats.1);
    if let Some(n) = nginx_stream_stats {
        r.row(
            "stream via nginx: added first frame p50; frame delay p50 / p99",
            format!("{:.0} µs; {:.0} / {:.0} µs", n.0, n.1, n.2),
            "(floor)",
            "nginx_stream_added_ttfb_us",
            n.0,
        );
        r.extra("nginx_stream_added_frame_p50_us", n.1);
        r.extra("nginx_stream_added_frame_p99_us", n.2);
    }
    r.row(
        &format!("RSS with {opened} open streams"),
        format!(
            "{:.1} MiB (anon {:.1} MiB)",
            streams_rss.0 as f64 / 1024.0,
            streams_rss.1 as f64 / 1024.0
        ),
        "1 000 streams ≤ 48 MiB",
        "streams_rss_kib",
        streams_rss.0 as f64,
    );
    let (table, json) = (r.table, r.json);
    print!("{table}");
    std::fs::create_dir_all(&out_dir).unwrap();
    let json = format!(
        "{{\"date\":\"{}\",\"host\":\"{}\",\"cores\":{},\"quick\":{},\"open_streams\":{},{}}}\n",
        date.trim(),
        host.replace('"', ""),
        cores,
        quick,
        opened,
        json.join(",")
    );
    std::fs::write(out_dir.join("latest.json"), &json).unwrap();
    std::fs::write(out_dir.join("latest.md"), &table).unwrap();
    eprintln!("wrote {}", out_dir.join("latest.json").display());
    drop(nginx);
    drop(proxy);
    let _ = std::fs::remove_dir_all(&work);
}
