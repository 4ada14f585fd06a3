//! Keys that tell the truth: health probes per platform family against mock probe servers,
//! status transitions, auto-disable and recovery, rate-limited status, account pools,
//! provider headers, custom platforms and the connect-time address guard.

use crate::support;

use std::time::Duration;

use freellmapi::catalog::{CustomModel, CustomPlatform, Overrides};
use freellmapi::store::Store;
use support::mock::{self, Mock, Reply};
use support::{Proxy, cli, temp_dir, user};

fn env_for(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn add(dir: &std::path::Path, env: &[(String, String)], platform: &str, key: &str) {
    let out = cli(dir, env, &["keys", "add", platform], key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(dir: &std::path::Path, env: &[(String, String)]) -> (i32, String) {
    let out = cli(dir, env, &["check"], "");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn row(table: &str, id: u64) -> &str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("no row {id} in\n{table}"))
}

#[test]
fn probes_classify_each_platform_family() {
    // OpenAI-compatible: GET {base}/models with the bearer key.
    let groq = Mock::start(|r| match (r.path.as_str(), r.header("authorization")) {
        ("/v1/models", Some("Bearer gsk_good")) => Reply::json(200, r#"{"data":[]}"#),
        ("/v1/models", _) => Reply::json(401, r#"{"error":{"message":"Invalid API Key"}}"#),
        _ => Reply::json(404, "{}"),
    });
    // Gemini: GET {base}/models with x-goog-api-key; 400 API_KEY_INVALID is invalid, 403 is not.
    let google = Mock::start(|r| match r.header("x-goog-api-key") {
        Some("AIzaGood") => Reply::json(200, r#"{"models":[]}"#),
        Some("AIzaBad") => Reply::json(
            400,
            r#"{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#,
        ),
        _ => Reply::json(
            403,
            r#"{"error":{"code":403,"status":"PERMISSION_DENIED","message":"User location is not supported"}}"#,
        ),
    });
    // Cloudflare: the account id in the probe URL, the token as bearer.
    let cloudflare = Mock::start(|r| {
        if r.path
            == "/client/v4/accounts/0123456789abcdef0123456789abcdef/ai/models/search?per_page=1"
            && r.header("authorization") == Some("Bearer cf_tok")
        {
            Reply::json(200, r#"{"success":true,"result":[]}"#)
        } else {
            Reply::json(403, r#"{"success":false}"#)
        }
    });
    let env = env_for(&[
        ("FREELLMAPI_UPSTREAM_GROQ", groq.base()),
        (
            "FREELLMAPI_UPSTREAM_GOOGLE",
            format!("http://{}/v1beta", google.addr),
        ),
        (
            "FREELLMAPI_UPSTREAM_CLOUDFLARE",
            format!(
                "http://{}/client/v4/accounts/{{account_id}}/ai/v1",
                cloudflare.addr
            ),
        ),
        ("FREELLMAPI_UPSTREAM_OPENROUTER", mock::refused_base()),
    ]);
    let dir = temp_dir("probes");
    add(&dir, &env, "groq", "gsk_good");
    add(&dir, &env, "groq", "gsk_revoked");
    add(&dir, &env, "google", "AIzaGood");
    add(&dir, &env, "google", "AIzaBad");
    add(&dir, &env, "google", "AIzaRegionBlocked");
    add(
        &dir,
        &env,
        "cloudflare",
        "0123456789abcdef0123456789abcdef:cf_tok",
    );
    add(&dir, &env, "openrouter", "sk-or-v1-unreachable");
    let (code, table) = check(&dir, &env);
    println!("{table}");
    assert_eq!(code, 1, "exit code 1 when a key is invalid");
    assert!(
        row(&table, 1).contains("valid") && row(&table, 1).contains("healthy"),
        "{table}"
    );
    assert!(
        row(&table, 2).contains("invalid")
            && row(&table, 2).contains("HTTP 401 (1 of 3 before disabling)"),
        "{table}"
    );
    assert!(row(&table, 3).contains("healthy"), "{table}");
    assert!(
        row(&table, 4).contains("invalid") && row(&table, 4).contains("API_KEY_INVALID"),
        "{table}"
    );
    assert!(
        row(&table, 5).contains("error") && row(&table, 5).contains("HTTP 403 PERMISSION_DENIED"),
        "{table}"
    );
    assert!(row(&table, 6).contains("healthy"), "{table}");
    assert!(
        row(&table, 7).contains("error") && row(&table, 7).contains("connection failed"),
        "{table}"
    );
    assert!(
        !table.contains("gsk_good") && !table.contains("cf_tok"),
        "keys are masked"
    );
    let list = String::from_utf8(cli(&dir, &env, &["keys", "list"], "").stdout).unwrap();
    assert!(
        list.lines()
            .any(|l| l.starts_with("4 ") && l.contains("invalid")),
        "{list}"
    );
}

#[test]
fn three_confirmed_failures_disable_a_key_and_recovery_re_enables_it() {
    let m = Mock::start(|_| Reply::json(401, "{}"));
    let env = env_for(&[("FREELLMAPI_UPSTREAM_GROQ", m.base())]);
    let dir = temp_dir("disable");
    add(&dir, &env, "groq", "gsk_flaky");
    for _ in 0..2 {
        let (_, table) = check(&dir, &env);
        assert!(!table.contains("disabled"), "{table}");
    }
    let (_, table) = check(&dir, &env);
    assert!(
        table.contains("[disabled]")
            && table
                .contains("disabled after 3 consecutive authentication failures (last: HTTP 401)"),
        "{table}"
    );
    let list = String::from_utf8(cli(&dir, &env, &["keys", "list"], "").stdout).unwrap();
    assert!(
        list.contains("disabled: 3 consecutive authentication failures"),
        "{list}"
    );

    m.set(|_| Reply::json(200, "{}"));
    let (code, table) = check(&dir, &env);
    assert_eq!(code, 0);
    assert!(table.contains("valid again and was re-enabled"), "{table}");
    let list = String::from_utf8(cli(&dir, &env, &["keys", "list"], "").stdout).unwrap();
    assert!(list.contains("healthy") && list.contains(" yes "), "{list}");
}

#[test]
fn a_transport_blip_never_disables_a_key() {
    let env = env_for(&[("FREELLMAPI_UPSTREAM_GROQ", mock::refused_base())]);
    let dir = temp_dir("blip");
    add(&dir, &env, "groq", "gsk_fine");
    for _ in 0..5 {
        let (code, table) = check(&dir, &env);
        assert_eq!(code, 0, "errors are not invalid keys");
        assert!(
            table.contains("error") && !table.contains("disabled"),
            "{table}"
        );
    }
    let list = String::from_utf8(cli(&dir, &env, &["keys", "list"], "").stdout).unwrap();
    assert!(list.contains(" yes "), "still enabled: {list}");
}

#[test]
fn the_server_checks_keys_on_its_own_and_stops_routing_invalid_ones() {
    let m = Mock::start(|r| {
        if r.path.ends_with("/models") {
            Reply::json(401, "{}")
        } else {
            Reply::completion("ok")
        }
    });
    let p = Proxy::builder()
        .env("FREELLMAPI_HEALTH_INTERVAL_SECS", "1")
        .upstream("groq", &m.base())
        .key("groq", "gsk_revoked_key")
        .start();
    p.wait_for("the first health pass", Duration::from_secs(10), |p| {
        p.log_text()
            .contains("health check: 1 keys probed, 1 not healthy")
    });
    p.wait_for(
        "the invalid key to leave routing",
        Duration::from_secs(10),
        |p| support::request(p.addr, "GET", "/readyz", &[], b"").status == 503,
    );
    let r = p.chat(&user("x"));
    assert_eq!(r.status, 429);
    assert!(
        r.error_message().contains("no provider key"),
        "{}",
        r.text()
    );
}

#[test]
fn a_429_marks_the_key_rate_limited_until_its_cooldown_ends() {
    let m = Mock::start(|_| Reply::json(429, "{}").with_header("retry-after", "2"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_busy")
        .start();
    assert_eq!(p.chat(&user("x")).status, 429);
    let status = |p: &Proxy| String::from_utf8(p.cli(&["keys", "list"], "").stdout).unwrap();
    p.wait_for("rate_limited", Duration::from_secs(5), |p| {
        status(p).contains("rate_limited")
    });
    p.wait_for("the cooldown to end", Duration::from_secs(6), |p| {
        !status(p).contains("rate_limited")
    });
}

#[test]
fn a_spent_openrouter_free_quota_skips_every_free_model_for_that_key_only() {
    // Key A's account is out of free requests for the day (reset in 10 h); key B is fine.
    let m = Mock::start(|r| match r.header("authorization") {
        Some("Bearer sk-or-v1-spent") => {
            let reset = freellmapi::time::now_ms() + 10 * 3_600_000;
            Reply::json(
                429,
                r#"{"error":{"message":"Rate limit exceeded: free-models-per-day"}}"#,
            )
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", &reset.to_string())
        }
        _ => Reply::completion("from key B"),
    });
    let p = Proxy::builder()
        .upstream("openrouter", &m.base())
        .key("openrouter", "sk-or-v1-spent")
        .key("openrouter", "sk-or-v1-fresh")
        .start();
    for _ in 0..6 {
        let r = p.chat(&user("x"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let spent_calls = m
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer sk-or-v1-spent"))
        .count();
    assert_eq!(
        spent_calls, 1,
        "after one daily 429 no :free model is tried with that key"
    );
}

#[test]
fn provider_headers_tighten_the_local_view() {
    // The first model's answer says no requests remain for 2 s.
    let first = "openai/gpt-oss-120b";
    let m = Mock::start(move |r| {
        let reply = Reply::completion("ok");
        if r.model() == first {
            reply
                .with_header("x-ratelimit-remaining-requests", "0")
                .with_header("x-ratelimit-reset-requests", "2s")
        } else {
            reply
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_hdr")
        .start();
    assert_eq!(
        p.chat(&user("a")).header("X-Routed-Via").unwrap(),
        format!("groq/{first}")
    );
    let r = p.chat(&user("b"));
    assert_ne!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{first}"),
        "skipped while the provider says 0 remain"
    );
    // Groq's other two models may meet their 30 requests a minute while this polls: a 429
    // then is not the answer looked for, but not a failure either.
    p.wait_for("the reset", Duration::from_secs(5), |p| {
        p.chat(&user("c")).header("X-Routed-Via") == Some(format!("groq/{first}"))
    });
}

#[test]
fn a_custom_keyless_platform_is_served_end_to_end() {
    let local = Mock::start(|_| Reply::completion("hello from a local server"));
    let dir = temp_dir("custom");
    {
        let store = Store::open(&dir).unwrap();
        let overrides = Overrides {
            custom_platforms: vec![CustomPlatform {
                id: "custom-ollama".into(),
                name: "Ollama".into(),
                base_url: local.base(),
                keyless: true,
            }],
            custom_models: vec![CustomModel {
                platform: "custom-ollama".into(),
                model_id: "llama3.2:3b".into(),
                display_name: String::new(),
                context_window: Some(8192),
                limits: Default::default(),
                intelligence_rank: 40,
                speed_rank: 1,
                enabled: true,
                capabilities: vec!["tools".into()],
            }],
            ..Default::default()
        };
        overrides
            .validate(&freellmapi::catalog::Catalog::builtin())
            .unwrap();
        store.put_overrides(&overrides).unwrap();
    }
    let p = Proxy::builder().dir(&dir).start();
    let r = p.chat(r#"{"model":"llama3.2:3b","messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("custom-ollama/llama3.2:3b")
    );
    assert!(
        local.last().header("authorization").is_none(),
        "no credentials to a keyless server"
    );
    assert_eq!(p.chat(&user("auto works too")).status, 200);
    assert!(
        p.get("/v1/models?available=true")
            .text()
            .contains("llama3.2:3b")
    );
    let out = p.cli(&["keys", "add", "custom-ollama"], "k");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("keyless"));
}

#[test]
fn a_custom_platform_with_keys_uses_them() {
    let server = Mock::start(|_| Reply::completion("from a relay"));
    let dir = temp_dir("custom-keyed");
    Store::open(&dir)
        .unwrap()
        .put_overrides(&Overrides {
            custom_platforms: vec![CustomPlatform {
                id: "custom-relay".into(),
                name: String::new(),
                base_url: server.base(),
                keyless: false,
            }],
            custom_models: vec![CustomModel {
                platform: "custom-relay".into(),
                model_id: "relay-model".into(),
                display_name: String::new(),
                context_window: None,
                limits: Default::default(),
                intelligence_rank: 1,
                speed_rank: 1,
                enabled: true,
                capabilities: vec!["tools".into()],
            }],
            ..Default::default()
        })
        .unwrap();
    let p = Proxy::builder()
        .dir(&dir)
        .key("custom-relay", "relay-secret-key")
        .start();
    let r = p.chat(&user("x"));
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("custom-relay/relay-model"),
        "{}",
        r.text()
    );
    assert_eq!(
        server.last().header("authorization"),
        Some("Bearer relay-secret-key")
    );
}

#[test]
fn forbidden_addresses_are_refused_at_connect_time_too() {
    // A base URL saved before the rules (written straight into the store) still never connects.
    let dir = temp_dir("ssrf");
    Store::open(&dir)
        .unwrap()
        .put_overrides(&Overrides {
            custom_platforms: vec![CustomPlatform {
                id: "custom-meta".into(),
                name: String::new(),
                base_url: "http://169.254.169.254:9/v1".into(),
                keyless: true,
            }],
            custom_models: vec![CustomModel {
                platform: "custom-meta".into(),
                model_id: "m".into(),
                display_name: String::new(),
                context_window: None,
                limits: Default::default(),
                intelligence_rank: 1,
                speed_rank: 1,
                enabled: true,
                capabilities: vec!["tools".into()],
            }],
            ..Default::default()
        })
        .unwrap();
    let p = Proxy::builder().dir(&dir).start();
    let r = p.chat(&user("x"));
    assert_eq!(r.status, 429, "{}", r.text());
    p.wait_for("the refusal in the log", Duration::from_secs(3), |p| {
        p.log_text()
            .contains("refused to connect to 169.254.169.254: link-local / cloud metadata address")
    });

    // And an override spelled as a bare number is refused at start.
    let out = std::process::Command::new(support::BIN)
        .args(["--data-dir", temp_dir("ssrf2").to_str().unwrap()])
        .env("FREELLMAPI_UPSTREAM_GROQ", "http://2852039166/v1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("link-local / cloud metadata address"));
}
