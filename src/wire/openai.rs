//! The OpenAI-compatible wire format (Groq, Cerebras, SambaNova, NVIDIA, Mistral, OpenRouter,
//! GitHub Models, Hugging Face, Zhipu, Moonshot, MiniMax, Cohere's compatibility API, and
//! Cloudflare with two data-driven tweaks).
//!
//! Requests go out as the client sent them with `model` replaced; responses come back
//! normalised: content arrays flattened, `reasoning_content` used as content only when
//! content is empty and there are no tool calls, `finish_reason` and `usage` always present.

use simd_json::prelude::*;
use simd_json::{BorrowedValue, OwnedValue};

use super::{Completion, Usage, WireError};
use crate::chat::ChatRequest;
use crate::json;

/// Options that differ between OpenAI-compatible platforms.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dialect {
    /// Cloudflare rejects `content: null` next to `tool_calls`; it gets `""`.
    pub null_content_as_empty: bool,
    /// `max_tokens` above this is lowered to it (the routed model's output room).
    pub max_tokens_cap: Option<u64>,
    /// Ask a stream for its token counts (`stream_options.include_usage`) even when the client
    /// did not; the relay then keeps that usage chunk from the client.
    pub ask_stream_usage: bool,
    /// The model takes `reasoning_effort`; to one that does not, it is not sent (a provider
    /// that rejects unknown fields would answer 400 to every Codex or Claude Code request).
    pub reasoning_effort: bool,
}

/// The upstream body: the client's object with `model` replaced and Gemini-only fields removed.
pub fn request_body(chat: &ChatRequest, model_id: &str, dialect: Dialect) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"model\":");
    json::write_str(&mut out, model_id);
    let rewrite_messages =
        chat.has_thought_signatures || (dialect.null_content_as_empty && chat.has_null_content);
    let add_usage = dialect.ask_stream_usage && chat.stream && !chat.wants_usage();
    if let Some(obj) = chat.body.as_object() {
        for (k, v) in obj.iter() {
            if k == "model"
                || (add_usage && k == "stream_options")
                || (!dialect.reasoning_effort && k == "reasoning_effort")
            {
                continue;
            }
            out.push(b',');
            json::write_str(&mut out, k);
            out.push(b':');
            if k == "messages" && rewrite_messages {
                write_messages(&mut out, v, dialect);
            } else if let (Some(cap), "max_tokens" | "max_completion_tokens") =
                (dialect.max_tokens_cap, k.as_str())
                && v.as_u64().is_some_and(|n| n > cap)
            {
                out.extend_from_slice(cap.to_string().as_bytes());
            } else {
                json::write_value(&mut out, v);
            }
        }
    }
    if add_usage {
        // The client's other stream options are kept; `include_usage` is set.
        let mut options = chat
            .body
            .get("stream_options")
            .filter(|o| o.is_object())
            .cloned()
            .unwrap_or_else(OwnedValue::object);
        if let Some(o) = options.as_object_mut() {
            o.insert("include_usage".into(), OwnedValue::from(true));
        }
        out.extend_from_slice(b",\"stream_options\":");
        json::write_value(&mut out, &options);
    }
    out.push(b'}');
    out
}

fn write_messages(out: &mut Vec<u8>, messages: &OwnedValue, dialect: Dialect) {
    let Some(list) = messages.as_array() else {
        json::write_value(out, messages);
        return;
    };
    out.push(b'[');
    for (i, m) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let Some(fields) = m.as_object() else {
            json::write_value(out, m);
            continue;
        };
        out.push(b'{');
        for (j, (k, v)) in fields.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            json::write_str(out, k);
            out.push(b':');
            match k.as_str() {
                "content" if v.is_null() && dialect.null_content_as_empty => {
                    out.extend_from_slice(b"\"\"")
                }
                "tool_calls" => write_tool_calls(out, v),
                _ => json::write_value(out, v),
            }
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// Tool calls without `thought_signature`: strict providers reject unknown fields there.
fn write_tool_calls(out: &mut Vec<u8>, calls: &OwnedValue) {
    let Some(list) = calls.as_array() else {
        json::write_value(out, calls);
        return;
    };
    out.push(b'[');
    for (i, call) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match call.as_object() {
            Some(fields) => {
                out.push(b'{');
                let mut first = true;
                for (k, v) in fields
                    .iter()
                    .filter(|(k, _)| k.as_str() != "thought_signature")
                {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    json::write_str(out, k);
                    out.push(b':');
                    json::write_value(out, v);
                }
                out.push(b'}');
            }
            None => json::write_value(out, call),
        }
    }
    out.push(b']');
}

/// The fill-in-the-middle body (Mistral's `/v1/fim/completions`): the prompt, the suffix and
/// the sampling options of the client's request.
pub fn fim_body(chat: &ChatRequest, model_id: &str, max_tokens_cap: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"model\":");
    json::write_str(&mut out, model_id);
    for field in [
        "prompt",
        "suffix",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "seed",
    ] {
        let Some(v) = chat.body.get(field).filter(|v| !v.is_null()) else {
            continue;
        };
        out.push(b',');
        json::write_str(&mut out, field);
        out.push(b':');
        match (field, v.as_u64(), max_tokens_cap) {
            ("max_tokens", Some(n), Some(cap)) if n > cap => {
                out.extend_from_slice(cap.to_string().as_bytes())
            }
            _ => json::write_value(&mut out, v),
        }
    }
    out.push(b'}');
    out
}

/// Normalises a non-streaming response body. `input_tokens` fills estimated usage.
///
/// A usual answer is read in this thread's scratch space, not copied into an owned tree, and
/// most providers already answer in the normal shape: their bytes then go to the client as
/// they came, and only an answer that needed a change is encoded again. A large answer is
/// read in place instead (no second copy of it) and always encoded again.
pub fn normalise(mut body: Vec<u8>, input_tokens: u64) -> Result<Completion, WireError> {
    let size = body.len();
    if size > json::SCRATCH_KEEP {
        let mut v = json::parse_in_place(&mut body).map_err(|_| WireError::Malformed)?;
        let shape = normalise_value(&mut v, input_tokens)?;
        return Ok(shape.completion(encode(&v, size)));
    }
    json::with_scratch(|scratch| {
        let mut v = scratch.parse(&body).map_err(|_| WireError::Malformed)?;
        let shape = normalise_value(&mut v, input_tokens)?;
        let body = if shape.changed {
            encode(&v, size)
        } else {
            body
        };
        Ok(shape.completion(body))
    })
}

fn encode(v: &BorrowedValue<'_>, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 96);
    json::write_value(&mut out, v);
    out
}

/// What normalising a whole answer found, and whether it changed it.
struct Shape {
    usage: Usage,
    estimated: bool,
    empty: bool,
    changed: bool,
}

impl Shape {
    fn completion(self, body: Vec<u8>) -> Completion {
        Completion {
            body,
            usage: self.usage,
            usage_estimated: self.estimated,
            empty: self.empty,
        }
    }
}

fn normalise_value(v: &mut BorrowedValue<'_>, input_tokens: u64) -> Result<Shape, WireError> {
    let obj = v.as_object_mut().ok_or(WireError::Malformed)?;
    if obj.get("choices").is_none() {
        return Err(if obj.get("error").is_some() {
            WireError::UpstreamError
        } else {
            WireError::Malformed
        });
    }
    let mut output_chars = 0usize;
    let mut empty = true;
    let mut changed = false;
    if let Some(choices) = obj.get_mut("choices").and_then(|c| c.as_array_mut()) {
        for (i, choice) in choices.iter_mut().enumerate() {
            let facts = normalise_choice(choice);
            output_chars += facts.chars;
            changed |= facts.changed;
            if i == 0 {
                empty = !facts.has_output;
            }
        }
    }
    let (usage, estimated) = match read_usage(obj.get("usage")) {
        Some(u) => (u, false),
        None => {
            let completion = (output_chars as u64).div_ceil(4);
            let u = Usage {
                prompt: input_tokens,
                completion,
                total: input_tokens + completion,
            };
            let mut uv = BorrowedValue::object();
            if let Some(o) = uv.as_object_mut() {
                o.insert("prompt_tokens".into(), BorrowedValue::from(u.prompt));
                o.insert(
                    "completion_tokens".into(),
                    BorrowedValue::from(u.completion),
                );
                o.insert("total_tokens".into(), BorrowedValue::from(u.total));
            }
            obj.insert("usage".into(), uv);
            changed = true;
            (u, true)
        }
    };
    Ok(Shape {
        usage,
        estimated,
        empty,
        changed,
    })
}

/// What normalising one choice found and did.
struct ChoiceFacts {
    /// Output characters: the content's and the tool calls' arguments.
    chars: usize,
    /// The choice carries content or tool calls.
    has_output: bool,
    /// The choice was rewritten.
    changed: bool,
}

fn normalise_choice(choice: &mut BorrowedValue<'_>) -> ChoiceFacts {
    let mut facts = ChoiceFacts {
        chars: 0,
        has_output: false,
        changed: false,
    };
    let Some(c) = choice.as_object_mut() else {
        return facts;
    };
    let mut has_tools = false;
    if let Some(msg) = c.get_mut("message").and_then(|m| m.as_object_mut()) {
        if let Some(parts) = msg.get("content").and_then(|v| v.as_array()) {
            let flat: String = parts
                .iter()
                .filter_map(|p| p.as_str().or_else(|| p.get_str("text")))
                .collect();
            msg.insert("content".into(), BorrowedValue::from(flat));
            facts.changed = true;
        }
        let calls = msg
            .get("tool_calls")
            .and_then(|t| t.as_array())
            .map(|a| a.as_slice())
            .unwrap_or(&[]);
        has_tools = !calls.is_empty();
        for call in calls {
            facts.chars += call
                .get("function")
                .and_then(|f| f.get_str("arguments"))
                .map_or(0, |a| a.chars().count());
        }
        let content_empty = msg
            .get("content")
            .and_then(|v| v.as_str())
            .is_none_or(str::is_empty);
        if content_empty && !has_tools {
            let reasoning = msg
                .get("reasoning_content")
                .and_then(|v| v.as_str())
                .filter(|r| !r.is_empty())
                .map(str::to_string);
            if let Some(r) = reasoning {
                msg.insert("content".into(), BorrowedValue::from(r));
                facts.changed = true;
            }
        }
        facts.chars += msg
            .get("content")
            .and_then(|v| v.as_str())
            .map_or(0, |s| s.chars().count());
    }
    facts.has_output = has_tools || facts.chars > 0;
    if c.get("finish_reason").is_none_or(|f| f.is_null()) {
        c.insert(
            "finish_reason".into(),
            BorrowedValue::from(if has_tools { "tool_calls" } else { "stop" }),
        );
        facts.changed = true;
    }
    facts
}

fn read_usage(v: Option<&BorrowedValue<'_>>) -> Option<Usage> {
    let u = v?;
    let prompt = u.get_u64("prompt_tokens")?;
    let completion = u.get_u64("completion_tokens").unwrap_or(0);
    let total = u.get_u64("total_tokens").unwrap_or(prompt + completion);
    Some(Usage {
        prompt,
        completion,
        total,
    })
}

/// What one streamed chunk carries, for accounting and the empty-stream check.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChunkFacts {
    pub output_chars: usize,
    pub tool_calls: bool,
    pub finished: bool,
    pub usage: Option<Usage>,
    /// An `{"error": ...}` frame instead of a chunk.
    pub error: bool,
    /// Usage and no choices: the chunk `stream_options.include_usage` adds at the end.
    pub usage_only: bool,
}

impl ChunkFacts {
    pub fn has_output(&self) -> bool {
        self.output_chars > 0 || self.tool_calls
    }
}

/// Inspects a chunk's JSON. `scratch` is reused between calls.
pub fn inspect_chunk(
    data: &[u8],
    scratch: &mut json::ChunkScratch,
) -> Result<ChunkFacts, WireError> {
    let v = scratch.parse(data).map_err(|_| WireError::Malformed)?;
    let obj = v.as_object().ok_or(WireError::Malformed)?;
    let mut facts = ChunkFacts::default();
    if obj.get("choices").is_none() && obj.get("error").is_some() {
        facts.error = true;
        return Ok(facts);
    }
    for choice in obj
        .get("choices")
        .and_then(|c| c.as_array())
        .map(|a| a.as_slice())
        .unwrap_or(&[])
    {
        if let Some(delta) = choice.get("delta") {
            for field in ["content", "reasoning_content", "reasoning"] {
                facts.output_chars += delta.get_str(field).map_or(0, |s| s.chars().count());
            }
            if let Some(calls) = delta.get("tool_calls").and_then(|t| t.as_array()) {
                facts.tool_calls |= !calls.is_empty();
                for call in calls {
                    facts.output_chars += call
                        .get("function")
                        .and_then(|f| f.get_str("arguments"))
                        .map_or(0, |a| a.chars().count());
                }
            }
        }
        facts.finished |= choice.get("finish_reason").is_some_and(|f| !f.is_null());
    }
    let no_choices = obj
        .get("choices")
        .and_then(|c| c.as_array())
        .is_none_or(|c| c.is_empty());
    if let Some(usage) = read_usage(obj.get("usage")) {
        facts.usage_only = no_choices;
        facts.usage = Some(usage);
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn chat(s: &str) -> ChatRequest {
        ChatRequest::parse(&mut s.as_bytes().to_vec(), DefaultHasher::new()).unwrap()
    }

    fn value(bytes: &[u8]) -> OwnedValue {
        json::parse_value(&mut bytes.to_vec()).unwrap()
    }

    #[test]
    fn request_keeps_unknown_fields_and_replaces_model() {
        let c = chat(
            r#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low","x_vendor":{"a":[1]}}"#,
        );
        let reasoning = Dialect {
            reasoning_effort: true,
            ..Dialect::default()
        };
        let body = value(&request_body(&c, "gpt-oss-120b", reasoning));
        assert_eq!(body.get_str("model"), Some("gpt-oss-120b"));
        assert_eq!(body.get_str("reasoning_effort"), Some("low"));
        assert_eq!(body.get("x_vendor"), c.body.get("x_vendor"));
        assert_eq!(body.get("messages"), c.body.get("messages"));
        // A model that does not take it is not sent it (strict providers would answer 400).
        let plain = value(&request_body(&c, "mistral-small", Dialect::default()));
        assert_eq!(plain.get("reasoning_effort"), None);
        assert_eq!(plain.get("x_vendor"), c.body.get("x_vendor"));
    }

    #[test]
    fn streams_ask_for_usage_where_the_platform_gives_it() {
        let asking = Dialect {
            ask_stream_usage: true,
            ..Dialect::default()
        };
        let c = chat(
            r#"{"stream":true,"stream_options":{"x":1},"messages":[{"role":"user","content":"hi"}]}"#,
        );
        let body = value(&request_body(&c, "m", asking));
        let options = body.get("stream_options").unwrap();
        assert_eq!(options.get_bool("include_usage"), Some(true));
        assert_eq!(
            options.get_u64("x"),
            Some(1),
            "the client's options are kept"
        );
        let plain = value(&request_body(&c, "m", Dialect::default()));
        assert!(
            plain
                .get("stream_options")
                .unwrap()
                .get("include_usage")
                .is_none()
        );
        let not_streamed = chat(r#"{"messages":[{"role":"user","content":"hi"}]}"#);
        let body = value(&request_body(&not_streamed, "m", asking));
        assert!(body.get("stream_options").is_none());
    }

    #[test]
    fn thought_signatures_are_stripped_and_cloudflare_gets_empty_content() {
        let c = chat(
            r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"},"thought_signature":"SIG"}]},{"role":"tool","tool_call_id":"1","content":"r"}]}"#,
        );
        let plain = String::from_utf8(request_body(&c, "m", Dialect::default())).unwrap();
        assert!(
            !plain.contains("thought_signature") && !plain.contains("SIG"),
            "{plain}"
        );
        assert!(plain.contains(r#""content":null"#));
        let cf = String::from_utf8(request_body(
            &c,
            "m",
            Dialect {
                null_content_as_empty: true,
                ..Dialect::default()
            },
        ))
        .unwrap();
        assert!(cf.contains(r#""content":"""#), "{cf}");
        assert!(value(cf.as_bytes()).is_object());
    }

    #[test]
    fn normalise_flattens_and_fills() {
        let up = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"Hel"},"lo"]}}]}"#;
        let c = normalise(up.to_vec(), 7).unwrap();
        let v = value(&c.body);
        let choice = &v.get_array("choices").unwrap()[0];
        assert_eq!(
            choice.get("message").unwrap().get_str("content"),
            Some("Hello")
        );
        assert_eq!(choice.get_str("finish_reason"), Some("stop"));
        assert!(c.usage_estimated);
        assert_eq!(
            c.usage,
            Usage {
                prompt: 7,
                completion: 2,
                total: 9
            }
        );
        assert_eq!(v.get("usage").unwrap().get_u64("total_tokens"), Some(9));
        assert!(!c.empty);
    }

    #[test]
    fn reasoning_is_used_only_when_content_is_empty_and_no_tools() {
        let up = br#"{"choices":[{"message":{"role":"assistant","content":"","reasoning_content":"thought"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}"#;
        let c = normalise(up.to_vec(), 0).unwrap();
        let v = value(&c.body);
        let msg = v.get_array("choices").unwrap()[0]
            .get("message")
            .unwrap()
            .clone();
        assert_eq!(msg.get_str("content"), Some("thought"));
        assert_eq!(
            msg.get_str("reasoning_content"),
            Some("thought"),
            "kept as its own field too"
        );
        assert!(!c.usage_estimated);
        let tools = br#"{"choices":[{"message":{"role":"assistant","content":null,"reasoning_content":"r","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#;
        let c = normalise(tools.to_vec(), 0).unwrap();
        let v = value(&c.body);
        let choice = &v.get_array("choices").unwrap()[0];
        assert!(
            choice
                .get("message")
                .unwrap()
                .get("content")
                .unwrap()
                .is_null()
        );
        assert_eq!(choice.get_str("finish_reason"), Some("tool_calls"));
        assert!(!c.empty);
    }

    #[test]
    fn an_answer_already_in_shape_goes_out_byte_for_byte() {
        // Pretty-printed, an escaped string, a vendor field and key order that re-encoding
        // would not keep: nothing needed changing, so nothing may change.
        let up = b"{\n  \"id\": \"x\",\n  \"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"caf\\u00e9 \\\"ok\\\"\"}, \"finish_reason\": \"stop\"}],\n  \"x_vendor\": {\"a\": [1, 2.50]},\n  \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 2, \"total_tokens\": 5}\n}";
        let c = normalise(up.to_vec(), 99).unwrap();
        assert_eq!(c.body, up.to_vec());
        assert!(!c.usage_estimated && !c.empty);
        assert_eq!(
            c.usage,
            Usage {
                prompt: 3,
                completion: 2,
                total: 5
            }
        );
        // One missing finish_reason is enough to re-encode, and the rest survives it.
        let up = br#"{"id":"x","choices":[{"message":{"content":"caf\u00e9"}}],"usage":{"prompt_tokens":3}}"#;
        let v = value(&normalise(up.to_vec(), 0).unwrap().body);
        let choice = &v.get_array("choices").unwrap()[0];
        assert_eq!(choice.get_str("finish_reason"), Some("stop"));
        assert_eq!(
            choice.get("message").unwrap().get_str("content"),
            Some("café")
        );
        assert_eq!(v.get_str("id"), Some("x"));
    }

    #[test]
    fn a_large_answer_is_read_in_place_and_encoded_again() {
        let text = format!("{}\\n\\u00e9", "long ".repeat(json::SCRATCH_KEEP / 4));
        let up = format!(
            r#"{{"id":"big","choices":[{{"message":{{"role":"assistant","content":"{text}"}},"finish_reason":"length"}}],"usage":{{"prompt_tokens":4,"completion_tokens":9000}}}}"#
        );
        assert!(up.len() > json::SCRATCH_KEEP);
        let c = normalise(up.clone().into_bytes(), 0).unwrap();
        let v = value(&c.body);
        let content = v.get_array("choices").unwrap()[0]
            .get("message")
            .unwrap()
            .get_str("content")
            .unwrap()
            .to_string();
        assert!(content.starts_with("long long ") && content.ends_with("\né"));
        assert_eq!(content.len(), json::SCRATCH_KEEP / 4 * 5 + 3);
        assert_eq!(c.usage.total, 9004);
        assert!(!c.empty && !c.usage_estimated);
        // Malformed stays malformed on this path too.
        let mut broken = up.into_bytes();
        broken.truncate(broken.len() - 1);
        assert_eq!(normalise(broken, 0).err(), Some(WireError::Malformed));
    }

    #[test]
    fn empty_and_error_bodies_are_recognised() {
        let empty = br#"{"choices":[{"message":{"role":"assistant","content":""},"finish_reason":"stop"}]}"#;
        assert!(normalise(empty.to_vec(), 0).unwrap().empty);
        assert!(normalise(br#"{"choices":[]}"#.to_vec(), 0).unwrap().empty);
        assert_eq!(
            normalise(br#"{"error":{"message":"x"}}"#.to_vec(), 0).err(),
            Some(WireError::UpstreamError)
        );
        assert_eq!(
            normalise(b"<html>".to_vec(), 0).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn chunk_inspection() {
        let mut s = json::ChunkScratch::default();
        let f = inspect_chunk(
            br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            &mut s,
        )
        .unwrap();
        assert!(!f.has_output());
        let f = inspect_chunk(
            br#"{"choices":[{"delta":{"content":"Hel"},"finish_reason":null}]}"#,
            &mut s,
        )
        .unwrap();
        assert_eq!(f.output_chars, 3);
        let f = inspect_chunk(br#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#, &mut s).unwrap();
        assert!(f.tool_calls && f.finished);
        let f = inspect_chunk(
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}"#,
            &mut s,
        )
        .unwrap();
        assert_eq!(f.usage.unwrap().total, 7);
        assert!(f.usage_only);
        assert!(
            inspect_chunk(br#"{"error":{"message":"overloaded"}}"#, &mut s)
                .unwrap()
                .error
        );
        assert!(inspect_chunk(b"{not json", &mut s).is_err());
    }
}
