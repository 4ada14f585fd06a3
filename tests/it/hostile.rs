//! A hostile world, over real sockets against the real binary: clients without a key that
//! announce large bodies, clients that drip their bodies, more body data in flight than the
//! server holds, chunk sizes with a sign, providers that announce huge replies, and providers
//! that trickle bytes or comments that never make progress. Each test says what it tries.
//! Memory is read from the server's `/proc/<pid>/status`; waits are bounded, and no happy path
//! is timed.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use simd_json::prelude::*;
use support::mock::{Mock, Reply};
use support::{Proxy, user};

const LIMIT: usize = freellmapi::config::DEFAULT_BODY_LIMIT;
const CEREBRAS_FIRST: &str = "gpt-oss-120b";
const GROQ_FIRST: &str = "openai/gpt-oss-120b";

fn connect(p: &Proxy) -> TcpStream {
    let s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the connection closes or the read times out; returns what arrived.
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn chat_head(content_length: usize, extra: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n{extra}\r\n"
    )
}

/// Tries: eight clients without a key each announce a body at the limit and send the first
/// KiB (the rest would follow only after an answer); then eight more that send the whole
/// body regardless. Every one gets its 401 before its body, and the server's peak memory
/// stays within a few MiB of where it started (it used to read each body whole first).
#[test]
fn clients_without_a_key_are_refused_before_their_bodies() {
    let p = Proxy::builder().start();
    let start_rss = p.memory_kib("VmRSS");

    let mut waiting: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = connect(&p);
            s.write_all(chat_head(LIMIT, "").as_bytes()).unwrap();
            s.write_all(&[b'{'; 1024]).unwrap();
            s
        })
        .collect();
    for s in &mut waiting {
        let answer = read_all(s);
        assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
        assert!(answer.contains("\"code\":\"invalid_api_key\""), "{answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
    }

    let pushers: Vec<_> = (0..8)
        .map(|_| {
            let addr = p.addr;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(chat_head(LIMIT, "Authorization: Bearer wrong\r\n").as_bytes())
                    .unwrap();
                // The server may stop reading and close; a failed write is that.
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..LIMIT / chunk.len() {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                }
                read_all(&mut s)
            })
        })
        .collect();
    for t in pushers {
        let answer = t.join().unwrap();
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 401 "),
            "{answer}"
        );
    }
    let peak = p.memory_kib("VmHWM");
    assert!(
        peak < start_rss + 6 * 1024,
        "peak {peak} KiB against {start_rss} KiB at start: bodies were buffered"
    );
    assert_eq!(
        support::request(p.addr, "GET", "/healthz", &[], b"").status,
        200
    );
}

/// Tries: `Expect: 100-continue` without a key. The client gets the 401, never a
/// `100 Continue` inviting the body; a wrong path gets its 404 the same way.
#[test]
fn expect_continue_without_a_key_gets_the_refusal_instead() {
    let p = Proxy::builder().start();
    let mut s = connect(&p);
    s.write_all(chat_head(1000, "Expect: 100-continue\r\n").as_bytes())
        .unwrap();
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");

    let auth = format!("Authorization: Bearer {}\r\n", p.token);
    let mut s = connect(&p);
    s.write_all(
        format!(
            "POST /v1/nothing-here HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
}

/// Tries: a refused request whose small body arrived with its head. The body is skipped and
/// the same connection serves the next request.
#[test]
fn a_refused_request_with_a_small_body_keeps_its_connection() {
    let p = Proxy::builder().start();
    let mut s = connect(&p);
    let body = user("hi");
    s.write_all(format!("{}{body}", chat_head(body.len(), "")).as_bytes())
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    assert!(answer.contains("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains(r#"{"status":"ok"}"#), "{answer}");
}

/// Tries: an authenticated client that sends its body one byte every 200 ms, each byte
/// well inside the per-read timeout. The body's own deadline (2 s here) ends it with a 408.
#[test]
fn a_body_dripped_slowly_is_cut_at_its_deadline() {
    let p = Proxy::builder()
        .env("FREELLMAPI_BODY_TIMEOUT_SECS", "2")
        .start();
    let mut s = connect(&p);
    let auth = format!("Authorization: Bearer {}\r\n", p.token);
    s.write_all(chat_head(1000, &auth).as_bytes()).unwrap();
    let started = Instant::now();
    let mut writer = s.try_clone().unwrap();
    let dripper = std::thread::spawn(move || {
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(200));
            if writer.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let answer = read_all(&mut s);
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(took >= Duration::from_millis(1500), "cut after {took:?}");
    assert!(took < Duration::from_secs(9), "cut after {took:?}");
    drop(s);
    dripper.join().unwrap();
}

/// Tries: with a 1 MiB body limit (so 1.5 MiB for all bodies in flight), three authenticated
/// clients announce 768 KiB each and hold their bodies back. Two are admitted (and wait for
/// their bodies), one is answered 503 with `Retry-After` (after a second's wait for room)
/// before its body is read. Once the two leave, a 1 MiB request is served.
#[test]
fn bodies_in_flight_share_a_budget_and_the_excess_waits() {
    let m = Mock::start(|_| Reply::completion("fits"));
    let p = Proxy::builder()
        .env("FREELLMAPI_MAX_BODY_MIB", "1")
        .upstream("groq", &m.base())
        .key("groq", "gsk_budget")
        .start();
    let mib = 1024 * 1024;
    let auth = format!("Authorization: Bearer {}\r\n", p.token);
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let mut s = connect(&p);
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            s.write_all(chat_head(768 * 1024, &auth).as_bytes())
                .unwrap();
            s.write_all(b"{\"messages\":").unwrap();
            std::thread::spawn(move || {
                let answer = read_all(&mut s);
                (answer, s)
            })
        })
        .collect();
    let answers: Vec<(String, TcpStream)> =
        clients.into_iter().map(|t| t.join().unwrap()).collect();
    let refused: Vec<&String> = answers
        .iter()
        .map(|(a, _)| a)
        .filter(|a| !a.is_empty())
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].starts_with("HTTP/1.1 503 "), "{}", refused[0]);
    assert!(
        refused[0].contains("\"code\":\"server_busy\""),
        "{}",
        refused[0]
    );
    assert!(refused[0].contains("Retry-After: 2"), "{}", refused[0]);
    drop(answers);

    // An image fills the body (images do not count as prompt tokens).
    let payload = "A".repeat(mib - 300);
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":[{{"type":"text","text":"what is this?"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{payload}"}}}}]}}]}}"#
    );
    assert!(body.len() <= mib);
    p.wait_for("the budget to be given back", Duration::from_secs(5), |p| {
        p.chat(&body).status == 200
    });
}

/// Tries: a chunked body whose size line is `+4a` (a sign `u64::from_str_radix` would take).
#[test]
fn a_chunk_size_with_a_sign_is_refused() {
    let p = Proxy::builder().start();
    let mut s = connect(&p);
    let body = user("hi");
    s.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n+{:x}\r\n{body}\r\n0\r\n\r\n",
            p.token,
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let answer = read_all(&mut s);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("invalid chunk size"), "{answer}");
}

fn two_providers(first: Reply, extra_env: &[(&str, &str)]) -> (Mock, Mock, Proxy) {
    let first = std::sync::Mutex::new(Some(first));
    let a = Mock::start(move |_| first.lock().unwrap().take().unwrap_or(Reply::Close));
    let b = Mock::start(|r| {
        if r.json().get("stream").and_then(|v| v.as_bool()) == Some(true) {
            Reply::stream(&["served ", "by groq"], Duration::ZERO)
        } else {
            Reply::completion("served by groq")
        }
    });
    let mut builder = Proxy::builder()
        .upstream("cerebras", &a.base())
        .first("cerebras", CEREBRAS_FIRST)
        .upstream("groq", &b.base())
        .key("cerebras", "csk-first-key-0001")
        .key("groq", "gsk_second_key_0002");
    for (k, v) in extra_env {
        builder = builder.env(k, v);
    }
    (a, b, builder.start())
}

/// Tries: a provider answering `200` with `Content-Length: 104857600` and then sending its
/// body in 64 KiB pieces. The declared length is over the limit, so the reply is refused
/// unread and the next provider serves; the server's memory does not follow the body.
#[test]
fn a_reply_announced_too_large_is_refused_unread() {
    let huge = Reply::Drip {
        head: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n".to_vec(),
        piece: vec![b' '; 64 * 1024],
        every: Duration::from_millis(1),
        times: 1600,
    };
    let (_a, _b, p) = two_providers(huge, &[]);
    let start_rss = p.memory_kib("VmRSS");
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );
    let peak = p.memory_kib("VmHWM");
    assert!(
        peak < start_rss + 8 * 1024,
        "peak {peak} KiB against {start_rss} KiB: the reply was read"
    );
}

/// Tries: a provider answers `200`, `Content-Length: 100000`, and one byte every 0.5 s: every
/// read succeeds, none finishes. Before, this held the request for its whole budget (60 s)
/// and ended in a 429 with a healthy provider next in line. Now the pace of the first second
/// shows the rest cannot arrive in the attempt's share of the budget: the attempt fails and
/// the next provider serves, seconds after the start.
#[test]
fn a_trickling_reply_of_declared_length_fails_over_at_once() {
    let trickle = Reply::Drip {
        head:
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                .to_vec(),
        piece: b" ".to_vec(),
        every: Duration::from_millis(500),
        times: 200,
    };
    let (a, b, p) = two_providers(trickle, &[]);
    let started = Instant::now();
    let r = p.chat(&user("hi"));
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );
    assert!(took < Duration::from_secs(20), "answered after {took:?}");
    assert_eq!((a.count(), b.count()), (1, 1));
    assert_eq!(a.last().model(), CEREBRAS_FIRST);
    assert!(
        r.header("X-Fallback-Trail")
            .unwrap()
            .contains("unavailable"),
        "{}",
        r.head
    );
}

/// Tries: the same trickle with no declared length (a chunked body, one byte a chunk), under a
/// 12 s budget. No pace can say when it ends, so the body has half the time the request has
/// left; then the attempt fails and the next provider serves within the budget.
#[test]
fn a_trickling_reply_of_unknown_length_gets_half_the_time_left() {
    let trickle = Reply::Drip {
        head: b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec(),
        piece: b"1\r\n \r\n".to_vec(),
        every: Duration::from_millis(500),
        times: 200,
    };
    let (_a, b, p) = two_providers(trickle, &[("FREELLMAPI_REQUEST_BUDGET_SECS", "12")]);
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );
    assert_eq!(b.count(), 1);
}

/// Tries: a provider that answers a stream with `: comment` lines every 0.5 s and never an
/// event, with a 2 s idle timeout. Comments are not progress: the attempt fails after 2 s and
/// the next provider serves the stream.
#[test]
fn a_stream_of_comments_only_fails_over() {
    let comments = Reply::Drip {
        head: b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec(),
        piece: b"e\r\n: keep-alive\n\n\r\n".to_vec(),
        every: Duration::from_millis(500),
        times: 60,
    };
    let (_a, _b, p) = two_providers(
        comments,
        &[
            ("FREELLMAPI_FIRST_BYTE_TIMEOUT_SECS", "2"),
            ("FREELLMAPI_IDLE_TIMEOUT_SECS", "2"),
        ],
    );
    let started = Instant::now();
    let r = p.chat(r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    let took = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
    assert!(
        took >= Duration::from_millis(1500),
        "failed over after {took:?}"
    );
    assert!(took < Duration::from_secs(10), "failed over after {took:?}");
}

/// Tries: one allowed request at the body limit (an 8 MiB base64 image for a Gemini model,
/// translated to `inlineData`), three times in a row (each may arrive before the server has
/// given back the previous one's share of the body budget: it waits, it is not refused). The server's peak stays within the
/// per-request budget README states (twice the body and 4 MiB over where it started), and after
/// the requests the memory is given back (mimalloc used to keep the peak: 47 MiB held after
/// one such request).
#[test]
fn a_request_at_the_body_limit_costs_a_bounded_multiple_and_is_given_back() {
    let gemini = r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"a cat"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2,"totalTokenCount":3}}"#;
    let m = Mock::start(move |_| Reply::json(200, gemini));
    let p = Proxy::builder()
        .upstream("google", &format!("http://{}/v1beta", m.addr))
        .key("google", "AIzaSyA-hostile-test-key-0000000000000")
        .start();
    let head = r#"{"model":"gemini-3.8-flash","messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,"#;
    let tail = r#""}}]}]}"#;
    let payload = "A".repeat(LIMIT - head.len() - tail.len());
    let body = format!("{head}{payload}{tail}");
    assert_eq!(body.len(), LIMIT);
    let start_kib = p.memory_kib("VmRSS");
    for _ in 0..3 {
        let r = p.chat(&body);
        assert_eq!(r.status, 200, "{}", &r.text()[..r.text().len().min(300)]);
        assert!(r.text().contains("a cat"));
    }
    assert!(
        m.last().body.len() > LIMIT - 1024,
        "the image reached the provider"
    );
    let limit_kib = (LIMIT / 1024) as u64;
    let peak = p.memory_kib("VmHWM");
    assert!(
        peak < start_kib + 2 * limit_kib + 4096,
        "peak {peak} KiB from {start_kib} KiB for a {limit_kib} KiB body"
    );
    p.wait_for("the memory to be given back", Duration::from_secs(5), |p| {
        p.memory_kib("VmRSS") < start_kib + limit_kib
    });
}
