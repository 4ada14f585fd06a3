//! Providers over TLS, as every real one is: the server verifies the provider's certificate
//! (here against `FREELLMAPI_CA_FILE`, the test CA), completes the handshake on a production
//! coroutine stack, relays answers and streams, and pools the TLS connection; a certificate it
//! cannot verify is a TLS failure of that attempt (the request fails over, the key is not
//! blamed); an unusable CA file stops start-up with one clear line.

use crate::support;

use std::time::Duration;

use support::mock::{Mock, Reply};
use support::{Proxy, tls};

const CHAT: &str = r#"{"model":"openai/gpt-oss-20b","messages":[{"role":"user","content":"hi"}]}"#;
const STREAM: &str =
    r#"{"model":"openai/gpt-oss-20b","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

fn over_tls(m: &Mock, host: &str) -> String {
    let front = tls::front(m.addr);
    format!("https://{host}:{}/v1", front.port())
}

#[test]
fn answers_and_streams_come_over_verified_tls_on_a_pooled_connection() {
    let m = Mock::start(|r| {
        if r.body.windows(13).any(|w| w == b"\"stream\":true") {
            Reply::stream(&["over ", "tls"], Duration::from_millis(2))
        } else {
            Reply::completion("hello over tls")
        }
    });
    // By name: the certificate names localhost (and 127.0.0.1). One worker: each worker keeps
    // its own pool (a request uses its client socket's worker's), and every request here
    // comes on a new client connection.
    let p = Proxy::builder()
        .upstream("groq", &over_tls(&m, "localhost"))
        .key("groq", "gsk_tls_test")
        .env("FREELLMAPI_CA_FILE", &tls::ca_file())
        .env("FREELLMAPI_WORKERS", "1")
        .start();
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), p.log_text());
    assert!(r.text().contains("hello over tls"));
    for _ in 0..3 {
        let s = p.chat(STREAM);
        assert_eq!(s.status, 200, "{}", s.text());
        let data = s.sse_data();
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
        assert!(s.text().contains("tls"));
    }
    assert_eq!(m.count(), 4);
    // The front keeps one plain connection per TLS connection: one means one TLS session
    // carried all four requests.
    assert_eq!(
        m.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the TLS connection was not pooled"
    );
    assert!(
        p.log_text().contains("FREELLMAPI_CA_FILE only"),
        "{}",
        p.log_text()
    );
}

#[test]
fn a_certificate_that_does_not_verify_fails_over_without_blaming_the_key() {
    let m = Mock::start(|_| Reply::completion("never: not trusted"));
    let backup = Mock::start(|_| Reply::completion("from cerebras"));
    // Without the CA file the built-in roots apply, and they do not know the test CA.
    let p = Proxy::builder()
        .upstream("groq", &over_tls(&m, "127.0.0.1"))
        .key("groq", "gsk_tls_untrusted")
        .upstream("cerebras", &backup.base())
        .first("cerebras", "gpt-oss-120b")
        .key("cerebras", "csk-tls-backup-key")
        .start();
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.count(), 0);
    assert_eq!(backup.count(), 1);
    let trail = r.header("X-Fallback-Trail").unwrap_or_default();
    assert!(trail.starts_with("groq/"), "{trail}");
    let keys = support::cli(&p.dir, &p.env, &["keys", "list"], "");
    let keys = String::from_utf8_lossy(&keys.stdout).to_string();
    assert!(!keys.contains("invalid"), "{keys}");
}

#[test]
fn an_unusable_ca_file_stops_start_up_with_one_clear_line() {
    let dir = support::temp_dir("ca-file");
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "just some text\n").unwrap();
    for (path, want) in [
        (dir.join("missing.pem"), "cannot read it"),
        (not_pem, "holds no PEM certificate"),
    ] {
        let out = std::process::Command::new(support::BIN)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .env("FREELLMAPI_CA_FILE", &path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("FREELLMAPI_CA_FILE") && err.contains(want),
            "{err}"
        );
    }
}
