//! The catalog from outside: discovery against a provider's `/models` (dashboard API and
//! command line), adding a discovered model, and switching models off and on, each visible in
//! `/v1/models`.

use crate::support;

use std::time::Duration;

use simd_json::prelude::*;
use support::Proxy;
use support::admin::Admin;
use support::mock::{Mock, Reply};

const LISTING: &str = r#"{"object":"list","data":[
  {"id":"openai/gpt-oss-120b","object":"model","context_window":131072},
  {"id":"moonshotai/kimi-k2-instruct-0905","object":"model","context_window":262144},
  {"id":"new-model-x","object":"model"}]}"#;

fn listed(p: &Proxy) -> Vec<String> {
    p.get("/v1/models")
        .json()
        .get_array("data")
        .unwrap()
        .iter()
        .filter_map(|m| m.get_str("id").map(str::to_string))
        .collect()
}

#[test]
fn discovery_lists_what_the_catalog_lacks_and_a_found_model_can_be_added() {
    let m = Mock::start(|r| {
        if r.method == "GET" && r.path == "/v1/models" {
            Reply::json(200, LISTING)
        } else {
            Reply::completion("ok")
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_discovery")
        .start();

    let admin = Admin::setup(&p);
    let r = admin.req("POST", "/api/models/discover", r#"{"platform":"groq"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v.get_u64("missing"), Some(2));
    let models = v.get_array("models").unwrap();
    let find = |id: &str| {
        models
            .iter()
            .find(|x| x.get_str("modelId") == Some(id))
            .unwrap()
            .clone()
    };
    assert_eq!(find("openai/gpt-oss-120b").get_bool("known"), Some(true));
    let kimi = find("moonshotai/kimi-k2-instruct-0905");
    assert_eq!(
        (kimi.get_bool("known"), kimi.get_u64("contextWindow")),
        (Some(false), Some(262_144))
    );
    assert_eq!(
        m.last().header("authorization"),
        Some("Bearer gsk_discovery"),
        "asked with the platform's key"
    );

    let r = admin.req("POST", "/api/models/discover", r#"{"platform":"cerebras"}"#);
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("no usable cerebras key"),
        "{}",
        r.text()
    );

    // The command line says the same, and adds one.
    let out = p.cli(&["models", "discover", "groq"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("groq lists 3 models; 2 are not in the catalog"),
        "{text}"
    );
    assert!(text.contains("new-model-x"), "{text}");
    assert!(
        !text.contains("  openai/gpt-oss-120b"),
        "known models are not offered: {text}"
    );
    let out = p.cli(
        &[
            "models",
            "add",
            "groq",
            "new-model-x",
            "--context",
            "32768",
            "--rpm",
            "30",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.wait_for(
        "the new model in /v1/models",
        Duration::from_secs(10),
        |p| listed(p).iter().any(|id| id == "new-model-x"),
    );
    let r = p.chat(r#"{"model":"groq/new-model-x","messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/new-model-x")
    );
    let out = p.cli(&["models", "add", "groq", "new-model-x"], "");
    assert_eq!(out.status.code(), Some(2), "a duplicate is refused");

    // Switching a model off takes it out of /v1/models; on brings it back.
    let out = p.cli(&["models", "disable", "groq/new-model-x"], "");
    assert!(out.status.success());
    p.wait_for(
        "the model to leave /v1/models",
        Duration::from_secs(10),
        |p| !listed(p).iter().any(|id| id == "new-model-x"),
    );
    let out = p.cli(&["models", "enable", "groq/openai/gpt-oss-20b"], "");
    assert!(out.status.success());
    let out = p.cli(&["models", "list", "--platform", "groq"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("groq/new-model-x") && text.contains(" disabled "),
        "{text}"
    );
    let bad = p.cli(&["models", "disable", "groq/nope"], "");
    assert_eq!(bad.status.code(), Some(2));
}
