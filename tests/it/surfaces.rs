//! The agent surfaces end to end over sockets, against mock providers: Anthropic Messages
//! (plain, streamed with tools, through Gemini, auth and exhaustion in Anthropic's shape, a
//! mid-stream failure, count_tokens, the model list), Responses (plain, streamed, a tool
//! round trip, stateless refusal), legacy completions (chat and fill-in-the-middle) and
//! embeddings (float, base64, Gemini's batch API, failover within a family only). Every
//! request leaves one log record with its surface.

use crate::support;

use std::time::Duration;

use simd_json::OwnedValue;
use simd_json::prelude::*;
use support::mock::{self, Mock, Reply};
use support::{Proxy, request};

const GROQ_KEY: &str = "gsk_test_key_1234567890";
const GROQ_FIRST: &str = "openai/gpt-oss-120b";

fn groq(reply: impl FnMut(&mock::Recorded) -> Reply + Send + 'static) -> (Mock, Proxy) {
    let m = Mock::start(reply);
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", GROQ_KEY)
        .start();
    (m, p)
}

/// `POST` with Anthropic's headers: the key in `x-api-key`, no Bearer.
fn anthropic(p: &Proxy, path: &str, body: &str) -> support::Response {
    request(
        p.addr,
        "POST",
        path,
        &[
            ("x-api-key", &p.token),
            ("anthropic-version", "2023-06-01"),
            (
                "anthropic-beta",
                "claude-code-20250219,interleaved-thinking-2025-05-14",
            ),
            ("x-app", "cli"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// The (event name, data) pairs of a named-event SSE body.
fn events(r: &support::Response) -> Vec<(String, OwnedValue)> {
    r.text()
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let mut name = String::from("data");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let v = simd_json::to_owned_value(&mut data.clone().into_bytes())
                .unwrap_or_else(|_| OwnedValue::from(data));
            (name, v)
        })
        .collect()
}

fn names(ev: &[(String, OwnedValue)]) -> Vec<&str> {
    ev.iter().map(|(n, _)| n.as_str()).collect()
}

fn tool_call_stream() -> Reply {
    let frames = vec![
        mock::chunk(r#"{"role":"assistant","content":""}"#, None),
        mock::chunk(r#"{"content":"Checking."}"#, None),
        mock::chunk(
            r#"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}"#,
            None,
        ),
        mock::chunk(
            r#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}"#,
            None,
        ),
        mock::chunk("{}", Some("tool_calls")),
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":9,\"total_tokens\":30}}\n\n".to_string(),
        "data: [DONE]\n\n".to_string(),
    ];
    Reply::Sse {
        frames: frames.into_iter().map(|f| (Duration::ZERO, f)).collect(),
        abrupt: false,
    }
}

const WEATHER_TOOL: &str = r#"{"name":"get_weather","description":"Weather","input_schema":{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}"#;

#[test]
fn messages_plain_answer_in_anthropics_shape_with_the_model_echoed_and_max_tokens_clamped() {
    let (m, p) = groq(|_| Reply::completion("Bonjour"));
    let r = anthropic(
        &p,
        "/v1/messages?beta=true",
        r#"{"model":"claude-sonnet-4-5-20250929","max_tokens":128000,"system":"Be brief.","messages":[{"role":"user","content":"Hello"}],"metadata":{"user_id":"u"},"thinking":{"type":"adaptive"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v.get_str("type"), Some("message"));
    assert_eq!(
        v.get_str("model"),
        Some("claude-sonnet-4-5-20250929"),
        "echoes the request"
    );
    assert!(v.get_str("id").unwrap().starts_with("msg_"));
    let content = v.get_array("content").unwrap();
    assert_eq!(content[0].get_str("type"), Some("text"));
    assert_eq!(content[0].get_str("text"), Some("Bonjour"));
    assert_eq!(v.get_str("stop_reason"), Some("end_turn"));
    let usage = v.get("usage").unwrap();
    assert_eq!(
        (
            usage.get_u64("input_tokens"),
            usage.get_u64("output_tokens")
        ),
        (Some(5), Some(3))
    );
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some(&*format!("groq/{GROQ_FIRST}"))
    );

    let sent = m.last().json();
    assert_eq!(sent.get_str("model"), Some(GROQ_FIRST));
    assert_eq!(
        sent.get_u64("max_tokens"),
        Some(65_536),
        "128 000 is lowered to the routed model's output limit"
    );
    let msgs = sent.get_array("messages").unwrap();
    assert_eq!(msgs[0].get_str("role"), Some("system"));
    assert!(
        sent.get("thinking").is_none() && sent.get("metadata").is_none(),
        "not forwarded"
    );
}

#[test]
fn messages_stream_with_tools_gives_the_exact_event_sequence_and_names_dropped_tools() {
    let (m, p) = groq(|_| tool_call_stream());
    let body = format!(
        r#"{{"model":"claude-opus-4-1","max_tokens":32000,"stream":true,"messages":[{{"role":"user","content":"Weather in Paris?"}}],"tools":[{WEATHER_TOOL},{{"type":"web_search_20250305","name":"web_search"}},{{"name":"later","input_schema":{{"type":"object"}},"defer_loading":true}}]}}"#
    );
    let r = anthropic(&p, "/v1/messages", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("Content-Type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(
        r.header("X-Freellmapi-Dropped-Tools").as_deref(),
        Some("web_search,later")
    );
    let ev = events(&r);
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        ev[0].1.get("message").unwrap().get_str("model"),
        Some("claude-opus-4-1")
    );
    let tool = ev[4].1.get("content_block").unwrap();
    assert_eq!(
        (tool.get_str("type"), tool.get_str("name")),
        (Some("tool_use"), Some("get_weather"))
    );
    let partial: String = ev[5..7]
        .iter()
        .map(|(_, d)| {
            d.get("delta")
                .unwrap()
                .get_str("partial_json")
                .unwrap()
                .to_string()
        })
        .collect();
    let mut bytes = partial.into_bytes();
    let input =
        simd_json::to_owned_value(&mut bytes).expect("arguments parse when the block stops");
    assert_eq!(input.get_str("city"), Some("Paris"));
    let delta = &ev[8].1;
    assert_eq!(
        delta.get("delta").unwrap().get_str("stop_reason"),
        Some("tool_use")
    );
    assert_eq!(
        delta.get("usage").unwrap().get_u64("output_tokens"),
        Some(9),
        "the provider's usage"
    );

    let sent = m.last().json();
    assert_eq!(
        sent.get("stream_options")
            .unwrap()
            .get_bool("include_usage"),
        Some(true),
        "real usage is asked for"
    );
    let tools = sent.get_array("tools").unwrap();
    assert_eq!(tools.len(), 1, "only the function tool goes upstream");
    let params = tools[0].get("function").unwrap().get("parameters").unwrap();
    assert!(params.get("$schema").is_none());
}

#[test]
fn messages_tool_round_trip_pairs_results_with_calls() {
    let (m, p) = groq(|_| Reply::completion("It is sunny."));
    let body = format!(
        r#"{{"model":"claude-haiku-4-5","max_tokens":500,"tools":[{WEATHER_TOOL}],"tool_choice":{{"type":"any"}},"messages":[
        {{"role":"user","content":"Weather?"}},
        {{"role":"assistant","content":[{{"type":"tool_use","id":"toolu_7","name":"get_weather","input":{{"city":"Oslo"}}}}]}},
        {{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_7","content":"sunny","is_error":false}}]}}]}}"#
    );
    let r = anthropic(&p, "/v1/messages", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = m.last().json();
    let msgs = sent.get_array("messages").unwrap();
    let call = &msgs[1].get_array("tool_calls").unwrap()[0];
    assert_eq!(call.get_str("id"), Some("toolu_7"));
    assert_eq!(
        call.get("function").unwrap().get_str("arguments"),
        Some(r#"{"city":"Oslo"}"#)
    );
    assert_eq!(msgs[2].get_str("role"), Some("tool"));
    assert_eq!(msgs[2].get_str("tool_call_id"), Some("toolu_7"));
    assert_eq!(sent.get_str("tool_choice"), Some("required"));
}

#[test]
fn messages_through_gemini_translate_both_ways() {
    let m = Mock::start(|_| {
        Reply::json(
            200,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Rome"}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":4,"totalTokenCount":11}}"#,
        )
    });
    let p = Proxy::builder()
        .upstream("google", &format!("http://{}/v1beta", m.addr))
        .key("google", "AIzaSyTestKey0123456789abcdefghijklmn")
        .start();
    let body = format!(
        r#"{{"model":"gemini-3.8-flash","max_tokens":100000,"messages":[{{"role":"user","content":"Weather in Rome?"}}],"tools":[{WEATHER_TOOL}]}}"#
    );
    let r = anthropic(&p, "/v1/messages", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let block = &v.get_array("content").unwrap()[0];
    assert_eq!(block.get_str("type"), Some("tool_use"));
    assert_eq!(block.get("input").unwrap().get_str("city"), Some("Rome"));
    assert_eq!(v.get_str("stop_reason"), Some("tool_use"));
    let sent = m.last().json();
    assert_eq!(
        sent.get("generationConfig")
            .unwrap()
            .get_u64("maxOutputTokens"),
        Some(65_536),
        "clamped for Gemini too"
    );
    assert!(m.last().path.ends_with(":generateContent"));
}

#[test]
fn messages_errors_are_in_anthropics_shape_auth_exhaustion_and_bad_input() {
    let (_m, p) = groq(|_| {
        Reply::json(429, r#"{"error":{"message":"slow down"}}"#).with_header("retry-after", "7")
    });
    let wrong = request(
        p.addr,
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", "sk-wrong"),
            ("anthropic-version", "2023-06-01"),
        ],
        b"{}",
    );
    assert_eq!(wrong.status, 401);
    let v = wrong.json();
    assert_eq!(v.get_str("type"), Some("error"));
    assert_eq!(
        v.get("error").unwrap().get_str("type"),
        Some("authentication_error")
    );

    let r = anthropic(
        &p,
        "/v1/messages",
        r#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("Retry-After").is_some());
    let v = r.json();
    assert_eq!(
        v.get("error").unwrap().get_str("type"),
        Some("rate_limit_error")
    );

    // Bad input names the field, in the same shape.
    let r = anthropic(
        &p,
        "/v1/messages",
        r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[{"type":"audio"}]}]}"#,
    );
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(
        v.get("error").unwrap().get_str("type"),
        Some("invalid_request_error")
    );
    assert!(
        v.get("error")
            .unwrap()
            .get_str("message")
            .unwrap()
            .starts_with("messages[0].content[0].type")
    );
    let r = anthropic(
        &p,
        "/v1/messages",
        r#"{"model":"nope-9","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()
            .get("error")
            .unwrap()
            .get_str("message")
            .unwrap()
            .contains("nope-9")
    );
}

#[test]
fn messages_mid_stream_failure_is_an_error_event() {
    let (_m, p) = groq(|_| Reply::Sse {
        frames: vec![
            (
                Duration::ZERO,
                mock::chunk(r#"{"role":"assistant","content":"Half"}"#, None),
            ),
            (
                Duration::from_millis(20),
                mock::chunk(r#"{"content":" an answer"}"#, None),
            ),
        ],
        abrupt: true,
    });
    let r = anthropic(
        &p,
        "/v1/messages",
        r#"{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200);
    let ev = events(&r);
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "error", "{:?}", names(&ev));
    assert_eq!(
        data.get("error").unwrap().get_str("type"),
        Some("api_error")
    );
    assert!(
        !names(&ev).contains(&"message_stop"),
        "a broken stream does not claim to be complete"
    );
}

#[test]
fn count_tokens_and_the_anthropic_model_list_need_no_upstream() {
    let (m, p) = groq(|_| Reply::completion("x"));
    let r = anthropic(
        &p,
        "/v1/messages/count_tokens?beta=true",
        r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"12345678"}],"tools":[]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().get_u64("input_tokens"), Some(2));
    let bad = anthropic(&p, "/v1/messages/count_tokens", r#"{"messages":[]}"#);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json().get_str("type"), Some("error"));

    let r = request(
        p.addr,
        "GET",
        "/v1/models",
        &[("x-api-key", &p.token), ("anthropic-version", "2023-06-01")],
        b"",
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    let data = v.get_array("data").unwrap();
    assert!(
        data.iter()
            .all(|d| d.get_str("type") == Some("model") && d.get_str("display_name").is_some())
    );
    assert!(
        !r.text().contains("embedding"),
        "Anthropic clients get chat models only"
    );
    assert_eq!(v.get_bool("has_more"), Some(false));
    assert_eq!(v.get_str("first_id"), Some("auto"));
    assert_eq!(m.count(), 0, "no upstream call");
}

fn responses(p: &Proxy, body: &str) -> support::Response {
    p.post("/v1/responses", body, &[("accept", "text/event-stream")])
}

#[test]
fn responses_plain_and_streamed_with_increasing_sequence_numbers() {
    let (m, p) = groq(|r| {
        if r.json().get_bool("stream") == Some(true) {
            Reply::stream(&["Hel", "lo"], Duration::ZERO)
        } else {
            Reply::completion("Hello")
        }
    });
    let r = responses(
        &p,
        r#"{"model":"auto","input":"Say hello","instructions":"Be kind","store":false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v.get_str("object"), v.get_str("status")),
        (Some("response"), Some("completed"))
    );
    let out = &v.get_array("output").unwrap()[0];
    assert_eq!(
        out.get_array("content").unwrap()[0].get_str("text"),
        Some("Hello")
    );
    assert_eq!(v.get("usage").unwrap().get_u64("total_tokens"), Some(8));
    let sent = m.last().json();
    assert_eq!(
        sent.get_array("messages").unwrap()[0].get_str("content"),
        Some("Be kind")
    );

    let r = responses(
        &p,
        r#"{"model":"auto","input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"sys"}]},{"type":"message","role":"user","id":"m1","content":[{"type":"input_text","text":"hi"}]}],"stream":true,"tools":[{"type":"web_search"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Freellmapi-Dropped-Tools").as_deref(),
        Some("web_search")
    );
    let ev = events(&r);
    assert_eq!(ev.first().unwrap().0, "response.created");
    assert_eq!(ev.last().unwrap().0, "response.completed");
    let seq: Vec<u64> = ev
        .iter()
        .map(|(_, d)| d.get_u64("sequence_number").unwrap())
        .collect();
    assert!(seq.windows(2).all(|w| w[1] == w[0] + 1), "{seq:?}");
    let done = ev.last().unwrap().1.get("response").unwrap();
    let text = done.get_array("output").unwrap()[0]
        .get_array("content")
        .unwrap()[0]
        .get_str("text");
    assert_eq!(text, Some("Hello"));
}

#[test]
fn responses_tool_round_trip_and_stateless_refusal() {
    let (m, p) = groq(|_| tool_call_stream());
    let r = responses(
        &p,
        r#"{"input":"Weather in Paris?","stream":true,"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}],"tool_choice":"auto"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let ev = events(&r);
    let done = ev
        .iter()
        .find(|(n, _)| n == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done.1.get_str("arguments"), Some(r#"{"city":"Paris"}"#));
    let completed = &ev.last().unwrap().1;
    let call = completed
        .get("response")
        .unwrap()
        .get_array("output")
        .unwrap()
        .iter()
        .find(|o| o.get_str("type") == Some("function_call"))
        .unwrap()
        .clone();
    let call_id = call.get_str("call_id").unwrap().to_string();

    m.set(|_| Reply::completion("Sunny."));
    let follow = format!(
        r#"{{"input":[{{"role":"user","content":"Weather in Paris?"}},{{"type":"function_call","id":"fc_1","call_id":"{call_id}","name":"get_weather","arguments":"{{\"city\":\"Paris\"}}","status":"completed"}},{{"type":"function_call_output","call_id":"{call_id}","output":"sunny"}}],"tools":[{{"type":"function","name":"get_weather","parameters":{{"type":"object"}}}}]}}"#
    );
    let r = responses(&p, &follow);
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = m.last().json();
    let msgs = sent.get_array("messages").unwrap();
    assert_eq!(msgs[2].get_str("tool_call_id"), Some(call_id.as_str()));

    let r = responses(&p, r#"{"input":"more","previous_response_id":"resp_123"}"#);
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("stateless"), "{}", r.text());
}

#[test]
fn completions_plain_stream_and_fill_in_the_middle() {
    let m = Mock::start(|r| {
        if r.path.ends_with("/fim/completions") {
            Reply::json(200, &mock::completion_body("return a + b"))
        } else if r.json().get_bool("stream") == Some(true) {
            Reply::stream(&["4"], Duration::ZERO)
        } else {
            Reply::completion("4")
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .upstream("mistral", &m.base())
        .key("groq", GROQ_KEY)
        .key("mistral", "mistral_test_key_123456")
        .start();
    let r = p.post(
        "/v1/completions",
        r#"{"prompt":"2+2=","max_tokens":5}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v.get_str("object"), Some("text_completion"));
    assert_eq!(
        v.get_array("choices").unwrap()[0].get_str("text"),
        Some("4")
    );

    let r = p.post("/v1/completions", r#"{"prompt":"2+2=","stream":true}"#, &[]);
    assert_eq!(r.status, 200);
    let data = r.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(data[0].contains(r#""text":"4""#), "{data:?}");

    let r = p.post(
        "/v1/completions",
        r#"{"prompt":"def add(a, b):\n    ","suffix":"\n\nprint(add(1, 2))","max_tokens":64}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("mistral/codestral-latest")
    );
    let up = m.last();
    assert_eq!(up.path, "/v1/fim/completions");
    let sent = up.json();
    assert_eq!(sent.get_str("suffix"), Some("\n\nprint(add(1, 2))"));
    assert!(
        sent.get("messages").is_none(),
        "FIM speaks prompt and suffix"
    );
    assert_eq!(
        r.json().get_array("choices").unwrap()[0].get_str("text"),
        Some("return a + b")
    );

    let r = p.post("/v1/completions", r#"{"prompt":"a","n":2}"#, &[]);
    assert_eq!(r.status, 400);
    assert!(r.error_message().starts_with("n:"));
}

#[test]
fn fill_in_the_middle_without_a_fim_model_says_why() {
    let (m, p) = groq(|_| Reply::completion("x"));
    let r = p.post("/v1/completions", r#"{"prompt":"a","suffix":"b"}"#, &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.error_message()
            .contains("needs a model the catalog marks fim"),
        "{}",
        r.error_message()
    );
    assert_eq!(m.count(), 0, "chat-only models are not asked for FIM");
}

fn embedding_body(n: usize, dims: usize) -> String {
    let data: Vec<String> = (0..n)
        .map(|i| {
            let v: Vec<String> = (0..dims)
                .map(|d| format!("{}", (i * dims + d) as f64 / 8.0))
                .collect();
            format!(
                r#"{{"object":"embedding","index":{i},"embedding":[{}]}}"#,
                v.join(",")
            )
        })
        .collect();
    format!(
        r#"{{"object":"list","data":[{}],"model":"x","usage":{{"prompt_tokens":6,"total_tokens":6}}}}"#,
        data.join(",")
    )
}

#[test]
fn embeddings_float_base64_and_accounting() {
    let (_m, p) = {
        let m = Mock::start(|r| {
            let n = r.json().get_array("input").map_or(1, |a| a.len());
            Reply::json(200, &embedding_body(n, 2))
        });
        let p = Proxy::builder()
            .upstream("mistral", &m.base())
            .key("mistral", "mistral_test_key_123456")
            .start();
        (m, p)
    };
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"mistral-embed","input":["a","b"],"encoding_format":"float"}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let data = v.get_array("data").unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(
        data[1].get_array("embedding").unwrap()[1].cast_f64(),
        Some(0.375)
    );
    assert_eq!(v.get("usage").unwrap().get_u64("prompt_tokens"), Some(6));
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("mistral/mistral-embed")
    );

    // The official SDKs ask for base64 by default: little-endian float32.
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"mistral-embed","input":"a","encoding_format":"base64"}"#,
        &[],
    );
    assert_eq!(r.status, 200);
    let b64 = r.json().get_array("data").unwrap()[0]
        .get_str("embedding")
        .unwrap()
        .to_string();
    assert_eq!(b64, "AAAAAAAAAD4=", "[0.0, 0.125] as float32");

    for (body, field) in [
        (
            r#"{"model":"mistral-embed","input":[[1,-2]]}"#,
            "input[0][1]:",
        ),
        (
            r#"{"model":"mistral-embed","input":"a","dimensions":64}"#,
            "dimensions:",
        ),
        (r#"{"input":"a"}"#, "model:"),
    ] {
        let r = p.post("/v1/embeddings", body, &[]);
        assert_eq!(r.status, 400, "{body}");
        assert!(
            r.error_message().starts_with(field),
            "{}",
            r.error_message()
        );
    }
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"codestral-latest","input":"a"}"#,
        &[],
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "model_not_found")
    );
    assert!(r.error_message().contains("embedding"));
    let r = p.post(
        "/v1/chat/completions",
        r#"{"model":"mistral-embed","messages":[{"role":"user","content":"a"}]}"#,
        &[],
    );
    assert_eq!(r.status, 400, "an embedding model does not chat");
}

#[test]
fn embeddings_fail_over_within_the_family_only() {
    let nvidia = Mock::start(|_| Reply::json(429, r#"{"error":{"message":"busy"}}"#));
    let cloudflare = Mock::start(|r| {
        let n = r.json().get_array("input").map_or(1, |a| a.len());
        Reply::json(200, &embedding_body(n, 3))
    });
    let p = Proxy::builder()
        .upstream("nvidia", &nvidia.base())
        .upstream(
            "cloudflare",
            &format!(
                "http://{}/client/v4/accounts/{{account_id}}/ai/v1",
                cloudflare.addr
            ),
        )
        .key("nvidia", "nvapi-test-key-123456")
        .key("cloudflare", "abc123:cf_token")
        .start();
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"baai/bge-m3","input":"hello"}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("cloudflare/@cf/baai/bge-m3")
    );
    assert_eq!(r.header("X-Fallback-Attempts").as_deref(), Some("1"));
    assert_eq!(
        r.header("X-Fallback-Trail").as_deref(),
        Some("nvidia/baai/bge-m3=rate_limited")
    );
    assert_eq!(
        cloudflare.last().path,
        "/client/v4/accounts/abc123/ai/v1/embeddings"
    );
    assert_eq!(
        cloudflare.last().json().get_str("model"),
        Some("@cf/baai/bge-m3")
    );

    // Another family never serves: with cloudflare down too, the request is exhausted.
    cloudflare.set(|_| Reply::json(429, r#"{"error":{"message":"busy"}}"#));
    let before = cloudflare.count();
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"@cf/baai/bge-large-en-v1.5","input":"hello"}"#,
        &[],
    );
    assert_eq!(r.status, 429);
    assert_eq!(
        cloudflare.count(),
        before + 1,
        "only bge-large itself was tried"
    );
    assert!(cloudflare.last().json().get_str("model") == Some("@cf/baai/bge-large-en-v1.5"));
}

#[test]
fn embeddings_through_gemini_use_batch_embed_contents() {
    let m = Mock::start(|_| {
        Reply::json(
            200,
            r#"{"embeddings":[{"values":[0.5,0.25]},{"values":[1,2]}]}"#,
        )
    });
    let p = Proxy::builder()
        .upstream("google", &format!("http://{}/v1beta", m.addr))
        .key("google", "AIzaSyTestKey0123456789abcdefghijklmn")
        .start();
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"gemini-embedding-001","input":["first text","second"],"dimensions":768}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let up = m.last();
    assert_eq!(
        up.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    let sent = up.json();
    let reqs = sent.get_array("requests").unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].get_u64("outputDimensionality"), Some(768));
    let v = r.json();
    assert_eq!(
        v.get_array("data").unwrap()[1]
            .get_array("embedding")
            .unwrap()[0]
            .cast_f64(),
        Some(1.0)
    );
    assert_eq!(
        v.get("usage").unwrap().get_u64("prompt_tokens"),
        Some(4),
        "estimated: Gemini reports none"
    );

    // The 2 048-token window holds one input, not the batch: three inputs of ~1 500 tokens
    // pass, one of ~2 500 is refused by index before any upstream call.
    m.set(|_| {
        Reply::json(
            200,
            r#"{"embeddings":[{"values":[1]},{"values":[2]},{"values":[3]}]}"#,
        )
    });
    let long = "word ".repeat(1200);
    let r = p.post(
        "/v1/embeddings",
        &format!(r#"{{"model":"gemini-embedding-001","input":["{long}","{long}","{long}"]}}"#),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        m.last().json().get_array("requests").unwrap()[0]
            .get("outputDimensionality")
            .is_none(),
        "the native length is not asked for"
    );
    let before = m.count();
    let too_long = "word ".repeat(2000);
    let r = p.post(
        "/v1/embeddings",
        &format!(r#"{{"model":"gemini-embedding-001","input":["short","{too_long}"]}}"#),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error_message().starts_with("input[1]: about 2500 tokens"),
        "{}",
        r.error_message()
    );
    assert_eq!(m.count(), before);
}

#[test]
fn every_surface_is_one_record_with_its_surface() {
    let (_m, p) = groq(|_| Reply::completion("ok"));
    p.chat(r#"{"messages":[{"role":"user","content":"a"}]}"#);
    anthropic(
        &p,
        "/v1/messages",
        r#"{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"a"}]}"#,
    );
    p.post("/v1/responses", r#"{"input":"a"}"#, &[]);
    p.post("/v1/completions", r#"{"prompt":"a"}"#, &[]);
    p.post("/v1/embeddings", r#"{"model":"nope","input":"a"}"#, &[]);
    let admin = support::admin::Admin::setup(&p);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = admin.get("/api/analytics/by-surface?range=24h");
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let rows = v.as_array().unwrap();
        let count = |s: &str| {
            rows.iter()
                .find(|r| r.get_str("surface") == Some(s))
                .and_then(|r| r.get_u64("requests"))
                .unwrap_or(0)
        };
        if ["chat", "messages", "responses", "completions", "embeddings"]
            .iter()
            .all(|s| count(s) == 1)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn claude_names_route_by_editable_aliases() {
    let m = Mock::start(|_| {
        Reply::json(
            200,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"ok"}]},"finishReason":"STOP"}]}"#,
        )
    });
    let p = Proxy::builder()
        .upstream("google", &format!("http://{}/v1beta", m.addr))
        .key("google", "AIzaSyTestKey0123456789abcdefghijklmn")
        .start();
    let routed = |model: &str| {
        let r = anthropic(
            &p,
            "/v1/messages",
            &format!(
                r#"{{"model":"{model}","max_tokens":10,"messages":[{{"role":"user","content":"hi"}}]}}"#
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json().get_str("model"),
            Some(model),
            "the requested name is echoed"
        );
        r.header("X-Routed-Via").unwrap()
    };
    // Defaults: opus → most intelligent, haiku → fastest, the rest → the chain.
    assert_eq!(routed("claude-opus-4-1"), "google/gemini-3.8-flash");
    assert_eq!(
        routed("claude-3-5-haiku-latest"),
        "google/gemini-3.5-flash-lite"
    );
    assert_eq!(routed("claude-sonnet-4-5"), "google/gemini-3.8-flash");

    let admin = support::admin::Admin::setup(&p);
    let r = admin.get("/api/aliases");
    assert_eq!(r.status, 200);
    assert_eq!(r.json().get_bool("defaults"), Some(true));
    let r = admin.req(
        "PUT",
        "/api/aliases",
        r#"{"aliases":[{"pattern":"sonnet","route":"gemini-3.8-flash"},{"pattern":"*","route":"speed"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(routed("claude-sonnet-4-5"), "google/gemini-3.8-flash");
    assert_eq!(routed("claude-opus-4-1"), "google/gemini-3.5-flash-lite");

    let r = admin.req(
        "PUT",
        "/api/aliases",
        r#"{"aliases":[{"pattern":"x","route":"no-such-model"}]}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("no-such-model"), "{}", r.text());
    let r = admin.req("PUT", "/api/aliases", r#"{"aliases":[{"pattern":"x"}]}"#);
    assert_eq!(r.status, 400, "{}", r.text());

    let r = admin.req("PUT", "/api/aliases", r#"{"aliases":null}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.json().get_bool("defaults"), Some(true));
    assert_eq!(routed("claude-opus-4-1"), "google/gemini-3.8-flash");
}

#[test]
fn every_surface_fails_over_and_reaches_gemini() {
    // Groq is down; Gemini answers. Each generating surface fails over the same way.
    let groq = Mock::start(|_| Reply::json(503, r#"{"error":{"message":"over capacity"}}"#));
    let google = Mock::start(|r| {
        if r.path.contains(":streamGenerateContent") {
            Reply::Sse {
                frames: vec![(
                    Duration::ZERO,
                    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"from gemini\"}]},\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2,\"totalTokenCount\":5}}\r\n\r\n".to_string(),
                )],
                abrupt: false,
            }
        } else {
            Reply::json(
                200,
                r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"from gemini"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}"#,
            )
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &groq.base())
        .upstream("google", &format!("http://{}/v1beta", google.addr))
        .key("groq", GROQ_KEY)
        .key("google", "AIzaSyTestKey0123456789abcdefghijklmn")
        .start();
    let pinned = format!("groq/{GROQ_FIRST}");
    // The first request finds Groq down and fails over; later ones skip the cooling model.
    let check = |r: &support::Response, what: &str| {
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        assert!(
            r.header("X-Routed-Via").unwrap().starts_with("google/"),
            "{what}"
        );
        assert!(r.text().contains("from gemini"), "{what}: {}", r.text());
    };
    let r = anthropic(
        &p,
        "/v1/messages",
        &format!(
            r#"{{"model":"{pinned}","max_tokens":50,"messages":[{{"role":"user","content":"hi"}}]}}"#
        ),
    );
    check(&r, "messages");
    let failed: u32 = r.header("X-Fallback-Attempts").unwrap().parse().unwrap();
    assert!(
        failed >= 1 && groq.count() as u32 == failed,
        "Groq was tried first"
    );
    let r = anthropic(
        &p,
        "/v1/messages",
        &format!(
            r#"{{"model":"{pinned}","max_tokens":50,"stream":true,"messages":[{{"role":"user","content":"hi"}}]}}"#
        ),
    );
    check(&r, "messages stream");
    assert_eq!(events(&r).last().unwrap().0, "message_stop");
    let r = responses(&p, &format!(r#"{{"model":"{pinned}","input":"hi"}}"#));
    check(&r, "responses");
    let r = responses(
        &p,
        &format!(r#"{{"model":"{pinned}","input":"hi","stream":true}}"#),
    );
    check(&r, "responses stream");
    assert_eq!(events(&r).last().unwrap().0, "response.completed");
    let r = p.post(
        "/v1/completions",
        &format!(r#"{{"model":"{pinned}","prompt":"hi"}}"#),
        &[],
    );
    check(&r, "completions");
    let r = p.post(
        "/v1/completions",
        &format!(r#"{{"model":"{pinned}","prompt":"hi","stream":true}}"#),
        &[],
    );
    check(&r, "completions stream");
    assert_eq!(r.sse_data().last().map(String::as_str), Some("[DONE]"));
}

#[test]
fn refused_and_exhausted_requests_count_no_tokens() {
    let (m, p) = groq(|_| Reply::json(429, r#"{"error":{"message":"slow down"}}"#));
    let long = "word ".repeat(400);
    let rejected = p.chat(&format!(
        r#"{{"model":"no-such-model","messages":[{{"role":"user","content":"{long}"}}]}}"#
    ));
    assert_eq!(rejected.status, 400);
    // Pinned (strict) to one model that answers 429: exhausted after one attempt, and the
    // other Groq models stay free.
    let exhausted = p.post(
        "/v1/chat/completions",
        &format!(
            r#"{{"model":"openai/gpt-oss-20b","messages":[{{"role":"user","content":"{long}"}}]}}"#
        ),
        &[("X-Freellmapi-Pin", "strict")],
    );
    assert_eq!(exhausted.status, 429, "{}", exhausted.text());
    let admin = support::admin::Admin::setup(&p);
    let summary = |want_requests: u64| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v = admin.get("/api/analytics/summary?range=24h").json();
            if v.get_u64("totalRequests") == Some(want_requests) {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "{v:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let v = summary(2);
    assert_eq!(
        (v.get_u64("inputTokens"), v.get_u64("outputTokens")),
        (Some(0), Some(0)),
        "nothing reached a provider that served it"
    );
    let budget = admin.get("/api/fallback").json();
    assert_eq!(
        budget
            .get("budget")
            .and_then(|b| b.get_u64("usedThisMonth")),
        Some(0),
        "nor does the monthly budget count them"
    );
    m.set(|_| Reply::completion("ok"));
    let ok = p.chat(&support::user("hi"));
    assert_eq!(ok.status, 200, "{}", ok.text());
    let v = summary(3);
    assert_eq!(
        (v.get_u64("inputTokens"), v.get_u64("outputTokens")),
        (Some(5), Some(3))
    );
    assert_eq!(
        v.get_u64("estimatedTokenRequests"),
        Some(0),
        "the provider's own numbers"
    );
}

#[test]
fn requests_go_only_to_models_with_the_capabilities_they_need() {
    let image = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}"#;
    // Groq's first model is text-only; the chain's next Groq model, Llama 4 Scout, sees images.
    let (m, p) = groq(|_| Reply::completion("a cat"));
    let r = p.chat(image);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/qwen/qwen3.8-27b")
    );
    assert_eq!(m.count(), 1, "no attempt on the text-only model");
    assert!(r.header("X-Fallback-Attempts").is_none());

    let v = p.get("/v1/models").json();
    let caps = |id: &str| -> Vec<String> {
        v.get_array("data")
            .unwrap()
            .iter()
            .find(|d| d.get_str("id") == Some(id))
            .and_then(|d| d.get_array("capabilities"))
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        caps("gemini-3.8-flash"),
        ["chat", "vision", "tools", "json_schema"]
    );
    assert_eq!(
        caps("codestral-latest"),
        ["chat", "fim", "tools", "json_schema"]
    );
    assert_eq!(caps("mistral-embed"), ["embedding"]);

    // With only a text-only platform, an image is a 400 naming the capability, before any call.
    let cerebras = Mock::start(|_| Reply::completion("x"));
    let p = Proxy::builder()
        .upstream("cerebras", &cerebras.base())
        .first("cerebras", "gpt-oss-120b")
        .key("cerebras", "csk-text-only")
        .start();
    let r = p.chat(image);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "no_capable_model"),
        "{}",
        r.text()
    );
    assert!(
        r.error_message().contains("vision"),
        "{}",
        r.error_message()
    );
    assert_eq!(cerebras.count(), 0);
}

#[test]
fn a_key_that_routes_nothing_is_called_out_everywhere() {
    // MiniMax is paid now: its models are off, so its key is stored but serves nothing (and
    // switching one off again changes nothing).
    let p = Proxy::builder()
        .key("minimax", "minimax_test_key_123")
        .start();
    let admin = support::admin::Admin::setup(&p);
    let r = admin.req(
        "PATCH",
        "/api/models",
        r#"{"id":"minimax/MiniMax-M3","enabled":false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let out = p.cli(
        &["keys", "add", "minimax", "--label", "second"],
        "another_minimax_key\n",
    );
    assert!(out.status.success());
    let warning = String::from_utf8_lossy(&out.stderr);
    assert!(
        warning.contains("warning: all 2 MiniMax models are disabled, so this key routes nothing"),
        "{warning}"
    );
    assert!(warning.contains("no free tier"), "{warning}");
    let keys = admin.get("/api/keys").json();
    let first = &keys.as_array().unwrap()[0];
    assert!(
        first.get_str("warning").unwrap().contains("routes nothing"),
        "{first:?}"
    );
    p.wait_for(
        "the server to see the change",
        Duration::from_secs(10),
        |p| p.get("/readyz").status == 503,
    );
    let why = p.get("/readyz").error_message();
    assert!(
        why.contains("none can serve")
            && why.contains("minimax")
            && why.contains("no enabled model"),
        "{why}"
    );
    let p = p.restart();
    p.wait_for("the start-up line", Duration::from_secs(10), |p| {
        p.log_text().contains("usable provider keys)")
    });
    let log = p.log_text();
    assert!(log.contains("0 usable provider keys"), "{log}");
    assert!(
        log.contains("2 stored provider keys route nothing"),
        "{log}"
    );
}
