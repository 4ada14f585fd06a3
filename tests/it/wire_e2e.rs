//! The translating wire formats end to end over sockets: Gemini (non-stream, stream, a two-turn
//! tool flow with thought signatures, its error shapes), Cloudflare (account id in the URL,
//! `account_id:api_token` keys) and Cohere's compatibility API.

use crate::support;

use std::time::Duration;

use simd_json::prelude::*;
use support::Proxy;
use support::mock::{Mock, Reply};

const GEMINI_KEY: &str = "AIzaSyTestKey0123456789abcdefghijklmn";
const GEMINI: &str = "gemini-3.8-flash";

fn gemini_text(text: &str) -> String {
    format!(
        r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":{}}}]}},"finishReason":"STOP","index":0}}],"usageMetadata":{{"promptTokenCount":4,"candidatesTokenCount":2,"totalTokenCount":6}}}}"#,
        support::mock::quote(text)
    )
}

fn gemini_proxy(m: &Mock) -> Proxy {
    Proxy::builder()
        .upstream("google", &format!("http://{}/v1beta", m.addr))
        .key("google", GEMINI_KEY)
        .start()
}

fn pinned(body_tail: &str) -> String {
    format!(r#"{{"model":"{GEMINI}",{body_tail}}}"#)
}

#[test]
fn gemini_non_streaming_with_the_key_in_a_header() {
    let m = Mock::start(|_| Reply::json(200, &gemini_text("Bonjour")));
    let p = gemini_proxy(&m);
    let r = p.chat(&pinned(r#""messages":[{"role":"system","content":"French"},{"role":"user","content":"Hello"}],"max_tokens":20"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("google/gemini-3.8-flash")
    );
    let v = r.json();
    assert_eq!(
        v.get_array("choices").unwrap()[0]
            .get("message")
            .unwrap()
            .get_str("content"),
        Some("Bonjour")
    );
    assert_eq!(v.get("usage").unwrap().get_u64("total_tokens"), Some(6));
    let up = m.last();
    assert_eq!(up.path, "/v1beta/models/gemini-3.8-flash:generateContent");
    assert_eq!(up.header("x-goog-api-key"), Some(GEMINI_KEY));
    assert!(up.header("authorization").is_none());
    assert!(!up.path.contains("key="), "the key never goes in the URL");
    let sent = up.json();
    assert_eq!(
        sent.get("systemInstruction")
            .unwrap()
            .get_array("parts")
            .unwrap()[0]
            .get_str("text"),
        Some("French")
    );
    assert_eq!(
        sent.get("generationConfig")
            .unwrap()
            .get_u64("maxOutputTokens"),
        Some(20)
    );
}

#[test]
fn gemini_streaming_becomes_openai_chunks() {
    let m = Mock::start(|_| {
        Reply::Sse {
        frames: vec![
            (Duration::ZERO, r#"data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]}}]}"#.to_string() + "\n\n"),
            (Duration::from_millis(50), r#"data: {"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"totalTokenCount":5}}"#.to_string() + "\r\n\r\n"),
        ],
        abrupt: false,
    }
    });
    let p = gemini_proxy(&m);
    let r = p.chat(&pinned(
        r#""stream":true,"messages":[{"role":"user","content":"Hi"}]"#,
    ));
    assert_eq!(r.status, 200);
    assert_eq!(
        m.last().path,
        "/v1beta/models/gemini-3.8-flash:streamGenerateContent?alt=sse"
    );
    let data = r.sse_data();
    assert_eq!(data.len(), 4, "{data:?}");
    let first = simd_json::to_owned_value(&mut data[0].clone().into_bytes()).unwrap();
    let delta = first.get_array("choices").unwrap()[0]
        .get("delta")
        .unwrap()
        .clone();
    assert_eq!(delta.get_str("role"), Some("assistant"));
    assert_eq!(delta.get_str("content"), Some("Hel"));
    assert!(
        data[2].contains(r#""finish_reason":"stop""#) && data[2].contains(r#""total_tokens":5"#),
        "{}",
        data[2]
    );
    assert_eq!(data[3], "[DONE]");
}

#[test]
fn gemini_two_turn_tool_flow_keeps_the_thought_signature() {
    let m = Mock::start(|r| {
        let body = r.json();
        let contents = body.get_array("contents").unwrap();
        if contents.len() == 1 {
            Reply::json(
                200,
                r#"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"SIG_123"}]},"finishReason":"STOP"}]}"#,
            )
        } else {
            Reply::json(200, &gemini_text("It is 20C."))
        }
    });
    let p = gemini_proxy(&m);
    let tools = r#""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"additionalProperties":false}}}]"#;
    let r = p.chat(&pinned(&format!(
        r#""messages":[{{"role":"user","content":"Weather?"}}],{tools}"#
    )));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let choice = &v.get_array("choices").unwrap()[0];
    assert_eq!(choice.get_str("finish_reason"), Some("tool_calls"));
    let call = choice
        .get("message")
        .unwrap()
        .get_array("tool_calls")
        .unwrap()[0]
        .clone();
    assert_eq!(call.get_str("thought_signature"), Some("SIG_123"));
    let id = call.get_str("id").unwrap().to_string();
    let sent = m.last().json();
    assert!(
        sent.get("tools")
            .unwrap()
            .to_string()
            .contains("get_weather")
    );
    assert!(
        !String::from_utf8(m.last().body)
            .unwrap()
            .contains("additionalProperties"),
        "schema cleaned"
    );

    let turn2 = pinned(&format!(
        r#""messages":[{{"role":"user","content":"Weather?"}},{{"role":"assistant","content":null,"tool_calls":[{{"id":"{id}","type":"function","function":{{"name":"get_weather","arguments":"{{\"city\":\"Paris\"}}"}},"thought_signature":"SIG_123"}}]}},{{"role":"tool","tool_call_id":"{id}","content":"{{\"temp\":20}}"}}],{tools}"#
    ));
    let r = p.chat(&turn2);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("It is 20C."));
    let sent = m.last().json();
    let contents = sent.get_array("contents").unwrap();
    assert_eq!(contents.len(), 3);
    let model_part = &contents[1].get_array("parts").unwrap()[0];
    assert_eq!(
        model_part.get_str("thoughtSignature"),
        Some("SIG_123"),
        "the signature goes back on the functionCall part"
    );
    let response = &contents[2].get_array("parts").unwrap()[0]
        .get("functionResponse")
        .unwrap()
        .clone();
    assert_eq!(response.get_str("name"), Some("get_weather"));
    assert_eq!(response.get("response").unwrap().get_u64("temp"), Some(20));
}

#[test]
fn gemini_error_shapes_are_classified() {
    // A bad key is 400 API_KEY_INVALID on Gemini: the next key is used, not a 400 to the client.
    let m = Mock::start(|r| match r.header("x-goog-api-key") {
        Some(k) if k.ends_with("BAD") => Reply::json(
            400,
            r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
        ),
        _ => Reply::json(200, &gemini_text("good key")),
    });
    let p = Proxy::builder()
        .upstream("google", &format!("http://{}/v1beta", m.addr))
        .key("google", "AIzaSyKeyThatIsBAD")
        .key("google", "AIzaSyKeyThatIsGOOD")
        .start();
    for _ in 0..2 {
        let r = p.chat(&pinned(r#""messages":[{"role":"user","content":"x"}]"#));
        assert_eq!(r.status, 200, "{}", r.text());
    }

    // A spent daily quota cools the model until UTC midnight.
    let m = Mock::start(|_| {
        Reply::json(
            429,
            r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#,
        )
    });
    let p = gemini_proxy(&m);
    let strict = [("X-Freellmapi-Pin", "strict")];
    let r = p.post(
        "/v1/chat/completions",
        &pinned(r#""messages":[{"role":"user","content":"x"}]"#),
        &strict,
    );
    assert_eq!(r.status, 429);
    let retry: u64 = r.header("Retry-After").unwrap().parse().unwrap();
    let now = freellmapi::time::now_ms();
    let to_midnight = (freellmapi::time::next_utc_midnight(now) - now) / 1000;
    assert!(
        retry.abs_diff(to_midnight) <= 2,
        "retry {retry} vs midnight in {to_midnight}"
    );

    // A remote image URL is refused with a clear reason, without an upstream call.
    let m = Mock::start(|_| Reply::json(200, &gemini_text("never")));
    let p = gemini_proxy(&m);
    let r = p.post(
        "/v1/chat/completions",
        &pinned(r#""messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]"#),
        &strict,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error_message().contains("data: URLs"), "{}", r.text());
    assert_eq!(m.count(), 0);
}

#[test]
fn cloudflare_puts_the_account_in_the_url_and_the_token_in_the_header() {
    let m = Mock::start(|_| Reply::completion("from cloudflare"));
    let p = Proxy::builder()
        .upstream(
            "cloudflare",
            &format!("http://{}/client/v4/accounts/{{account_id}}/ai/v1", m.addr),
        )
        .key(
            "cloudflare",
            "0123456789abcdef0123456789abcdef:cf_token_secret",
        )
        .start();
    let r = p.chat(r#"{"model":"@cf/openai/gpt-oss-120b","messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"1","content":"r"}]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("cloudflare/@cf/openai/gpt-oss-120b")
    );
    let up = m.last();
    assert_eq!(
        up.path,
        "/client/v4/accounts/0123456789abcdef0123456789abcdef/ai/v1/chat/completions"
    );
    assert_eq!(up.header("authorization"), Some("Bearer cf_token_secret"));
    let sent = up.json();
    assert_eq!(
        sent.get_array("messages").unwrap()[1].get_str("content"),
        Some(""),
        "null content is sent as \"\""
    );
}

#[test]
fn cohere_forwards_parallel_tool_calls() {
    let m = Mock::start(|_| Reply::completion("from cohere"));
    let p = Proxy::builder()
        .upstream("cohere", &format!("http://{}/compatibility/v1", m.addr))
        .key("cohere", "co-key-123456")
        .start();
    let r = p.chat(r#"{"model":"command-a-03-2025","parallel_tool_calls":false,"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"}}}}}]}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let up = m.last();
    assert_eq!(up.path, "/compatibility/v1/chat/completions");
    assert_eq!(up.json().get_bool("parallel_tool_calls"), Some(false));
}
