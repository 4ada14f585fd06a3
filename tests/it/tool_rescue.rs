//! Tool calls a model wrote as text, end to end against mock providers: a Hermes-style call in
//! a whole answer and in a stream split mid-tag, Groq's 400 `tool_use_failed` (whole and
//! streamed), the same through the Anthropic surface, prose left alone, and the counts in
//! `/metrics` and the request log.

use crate::support;

use simd_json::prelude::*;
use support::mock::{Mock, Recorded, Reply};
use support::{Proxy, request};

const TOOLS: &str = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#;
const CALL: &str = "I'll check.\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\",}}</tool_call>";
const GROQ_REFUSAL: &str = r#"{"error":{"message":"Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.","type":"invalid_request_error","code":"tool_use_failed","failed_generation":"<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Oslo\\\"}\"}</tool_call>"}}"#;

fn proxy(m: &Mock) -> Proxy {
    Proxy::builder()
        .upstream("groq", &m.base())
        .first("groq", "qwen/qwen3.8-27b")
        .key("groq", "gsk_tool_rescue_test_1")
        .start()
}

fn chat(stream: bool, tools: bool) -> String {
    format!(
        r#"{{"model":"auto","stream":{stream},"messages":[{{"role":"user","content":"weather in Paris?"}}]{}}}"#,
        if tools {
            format!(",{TOOLS}")
        } else {
            String::new()
        }
    )
}

fn first_call(v: &simd_json::OwnedValue) -> (String, String) {
    let call = &v.get_array("tool_calls").expect("tool_calls")[0];
    let f = call.get("function").unwrap();
    (
        f.get_str("name").unwrap().to_string(),
        f.get_str("arguments").unwrap().to_string(),
    )
}

#[test]
fn a_call_written_as_text_becomes_a_tool_call() {
    let m = Mock::start(|_| Reply::completion(CALL));
    let p = proxy(&m);
    let r = p.chat(&chat(false, true));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let choice = &v.get_array("choices").unwrap()[0];
    let message = choice.get("message").unwrap();
    assert_eq!(
        first_call(message),
        ("get_weather".into(), r#"{"city":"Paris"}"#.into()),
        "the trailing comma repaired"
    );
    assert_eq!(message.get_str("content"), Some("I'll check."));
    assert_eq!(choice.get_str("finish_reason"), Some("tool_calls"));
    // Without tools in the request, the same text is only text.
    let r = p.chat(&chat(false, false));
    let v = r.json();
    let message = v.get_array("choices").unwrap()[0]
        .get("message")
        .unwrap()
        .clone();
    assert_eq!(message.get_str("content"), Some(CALL));
    assert!(message.get("tool_calls").is_none());
    let metrics = p.get("/metrics").text();
    assert!(
        metrics.contains(r#"freellmapi_tool_rescues_total{dialect="hermes"} 1"#),
        "{metrics}"
    );
    // The request log marks it: the dashboard's summary counts rescued requests.
    let admin = support::admin::Admin::setup(&p);
    p.wait_for(
        "the log to hold both",
        std::time::Duration::from_secs(10),
        |_| {
            admin
                .get("/api/analytics/summary?range=24h")
                .json()
                .get_u64("totalRequests")
                == Some(2)
        },
    );
    let summary = admin.get("/api/analytics/summary?range=24h").json();
    assert_eq!(summary.get_u64("toolRescues"), Some(1), "{summary:?}");
}

#[test]
fn a_streamed_call_split_mid_tag_becomes_tool_call_chunks() {
    let m = Mock::start(|r: &Recorded| {
        let _ = r;
        Reply::stream(
            &[
                "I'll check.\n<to",
                "ol_call>{\"name\": \"get_wea",
                "ther\", \"arguments\": {\"city\": \"Paris\"}}</tool_",
                "call>",
            ],
            std::time::Duration::ZERO,
        )
    });
    let p = proxy(&m);
    let r = p.chat(&chat(true, true));
    assert_eq!(r.status, 200, "{}", r.text());
    let (mut text, mut calls, mut finish) = (String::new(), Vec::new(), None);
    for data in r.sse_data() {
        if data == "[DONE]" {
            continue;
        }
        let v = simd_json::to_owned_value(&mut data.into_bytes()).unwrap();
        let Some(choice) = v.get_array("choices").and_then(|c| c.first()) else {
            continue;
        };
        let delta = choice.get("delta").unwrap();
        text.push_str(delta.get_str("content").unwrap_or(""));
        if delta.get("tool_calls").is_some() {
            calls.push(first_call(delta));
        }
        if let Some(f) = choice.get_str("finish_reason") {
            finish = Some(f.to_string());
        }
    }
    assert_eq!(
        text.trim_end(),
        "I'll check.",
        "the prose streamed; the tag did not"
    );
    assert_eq!(
        calls,
        [("get_weather".to_string(), r#"{"city":"Paris"}"#.to_string())]
    );
    assert_eq!(finish.as_deref(), Some("tool_calls"));
}

#[test]
fn groqs_tool_use_failed_is_answered_with_the_call() {
    let m = Mock::start(|_| Reply::json(400, GROQ_REFUSAL));
    let p = proxy(&m);
    let r = p.chat(&chat(false, true));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let message = v.get_array("choices").unwrap()[0]
        .get("message")
        .unwrap()
        .clone();
    assert_eq!(
        first_call(&message),
        ("get_weather".into(), r#"{"city":"Oslo"}"#.into()),
        "double-encoded arguments decoded"
    );
    assert_eq!(m.count(), 1, "answered without another attempt");
    // Streamed: the same call as chunks.
    let r = p.chat(&chat(true, true));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains(r#""finish_reason":"tool_calls""#),
        "{}",
        r.text()
    );
    assert!(r.text().contains("get_weather"));
    // Through the Anthropic surface: a tool_use block.
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"weather?"}],"tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}"#;
    let r = request(
        p.addr,
        "POST",
        "/v1/messages",
        &[("x-api-key", &p.token), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let block = v
        .get_array("content")
        .unwrap()
        .iter()
        .find(|b| b.get_str("type") == Some("tool_use"))
        .expect("a tool_use block")
        .clone();
    assert_eq!(block.get("input").unwrap().get_str("city"), Some("Oslo"));
    assert_eq!(v.get_str("stop_reason"), Some("tool_use"));
    // A request without tools gets Groq's refusal as it was (nothing to rescue into).
    let r = p.chat(&chat(false, false));
    assert_eq!(r.status, 400, "{}", r.text());
    let metrics = p.get("/metrics").text();
    assert!(
        metrics.contains(r#"freellmapi_tool_rescues_total{dialect="groq_tool_use_failed"} 3"#),
        "{metrics}"
    );
}
