//! Failover over real sockets: 429, 5xx, refused connections, stalls, 401, 404,
//! upstream 400s, empty completions and full exhaustion, each against mock providers.

use crate::support;

use std::time::{Duration, Instant};

use simd_json::prelude::*;
use support::mock::{self, Mock, Reply};
use support::{Proxy, user};

/// Cerebras' model, switched on as with a paid key and ranked first (`Builder::first`), so with
/// both keys Cerebras is tried before Groq's best.
const CEREBRAS_FIRST: &str = "gpt-oss-120b";
const GROQ_FIRST: &str = "openai/gpt-oss-120b";

fn pair(first: impl FnMut(&mock::Recorded) -> Reply + Send + 'static) -> (Mock, Mock, Proxy) {
    let a = Mock::start(first);
    let b = Mock::start(|_| Reply::completion("served by groq"));
    let p = Proxy::builder()
        .env("FREELLMAPI_FIRST_BYTE_TIMEOUT_SECS", "1")
        .upstream("cerebras", &a.base())
        .first("cerebras", CEREBRAS_FIRST)
        .upstream("groq", &b.base())
        .key("cerebras", "csk-first-key-0001")
        .key("groq", "gsk_second_key_0002")
        .start();
    (a, b, p)
}

fn assert_served_by_groq(r: &support::Response, attempts: &str) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );
    assert_eq!(r.header("X-Fallback-Attempts").as_deref(), Some(attempts));
}

#[test]
fn rate_limit_on_one_platform_is_served_by_the_next() {
    let (a, _b, p) = pair(|_| Reply::json(429, r#"{"error":{"message":"Rate limit reached"}}"#));
    let r = p.chat(&user("hi"));
    assert_served_by_groq(&r, "1");
    assert_eq!(a.last().model(), CEREBRAS_FIRST);
    assert_eq!(
        r.header("X-Fallback-Trail").as_deref(),
        Some(&*format!("cerebras/{CEREBRAS_FIRST}=rate_limited")),
        "the trail names what failed and how"
    );
    // The cooled model is skipped by the next request without another upstream call.
    let before = a.count();
    let r = p.chat(&user("again"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );
    assert!(r.header("X-Fallback-Attempts").is_none());
    assert!(r.header("X-Fallback-Trail").is_none());
    assert_eq!(a.count(), before, "no retry while cooling down");
}

#[test]
fn server_errors_fail_over() {
    let (_a, _b, p) = pair(|_| Reply::json(503, r#"{"error":{"message":"overloaded"}}"#));
    assert_served_by_groq(&p.chat(&user("hi")), "1");
    let (_a, _b, p) = pair(|_| Reply::json(500, "oops"));
    assert_served_by_groq(&p.chat(&user("hi")), "1");
    let (_a, _b, p) =
        pair(|_| Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"trunc".to_vec()));
    assert_served_by_groq(&p.chat(&user("hi")), "1");
    let (_a, _b, p) = pair(|_| Reply::Raw(b"this is not http at all\r\n\r\n".to_vec()));
    assert_served_by_groq(&p.chat(&user("hi")), "1");
}

#[test]
fn refused_connections_fail_over() {
    let b = Mock::start(|_| Reply::completion("served by groq"));
    let p = Proxy::builder()
        .upstream("cerebras", &mock::refused_base())
        .first("cerebras", CEREBRAS_FIRST)
        .upstream("groq", &b.base())
        .key("cerebras", "csk-refused")
        .key("groq", "gsk_ok")
        .start();
    assert_served_by_groq(&p.chat(&user("hi")), "1");
}

#[test]
fn a_stalled_upstream_times_out_and_fails_over() {
    let (_a, _b, p) = pair(|_| Reply::Stall(Duration::from_secs(10)));
    let started = Instant::now();
    assert_served_by_groq(&p.chat(&user("hi")), "1");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "first-byte timeout of 1 s: {took:?}"
    );
}

#[test]
fn unauthorized_key_moves_to_the_next_key() {
    let m = Mock::start(|r| match r.header("authorization") {
        Some("Bearer gsk_revoked_key") => {
            Reply::json(401, r#"{"error":{"message":"Invalid API Key"}}"#)
        }
        _ => Reply::completion("good key"),
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_revoked_key")
        .key("groq", "gsk_working_key")
        .start();
    for _ in 0..4 {
        let r = p.chat(&user("hi"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.header("X-Routed-Via").unwrap(),
            format!("groq/{GROQ_FIRST}"),
            "same model, other key"
        );
    }
    let revoked = m
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer gsk_revoked_key"))
        .count();
    assert_eq!(
        revoked, 1,
        "the rejected key is paused, not retried on every request"
    );
}

#[test]
fn a_model_gone_404_fails_over() {
    let (a, _b, p) = pair(|_| Reply::json(404, r#"{"error":{"message":"model not found"}}"#));
    assert_served_by_groq(&p.chat(&user("hi")), "1");
    let n = a.count();
    p.chat(&user("hi"));
    assert_eq!(a.count(), n, "a gone model is not asked again for an hour");
}

#[test]
fn empty_completions_fail_over() {
    let (_a, _b, p) = pair(|_| {
        Reply::json(
            200,
            r#"{"choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"stop"}]}"#,
        )
    });
    assert_served_by_groq(&p.chat(&user("hi")), "1");
    let (_a, b, p) = pair(|_| Reply::stream(&[], Duration::ZERO));
    b.set(|_| Reply::stream(&["fine"], Duration::ZERO));
    let r = p.chat(r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}"),
        "an empty stream fails over invisibly"
    );
}

#[test]
fn a_stream_that_breaks_before_output_fails_over_invisibly() {
    let (_a, b, p) = pair(|_| Reply::Sse {
        frames: vec![(
            Duration::ZERO,
            mock::chunk(r#"{"role":"assistant","content":""}"#, None),
        )],
        abrupt: true,
    });
    b.set(|_| Reply::stream(&["fine"], Duration::ZERO));
    let r = p.chat(r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );
    assert_eq!(r.header("X-Fallback-Attempts").as_deref(), Some("1"));
    assert!(!r.text().contains("stream_error"), "{}", r.text());
}

#[test]
fn upstream_bad_requests_return_the_first_after_other_platforms() {
    let bad = |_: &mock::Recorded| {
        Reply::json(400, r#"{"error":{"message":"tools[0]: schema invalid"}}"#)
    };
    let a = Mock::start(bad);
    let b = Mock::start(bad);
    let c = Mock::start(bad);
    let d = Mock::start(|_| Reply::completion("never"));
    let p = Proxy::builder()
        .upstream("cerebras", &a.base())
        .first("cerebras", CEREBRAS_FIRST)
        .upstream("groq", &b.base())
        .upstream("mistral", &c.base())
        .upstream("cohere", &d.base())
        .key("cerebras", "csk-1")
        .key("groq", "gsk_1")
        .key("mistral", "mistral-key-1")
        .key("cohere", "cohere-key-1")
        .start();
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_type(), "invalid_request_error");
    assert!(
        r.error_message().contains("tools[0]: schema invalid"),
        "{}",
        r.text()
    );
    assert!(
        r.error_message()
            .starts_with("Cerebras rejected the request"),
        "the first 400 is returned: {}",
        r.text()
    );
    assert_eq!(
        a.count() + b.count() + c.count(),
        3,
        "one attempt on each of three platforms"
    );
    assert_eq!(d.count(), 0);

    // A context-length error instead moves on to a model with a bigger window.
    let a = Mock::start(|_| {
        Reply::json(
            400,
            r#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#,
        )
    });
    let b = Mock::start(|_| Reply::completion("big window"));
    let p = Proxy::builder()
        .upstream("cerebras", &a.base())
        .first("cerebras", CEREBRAS_FIRST)
        .upstream("groq", &b.base())
        .key("cerebras", "csk-1")
        .key("groq", "gsk_1")
        .start();
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 200);
}

#[test]
fn exhaustion_is_a_429_with_retry_after_and_a_reason() {
    let a = Mock::start(|_| Reply::json(429, "{}").with_header("retry-after", "42"));
    let p = Proxy::builder()
        .upstream("cerebras", &a.base())
        .first("cerebras", CEREBRAS_FIRST)
        .key("cerebras", "csk-only")
        .start();
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 429);
    assert_eq!(r.error_type(), "rate_limit_error");
    assert_eq!(r.error_code(), "rate_limit_exceeded");
    let msg = r.error_message();
    assert!(msg.contains("1 attempts failed (1 rate-limited)"), "{msg}");
    assert!(msg.contains("the soonest is free in 42 s"), "{msg}");
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    assert!(
        (40..=42).contains(&retry),
        "Retry-After follows the provider: {retry}"
    );

    let r = p.chat(&user("again"));
    assert_eq!(r.status, 429);
    assert!(
        r.error_message()
            .contains("1 candidates cooling down, 0 at their rate limits"),
        "{}",
        r.text()
    );
    assert_eq!(a.count(), 1);

    let p = Proxy::builder().start();
    let r = p.chat(&user("no keys"));
    assert_eq!(r.status, 429);
    assert!(
        r.error_message().contains("no provider key is configured"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("Retry-After").as_deref(), Some("60"));
}

#[test]
fn oversized_prompts_get_a_context_error_instead_of_an_upstream_call() {
    let m = Mock::start(|_| Reply::completion("never"));
    let p = Proxy::builder()
        .upstream("cerebras", &m.base())
        .first("cerebras", CEREBRAS_FIRST)
        .key("cerebras", "csk-1")
        .start();
    // Cerebras' gpt-oss-120b has a 65 536-token window on credits: 400 000 characters
    // (about 100 000 tokens) cannot fit.
    let r = p.chat(&user(&"x".repeat(400_000)));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code(), "context_length_exceeded");
    assert_eq!(m.count(), 0);
}

#[test]
fn twenty_attempts_at_most_and_two_outages_end_a_platform() {
    // 17 OpenRouter models x 2 keys = 34 candidates, all rate-limited: the request stops at 20.
    let m = Mock::start(|_| Reply::json(429, "{}"));
    let p = Proxy::builder()
        .upstream("openrouter", &m.base())
        .key("openrouter", "sk-or-v1-key-number-01")
        .key("openrouter", "sk-or-v1-key-number-02")
        .start();
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 429);
    assert_eq!(m.count(), 20, "{}", r.text());
    assert!(
        r.error_message()
            .contains("20 attempts failed (20 rate-limited)"),
        "{}",
        r.text()
    );
    assert!(
        r.error_message().contains("gave up after 20 attempts"),
        "{}",
        r.text()
    );

    // Outages (5xx) end the platform for the request after two.
    let m = Mock::start(|_| Reply::json(500, "{}"));
    let p = Proxy::builder()
        .upstream("openrouter", &m.base())
        .key("openrouter", "sk-or-v1-another-key-1")
        .start();
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 429);
    assert_eq!(m.count(), 2, "{}", r.text());
    assert!(r.error_message().contains("2 unavailable"), "{}", r.text());
}

#[test]
fn redirects_are_not_followed() {
    let elsewhere = Mock::start(|_| Reply::completion("should not be reached by a redirect"));
    let target = format!("http://{}/steal", elsewhere.addr);
    let (a, b, p) = pair(move |_| Reply::json(302, "{}").with_header("location", &target));
    assert_served_by_groq(&p.chat(&user("hi")), "1");
    assert_eq!(a.count(), 1);
    assert_eq!(b.count(), 1);
    assert_eq!(
        elsewhere.count(),
        0,
        "a 302 is an answer, not a place to go"
    );
}
