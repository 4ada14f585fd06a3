//! A scriptable mock provider over real sockets, written on std threads so it shares no code
//! with the server under test. Each request is recorded; a behaviour closure picks the reply.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> simd_json::OwnedValue {
        simd_json::to_owned_value(&mut self.body.clone()).expect("request body is JSON")
    }

    pub fn model(&self) -> String {
        use simd_json::prelude::*;
        self.json().get_str("model").unwrap_or("").to_string()
    }
}

pub enum Reply {
    /// A complete response with a Content-Length body.
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// A chunked SSE body: each frame written after its delay. `abrupt` closes without the
    /// terminating chunk.
    Sse {
        frames: Vec<(Duration, String)>,
        abrupt: bool,
    },
    /// A chunked SSE body written whole, its end included, in one write: a fast provider
    /// whose tokens come faster than the round trip. The connection stays open.
    SseBurst(Vec<String>),
    /// Read the request, then say nothing for this long (then close).
    Stall(Duration),
    /// Close the connection without answering.
    Close,
    /// Write these bytes and close.
    Raw(Vec<u8>),
    /// Write `head`, then `piece` every `every`, `times` times, then close: a provider that
    /// trickles bytes without ever finishing.
    Drip {
        head: Vec<u8>,
        piece: Vec<u8>,
        every: Duration,
        times: usize,
    },
    /// Wait (without holding the mock's lock), then reply.
    After(Duration, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: &str) -> Reply {
        Reply::Json {
            status,
            headers: vec![],
            body: body.to_string(),
        }
    }

    pub fn with_header(self, name: &'static str, value: &str) -> Reply {
        match self {
            Reply::Json {
                status,
                mut headers,
                body,
            } => {
                headers.push((name, value.to_string()));
                Reply::Json {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }

    /// A normal OpenAI completion saying `text`.
    pub fn completion(text: &str) -> Reply {
        Reply::json(200, &completion_body(text))
    }

    /// An OpenAI stream of `parts` then `[DONE]`, each frame `gap` apart.
    pub fn stream(parts: &[&str], gap: Duration) -> Reply {
        let mut frames = vec![(
            Duration::ZERO,
            chunk(r#"{"role":"assistant","content":""}"#, None),
        )];
        for p in parts {
            frames.push((gap, chunk(&format!(r#"{{"content":{}}}"#, quote(p)), None)));
        }
        frames.push((gap, chunk("{}", Some("stop"))));
        frames.push((Duration::ZERO, "data: [DONE]\n\n".to_string()));
        Reply::Sse {
            frames,
            abrupt: false,
        }
    }
}

pub fn quote(s: &str) -> String {
    let mut out = Vec::new();
    freellmapi::json::write_str(&mut out, s);
    String::from_utf8(out).unwrap()
}

pub fn completion_body(text: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-mock","object":"chat.completion","created":1,"model":"mock","choices":[{{"index":0,"message":{{"role":"assistant","content":{}}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}}}"#,
        quote(text)
    )
}

pub fn chunk(delta: &str, finish: Option<&str>) -> String {
    let finish = finish.map(quote).unwrap_or_else(|| "null".into());
    format!(
        "data: {{\"id\":\"chatcmpl-mock\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"mock\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

type Behaviour = Box<dyn FnMut(&Recorded) -> Reply + Send>;

/// Things the mock noticed, with when they happened.
#[derive(Clone, Debug)]
pub enum Event {
    /// A stream's head went out: the proxy has an answer to wait on.
    HeadSent,
    /// A write to the proxy failed: it closed the upstream connection.
    WriteFailed(Instant),
    /// While the mock waited between frames, the proxy closed the connection.
    PeerClosed(Instant),
    StreamDone(Instant),
}

pub struct Mock {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    pub events: Arc<Mutex<Vec<Event>>>,
    /// Connections accepted so far.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
}

impl Mock {
    pub fn start(behaviour: impl FnMut(&Recorded) -> Reply + Send + 'static) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mock = Mock {
            addr,
            requests: Arc::default(),
            events: Arc::default(),
            connections: Arc::default(),
            behaviour: Arc::new(Mutex::new(Box::new(behaviour))),
        };
        let (requests, events, behaviour, connections) = (
            mock.requests.clone(),
            mock.events.clone(),
            mock.behaviour.clone(),
            mock.connections.clone(),
        );
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (r, e, b) = (requests.clone(), events.clone(), behaviour.clone());
                thread::spawn(move || serve(conn, r, e, b));
            }
        });
        mock
    }

    /// Replaces the behaviour.
    pub fn set(&self, behaviour: impl FnMut(&Recorded) -> Reply + Send + 'static) {
        *self.behaviour.lock().unwrap() = Box::new(behaviour);
    }

    /// The base URL to give the proxy (`FREELLMAPI_UPSTREAM_<PLATFORM>`).
    pub fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn last(&self) -> Recorded {
        self.requests
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the mock received a request")
    }
}

/// An address with nothing listening (connect is refused).
pub fn refused_base() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/v1")
}

/// Sleeps for `delay`, checking every 10 ms whether the peer closed; true if it did.
fn wait_watching(conn: &TcpStream, delay: Duration) -> bool {
    let until = Instant::now() + delay;
    let mut byte = [0u8; 1];
    while Instant::now() < until {
        conn.set_nonblocking(true).unwrap();
        let closed = matches!(conn.peek(&mut byte), Ok(0))
            || matches!(conn.peek(&mut byte), Err(ref e) if e.kind() != std::io::ErrorKind::WouldBlock);
        conn.set_nonblocking(false).unwrap();
        if closed {
            return true;
        }
        thread::sleep(
            Duration::from_millis(10).min(until.saturating_duration_since(Instant::now())),
        );
    }
    false
}

fn serve(
    conn: TcpStream,
    requests: Arc<Mutex<Vec<Recorded>>>,
    events: Arc<Mutex<Vec<Event>>>,
    behaviour: Arc<Mutex<Behaviour>>,
) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let rec = Recorded {
            method,
            path,
            headers,
            body,
        };
        requests.lock().unwrap().push(rec.clone());
        let mut reply = (behaviour.lock().unwrap())(&rec);
        while let Reply::After(delay, next) = reply {
            thread::sleep(delay);
            reply = *next;
        }
        match reply {
            Reply::After(..) => unreachable!(),
            Reply::Json {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                if conn
                    .write_all(head.as_bytes())
                    .and_then(|_| conn.write_all(body.as_bytes()))
                    .is_err()
                {
                    return;
                }
            }
            Reply::Sse { frames, abrupt } => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                events.lock().unwrap().push(Event::HeadSent);
                for (delay, frame) in frames {
                    if wait_watching(&conn, delay) {
                        events
                            .lock()
                            .unwrap()
                            .push(Event::PeerClosed(Instant::now()));
                        return;
                    }
                    let chunk = format!("{:x}\r\n{frame}\r\n", frame.len());
                    if conn
                        .write_all(chunk.as_bytes())
                        .and_then(|_| conn.flush())
                        .is_err()
                    {
                        events
                            .lock()
                            .unwrap()
                            .push(Event::WriteFailed(Instant::now()));
                        return;
                    }
                }
                if abrupt {
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return;
                }
                if conn.write_all(b"0\r\n\r\n").is_err() {
                    return;
                }
                events
                    .lock()
                    .unwrap()
                    .push(Event::StreamDone(Instant::now()));
            }
            Reply::SseBurst(frames) => {
                let body: String = frames.concat();
                let all = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                );
                if conn.write_all(all.as_bytes()).is_err() {
                    return;
                }
                events
                    .lock()
                    .unwrap()
                    .push(Event::StreamDone(Instant::now()));
            }
            Reply::Stall(d) => {
                thread::sleep(d);
                return;
            }
            Reply::Close => return,
            Reply::Raw(bytes) => {
                let _ = conn.write_all(&bytes);
                return;
            }
            Reply::Drip {
                head,
                piece,
                every,
                times,
            } => {
                if conn.write_all(&head).is_err() {
                    return;
                }
                for _ in 0..times {
                    thread::sleep(every);
                    if conn.write_all(&piece).is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }
}
