//! The coroutine stack size (`server::COROUTINE_STACK_BYTES`) is chosen by this test: the
//! deepest JSON the server accepts and the largest body it accepts both travel through a real
//! server to a mock upstream and back, on production-sized coroutine stacks. A stack overflow
//! kills the process, which this test would see as a failed request.

use crate::support;

use std::time::Duration;

use support::Proxy;
use support::mock::{Mock, Reply};

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn the_deepest_accepted_json_travels_both_ways() {
    // 127 nested arrays inside the top-level object: depth 128, the most the server accepts.
    let deep = nested(127);
    let reply_body = format!(
        r#"{{"id":"x","object":"chat.completion","created":1,"model":"m","x_deep":{deep},"choices":[{{"index":0,"message":{{"role":"assistant","content":"deep ok"}},"finish_reason":"stop"}}]}}"#
    );
    let m = Mock::start(move |_| Reply::json(200, &reply_body));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_deep")
        .start();
    for _ in 0..3 {
        let r = p.chat(&format!(
            r#"{{"messages":[{{"role":"user","content":"x"}}],"metadata":{deep}}}"#
        ));
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("deep ok") && r.text().contains(&deep));
    }
    let sent = String::from_utf8(m.last().body).unwrap();
    assert!(
        sent.contains(&deep),
        "the deep field reached the upstream intact"
    );
    let r = p.chat(&format!(
        r#"{{"messages":[{{"role":"user","content":"x"}}],"metadata":{}}}"#,
        nested(128)
    ));
    assert_eq!(r.status, 400, "one level deeper is refused before parsing");
}

#[test]
fn the_largest_accepted_request_is_relayed() {
    let m = Mock::start(|r| Reply::completion(&format!("got {} bytes", r.body.len())));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_big")
        .start();
    // An image data URL that fills the body limit (images do not count as prompt text).
    let limit = freellmapi::config::DEFAULT_BODY_LIMIT;
    let overhead = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,"}}]}]}"#.len();
    let payload = "A".repeat(limit - overhead);
    let body = format!(
        r#"{{"messages":[{{"role":"user","content":[{{"type":"text","text":"what is this?"}},{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{payload}"}}}}]}}]}}"#
    );
    assert_eq!(body.len(), limit);
    let r = p.chat(&body);
    assert_eq!(r.status, 200, "{}", &r.text()[..r.text().len().min(300)]);
    let got = m.last().body.len();
    assert!(got > limit - 100 && got < limit + 100, "{got}");
    p.wait_for("the server to stay up", Duration::from_secs(1), |p| {
        support::request(p.addr, "GET", "/healthz", &[], b"").status == 200
    });
}
