//! A catalog that keeps itself true, over real sockets: mock providers whose model listings
//! change between syncs, answers that say a model is gone, platforms whose free tier ended or
//! that serve without a key, and what the server says about all of it.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use simd_json::prelude::*;
use support::admin::Admin;
use support::mock::{Mock, Recorded, Reply};
use support::{Proxy, Response, user};

const GROQ: [&str; 3] = [
    "openai/gpt-oss-120b",
    "qwen/qwen3.8-27b",
    "openai/gpt-oss-20b",
];

/// Groq's speech-to-text models, which its listing names beside the chat models.
const WHISPER: [&str; 2] = ["whisper-large-v3-turbo", "whisper-large-v3"];

/// Groq's listing: `ids` and its Whisper models.
fn listing(ids: &[String]) -> String {
    let mut all = ids.to_vec();
    all.extend(WHISPER.map(String::from));
    bare_listing(&all)
}

/// An OpenAI-style listing of `ids`.
fn bare_listing(ids: &[String]) -> String {
    let rows: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"id":"{id}","object":"model","owned_by":"x","active":true,"context_window":131072}}"#))
        .collect();
    format!(r#"{{"object":"list","data":[{}]}}"#, rows.join(","))
}

/// A provider that lists what `listed` holds at `GET .../models` and answers chat calls.
fn provider(listed: Arc<Mutex<Vec<String>>>) -> Mock {
    Mock::start(move |r: &Recorded| {
        if r.method == "GET" && r.path.ends_with("/models") {
            Reply::json(200, &listing(&listed.lock().unwrap()))
        } else {
            Reply::completion("ok")
        }
    })
}

fn sync(admin: &Admin<'_>, platform: &str) -> simd_json::OwnedValue {
    let r = admin.req(
        "POST",
        "/api/models/sync",
        &format!(r#"{{"platform":"{platform}"}}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["platforms"][0].clone()
}

fn routed(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.header("X-Routed-Via").unwrap()
}

/// `/v1/models` as `platform/model_id` (several platforms offer the same model id).
fn ids(p: &Proxy) -> Vec<String> {
    p.get("/v1/models").json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| Some(format!("{}/{}", m["owned_by"].as_str()?, m["id"].as_str()?)))
        .collect()
}

fn groq(id: &str) -> String {
    format!("groq/{id}")
}

fn chat_with(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

#[test]
fn a_removed_model_stops_receiving_requests_and_comes_back_when_listed() {
    let listed = Arc::new(Mutex::new(GROQ.map(String::from).to_vec()));
    let m = provider(listed.clone());
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_sync_key_000001")
        .start();
    let admin = Admin::setup(&p);
    let s = sync(&admin, "groq");
    assert_eq!(
        (s["result"].as_str(), s["listed"].as_u64()),
        (Some("synced"), Some(5))
    );
    assert_eq!(s["retired"], 0u64);
    assert_eq!(routed(&p.chat(&user("a"))), "groq/openai/gpt-oss-120b");

    // Groq stops listing its best model.
    listed.lock().unwrap().remove(0);
    let s = sync(&admin, "groq");
    assert_eq!(s["retired"], 1u64, "{s:?}");
    let calls = m.requests.lock().unwrap().len();
    assert_eq!(
        routed(&p.chat(&user("b"))),
        "groq/qwen/qwen3.8-27b",
        "auto skips it"
    );
    let strict = p.post(
        "/v1/chat/completions",
        &chat_with("groq/openai/gpt-oss-120b"),
        &[("X-Freellmapi-Pin", "strict")],
    );
    assert_eq!(strict.status, 400, "{}", strict.text());
    assert!(
        strict
            .error_message()
            .contains("is retired (not listed by Groq since"),
        "{}",
        strict.text()
    );
    let sent: Vec<String> = m.requests.lock().unwrap()[calls..]
        .iter()
        .filter(|r| r.method == "POST")
        .map(Recorded::model)
        .collect();
    assert_eq!(
        sent,
        ["qwen/qwen3.8-27b"],
        "no request reached the removed model"
    );
    assert!(!ids(&p).contains(&groq(GROQ[0])));
    let list =
        String::from_utf8_lossy(&p.cli(&["models", "list", "--platform", "groq"], "").stdout)
            .to_string();
    assert!(
        list.contains("groq/openai/gpt-oss-120b") && list.contains(" retired "),
        "{list}"
    );
    assert!(list.contains("retired: not listed by Groq since"), "{list}");
    let models = admin.get("/api/models").json();
    let row = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "groq/openai/gpt-oss-120b")
        .unwrap()
        .clone();
    assert_eq!(row["state"], "retired");
    assert!(
        row["retired"]
            .as_str()
            .unwrap()
            .contains("not listed by Groq")
    );

    // Listed again: back, where the user had it.
    listed.lock().unwrap().insert(0, GROQ[0].to_string());
    let s = sync(&admin, "groq");
    assert_eq!(s["returned"], 1u64, "{s:?}");
    assert_eq!(routed(&p.chat(&user("c"))), "groq/openai/gpt-oss-120b");
}

#[test]
fn a_user_disabled_model_stays_off_when_it_returns() {
    let listed = Arc::new(Mutex::new(GROQ.map(String::from).to_vec()));
    let m = provider(listed.clone());
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_sync_key_000002")
        .start();
    let admin = Admin::setup(&p);
    let out = p.cli(&["models", "disable", "groq/openai/gpt-oss-20b"], "");
    assert!(out.status.success());
    listed.lock().unwrap().pop();
    assert_eq!(sync(&admin, "groq")["retired"], 1u64);
    listed.lock().unwrap().push(GROQ[2].to_string());
    assert_eq!(sync(&admin, "groq")["returned"], 1u64);
    let r = p.chat(&chat_with("openai/gpt-oss-20b"));
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("is disabled"), "{}", r.text());
}

#[test]
fn a_failed_or_shrunken_listing_changes_nothing_until_it_is_confirmed() {
    let listed = Arc::new(Mutex::new(GROQ.map(String::from).to_vec()));
    let failing = Arc::new(Mutex::new(false));
    let (l, f) = (listed.clone(), failing.clone());
    let m = Mock::start(move |r: &Recorded| {
        if r.method == "GET" && r.path.ends_with("/models") {
            if *f.lock().unwrap() {
                Reply::json(500, r#"{"error":{"message":"listing is down"}}"#)
            } else {
                // Whisper models too stop being listed in this test.
                Reply::json(200, &bare_listing(&l.lock().unwrap()))
            }
        } else {
            Reply::completion("ok")
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_sync_key_000003")
        .start();
    let admin = Admin::setup(&p);
    // Tries: a listing that fails.
    *failing.lock().unwrap() = true;
    let s = sync(&admin, "groq");
    assert_eq!(s["result"], "failed");
    assert!(s["error"].as_str().unwrap().contains("HTTP 500"), "{s:?}");
    for id in GROQ {
        assert!(
            ids(&p).contains(&groq(id)),
            "{id} still listed after a failed sync"
        );
    }
    // Tries: a listing with one of five models (more than half gone at once) and a new one.
    *failing.lock().unwrap() = false;
    {
        let mut l = listed.lock().unwrap();
        l.truncate(1);
        l.push("brand-new-model".into());
    }
    let s = sync(&admin, "groq");
    assert_eq!(
        (s["retired"].as_u64(), s["added"].as_u64()),
        (Some(0), Some(0)),
        "{s:?}"
    );
    assert!(
        s["held_back"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{s:?}"
    );
    for id in GROQ {
        assert!(ids(&p).contains(&groq(id)), "{id} still listed");
    }
    assert!(!ids(&p).contains(&groq("brand-new-model")), "nothing added");
    assert!(
        p.log_text().contains("nothing was changed"),
        "the warning is logged"
    );
    // The same listing a second time is the provider's word, not an odd answer.
    let s = sync(&admin, "groq");
    assert_eq!(
        (s["retired"].as_u64(), s["added"].as_u64()),
        (Some(4), Some(1)),
        "{s:?}"
    );
    let now = ids(&p);
    assert!(
        now.contains(&groq(GROQ[0])) && now.contains(&groq("brand-new-model")),
        "{now:?}"
    );
    assert!(
        !now.contains(&groq(GROQ[1])) && !now.contains(&groq(GROQ[2])),
        "{now:?}"
    );
}

/// An OpenRouter listing entry, with prices.
fn priced(id: &str, prompt: &str, completion: &str) -> String {
    format!(
        r#"{{"id":"{id}","name":"{id}","context_length":65536,"pricing":{{"prompt":"{prompt}","completion":"{completion}"}},
            "architecture":{{"input_modalities":["text"],"output_modalities":["text"]}},"top_provider":{{"max_completion_tokens":8192}},
            "supported_parameters":["max_tokens","tools","tool_choice"]}}"#
    )
}

#[test]
fn a_new_free_openrouter_model_routes_and_a_priced_one_is_only_discovered() {
    let builtin = freellmapi::catalog::Catalog::builtin();
    let or = builtin.platform_index("openrouter").unwrap();
    let mut rows: Vec<String> = builtin
        .models
        .iter()
        .filter(|m| m.platform == or && m.retired.is_none())
        .map(|m| priced(&m.model_id, "0", "0"))
        .collect();
    rows.push(priced("new-lab/brand-new-model:free", "0", "0"));
    rows.push(priced("new-lab/brand-new-model", "0.000001", "0.000002"));
    let body = format!(r#"{{"data":[{}]}}"#, rows.join(","));
    let m = Mock::start(move |r: &Recorded| {
        if r.method == "GET" {
            Reply::json(200, &body)
        } else {
            Reply::completion("from the new model")
        }
    });
    let p = Proxy::builder()
        .upstream("openrouter", &m.base())
        .key("openrouter", "sk-or-v1-sync-key-0001")
        .start();
    let admin = Admin::setup(&p);
    let s = sync(&admin, "openrouter");
    assert_eq!(s["added"], 2u64, "{s:?}");
    assert_eq!(s["retired"], 0u64, "{s:?}");

    let r = p.chat(&chat_with("new-lab/brand-new-model:free"));
    assert_eq!(routed(&r), "openrouter/new-lab/brand-new-model:free");
    assert_eq!(m.last().model(), "new-lab/brand-new-model:free");
    let listed = ids(&p);
    assert!(listed.contains(&"openrouter/new-lab/brand-new-model:free".to_string()));
    assert!(
        !listed.contains(&"openrouter/new-lab/brand-new-model".to_string()),
        "priced: not on"
    );
    let r = p.chat(&chat_with("new-lab/brand-new-model"));
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("is disabled"), "{}", r.text());

    let models = admin.get("/api/models").json();
    let row = |id: &str| {
        models["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone()
    };
    let free = row("openrouter/new-lab/brand-new-model:free");
    assert_eq!(
        (free["state"].as_str(), free["origin"].as_str()),
        (Some("active"), Some("discovered"))
    );
    assert_eq!(free["contextWindow"], 65536u64);
    assert!(
        free["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "tools")
    );
    assert_eq!(
        row("openrouter/new-lab/brand-new-model")["state"],
        "discovered"
    );
    // One click away: switched on like any model.
    let r = admin.req(
        "PATCH",
        "/api/models",
        r#"{"id":"openrouter/new-lab/brand-new-model","enabled":true}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        routed(&p.chat(&chat_with("new-lab/brand-new-model"))),
        "openrouter/new-lab/brand-new-model"
    );
}

/// Groq answers its best model as gone (`answer`), the rest normally.
fn gone_provider(status: u16, answer: &'static str) -> Mock {
    Mock::start(move |r: &Recorded| {
        if r.method == "POST" && r.model() == GROQ[0] {
            Reply::json(status, answer)
        } else {
            Reply::completion("served")
        }
    })
}

fn retired_across_a_restart(status: u16, answer: &'static str, says: &str) {
    let m = gone_provider(status, answer);
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_gone_key_000001")
        .start();
    let r = p.chat(&user("hi"));
    assert_eq!(
        routed(&r),
        "groq/qwen/qwen3.8-27b",
        "the request fails over"
    );
    assert!(r.header("X-Fallback-Trail").unwrap().contains("model_gone"));
    p.wait_for("the model's retirement", Duration::from_secs(10), |p| {
        !ids(p).contains(&groq(GROQ[0]))
    });
    let p = p.restart();
    assert!(
        !ids(&p).contains(&groq(GROQ[0])),
        "still retired after a restart"
    );
    let before = m.requests.lock().unwrap().len();
    assert_eq!(routed(&p.chat(&user("again"))), "groq/qwen/qwen3.8-27b");
    assert!(
        m.requests.lock().unwrap()[before..]
            .iter()
            .all(|r| r.model() != GROQ[0]),
        "not tried again"
    );
    let r = p.chat(&chat_with(&groq(GROQ[0])));
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains(says), "{}", r.text());
}

#[test]
fn a_model_not_found_404_retires_the_model_for_good() {
    retired_across_a_restart(
        404,
        r#"{"error":{"message":"The model `openai/gpt-oss-120b` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}}"#,
        "Groq answered HTTP 404",
    );
}

#[test]
fn a_decommissioned_400_retires_the_model_for_good() {
    retired_across_a_restart(
        400,
        r#"{"error":{"message":"The model `openai/gpt-oss-120b` has been decommissioned and is no longer supported.","type":"invalid_request_error","code":"model_decommissioned"}}"#,
        "has been decommissioned",
    );
}

#[test]
fn a_model_the_user_added_is_cooled_not_retired_when_called_gone() {
    let m = Mock::start(|r: &Recorded| {
        if r.method == "POST" && r.model() == "my-own-model" {
            Reply::json(
                404,
                r#"{"error":{"message":"The model `my-own-model` does not exist","code":"model_not_found"}}"#,
            )
        } else {
            Reply::completion("served")
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_own_model_key_01")
        .start();
    let admin = Admin::setup(&p);
    let r = admin.req(
        "POST",
        "/api/models",
        r#"{"platform":"groq","modelId":"my-own-model","intelligenceRank":1}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    p.wait_for("the new model", Duration::from_secs(10), |p| {
        ids(p).contains(&groq("my-own-model"))
    });
    // Tries: the provider calls the user's own row gone.
    let r = p.chat(&chat_with("my-own-model"));
    assert_eq!(r.status, 200, "fails over: {}", r.text());
    assert!(r.header("X-Fallback-Trail").unwrap().contains("model_gone"));
    // A sync goes through the same store writer, after anything the request queued there.
    sync(&admin, "groq");
    assert!(ids(&p).contains(&groq("my-own-model")), "still listed");
    let models = admin.get("/api/models").json();
    let own = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "groq/my-own-model")
        .unwrap()
        .clone();
    assert_eq!(own["state"], "active", "{own:?}");
    assert!(
        !p.log_text().contains("my-own-model retired"),
        "{}",
        p.log_text()
    );
}

#[test]
fn a_data_policy_404_and_a_bare_404_retire_nothing() {
    for (answer, class) in [
        (
            r#"{"error":{"message":"No endpoints found matching your data policy (Free model training). Check your settings: https://openrouter.ai/settings/privacy","code":404}}"#,
            "data_policy",
        ),
        (r#"{"detail":"Not Found"}"#, "unavailable"),
    ] {
        let m = gone_provider(404, answer);
        let p = Proxy::builder()
            .upstream("groq", &m.base())
            .key("groq", "gsk_policy_key_00001")
            .start();
        let r = p.chat(&user("hi"));
        assert_eq!(routed(&r), "groq/qwen/qwen3.8-27b");
        assert!(
            r.header("X-Fallback-Trail").unwrap().contains(class),
            "{}",
            r.head
        );
        let p = p.restart();
        assert!(ids(&p).contains(&groq(GROQ[0])), "{class}: not retired");
    }
}

#[test]
fn a_retired_platform_refuses_new_keys_and_a_paid_one_warns() {
    let p = Proxy::builder().start();
    let out = p.cli(&["keys", "add", "github"], "ghp_abcdefghijklmnop0123\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GitHub Models is retired") && err.contains("2026-07-30"),
        "{err}"
    );
    let admin = Admin::setup(&p);
    let r = admin.req(
        "POST",
        "/api/keys",
        r#"{"platform":"github","key":"ghp_abcdefghijklmnop0123"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error_message().contains("no longer accepted"),
        "{}",
        r.text()
    );
    let out = p.cli(&["keys", "add", "sambanova"], "sn-paid-key-0001\n");
    assert!(out.status.success());
    let warn = String::from_utf8_lossy(&out.stderr);
    assert!(
        warn.contains("no free tier now") && warn.contains("402"),
        "{warn}"
    );
}

#[test]
fn a_new_key_has_its_platforms_listing_read_at_once() {
    let listed = Arc::new(Mutex::new(GROQ.map(String::from).to_vec()));
    let m = provider(listed.clone());
    let p = Proxy::builder().upstream("groq", &m.base()).start();
    let out = p.cli(&["keys", "add", "groq"], "gsk_new_key_0000001\n");
    assert!(out.status.success());
    p.wait_for("the listing to be read", Duration::from_secs(15), |_| {
        m.requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with("/models"))
    });
    p.wait_for("the sync to be recorded", Duration::from_secs(10), |p| {
        p.get("/v1/providers").json()["data"]
            .as_array()
            .unwrap()
            .iter()
            // Before the sync lands `last_sync` is null, which cannot be indexed.
            .any(|x| {
                x["id"] == "groq"
                    && x.get("last_sync").and_then(|s| s.get_str("result")) == Some("synced")
            })
    });
}

#[test]
fn providers_say_where_each_free_tier_stands_and_livez_answers() {
    let m = Mock::start(|_| Reply::completion("ok"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_providers_key_01")
        .start();
    let r = support::request(p.addr, "GET", "/livez", &[], b"");
    assert_eq!(
        (r.status, r.text()),
        (200, r#"{"status":"ok"}"#.to_string())
    );
    let r = support::request(p.addr, "GET", "/v1/providers", &[], b"");
    assert_eq!(r.status, 401, "behind the client key");
    let v = p.get("/v1/providers").json();
    let data = v["data"].as_array().unwrap();
    let row = |id: &str| data.iter().find(|x| x["id"] == id).unwrap().clone();
    let groq = row("groq");
    assert_eq!(groq["free_tier"]["status"], "free");
    assert!(
        groq["free_tier"]["checked"]
            .as_str()
            .unwrap()
            .starts_with("2026-")
    );
    assert!(
        groq["free_tier"]["source"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(
        (groq["keys"].as_u64(), groq["can_route"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(
        groq["enabled_models"], 5u64,
        "three chat, two speech to text"
    );
    assert!(groq["retired_models"].as_u64().unwrap() >= 4);
    assert_eq!(row("github")["free_tier"]["status"], "retired");
    assert_eq!(row("cerebras")["free_tier"]["status"], "credits");
    let ovh = row("ovhcloud");
    assert_eq!(
        (ovh["keys"].as_u64(), ovh["can_route"].as_bool()),
        (Some(0), Some(false))
    );
    let table = String::from_utf8_lossy(&p.cli(&["providers"], "").stdout).to_string();
    assert!(
        table.contains("github") && table.contains("retired") && table.contains("2026-07-30"),
        "{table}"
    );
}

#[test]
fn a_keyless_platform_routes_only_once_the_admin_turns_it_on() {
    let m = Mock::start(|r: &Recorded| {
        if r.method == "GET" {
            Reply::json(
                200,
                r#"{"data":[{"id":"gpt-oss-120b"},{"id":"gpt-oss-20b"},{"id":"Meta-Llama-3_3-70B-Instruct"},{"id":"Qwen3-Coder-30B-A3B-Instruct"},{"id":"Mistral-Small-3.2-24B-Instruct-2506"}]}"#,
            )
        } else {
            Reply::completion("keyless")
        }
    });
    let p = Proxy::builder().upstream("ovhcloud", &m.base()).start();
    let r = p.chat(&chat_with("gpt-oss-120b"));
    assert_eq!(r.status, 429, "off by default: {}", r.text());
    assert_eq!(m.count(), 0);
    let out = p.cli(&["providers", "keyless", "ovhcloud", "on"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sees the prompts"));
    p.wait_for("keyless routing", Duration::from_secs(10), |p| {
        p.chat(&chat_with("gpt-oss-120b")).status == 200
    });
    let call = m
        .requests
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.method == "POST")
        .cloned()
        .unwrap();
    assert_eq!(call.header("authorization"), None, "no key is sent");
    let bad = p.cli(&["providers", "keyless", "groq", "on"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ovhcloud, kilo, llm7"));
    let out = p.cli(&["providers", "keyless", "ovhcloud", "off"], "");
    assert!(out.status.success());
    p.wait_for("keyless routing off", Duration::from_secs(10), |p| {
        p.chat(&chat_with("gpt-oss-120b")).status == 429
    });
}
