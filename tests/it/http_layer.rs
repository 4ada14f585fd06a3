//! The HTTP layer on its own, over real sockets: header limits (the OpenAI SDK's 17 headers,
//! nginx-style 40, 65 refused), pipelining, chunked and 100-continue bodies, body limits,
//! garbage, and streamed responses. A tiny echo handler stands in for the routes.

use crate::support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use freellmapi::http::{self, Handler, Request, Responder};

struct Echo;

impl Handler for Echo {
    fn handle(&self, req: &mut Request<'_>, res: &mut Responder<'_>) {
        match req.path {
            "/stream" => {
                let mut w = res.head(200).stream("text/event-stream").unwrap();
                w.write(b"data: 1\n\n").unwrap();
                w.write_parts(&[b"data: ", b"2", b"\n\n"]).unwrap();
                w.finish().unwrap();
            }
            "/one-write-stream" => {
                // Head, the only chunk and the end: one write.
                let w = res.head(200).stream("text/event-stream").unwrap();
                w.finish_with(b"data: only\n\n").unwrap();
            }
            "/empty-stream" => {
                let w = res.head(200).stream("text/event-stream").unwrap();
                w.finish().unwrap();
            }
            "/panic" => panic!("handler bug"),
            "/silent" => {}
            _ => {
                let body = format!(
                    "{{\"path\":\"{}\",\"headers\":{},\"body_len\":{},\"ua\":\"{}\"}}",
                    req.path,
                    req.header_count(),
                    req.body.len(),
                    req.header("user-agent").unwrap_or("")
                );
                res.head(200)
                    .header("X-Test", "a\r\nInjected: 1")
                    .body("application/json", body.as_bytes())
                    .unwrap();
            }
        }
    }
}

fn start(body_limit: usize) -> std::net::SocketAddr {
    start_with(http::Settings {
        body_limit,
        ..Default::default()
    })
}

fn start_with(settings: http::Settings) -> std::net::SocketAddr {
    let handle = http::serve("127.0.0.1:0".parse().unwrap(), Arc::new(Echo), settings).unwrap();
    let addr = handle.local_addr();
    std::mem::forget(handle);
    addr
}

fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn read_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let r = support::read_response(s);
    (r.status, r.head, r.body)
}

fn json_field(body: &[u8], field: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let key = format!("\"{field}\":");
    let start = text
        .find(&key)
        .unwrap_or_else(|| panic!("{field} missing in {text}"))
        + key.len();
    text[start..]
        .split([',', '}'])
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

const SDK_HEADERS: &str = "Host: 127.0.0.1\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\
Accept: application/json\r\nContent-Type: application/json\r\nUser-Agent: OpenAI/Python 1.99.0\r\n\
X-Stainless-Lang: python\r\nX-Stainless-Package-Version: 1.99.0\r\nX-Stainless-OS: Linux\r\n\
X-Stainless-Arch: arm64\r\nX-Stainless-Runtime: CPython\r\nX-Stainless-Runtime-Version: 3.11.7\r\n\
Authorization: Bearer freellmapi-x\r\nX-Stainless-Async: false\r\nx-stainless-retry-count: 0\r\n\
x-stainless-read-timeout: 600\r\n";

#[test]
fn the_openai_sdks_seventeen_headers_are_served() {
    let addr = start(1 << 20);
    let mut s = connect(addr);
    let body = "{}";
    let req = format!(
        "POST /x HTTP/1.1\r\n{SDK_HEADERS}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        req.matches("\r\n").count() - 2,
        17,
        "the request carries exactly the SDK's 17 headers"
    );
    s.write_all(req.as_bytes()).unwrap();
    let (status, head, body) = read_response(&mut s);
    assert_eq!(status, 200, "{head}");
    assert_eq!(json_field(&body, "headers"), "17");
    assert_eq!(json_field(&body, "ua"), "OpenAI/Python 1.99.0");
    assert!(head.contains("X-Request-Id: req_"), "{head}");
    assert!(
        !head.contains("\r\nInjected"),
        "a header value cannot inject a header: {head}"
    );
}

#[test]
fn forty_headers_pass_and_sixty_five_get_431() {
    let addr = start(1 << 20);
    let mut s = connect(addr);
    let mut req = "GET /h HTTP/1.1\r\n".to_string();
    for i in 0..40 {
        req.push_str(&format!("X-Forwarded-Thing-{i}: value-{i}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut s);
    assert_eq!(status, 200);
    assert_eq!(json_field(&body, "headers"), "40");

    let mut s = connect(addr);
    let mut req = "GET /h HTTP/1.1\r\n".to_string();
    for i in 0..65 {
        req.push_str(&format!("X-H-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let (status, _, body) = read_response(&mut s);
    assert_eq!(status, 431);
    assert_eq!(json_field(&body, "code"), "headers_too_large");
}

#[test]
fn keep_alive_and_pipelining_answer_in_order() {
    let addr = start(1 << 20);
    let mut s = connect(addr);
    s.write_all(b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\n\r\n").unwrap();
    for (path, len) in [("/a", "0"), ("/b", "3"), ("/c", "0")] {
        let (status, _, body) = read_response(&mut s);
        assert_eq!(status, 200);
        assert_eq!(json_field(&body, "path"), path);
        assert_eq!(json_field(&body, "body_len"), len);
    }
    // The connection is still usable afterwards.
    s.write_all(b"GET /d HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(json_field(&read_response(&mut s).2, "path"), "/d");
}

/// Tries: a keep-alive connection left idle, a client that never sends a byte, and one that
/// sends half a head and stalls. The idle wait (2 s) is longer than the per-read timeout
/// (0.3 s), so it is served in slices; it must still last the whole idle time and then close
/// quietly, while the stalled head gets a 408 after the per-read timeout, before the idle time
/// is up. Only lower bounds are timed (load only delays); "before" is checked as an order: the
/// silent connection opened beside the stalled one is still open when the 408 arrives.
#[test]
fn idle_connections_close_after_the_idle_time_and_stalled_heads_get_408() {
    let addr = start_with(http::Settings {
        idle_timeout: Duration::from_millis(2000),
        read_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    let closes_quietly = |mut s: TcpStream, from: Instant| {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
        let waited = from.elapsed();
        assert!(
            waited >= Duration::from_millis(1900),
            "closed after {waited:?}"
        );
    };

    let mut s = connect(addr);
    s.write_all(b"GET /a HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).0, 200);
    closes_quietly(s, Instant::now());

    let started = Instant::now();
    let silent = connect(addr);
    let mut s = connect(addr);
    s.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (status, _, body) = read_response(&mut s);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_field(&body, "code"), "request_timeout");
    assert_eq!(
        json_field(&body, "message"),
        "the request did not arrive in time"
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "408 after {waited:?}");
    silent.set_nonblocking(true).unwrap();
    let mut probe = [0u8; 1];
    let open =
        matches!(silent.peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    assert!(
        open,
        "the idle connection closed before the stalled head's 408"
    );
    silent.set_nonblocking(false).unwrap();
    closes_quietly(silent, started);
}

#[test]
fn chunked_and_expect_continue_bodies() {
    let addr = start(1 << 20);
    let mut s = connect(addr);
    s.write_all(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        .unwrap();
    let (status, _, body) = read_response(&mut s);
    assert_eq!(status, 200);
    assert_eq!(json_field(&body, "body_len"), "11");

    let mut s = connect(addr);
    s.write_all(b"POST /e HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"abcd").unwrap();
    let (status, _, body) = read_response(&mut s);
    assert_eq!(status, 200);
    assert_eq!(json_field(&body, "body_len"), "4");
}

#[test]
fn oversized_bodies_get_413_before_they_are_read() {
    let addr = start(25 * 1024 * 1024);
    // Declared too large: answered without sending any body.
    let mut s = connect(addr);
    s.write_all(
        format!(
            "POST /big HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            26 * 1024 * 1024
        )
        .as_bytes(),
    )
    .unwrap();
    let (status, head, body) = read_response(&mut s);
    assert_eq!(status, 413);
    assert!(head.contains("Connection: close"));
    assert_eq!(json_field(&body, "code"), "request_too_large");

    // Actually sending 26 MiB: the client still reads a clean 413, not a reset.
    let mut s = connect(addr);
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(
            format!(
                "POST /big HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                26 * 1024 * 1024
            )
            .as_bytes(),
        );
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..26 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    let (status, _, _) = read_response(&mut s);
    assert_eq!(status, 413);
    sender.join().unwrap();

    // A chunked body that grows past the limit is refused too.
    let addr = start(10);
    let mut s = connect(addr);
    s.write_all(b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).0, 413);
}

#[test]
fn garbage_and_bad_framing_get_400_and_the_server_keeps_serving() {
    let addr = start(1 << 20);
    let cases: &[&[u8]] = &[
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ];
    for case in cases {
        let mut s = connect(addr);
        s.write_all(case).unwrap();
        let (status, _, body) = read_response(&mut s);
        assert_eq!(status, 400, "{:?}", String::from_utf8_lossy(case));
        assert_eq!(json_field(&body, "type"), "invalid_request_error");
    }
    let mut s = connect(addr);
    s.write_all(b"GET /alive HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).0, 200);
}

#[test]
fn streamed_responses_are_chunked_and_http10_is_close_delimited() {
    let addr = start(1 << 20);
    let mut s = connect(addr);
    s.write_all(b"GET /stream HTTP/1.1\r\n\r\n").unwrap();
    let (status, head, body) = read_response(&mut s);
    assert_eq!(status, 200);
    assert!(head.contains("Transfer-Encoding: chunked"));
    assert_eq!(body, b"data: 1\n\ndata: 2\n\n");
    s.write_all(b"GET /after HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(
        read_response(&mut s).0,
        200,
        "keep-alive survives a streamed response"
    );

    let mut s = connect(addr);
    s.write_all(b"GET /stream HTTP/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    assert!(text.starts_with("HTTP/1.0 200 OK"));
    assert!(text.ends_with("\r\n\r\ndata: 1\n\ndata: 2\n\n"), "{text}");

    // A stream's last chunk can leave with its end, the head too when nothing went before.
    let mut s = connect(addr);
    s.write_all(b"GET /one-write-stream HTTP/1.1\r\n\r\n")
        .unwrap();
    let (status, head, body) = read_response(&mut s);
    assert_eq!(status, 200);
    assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
    assert_eq!(body, b"data: only\n\n");
    s.write_all(b"GET /after HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s).0, 200, "keep-alive survives it");
    let mut s = connect(addr);
    s.write_all(b"GET /one-write-stream HTTP/1.0\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    assert!(text.ends_with("\r\n\r\ndata: only\n\n"), "{text}");

    // The head waits for the first chunk; a stream ended before any still sends it.
    for version in ["1.1", "1.0"] {
        let mut s = connect(addr);
        write!(s, "GET /empty-stream HTTP/{version}\r\n\r\n").unwrap();
        if version == "1.1" {
            let (status, head, body) = read_response(&mut s);
            assert_eq!(status, 200);
            assert!(head.contains("Transfer-Encoding: chunked"), "{head}");
            assert!(body.is_empty());
        } else {
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            let text = String::from_utf8(all).unwrap();
            assert!(text.starts_with("HTTP/1.0 200 OK"), "{text}");
            assert!(text.ends_with("\r\n\r\n"), "{text}");
        }
    }
}

#[test]
fn a_panicking_or_silent_handler_yields_500_json() {
    let addr = start(1 << 20);
    for path in ["/panic", "/silent"] {
        let mut s = connect(addr);
        s.write_all(format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
        let (status, _, body) = read_response(&mut s);
        assert_eq!(status, 500, "{path}");
        assert_eq!(json_field(&body, "type"), "server_error");
    }
}

#[test]
fn head_requests_get_headers_only() {
    let addr = start(1 << 20);
    let mut s = connect(addr);
    s.write_all(b"HEAD /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while got.windows(4).filter(|w| w == b"\r\n\r\n").count() < 2 {
        let n = s.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let second = text
        .find("HTTP/1.1 200")
        .and_then(|i| text[i + 1..].find("HTTP/1.1 200"))
        .is_some();
    assert!(
        second,
        "the HEAD response has no body, so the next response follows its head: {text}"
    );
}
