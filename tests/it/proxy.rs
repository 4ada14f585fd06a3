//! The proxy's happy paths over real sockets: non-streaming and streaming completions, what
//! reaches the upstream, tools, model selection (auto, explicit, strict, unknown, disabled),
//! sticky sessions and the model list.

use crate::support;

use std::io::Write;
use std::time::{Duration, Instant};

use simd_json::prelude::*;
use support::mock::{self, Event, Mock, Reply};
use support::{Proxy, user};

/// Groq's best model by intelligence rank in the built-in catalog.
const GROQ_FIRST: &str = "openai/gpt-oss-120b";
const GROQ_SECOND: &str = "qwen/qwen3.8-27b";

fn groq() -> (Mock, Proxy) {
    let m = Mock::start(|_| Reply::completion("hello from mock"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_test_key_1234567890")
        .start();
    (m, p)
}

#[test]
fn non_streaming_completion_reaches_the_upstream_and_comes_back_normalised() {
    let (m, p) = groq();
    let r = p.chat(r#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"temperature":0.3,"reasoning_effort":"low","x_custom":{"keep":[1,2]}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some(&*format!("groq/{GROQ_FIRST}"))
    );
    assert!(r.header("X-Fallback-Attempts").is_none());
    assert!(r.header("X-Request-Id").unwrap().starts_with("req_"));
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("application/json")
    );
    let body = r.json();
    let msg = &body.get_array("choices").unwrap()[0];
    assert_eq!(
        msg.get("message").unwrap().get_str("content"),
        Some("hello from mock")
    );
    assert_eq!(body.get("usage").unwrap().get_u64("total_tokens"), Some(8));
    assert!(body.get("_routed_via").is_none(), "no non-standard fields");

    let up = m.last();
    assert_eq!(up.method, "POST");
    assert_eq!(up.path, "/v1/chat/completions");
    assert_eq!(
        up.header("authorization"),
        Some("Bearer gsk_test_key_1234567890")
    );
    let sent = up.json();
    assert_eq!(sent.get_str("model"), Some(GROQ_FIRST));
    assert_eq!(
        sent.get_str("reasoning_effort"),
        Some("low"),
        "unknown fields are forwarded"
    );
    assert_eq!(
        sent.get("x_custom")
            .unwrap()
            .get_array("keep")
            .unwrap()
            .len(),
        2
    );
    assert_eq!(sent.get_f64("temperature"), Some(0.3));
}

#[test]
fn streaming_relays_each_frame_before_the_upstream_finishes() {
    let m = Mock::start(|_| Reply::stream(&["Hel", "lo", " world"], Duration::from_millis(300)));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_stream")
        .start();
    let mut s = support::connect(p.addr);
    let body = r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
        p.token,
        body.len()
    )
    .unwrap();
    let head = support::read_head(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: text/event-stream"));
    assert!(head.contains(&format!("X-Routed-Via: groq/{GROQ_FIRST}")));
    let mut frames = Vec::new();
    let mut first_content_at = None;
    while let Some(chunk) = support::read_chunk(&mut s) {
        let text = String::from_utf8(chunk).unwrap();
        if first_content_at.is_none() && text.contains("Hel") {
            first_content_at = Some(Instant::now());
        }
        frames.push(text);
    }
    // The mock notes the end of its stream after its last write; on a loaded machine that
    // note can come after the client has read everything.
    let stream_done = || {
        m.events.lock().unwrap().iter().find_map(|e| match e {
            Event::StreamDone(t) => Some(*t),
            _ => None,
        })
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while stream_done().is_none() && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let done = stream_done().expect("the mock finished its stream");
    assert!(
        first_content_at.unwrap() < done,
        "the first frame arrived before the mock sent its last"
    );
    let all = frames.concat();
    assert!(all.starts_with("data: {"), "{all}");
    assert!(all.ends_with("data: [DONE]\n\n"), "{all}");
    let texts: Vec<String> = all
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| simd_json::to_owned_value(&mut d.as_bytes().to_vec()).ok())
        .filter_map(|v| {
            v.get_array("choices")
                .and_then(|c| c[0].get("delta"))
                .and_then(|d| d.get_str("content"))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(texts.concat(), "Hello world");
    assert!(m.last().json().get_bool("stream").unwrap());
}

#[test]
fn usage_frames_without_choices_pass_through() {
    let m = Mock::start(|_| {
        Reply::Sse {
        frames: vec![
            (Duration::ZERO, mock::chunk(r#"{"content":"ok"}"#, Some("stop"))),
            (Duration::ZERO, "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,\"total_tokens\":5}}\n\n".into()),
            (Duration::ZERO, "data: [DONE]\n\n".into()),
        ],
        abrupt: false,
    }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_u")
        .start();
    let r = p.chat(r#"{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#);
    let data = r.sse_data();
    assert_eq!(data.len(), 3, "{data:?}");
    assert!(data[1].contains(r#""total_tokens":5"#));
    assert_eq!(data[2], "[DONE]");
    assert!(
        m.last().json().get("stream_options").is_some(),
        "stream_options is forwarded as sent"
    );
}

#[test]
fn tools_and_tool_results_pass_through_unchanged() {
    let tool_reply = r#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}"#;
    let m = Mock::start(move |_| Reply::json(200, tool_reply));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_tools")
        .start();
    let tools = r#"[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false},"strict":true}}]"#;
    let r = p.chat(&format!(r#"{{"messages":[{{"role":"user","content":"weather?"}}],"tools":{tools},"tool_choice":"auto"}}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    let call = r.json().get_array("choices").unwrap()[0]
        .get("message")
        .unwrap()
        .get_array("tool_calls")
        .unwrap()[0]
        .clone();
    assert_eq!(call.get_str("id"), Some("call_1"));
    let sent = m.last().json();
    let expected_tools = simd_json::to_owned_value(&mut tools.as_bytes().to_vec()).unwrap();
    assert_eq!(sent.get("tools"), Some(&expected_tools));
    assert_eq!(sent.get_str("tool_choice"), Some("auto"));

    let turn2 = format!(
        r#"{{"messages":[{{"role":"user","content":"weather?"}},{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_1","type":"function","function":{{"name":"get_weather","arguments":"{{\"city\":\"Paris\"}}"}}}}]}},{{"role":"tool","tool_call_id":"call_1","content":"{{\"temp\":20}}"}}],"tools":{tools}}}"#
    );
    m.set(|_| Reply::completion("It is 20 degrees."));
    let r = p.chat(&turn2);
    assert_eq!(r.status, 200);
    let sent = m.last().json();
    let expected = simd_json::to_owned_value(&mut turn2.as_bytes().to_vec()).unwrap();
    assert_eq!(
        sent.get("messages"),
        expected.get("messages"),
        "tool turns reach the upstream unchanged"
    );
}

#[test]
fn model_selection_auto_explicit_strict_unknown_and_disabled() {
    let (m, p) = groq();
    let r = p.chat(&user("x"));
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );

    let r = p.chat(r#"{"model":"openai/gpt-oss-20b","messages":[{"role":"user","content":"x"}]}"#);
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/openai/gpt-oss-20b")
    );
    assert_eq!(m.last().model(), "openai/gpt-oss-20b");
    let r =
        p.chat(r#"{"model":"groq/openai/gpt-oss-20b","messages":[{"role":"user","content":"x"}]}"#);
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/openai/gpt-oss-20b"),
        "platform/model form"
    );

    // An explicit model without a key falls back to the chain, unless pinned strictly.
    let r =
        p.chat(r#"{"model":"mistral-large-latest","messages":[{"role":"user","content":"x"}]}"#);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}")
    );
    let r = p.post(
        "/v1/chat/completions",
        r#"{"model":"mistral-large-latest","messages":[{"role":"user","content":"x"}]}"#,
        &[("X-Freellmapi-Pin", "strict")],
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.error_message()
            .contains("pinned model has no usable provider key"),
        "{}",
        r.text()
    );
    assert!(r.header("Retry-After").is_some());

    let r = p.chat(r#"{"model":"gpt-99","messages":[{"role":"user","content":"x"}]}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "model_not_found");
    assert!(r.error_message().contains("not in the catalog"));
    // Off (paid only), and shut down by its provider: two different answers.
    let r =
        p.chat(r#"{"model":"gemini-3.1-pro-preview","messages":[{"role":"user","content":"x"}]}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "model_not_found");
    assert!(r.error_message().contains("is disabled"));
    let r = p.chat(r#"{"model":"gemini-2.5-pro","messages":[{"role":"user","content":"x"}]}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "model_not_found");
    assert!(
        r.error_message()
            .contains("is retired (shut down by Google"),
        "{}",
        r.text()
    );
    for auto in [r#""auto""#, r#""""#, "null"] {
        let r = p.chat(&format!(
            r#"{{"model":{auto},"messages":[{{"role":"user","content":"x"}}]}}"#
        ));
        assert_eq!(r.status, 200, "model {auto}");
    }
}

#[test]
fn a_conversation_sticks_to_the_model_that_served_turn_one() {
    // The first attempt of the first request is rate-limited for 1 s, so turn 1 is served by
    // the second model; once the first is free again, turn 2 still goes to the second.
    let mut first = true;
    let m = Mock::start(move |r| {
        if first && r.model() == GROQ_FIRST {
            first = false;
            return Reply::json(429, r#"{"error":{"message":"slow down"}}"#)
                .with_header("retry-after", "1");
        }
        Reply::completion("ok")
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_sticky")
        .start();
    let turn1 = r#"{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Tell me a story"}]}"#;
    let r = p.chat(turn1);
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_SECOND}")
    );
    assert_eq!(r.header("X-Fallback-Attempts").as_deref(), Some("1"));

    p.wait_for("the first model to cool off", Duration::from_secs(5), |p| {
        p.get("/v1/models?available=true")
            .text()
            .contains(GROQ_FIRST)
    });
    let turn2 = r#"{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Tell me a story"},{"role":"assistant","content":"Once..."},{"role":"user","content":"Go on"}]}"#;
    let r = p.chat(turn2);
    assert_eq!(
        r.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_SECOND}"),
        "turn 2 sticks"
    );
    let other = p.chat(r#"{"messages":[{"role":"user","content":"A different conversation"}]}"#);
    assert_eq!(
        other.header("X-Routed-Via").unwrap(),
        format!("groq/{GROQ_FIRST}"),
        "new conversations auto-route"
    );
    let r = p.chat(r#"{"model":"openai/gpt-oss-20b","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Tell me a story"},{"role":"assistant","content":"Once..."},{"role":"user","content":"Go on"}]}"#);
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/openai/gpt-oss-20b"),
        "an explicit model overrides stickiness"
    );
}

#[test]
fn model_list_starts_with_auto_and_reflects_keys() {
    let (_m, p) = groq();
    let r = p.get("/v1/models");
    assert_eq!(r.status, 200);
    let v = r.json();
    let data = v.get_array("data").unwrap();
    assert_eq!(data[0].get_str("id"), Some("auto"));
    let catalog = freellmapi::catalog::Catalog::builtin();
    let serving = || catalog.models.iter().filter(|m| m.serves());
    assert_eq!(
        data.len(),
        1 + serving().count(),
        "auto plus every enabled model"
    );
    let embeddings = data
        .iter()
        .filter(|m| m.get_str("type") == Some("embedding"))
        .count();
    assert_eq!(
        embeddings,
        serving()
            .filter(|m| m.kind == freellmapi::catalog::Kind::Embedding)
            .count(),
        "embedding models are listed with their type"
    );
    let speech = data
        .iter()
        .filter(|m| m.get_str("type") == Some("transcription"))
        .count();
    assert_eq!(
        speech,
        serving()
            .filter(|m| m.kind == freellmapi::catalog::Kind::Transcription)
            .count(),
        "speech-to-text models too"
    );
    for m in data.iter() {
        assert_eq!(m.get_str("object"), Some("model"));
        assert!(matches!(
            m.get_str("type"),
            Some("chat" | "embedding" | "transcription")
        ));
        assert!(
            m.get_str("owned_by").is_some()
                && m.get("created").is_some()
                && m.get("context_window").is_some()
        );
        // OpenRouter's field names, which several clients read, beside OpenAI's.
        assert_eq!(m.get("context_length"), m.get("context_window"));
        if m.get_str("id") != Some("auto") {
            assert!(m.get_array("supported_parameters").is_some(), "{m:?}");
        }
    }
    let qwen = data
        .iter()
        .find(|m| m.get_str("id") == Some("qwen/qwen3.8-27b"))
        .unwrap();
    let params: Vec<&str> = qwen
        .get_array("supported_parameters")
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(
        params.contains(&"tools") && !params.contains(&"response_format"),
        "{params:?}"
    );
    assert!(
        !r.text().contains("gemini-2.5-pro\""),
        "disabled models are not listed"
    );
    let avail = p.get("/v1/models?available=true").json();
    let ids: Vec<&str> = avail
        .get_array("data")
        .unwrap()
        .iter()
        .filter_map(|m| m.get_str("id"))
        .collect();
    assert_eq!(
        ids.len(),
        1 + 3 + 2,
        "auto plus groq's three chat and two speech-to-text models: {ids:?}"
    );
    assert!(ids.iter().skip(1).all(|id| r.text().contains(id)));

    let one = p.get("/v1/models/openai%2Fgpt-oss-120b");
    assert_eq!(one.status, 200, "{}", one.text());
    assert_eq!(one.json().get_str("owned_by"), Some("groq"));
    let one = p.get("/v1/models/qwen/qwen3.8-27b");
    assert_eq!(one.json().get_str("id"), Some(GROQ_SECOND));
    let missing = p.get("/v1/models/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), "model_not_found");
}

#[test]
fn health_and_readiness() {
    let p = Proxy::builder().start();
    let r = support::request(p.addr, "GET", "/healthz", &[], b"");
    assert_eq!(
        (r.status, r.text()),
        (200, r#"{"status":"ok"}"#.to_string())
    );
    let r = support::request(p.addr, "GET", "/readyz", &[], b"");
    assert_eq!(r.status, 503);
    assert!(r.error_message().contains("no usable provider key"));

    let (_m, p) = groq();
    let r = support::request(p.addr, "GET", "/readyz", &[], b"");
    assert_eq!(r.status, 200);
}

#[test]
fn keys_added_while_running_are_picked_up_without_restart() {
    let m = Mock::start(|_| Reply::completion("late key"));
    let p = Proxy::builder().upstream("groq", &m.base()).start();
    assert_eq!(p.chat(&user("x")).status, 429);
    let out = p.cli(
        &["keys", "add", "groq", "--label", "late"],
        "gsk_added_later\n",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("gsk_...ater"));
    p.wait_for("the new key", Duration::from_secs(10), |p| {
        p.chat(&user("x")).status == 200
    });
}
