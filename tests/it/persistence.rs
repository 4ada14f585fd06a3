//! What survives a restart (keys, token, a day of ledger), what a wrong master key or a
//! tampered row does, and graceful shutdown.

use crate::support;

use std::io::Write;
use std::time::Duration;

use support::mock::{Mock, Reply};
use support::{Proxy, user};

#[test]
fn restart_keeps_keys_token_and_the_ledger() {
    let m = Mock::start(|_| Reply::completion("ok"));
    // SambaNova is paid now: two of its models switched on (as with a paid key), one of them
    // allowed 20 requests a day per key.
    let p = Proxy::builder()
        .upstream("sambanova", &m.base())
        .catalog_edits(
            r#"{"models":[{"platform":"sambanova","model_id":"DeepSeek-V3.2","enabled":true,"rpd":20},
                {"platform":"sambanova","model_id":"DeepSeek-V3.1","enabled":true}]}"#,
        )
        .key("sambanova", "sn-key-000111222333")
        .start();
    let pinned = r#"{"model":"DeepSeek-V3.2","messages":[{"role":"user","content":"x"}]}"#;
    let strict = [("X-Freellmapi-Pin", "strict")];
    for i in 0..20 {
        let r = p.post("/v1/chat/completions", pinned, &strict);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    let r = p.post("/v1/chat/completions", pinned, &strict);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.error_message().contains("at their rate limits"),
        "{}",
        r.text()
    );
    let token = p.token.clone();
    let calls = m.count();

    let p = p.restart();
    assert_eq!(p.token, token, "the unified key survives");
    let list = String::from_utf8(p.cli(&["keys", "list"], "").stdout).unwrap();
    assert!(
        list.contains("sambanova") && list.contains("sn-k...2333"),
        "{list}"
    );
    let r = p.post("/v1/chat/completions", pinned, &strict);
    assert_eq!(
        r.status,
        429,
        "the exhausted model is still skipped after the restart: {}",
        r.text()
    );
    assert_eq!(m.count(), calls, "no upstream call for it");
    let r = p.chat(&user("anything"));
    assert_eq!(r.status, 200);
    assert_ne!(r.header("X-Routed-Via").unwrap(), "sambanova/DeepSeek-V3.2");
    assert!(
        p.log_text().contains("restored ledger state"),
        "{}",
        p.log_text()
    );
}

#[test]
fn a_wrong_master_key_stops_the_start_with_one_clear_line() {
    let key_a = "a".repeat(64);
    let dir = support::temp_dir("mk");
    let mut p = Proxy::builder()
        .dir(&dir)
        .env("FREELLMAPI_ENCRYPTION_KEY", &key_a)
        .key("groq", "gsk_x")
        .start();
    assert_eq!(p.stop(), Some(0));

    let out = std::process::Command::new(support::BIN)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("FREELLMAPI_ENCRYPTION_KEY", "b".repeat(64))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("master key does not match this data dir"),
        "{err}"
    );
    assert!(
        !dir.join("master.key").exists(),
        "with the env key set, no key file is written"
    );
}

#[test]
fn a_tampered_key_row_is_skipped_with_a_warning() {
    let m = Mock::start(|_| Reply::completion("ok"));
    let dir = support::temp_dir("tamper");
    let mut p = Proxy::builder()
        .dir(&dir)
        .upstream("groq", &m.base())
        .key("groq", "gsk_will_be_tampered")
        .key("groq", "gsk_stays_intact")
        .start();
    assert_eq!(p.stop(), Some(0));
    {
        let store = freellmapi::store::Store::open(&dir).unwrap();
        let mut rec = store
            .list_keys()
            .unwrap()
            .into_iter()
            .find(|k| k.id == 1)
            .unwrap();
        let mut sealed = rec.sealed.into_bytes();
        let last = sealed.len() - 1;
        sealed[last] = if sealed[last] == b'0' { b'1' } else { b'0' };
        rec.sealed = String::from_utf8(sealed).unwrap();
        store
            .put_raw_key_row(1, &simd_json::serde::to_vec(&rec).unwrap())
            .unwrap();
    }
    let p = Proxy::spawn(dir, p.env.clone());
    assert!(
        p.log_text()
            .contains("key 1 (groq) cannot be decrypted with this master key and is skipped"),
        "{}",
        p.log_text()
    );
    for _ in 0..3 {
        assert_eq!(p.chat(&user("x")).status, 200);
    }
    let keys: Vec<String> = m
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert!(
        keys.iter().all(|k| k == "Bearer gsk_stays_intact"),
        "{keys:?}"
    );
}

#[test]
fn sigterm_lets_an_in_flight_stream_finish() {
    let m = Mock::start(|_| Reply::stream(&["one ", "two ", "three"], Duration::from_millis(300)));
    let mut p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_drain")
        .start();
    let mut s = support::connect(p.addr);
    let body = r#"{"stream":true,"messages":[{"role":"user","content":"count"}]}"#;
    write!(s, "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}", p.token, body.len()).unwrap();
    let head = support::read_head(&mut s);
    assert!(head.contains("200 OK"));
    let first = support::read_chunk(&mut s).unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data:"));
    let pid = p.pid() as i32;
    // SAFETY: kill(2) on the server this test started and still owns.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut rest = Vec::new();
    while let Some(c) = support::read_chunk(&mut s) {
        rest.extend_from_slice(&c);
    }
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.contains("three") && rest.ends_with("data: [DONE]\n\n"),
        "{rest}"
    );
    assert_eq!(p.stop(), Some(0));
    // New connections are refused once it has stopped.
    assert!(std::net::TcpStream::connect(p.addr).is_err());
}

#[test]
fn rotating_the_token_takes_effect_without_restart() {
    let m = Mock::start(|_| Reply::completion("ok"));
    let mut p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_rot")
        .start();
    let old = p.token.clone();
    let out = p.cli(&["token", "--rotate"], "");
    assert!(out.status.success());
    let new = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_ne!(new, old);
    assert!(new.starts_with("freellmapi-") && new.len() == 59);
    p.wait_for(
        "the old token to stop working",
        Duration::from_secs(10),
        |p| p.chat(&user("x")).status == 401,
    );
    p.token = new;
    assert_eq!(p.chat(&user("x")).status, 200);
}

#[test]
fn the_request_log_has_one_record_per_client_request_with_its_attempts() {
    let a = Mock::start(|_| Reply::json(429, "{}"));
    let b = Mock::start(|_| Reply::completion("ok"));
    let dir = support::temp_dir("reqlog");
    let mut p = Proxy::builder()
        .dir(&dir)
        .upstream("cerebras", &a.base())
        .first("cerebras", "gpt-oss-120b")
        .upstream("groq", &b.base())
        .key("cerebras", "csk-log-key-1")
        .key("groq", "gsk_log_key_2")
        .start();
    assert_eq!(p.chat(&user("one")).status, 200);
    assert_eq!(p.chat(r#"{"messages":[]}"#).status, 400);
    assert_eq!(p.stop(), Some(0));

    let store = freellmapi::store::Store::open(&dir).unwrap();
    let records = store.requests_since(0).unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    let ok = &records[0];
    assert_eq!(ok.outcome, freellmapi::store::RequestOutcome::Success);
    assert_eq!((ok.platform.as_deref(), ok.key_id), (Some("groq"), Some(2)));
    assert_eq!(
        (ok.input_tokens, ok.output_tokens, ok.tokens_estimated),
        (5, 3, false)
    );
    let outcomes: Vec<&str> = ok.attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, vec!["rate_limited", "ok"]);
    assert_eq!(ok.attempts[0].status, Some(429));
    assert_eq!(
        records[1].outcome,
        freellmapi::store::RequestOutcome::Rejected
    );
    assert_eq!(records[1].status, 400);
    let raw = format!("{records:?}");
    assert!(!raw.contains("csk-log") && !raw.contains("gsk_log") && !raw.contains(&p.token));
}

#[test]
fn a_saved_chain_order_is_used_and_switched_off_entries_are_skipped() {
    use freellmapi::store::ChainEntry;
    let m = Mock::start(|_| Reply::completion("ok"));
    let dir = support::temp_dir("chain");
    let mut p = Proxy::builder()
        .dir(&dir)
        .upstream("groq", &m.base())
        .key("groq", "gsk_chain")
        .start();
    assert_eq!(
        p.chat(&user("x")).header("X-Routed-Via").as_deref(),
        Some("groq/openai/gpt-oss-120b")
    );
    assert_eq!(p.stop(), Some(0));
    {
        let store = freellmapi::store::Store::open(&dir).unwrap();
        let entry = |model: &str, enabled| ChainEntry {
            platform: "groq".into(),
            model: model.into(),
            enabled,
        };
        store
            .put_chain_order(&[
                entry("openai/gpt-oss-120b", false),
                entry("openai/gpt-oss-20b", true),
            ])
            .unwrap();
    }
    let p = Proxy::spawn(dir, p.env.clone());
    let r = p.chat(&user("x"));
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/openai/gpt-oss-20b"),
        "{}",
        r.text()
    );
    let r = p.chat(r#"{"model":"openai/gpt-oss-120b","messages":[{"role":"user","content":"x"}]}"#);
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("is disabled"));
    // Groq's entry is switched off in the chain (NVIDIA's model of the same id is listed).
    use simd_json::prelude::*;
    let listed = p.get("/v1/models").json();
    assert!(!listed["data"].as_array().unwrap().iter().any(|m| {
        m["id"].as_str() == Some("openai/gpt-oss-120b") && m["owned_by"].as_str() == Some("groq")
    }));
}

#[test]
fn systemd_is_told_when_the_server_is_ready_and_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    let dir = support::temp_dir("notify");
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut p = Proxy::builder()
        .env("NOTIFY_SOCKET", path.to_str().unwrap())
        .start();
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    assert_eq!(p.stop(), Some(0));
    let n = sock.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
}
