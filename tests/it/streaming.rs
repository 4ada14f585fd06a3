//! Stream integrity over real sockets: client disconnects close the upstream within a second,
//! failures after the first frame end with an error frame and `[DONE]`, quiet streams get
//! keep-alive comments, and malformed upstream streams cost bounded time and memory.

use crate::support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use simd_json::prelude::*;
use support::mock::{self, Event, Mock, Reply};
use support::{Proxy, Response};

const STREAM: &str = r#"{"stream":true,"messages":[{"role":"user","content":"go"}]}"#;

fn open_stream(p: &Proxy) -> TcpStream {
    let mut s = support::connect(p.addr);
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{STREAM}",
        p.token,
        STREAM.len()
    )
    .unwrap();
    let head = support::read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

fn closed_at(m: &Mock) -> Option<Instant> {
    m.events.lock().unwrap().iter().find_map(|e| match e {
        Event::WriteFailed(t) | Event::PeerClosed(t) => Some(*t),
        Event::StreamDone(_) | Event::HeadSent => None,
    })
}

fn wait_closed(m: &Mock, within: Duration) -> Option<Instant> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(t) = closed_at(m) {
            return Some(t);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn assert_closed_within_a_second(m: &Mock, client_left: Instant) {
    let closed =
        wait_closed(m, Duration::from_secs(3)).expect("the upstream connection was closed");
    let took = closed.duration_since(client_left);
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

fn frames(parts: &[(u64, &str)]) -> Vec<(Duration, String)> {
    parts
        .iter()
        .map(|(ms, f)| (Duration::from_millis(*ms), f.to_string()))
        .collect()
}

#[test]
fn a_client_disconnect_closes_a_busy_upstream_within_a_second() {
    let m = Mock::start(|_| {
        let parts: Vec<String> = (0..50).map(|i| format!("w{i} ")).collect();
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        Reply::stream(&refs, Duration::from_millis(100))
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_dc")
        .start();
    let mut s = open_stream(&p);
    support::read_chunk(&mut s).unwrap();
    support::read_chunk(&mut s).unwrap();
    let gone = Instant::now();
    drop(s);
    assert_closed_within_a_second(&m, gone);
    p.wait_for("the cancellation in the log", Duration::from_secs(3), |p| {
        p.log_text().contains("client went away")
    });
    assert!(
        !p.log_text().contains("failed (unavailable"),
        "a cancelled request is not a provider failure"
    );
}

#[test]
fn a_client_disconnect_closes_a_silent_upstream_within_a_second() {
    // One frame, then the upstream thinks for a long time.
    let m = Mock::start(|_| Reply::Sse {
        frames: frames(&[
            (0, &mock::chunk(r#"{"content":"thinking"}"#, None)),
            (8_000, "data: [DONE]\n\n"),
        ]),
        abrupt: false,
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_dc2")
        .start();
    let mut s = open_stream(&p);
    support::read_chunk(&mut s).unwrap();
    let gone = Instant::now();
    drop(s);
    assert_closed_within_a_second(&m, gone);
    // The same holds before any byte was sent to the client (non-streaming, slow upstream
    // that has sent its head and is still thinking about the body).
    let m2 = Mock::start(|_| Reply::Sse {
        frames: frames(&[(8_000, "data: [DONE]\n\n")]),
        abrupt: false,
    });
    let p2 = Proxy::builder()
        .upstream("groq", &m2.base())
        .key("groq", "gsk_dc3")
        .start();
    let mut s = support::connect(p2.addr);
    let body = support::user("slow");
    write!(s, "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}", p2.token, body.len()).unwrap();
    p2.wait_for("the upstream's head", Duration::from_secs(5), |_| {
        let events = m2.events.lock().unwrap();
        events.iter().any(|e| matches!(e, Event::HeadSent))
    });
    let gone = Instant::now();
    drop(s);
    assert_closed_within_a_second(&m2, gone);
    p2.wait_for("the cancellation in the log", Duration::from_secs(3), |p| {
        p.log_text().contains("client went away")
    });
}

/// Tries: three streams in a row, each ending with `[DONE]` and then, in a separate write as
/// many servers do, the chunked terminator. The relay reads the body to its end, so all three
/// share one pooled upstream connection (no new handshake per stream). Then an upstream that
/// keeps the body open after `[DONE]`: the client's stream still ends at once, and that
/// connection is given up rather than waited on.
#[test]
fn finished_streams_leave_their_upstream_connection_in_the_pool() {
    let m = Mock::start(|_| Reply::stream(&["a", "b"], Duration::from_millis(5)));
    // One worker: each worker keeps its own pool (a request uses its client socket's
    // worker's), and every stream here comes on a new client connection.
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_pool")
        .env("FREELLMAPI_WORKERS", "1")
        .start();
    for _ in 0..3 {
        let r = p.chat(STREAM);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
    }
    assert_eq!(m.count(), 3);
    assert_eq!(
        m.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "every stream after the first reused the upstream connection"
    );

    m.set(|_| Reply::Sse {
        frames: frames(&[
            (0, &mock::chunk(r#"{"content":"late"}"#, None)),
            (
                0,
                "data: [DONE]

",
            ),
            (
                3_000,
                ": still here

",
            ),
        ]),
        abrupt: false,
    });
    let started = Instant::now();
    let r = p.chat(STREAM);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
    // The mock holds the body open for 3 s: the client must not wait for that, and the relay
    // gives the connection up (closes it) after its one-second drain, well before the mock's
    // body would end.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the client waited {:?}",
        started.elapsed()
    );
    let closed = wait_closed(&m, Duration::from_secs(3)).map(|t| t.duration_since(started));
    assert!(
        closed.is_some_and(|t| t < Duration::from_millis(2_900)),
        "the held-open upstream connection was closed, not pooled: {closed:?}"
    );
}

/// Tries: streams whose whole body, end included, arrives in one write (a fast provider).
/// Each client gets every frame, `[DONE]` and its response's end; the relay finds the body's
/// end already there, so it ends the response with the last frames and reuses the upstream
/// connection for every stream.
#[test]
fn a_stream_whose_end_comes_with_done_ends_at_once_and_pools() {
    let burst = || {
        Reply::SseBurst(vec![
            mock::chunk(r#"{"role":"assistant","content":"one "}"#, None),
            mock::chunk(r#"{"content":"two"}"#, Some("stop")),
            "data: [DONE]\n\n".to_string(),
        ])
    };
    let m = Mock::start(move |_| burst());
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_burst")
        .env("FREELLMAPI_WORKERS", "1")
        .start();
    for _ in 0..3 {
        let r = p.chat(STREAM);
        assert_eq!(r.status, 200, "{}", r.text());
        let data = r.sse_data();
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
        assert!(data.iter().any(|d| d.contains("one ")) && data.iter().any(|d| d.contains("two")));
    }
    assert_eq!(m.count(), 3);
    assert_eq!(
        m.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "every stream after the first reused the upstream connection"
    );
}

/// Tries: a stream whose first output is a tool call with no arguments yet (the byte scan
/// counts no output in it; only the parse sees the call). It must count as output: the stream
/// is served, not failed over as empty.
#[test]
fn a_tool_call_without_arguments_is_output_from_its_first_delta() {
    let m = Mock::start(|_| Reply::Sse {
        frames: frames(&[
            (
                0,
                &mock::chunk(r#"{"role":"assistant","content":""}"#, None),
            ),
            (
                0,
                &mock::chunk(
                    r#"{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"now","arguments":""}}]}"#,
                    None,
                ),
            ),
            (0, &mock::chunk("{}", Some("tool_calls"))),
            (0, "data: [DONE]\n\n"),
        ]),
        abrupt: false,
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_tools")
        .start();
    let r = p.chat(STREAM);
    assert_eq!(r.status, 200, "{}", r.text());
    let data = r.sse_data();
    assert!(
        data.iter().any(|d| d.contains(r#""name":"now""#)),
        "{data:?}"
    );
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(m.count(), 1);
}

#[test]
fn a_failure_after_the_first_frame_ends_with_an_error_frame_and_done() {
    let m = Mock::start(|_| Reply::Sse {
        frames: frames(&[
            (
                0,
                &mock::chunk(r#"{"role":"assistant","content":"Hel"}"#, None),
            ),
            (0, &mock::chunk(r#"{"content":"lo"}"#, None)),
        ]),
        abrupt: true,
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_mid")
        .start();
    let r = p.chat(STREAM);
    assert_eq!(r.status, 200);
    let data = r.sse_data();
    assert_eq!(data.len(), 4, "{data:?}");
    assert!(data[0].contains("Hel") && data[1].contains("lo"));
    assert_eq!(
        data[2],
        r#"{"error":{"message":"upstream stream interrupted","type":"stream_error"}}"#
    );
    assert_eq!(data[3], "[DONE]");
}

#[test]
fn quiet_streams_get_keep_alive_comments() {
    let m = Mock::start(|_| Reply::Sse {
        frames: frames(&[
            (0, &mock::chunk(r#"{"content":"a"}"#, None)),
            (2_600, &mock::chunk(r#"{"content":"b"}"#, Some("stop"))),
            (0, "data: [DONE]\n\n"),
        ]),
        abrupt: false,
    });
    let p = Proxy::builder()
        .env("FREELLMAPI_SSE_KEEPALIVE_SECS", "1")
        .upstream("groq", &m.base())
        .key("groq", "gsk_ka")
        .start();
    let r = p.chat(STREAM);
    let text = r.text();
    let pings = text.matches(": keep-alive\n\n").count();
    assert!((1..=3).contains(&pings), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(r.sse_data().len(), 3);
}

#[test]
fn an_idle_upstream_mid_stream_times_out_cleanly() {
    let m = Mock::start(|_| Reply::Sse {
        frames: frames(&[
            (0, &mock::chunk(r#"{"content":"a"}"#, None)),
            (6_000, "data: [DONE]\n\n"),
        ]),
        abrupt: false,
    });
    let p = Proxy::builder()
        .env("FREELLMAPI_IDLE_TIMEOUT_SECS", "1")
        .upstream("groq", &m.base())
        .key("groq", "gsk_idle")
        .start();
    let started = Instant::now();
    let r = p.chat(STREAM);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?} {}",
        started.elapsed(),
        p.log_text()
    );
    let data = r.sse_data();
    assert!(data[data.len() - 2].contains("stream_error"), "{data:?}");
    assert_eq!(data[data.len() - 1], "[DONE]");
}

fn two_platforms(first: Reply) -> (Mock, Mock, Proxy) {
    let mut once = Some(first);
    let a = Mock::start(move |_| once.take().unwrap_or(Reply::Close));
    let b = Mock::start(|_| Reply::stream(&["from groq"], Duration::ZERO));
    let p = Proxy::builder()
        .upstream("cerebras", &a.base())
        .first("cerebras", "gpt-oss-120b")
        .upstream("groq", &b.base())
        .key("cerebras", "csk-s")
        .key("groq", "gsk_s")
        .start();
    (a, b, p)
}

fn assert_failed_over(r: &Response) {
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/openai/gpt-oss-120b"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("X-Fallback-Attempts").as_deref(), Some("1"));
    assert!(
        r.header("X-Fallback-Trail")
            .is_some_and(|t| t.starts_with("cerebras/")),
        "streams carry the trail too"
    );
    assert!(
        r.text().contains("from groq") && !r.text().contains("stream_error"),
        "{}",
        r.text()
    );
}

#[test]
fn broken_starts_fail_over_invisibly() {
    // Invalid JSON before any output.
    let (_a, _b, p) = two_platforms(Reply::Sse {
        frames: frames(&[(0, "data: {not json\n\n")]),
        abrupt: false,
    });
    assert_failed_over(&p.chat(STREAM));
    // An error object instead of a chunk.
    let (_a, _b, p) = two_platforms(Reply::Sse {
        frames: frames(&[(0, "data: {\"error\":{\"message\":\"overloaded\"}}\n\n")]),
        abrupt: false,
    });
    assert_failed_over(&p.chat(STREAM));
    // EOF without [DONE] and without output.
    let (_a, _b, p) = two_platforms(Reply::Sse {
        frames: vec![],
        abrupt: true,
    });
    assert_failed_over(&p.chat(STREAM));
    // A non-2xx answer to a stream request.
    let (_a, _b, p) = two_platforms(Reply::json(503, "{}"));
    assert_failed_over(&p.chat(STREAM));
}

#[test]
fn invalid_json_after_output_is_an_interruption_not_silence() {
    let m = Mock::start(|_| Reply::Sse {
        frames: frames(&[
            (0, &mock::chunk(r#"{"content":"ok"}"#, None)),
            (0, "data: {broken\n\n"),
        ]),
        abrupt: false,
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_bad")
        .start();
    let data = p.chat(STREAM).sse_data();
    assert_eq!(data.len(), 3, "{data:?}");
    assert!(data[1].contains("stream_error"));
}

#[test]
fn a_giant_line_is_refused_with_bounded_memory() {
    let m = Mock::start(|_| {
        let huge = format!("data: {{\"x\":\"{}", "y".repeat(3 * 1024 * 1024));
        Reply::Sse {
            frames: vec![
                (Duration::ZERO, mock::chunk(r#"{"content":"ok"}"#, None)),
                (Duration::ZERO, huge),
            ],
            abrupt: false,
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_huge")
        .start();
    let data = p.chat(STREAM).sse_data();
    assert!(data.iter().any(|d| d.contains("stream_error")), "{data:?}");
    let rss = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
    let kib: u64 = rss
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(kib < 64 * 1024, "peak RSS {kib} KiB");
}

#[test]
fn multi_line_and_spaceless_data_are_normalised() {
    let m = Mock::start(|_| Reply::Sse {
        frames: frames(&[
            (
                0,
                "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\r\n\r\n",
            ),
            (
                0,
                "data: {\"choices\":[{\"index\":0,\r\ndata: \"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\n",
            ),
            (0, ": comment\n\ndata: [DONE]\n\n"),
        ]),
        abrupt: false,
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_ml")
        .start();
    let data = p.chat(STREAM).sse_data();
    assert_eq!(data.len(), 3, "{data:?}");
    assert!(!data[1].contains('\n'));
    assert!(data[1].contains(r#""content":"b""#), "{data:?}");
}

#[test]
fn a_stream_asks_for_real_usage_and_keeps_it_from_a_client_that_did_not() {
    let frames = vec![
        mock::chunk(r#"{"role":"assistant","content":"Hi"}"#, None),
        mock::chunk("{}", Some("stop")),
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":9,\"total_tokens\":30}}\n\n".to_string(),
        "data: [DONE]\n\n".to_string(),
    ];
    let m = Mock::start(move |_| Reply::Sse {
        frames: frames.iter().map(|f| (Duration::ZERO, f.clone())).collect(),
        abrupt: false,
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_usage")
        .start();
    let r = p.chat(r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(r.status, 200);
    let sent = m.last().json();
    assert_eq!(
        sent.get("stream_options")
            .and_then(|o| o.get_bool("include_usage")),
        Some(true),
        "asked upstream"
    );
    assert!(
        !r.text().contains("usage"),
        "the client did not ask: {}",
        r.text()
    );
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));

    // A client that asks gets the chunk.
    let r = p.chat(r#"{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#);
    assert!(r.text().contains(r#""total_tokens":30"#), "{}", r.text());

    // The log has the provider's numbers, not an estimate.
    let admin = support::admin::Admin::setup(&p);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let v = admin.get("/api/analytics/summary?range=24h").json();
        if v.get_u64("totalRequests") == Some(2) {
            assert_eq!(v.get_u64("inputTokens"), Some(42));
            assert_eq!(v.get_u64("outputTokens"), Some(18));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn many_waiting_streams_give_back_their_stack_and_stay_intact() {
    // Tries: more streams waiting at once than the server keeps stack pages for, so each gives
    // the deep pages of its start back while it waits (a few streams keep them); then a second,
    // deep request on every one of those connections, on the stack that was given back. Every
    // answer must arrive whole and in order.
    const STREAMS: usize = 24;
    let parts = ["alpha", "beta", "gamma", "delta"];
    let m = Mock::start(move |_| Reply::stream(&parts, Duration::from_millis(40)));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_stack")
        .start();
    let expected: Vec<String> = std::iter::once(String::new())
        .chain(parts.iter().map(|s| s.to_string()))
        .collect();
    let (addr, token) = (p.addr, p.token.clone());
    let clients: Vec<_> = (0..STREAMS)
        .map(|_| {
            let token = token.clone();
            let expected = expected.clone();
            std::thread::spawn(move || {
                let mut s = support::connect(addr);
                for round in 0..2 {
                    write!(
                        s,
                        "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{STREAM}",
                        STREAM.len()
                    )
                    .unwrap();
                    let r = support::read_response(&mut s);
                    assert_eq!(r.status, 200, "round {round}: {}", r.text());
                    let data = r.sse_data();
                    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "round {round}");
                    let texts: Vec<String> = data
                        .iter()
                        .filter(|d| d.starts_with('{'))
                        .filter_map(|d| {
                            let mut bytes = d.clone().into_bytes();
                            let v = simd_json::to_owned_value(&mut bytes).unwrap();
                            v.get("choices")?.get_idx(0)?.get("delta")?.get_str("content")
                                .map(str::to_string)
                        })
                        .collect();
                    assert_eq!(texts, expected, "round {round}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client saw a damaged stream");
    }
    assert_eq!(m.count(), 2 * STREAMS);
    assert_eq!(p.get("/healthz").status, 200, "the server is still up");
}
