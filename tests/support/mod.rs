//! Black-box test support: start the real `freellmapi` binary on port 0 with a temp data dir
//! and upstream overrides, run its CLI, capture its log, and talk HTTP to it over raw sockets.

pub mod admin;
pub mod mock;
pub mod tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_freellmapi");

static SEQ: AtomicU32 = AtomicU32::new(0);

/// This run's directory for test data, `freellmapi-tests/<pid>` in the system's temp dir. The
/// directories of runs that are over (their process is gone) are removed when the next run
/// starts: a failed run's data stays for a look until then, and nothing piles up.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = std::env::temp_dir().join("freellmapi-tests");
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let alive = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A fresh directory in this run's directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = run_dir().join(format!("{tag}-{}", SEQ.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the CLI against `dir` with `env`, feeding `stdin`.
pub fn cli(dir: &Path, env: &[(String, String)], args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // The command may exit before reading stdin (a refused platform); that is its answer.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub token: String,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub stdout: Arc<Mutex<Vec<String>>>,
    child: Option<Child>,
}

pub struct Builder {
    dir: PathBuf,
    env: Vec<(String, String)>,
    keys: Vec<(String, String)>,
    /// Catalog edits stored before the server starts (`Overrides` as JSON).
    catalog_edits: Option<String>,
    unlimited: Vec<(String, String)>,
}

impl Builder {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Points `platform` at a mock base URL.
    pub fn upstream(self, platform: &str, base: &str) -> Self {
        let var = format!("FREELLMAPI_UPSTREAM_{}", platform.to_ascii_uppercase());
        self.env(&var, base)
    }

    pub fn key(mut self, platform: &str, key: &str) -> Self {
        self.keys.push((platform.to_string(), key.to_string()));
        self
    }

    /// A paid key (`--unlimited`): only cooldowns pace it, not the free tier's limits (a test
    /// that polls by sending requests would otherwise meet them).
    pub fn unlimited_key(mut self, platform: &str, key: &str) -> Self {
        self.unlimited.push((platform.to_string(), key.to_string()));
        self
    }

    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = dir.to_path_buf();
        self
    }

    /// Stores catalog edits (the dashboard's `Overrides`, as JSON) before the server starts.
    pub fn catalog_edits(mut self, json: &str) -> Self {
        self.catalog_edits = Some(json.to_string());
        self
    }

    /// Switches `platform/model_id` on and ranks it first: a platform whose free tier ended
    /// (its models are off) serving as with a paid key, ahead of every free model.
    pub fn first(self, platform: &str, model_id: &str) -> Self {
        self.catalog_edits(&format!(
            r#"{{"models":[{{"platform":"{platform}","model_id":"{model_id}","enabled":true,"intelligence_rank":0}}]}}"#
        ))
    }

    pub fn start(self) -> Proxy {
        if let Some(json) = &self.catalog_edits {
            let edits: freellmapi::catalog::Overrides =
                simd_json::serde::from_slice(&mut json.as_bytes().to_vec()).expect("catalog edits");
            std::fs::create_dir_all(&self.dir).unwrap();
            let store = freellmapi::store::Store::open(&self.dir).unwrap();
            store.put_overrides(&edits).unwrap();
        }
        let paid = self.unlimited.iter().map(|(p, k)| (p, k, true));
        for (platform, key, unlimited) in self.keys.iter().map(|(p, k)| (p, k, false)).chain(paid) {
            let mut args = vec!["keys", "add", platform.as_str()];
            if unlimited {
                args.push("--unlimited");
            }
            let out = cli(&self.dir, &self.env, &args, key);
            assert!(
                out.status.success(),
                "keys add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Proxy::spawn(self.dir, self.env)
    }
}

impl Proxy {
    pub fn builder() -> Builder {
        Builder {
            dir: temp_dir("proxy"),
            // Test requests name the host `test` (see `request`): the dashboard must answer
            // to it.
            env: vec![
                ("FREELLMAPI_LOG".into(), "debug".into()),
                ("FREELLMAPI_ALLOWED_HOSTS".into(), "test".into()),
            ],
            keys: vec![],
            catalog_edits: None,
            unlimited: vec![],
        }
    }

    pub fn spawn(dir: PathBuf, env: Vec<(String, String)>) -> Proxy {
        let mut cmd = Command::new(BIN);
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let logs: Arc<Mutex<Vec<String>>> = Arc::default();
        let stdout: Arc<Mutex<Vec<String>>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let err = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let rest = &line[i + "listening on http://".len()..];
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let out = child.stdout.take().unwrap();
        let out_sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                out_sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start: {:?}", logs.lock().unwrap());
            }
        };
        let token_out = cli(&dir, &env, &["token"], "");
        let token = String::from_utf8(token_out.stdout)
            .unwrap()
            .trim()
            .to_string();
        assert!(token.starts_with("freellmapi-"), "token: {token:?}");
        Proxy {
            addr,
            token,
            dir,
            env,
            logs,
            stdout,
            child: Some(child),
        }
    }

    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        cli(&self.dir, &self.env, args, stdin)
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops and starts again on the same data dir and environment.
    pub fn restart(mut self) -> Proxy {
        assert_eq!(self.stop(), Some(0));
        let (dir, env) = (self.dir.clone(), self.env.clone());
        Proxy::spawn(dir, env)
    }

    /// The Ollama listener's address (`FREELLMAPI_OLLAMA_LISTEN=127.0.0.1:0`), from the log.
    pub fn ollama_addr(&self) -> SocketAddr {
        const SAYS: &str = "the Ollama API is served on http://";
        self.wait_for("the Ollama listener", Duration::from_secs(10), |p| {
            p.log_text().contains(SAYS)
        });
        let log = self.log_text();
        let at = log.find(SAYS).unwrap() + SAYS.len();
        log[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// A `/proc/<pid>/status` memory figure of the server in KiB (`VmRSS`, `VmHWM` = peak).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    pub fn chat(&self, body: &str) -> Response {
        self.post("/v1/chat/completions", body, &[])
    }

    pub fn post(&self, path: &str, body: &str, extra: &[(&str, &str)]) -> Response {
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        request(self.addr, "POST", path, &headers, body.as_bytes())
    }

    pub fn get(&self, path: &str) -> Response {
        let auth = format!("Bearer {}", self.token);
        request(self.addr, "GET", path, &[("Authorization", &auth)], b"")
    }

    /// Waits until `cond` holds, polling (no fixed sleeps).
    pub fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&Proxy) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> simd_json::OwnedValue {
        simd_json::to_owned_value(&mut self.body.clone())
            .unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }

    pub fn error_type(&self) -> String {
        use simd_json::prelude::*;
        self.json()
            .get("error")
            .and_then(|e| e.get_str("type"))
            .unwrap_or("")
            .to_string()
    }

    pub fn error_code(&self) -> String {
        use simd_json::prelude::*;
        self.json()
            .get("error")
            .and_then(|e| e.get_str("code"))
            .unwrap_or("")
            .to_string()
    }

    pub fn error_message(&self) -> String {
        use simd_json::prelude::*;
        self.json()
            .get("error")
            .and_then(|e| e.get_str("message"))
            .unwrap_or("")
            .to_string()
    }

    /// The `data:` payloads of an SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.text()
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: ").map(str::to_string))
            .collect()
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    // The error's kind tells a server that died (refused) from a machine out of ports.
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = connect(addr);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    // The host is `test` unless the caller names one.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str("Host: test\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

/// Reads the response head.
pub fn read_head(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => panic!(
                "connection closed mid-head: {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    String::from_utf8(buf).unwrap()
}

/// Reads one chunk of a chunked body; None at the terminating chunk.
pub fn read_chunk(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        s.read_exact(&mut byte).ok()?;
        line.push(byte[0]);
    }
    let n = usize::from_str_radix(std::str::from_utf8(&line[..line.len() - 2]).ok()?, 16).ok()?;
    let mut data = vec![0u8; n + 2];
    s.read_exact(&mut data).ok()?;
    data.truncate(n);
    (n > 0).then_some(data)
}

pub fn read_response(s: &mut TcpStream) -> Response {
    let head = read_head(s);
    let status: u16 = head[9..12].parse().unwrap();
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if status == 304 || status == 204 {
        // No body by definition of the status.
    } else if let Some(i) = lower.find("content-length: ") {
        let n: usize = lower[i + 16..]
            .split("\r\n")
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        body.resize(n, 0);
        s.read_exact(&mut body).unwrap();
    } else if lower.contains("transfer-encoding: chunked") {
        while let Some(c) = read_chunk(s) {
            body.extend_from_slice(&c);
        }
    } else {
        s.read_to_end(&mut body).unwrap();
    }
    Response { status, head, body }
}

/// A user message body.
pub fn user(text: &str) -> String {
    format!(
        r#"{{"messages":[{{"role":"user","content":{}}}]}}"#,
        mock::quote(text)
    )
}
