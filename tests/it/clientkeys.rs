//! Named client keys over real sockets: made from the CLI and the admin API, accepted on every
//! client API (chat, streamed chat, Messages, Responses, completions, embeddings, models,
//! count_tokens, metrics), refused on the very next request once revoked (from the dashboard
//! or from the CLI while the server runs), never stored in plaintext, and split out in
//! Analytics by label.

use crate::support;

use simd_json::prelude::*;
use support::admin::Admin;
use support::mock::{self, Mock, Reply};
use support::{Proxy, request};

const CHAT_MODEL: &str = "openai/gpt-oss-20b";

/// One mock for both platforms: chat (groq) and embeddings (mistral).
fn provider() -> Mock {
    Mock::start(|r| {
        if r.path.ends_with("/embeddings") {
            return Reply::json(
                200,
                r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,0.25]}],"model":"x","usage":{"prompt_tokens":2,"total_tokens":2}}"#,
            );
        }
        if r.json().get_bool("stream") == Some(true) {
            return Reply::stream(
                &[&mock::chunk(r#"{"content":"ok"}"#, Some("stop"))],
                std::time::Duration::ZERO,
            );
        }
        Reply::completion("ok")
    })
}

/// Every client API with `key`: the statuses, in order.
fn every_surface(p: &Proxy, key: &str) -> Vec<(String, u16)> {
    let auth = format!("Bearer {key}");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let user = r#"[{"role":"user","content":"hi"}]"#;
    let calls: Vec<(&str, &str, String)> = vec![
        (
            "POST",
            "/v1/chat/completions",
            format!(r#"{{"model":"{CHAT_MODEL}","messages":{user}}}"#),
        ),
        (
            "POST",
            "/v1/chat/completions",
            format!(r#"{{"model":"{CHAT_MODEL}","stream":true,"messages":{user}}}"#),
        ),
        (
            "POST",
            "/v1/messages",
            format!(r#"{{"model":"{CHAT_MODEL}","max_tokens":20,"messages":{user}}}"#),
        ),
        (
            "POST",
            "/v1/messages/count_tokens",
            format!(r#"{{"model":"{CHAT_MODEL}","messages":{user}}}"#),
        ),
        (
            "POST",
            "/v1/responses",
            format!(r#"{{"model":"{CHAT_MODEL}","input":"hi"}}"#),
        ),
        (
            "POST",
            "/v1/completions",
            format!(r#"{{"model":"{CHAT_MODEL}","prompt":"hi"}}"#),
        ),
        (
            "POST",
            "/v1/embeddings",
            r#"{"model":"mistral-embed","input":"hi"}"#.to_string(),
        ),
        ("GET", "/v1/models", String::new()),
        ("GET", "/metrics", String::new()),
    ];
    calls
        .into_iter()
        .map(|(method, path, body)| {
            let r = request(p.addr, method, path, &h, body.as_bytes());
            (path.to_string(), r.status)
        })
        .collect()
}

fn all_ok(statuses: &[(String, u16)]) -> bool {
    statuses.iter().all(|(_, s)| *s == 200)
}

#[test]
fn a_named_key_works_everywhere_until_revoked_from_the_dashboard() {
    let m = provider();
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_client_keys_test")
        .upstream("mistral", &m.base())
        .key("mistral", "mistral_test_key_123456")
        .start();
    let admin = Admin::setup(&p);
    let r = admin.req("POST", "/api/client-keys", r#"{"label":"laptop"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let made = r.json();
    let key = made.get_str("key").unwrap().to_string();
    let id = made.get_u64("id").unwrap();
    assert_ne!(key, p.token);
    assert!(made.get_str("masked").unwrap().contains('…'));

    let statuses = every_surface(&p, &key);
    assert!(all_ok(&statuses), "{statuses:?}");
    // The listing shows it used, masked, never the key.
    let listed = admin.get("/api/client-keys");
    assert!(!listed.text().contains(&key));
    let rows = listed.json();
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row.get_str("label"), Some("laptop"));
    assert!(row.get_u64("lastUsedMs").is_some(), "{}", listed.text());

    // Tries: bad labels, an unknown id, the wrong method.
    assert_eq!(
        admin
            .req("POST", "/api/client-keys", r#"{"label":"  "}"#)
            .status,
        400
    );
    let long = format!(r#"{{"label":"{}"}}"#, "x".repeat(65));
    assert_eq!(admin.req("POST", "/api/client-keys", &long).status, 400);
    assert_eq!(admin.req("DELETE", "/api/client-keys/999", "").status, 404);
    assert_eq!(admin.req("DELETE", "/api/client-keys/abc", "").status, 404);
    assert_eq!(admin.req("PATCH", "/api/client-keys/1", "{}").status, 405);

    // Revoked: the very next request is refused, on every surface; the unified key still works.
    let r = admin.req("DELETE", &format!("/api/client-keys/{id}"), "");
    assert_eq!(r.status, 200, "{}", r.text());
    let refused = every_surface(&p, &key);
    assert!(refused.iter().all(|(_, s)| *s == 401), "{refused:?}");
    assert!(all_ok(&every_surface(&p, &p.token)));

    // Analytics name the key by its label (and the unified key apart); the key never shows.
    // Six of the calls are generations, each one record (models, count_tokens, metrics: none).
    p.wait_for(
        "records written",
        std::time::Duration::from_secs(10),
        |_| {
            let by = admin.get("/api/analytics/by-client?range=24h").json();
            let groups = by.as_array().unwrap().clone();
            groups.len() == 2 && groups.iter().all(|g| g.get_u64("requests") == Some(6))
        },
    );
    let by = admin.get("/api/analytics/by-client?range=24h");
    let groups = by.json();
    let groups = groups.as_array().unwrap();
    let revoked = groups.iter().find(|g| g.get_u64("id") == Some(id)).unwrap();
    assert_eq!(
        revoked.get_str("client"),
        Some("revoked key 1"),
        "{}",
        by.text()
    );
    let unified = groups
        .iter()
        .find(|g| g.get("id").is_some_and(|v| v.is_null()))
        .unwrap();
    assert_eq!(unified.get_str("client"), Some("unified key"));
    assert_eq!(unified.get_u64("succeeded"), Some(6));
    assert!(!p.log_text().contains(&key), "the key reached the log");
}

#[test]
fn cli_keys_are_listed_masked_and_revoked_at_once_on_a_running_server() {
    let m = provider();
    let p = Proxy::builder()
        .env("FREELLMAPI_TRUST_PROXY", "127.0.0.1/32")
        .upstream("groq", &m.base())
        .key("groq", "gsk_client_keys_test")
        .upstream("mistral", &m.base())
        .key("mistral", "mistral_test_key_123456")
        .start();
    let out = p.cli(&["token", "add", "--label", "home assistant"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("freellmapi-") && key.len() > 40, "{key}");
    // A CLI-made key works once the running server has picked it up (it polls the store).
    // Until then each try is a wrong key, and an address gets 20 a minute: the poll comes
    // from another address than the checks below.
    let auth = format!("Bearer {key}");
    p.wait_for("the new key", std::time::Duration::from_secs(10), |p| {
        request(
            p.addr,
            "GET",
            "/v1/models",
            &[("Authorization", &auth), ("X-Forwarded-For", "192.0.2.200")],
            b"",
        )
        .status
            == 200
    });
    assert!(all_ok(&every_surface(&p, &key)));

    let list = p.cli(&["token", "list"], "");
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        text.contains("home assistant") && !text.contains(&key),
        "{text}"
    );
    // Only a digest is stored: the key is nowhere in the data file.
    let data = std::fs::read(p.dir.join("data.mdb")).unwrap();
    assert!(!data.windows(key.len()).any(|w| w == key.as_bytes()));

    // Tries: no label, a bad id, an unknown id.
    assert_eq!(p.cli(&["token", "add"], "").status.code(), Some(2));
    assert_eq!(p.cli(&["token", "rm", "x"], "").status.code(), Some(2));
    assert_eq!(p.cli(&["token", "rm", "42"], "").status.code(), Some(1));

    let rm = p.cli(&["token", "rm", "1"], "");
    assert!(rm.status.success());
    // Revoked from another process: refused on the very next request, no poll to wait for.
    let r = p.chat(&format!(
        r#"{{"model":"{CHAT_MODEL}","messages":[{{"role":"user","content":"hi"}}]}}"#
    ));
    assert_eq!(r.status, 200, "the unified key still works");
    let r = request(
        p.addr,
        "GET",
        "/v1/models",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 401);
}
