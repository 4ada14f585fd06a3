//! Clearing cooldowns by hand, from the dashboard's API and from the command line: a cooling
//! model is routable again at once, and bad filters are refused by name.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use simd_json::prelude::*;
use support::admin::Admin;
use support::mock::{Mock, Reply};
use support::{Proxy, user};

const GROQ_FIRST: &str = "openai/gpt-oss-120b";

/// Groq's first model answers 429 (for ten minutes) while `limited` is set; the rest answer.
fn groq() -> (Arc<AtomicBool>, Mock, Proxy) {
    let limited = Arc::new(AtomicBool::new(true));
    let flag = limited.clone();
    let m = Mock::start(move |r| {
        if flag.load(Ordering::SeqCst) && r.model() == GROQ_FIRST {
            Reply::json(429, r#"{"error":{"message":"Rate limit reached"}}"#)
                .with_header("retry-after", "600")
        } else {
            Reply::completion("ok")
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        // Polling by routing sends dozens of requests; Groq's free 30 a minute would end it.
        .unlimited_key("groq", "gsk_cooldown_key")
        .start();
    (limited, m, p)
}

fn routed(p: &Proxy) -> String {
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("X-Routed-Via").unwrap()
}

#[test]
fn the_dashboard_api_clears_a_cooldown_at_once() {
    let (limited, _m, p) = groq();
    let first = format!("groq/{GROQ_FIRST}");
    assert_ne!(routed(&p), first, "the 429 moved the request on");
    limited.store(false, Ordering::SeqCst);
    assert_ne!(routed(&p), first, "still cooling for ten minutes");

    let admin = Admin::setup(&p);
    let r = admin.req(
        "POST",
        "/api/cooldowns/clear",
        &format!(r#"{{"platform":"groq","model":"{GROQ_FIRST}"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().get_u64("cleared"), Some(1));
    assert_eq!(routed(&p), first, "routable again at once");

    for (body, field) in [
        (r#"{"platform":"nope"}"#, "platform"),
        (r#"{"model":"no-such-model"}"#, "model"),
        (r#"{"keyId":999}"#, "keyId"),
        (r#"{"everything":true}"#, "everything"),
    ] {
        let r = admin.req("POST", "/api/cooldowns/clear", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.error_message().contains(field), "{}", r.error_message());
    }
    // An empty body clears everything.
    let r = admin.req("POST", "/api/cooldowns/clear", "");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn the_command_line_clears_a_running_servers_cooldowns() {
    let (limited, _m, p) = groq();
    let first = format!("groq/{GROQ_FIRST}");
    assert_ne!(routed(&p), first);
    limited.store(false, Ordering::SeqCst);
    assert_ne!(routed(&p), first);
    let out = p.cli(&["cooldowns", "clear", "--platform", "groq"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("platform groq"), "{said}");
    p.wait_for(
        "the server to apply the clear",
        Duration::from_secs(10),
        |p| routed(p) == first,
    );
    let bad = p.cli(&["cooldowns", "clear", "--platform", "nope"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown platform"));
    let misplaced = p.cli(&["keys", "list", "--platform", "groq"], "");
    assert_eq!(
        misplaced.status.code(),
        Some(2),
        "the filters belong to cooldowns clear"
    );
}
