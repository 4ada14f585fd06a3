//! Google's Gemini API (`generateContent` / `streamGenerateContent?alt=sse`), translated both
//! ways.
//!
//! Requests: system and developer messages → `systemInstruction`; assistant → `model`; text
//! and data-URL images → parts; tool calls ↔ `functionCall` (the part's `thoughtSignature`
//! travels with it); consecutive tool results → one turn of `functionResponse` parts; tools →
//! `functionDeclarations` with the schema cleaned (`schema.rs`); `tool_choice`,
//! `response_format` and sampling options mapped. The key goes in `x-goog-api-key` (catalog
//! data), never in the URL.
//!
//! Responses: parts → content, `thought` parts → `reasoning_content`, `functionCall` →
//! `tool_calls` (with `thought_signature`), `finishReason` and `promptFeedback.blockReason`
//! mapped, `usageMetadata` → `usage`. Streams become OpenAI chunks: the first carries the role,
//! tool calls carry `index`, the last carries `finish_reason` and usage.

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use super::schema;
use super::{Completion, Usage, WireError};
use crate::chat::ChatRequest;
use crate::json;

/// `{base}/models/{model}:generateContent`, or the SSE variant.
pub fn url(base: &str, model_id: &str, stream: bool) -> String {
    let mut model = String::with_capacity(model_id.len());
    for b in model_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            model.push(b as char);
        } else {
            model.push_str(&format!("%{b:02X}"));
        }
    }
    if stream {
        format!("{base}/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{base}/models/{model}:generateContent")
    }
}

/// Text of a content value: a string, or the `text` parts of an array joined.
fn content_text(content: Option<&OwnedValue>) -> String {
    match content {
        Some(c) if c.is_str() => c.as_str().unwrap_or_default().to_string(),
        Some(c) => c
            .as_array()
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p.get_str("text"))
                    .collect::<Vec<_>>()
                    .join("")
            })
            .unwrap_or_default(),
        None => String::new(),
    }
}

/// Image data kept out of the translated tree: the tree holds a placeholder per image, and the
/// data is written straight from the client's request into the encoded body. A base64 image
/// is most of a large request; copying it into the tree as well would cost one more body.
struct InlineData<'a> {
    data: Vec<&'a str>,
}

impl<'a> InlineData<'a> {
    /// The placeholder for the `i`th image: a per-process random tag no client can predict.
    fn placeholder(i: usize) -> String {
        static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let tag = TAG.get_or_init(|| {
            let mut b = [0u8; 12];
            crate::crypto::fill_random(&mut b);
            crate::crypto::to_hex(&b)
        });
        format!("\u{1}inline-{tag}-{i}\u{1}")
    }

    fn defer(&mut self, data: &'a str) -> OwnedValue {
        self.data.push(data);
        OwnedValue::from(Self::placeholder(self.data.len() - 1))
    }

    /// The encoded tree with each placeholder replaced by its data, in order.
    fn splice(&self, encoded: Vec<u8>) -> Vec<u8> {
        if self.data.is_empty() {
            return encoded;
        }
        let extra: usize = self.data.iter().map(|d| d.len()).sum();
        let mut out = Vec::with_capacity(encoded.len() + extra);
        let mut rest = &encoded[..];
        for (i, data) in self.data.iter().enumerate() {
            let mut quoted = Vec::new();
            crate::json::write_str(&mut quoted, &Self::placeholder(i));
            let Some(at) = find(rest, &quoted) else {
                continue;
            };
            out.extend_from_slice(&rest[..at]);
            crate::json::write_str(&mut out, data);
            rest = &rest[at + quoted.len()..];
        }
        out.extend_from_slice(rest);
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// User content as Gemini parts. Images must be data URLs: a proxy does not fetch the web.
fn user_parts<'a>(
    content: Option<&'a OwnedValue>,
    inline: &mut InlineData<'a>,
) -> Result<Vec<OwnedValue>, WireError> {
    let Some(c) = content else {
        return Ok(vec![json!({ "text": "" })]);
    };
    if let Some(s) = c.as_str() {
        return Ok(vec![json!({ "text": s })]);
    }
    let mut parts = Vec::new();
    for part in c.as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
        match part.get_str("type") {
            Some("text") => parts.push(json!({ "text": part.get_str("text").unwrap_or_default() })),
            Some("image_url") => {
                let url = part
                    .get("image_url")
                    .and_then(|u| u.as_str().or_else(|| u.get_str("url")))
                    .unwrap_or_default();
                let (mime, data) = parse_data_url(url).ok_or(WireError::Unsupported(
                    "Gemini takes images as data: URLs (base64); remote image URLs are not fetched",
                ))?;
                let data = inline.defer(data);
                parts.push(json!({ "inlineData": { "mimeType": mime, "data": data } }));
            }
            // Audio, files and other part types have no mapping; text-only models would refuse them.
            _ => {
                return Err(WireError::Unsupported(
                    "this content part type cannot be sent to Gemini",
                ));
            }
        }
    }
    if parts.is_empty() {
        parts.push(json!({ "text": "" }));
    }
    Ok(parts)
}

/// `data:<mime>;base64,<data>` → (mime, data).
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    (!mime.is_empty() && !data.is_empty()).then_some((mime, data))
}

/// A tool call's `arguments` string as a JSON object (Gemini's `args` must be an object).
fn args_object(arguments: &str) -> OwnedValue {
    let mut bytes = arguments.as_bytes().to_vec();
    match json::parse_value(&mut bytes) {
        Ok(v) if v.is_object() => v,
        Ok(v) => json!({ "value": v }),
        Err(_) => json!({ "value": arguments }),
    }
}

/// A tool result's content as the `response` object.
fn response_object(content: Option<&OwnedValue>) -> OwnedValue {
    let text = content_text(content);
    let mut bytes = text.as_bytes().to_vec();
    match json::parse_value(&mut bytes) {
        Ok(v) if v.is_object() => v,
        Ok(v) => json!({ "result": v }),
        Err(_) => json!({ "result": text }),
    }
}

/// Appends a turn, merging it into the previous one when the role repeats (Gemini wants turns
/// to alternate; parallel tool results become one turn of several `functionResponse` parts).
fn push_turn(contents: &mut Vec<OwnedValue>, role: &str, parts: Vec<OwnedValue>) {
    if let Some(last) = contents.last_mut()
        && last.get_str("role") == Some(role)
        && let Some(existing) = last.get_mut("parts").and_then(|p| p.as_array_mut())
    {
        existing.extend(parts);
        return;
    }
    contents.push(json!({ "role": role, "parts": parts }));
}

/// The `generateContent` body for `chat`; `max_tokens_cap` lowers the client's `max_tokens`.
pub fn request_body(chat: &ChatRequest, max_tokens_cap: Option<u64>) -> Result<Vec<u8>, WireError> {
    let body = &chat.body;
    let mut system = Vec::new();
    let mut contents: Vec<OwnedValue> = Vec::new();
    // tool_call_id → function name, to name the matching functionResponse.
    let mut call_names: Vec<(String, String)> = Vec::new();
    let mut inline = InlineData { data: Vec::new() };
    for m in chat.messages() {
        let role = m.get_str("role").unwrap_or("user");
        match role {
            "system" | "developer" => {
                let text = content_text(m.get("content"));
                if !text.is_empty() {
                    system.push(text);
                }
            }
            "assistant" => {
                let mut parts = Vec::new();
                let text = content_text(m.get("content"));
                if !text.is_empty() {
                    parts.push(json!({ "text": text }));
                }
                for call in m
                    .get_array("tool_calls")
                    .map(|a| a.as_slice())
                    .unwrap_or(&[])
                {
                    let f = call.get("function");
                    let name = f
                        .and_then(|f| f.get_str("name"))
                        .unwrap_or_default()
                        .to_string();
                    let args = args_object(f.and_then(|f| f.get_str("arguments")).unwrap_or("{}"));
                    let mut fc = json!({ "name": name.clone(), "args": args });
                    if let (Some(id), Some(o)) = (call.get_str("id"), fc.as_object_mut()) {
                        o.insert("id".into(), OwnedValue::from(id));
                        call_names.push((id.to_string(), name));
                    }
                    let mut part = json!({ "functionCall": fc });
                    if let (Some(sig), Some(o)) =
                        (call.get_str("thought_signature"), part.as_object_mut())
                    {
                        o.insert("thoughtSignature".into(), OwnedValue::from(sig));
                    }
                    parts.push(part);
                }
                if !parts.is_empty() {
                    push_turn(&mut contents, "model", parts);
                }
            }
            "tool" | "function" => {
                let id = m.get_str("tool_call_id");
                let name = m
                    .get_str("name")
                    .map(str::to_string)
                    .or_else(|| {
                        id.and_then(|id| {
                            call_names
                                .iter()
                                .find(|(c, _)| c == id)
                                .map(|(_, n)| n.clone())
                        })
                    })
                    .unwrap_or_else(|| "tool".to_string());
                let mut fr = json!({ "name": name, "response": response_object(m.get("content")) });
                if let (Some(id), Some(o)) = (id, fr.as_object_mut()) {
                    o.insert("id".into(), OwnedValue::from(id));
                }
                push_turn(
                    &mut contents,
                    "user",
                    vec![json!({ "functionResponse": fr })],
                );
            }
            _ => push_turn(
                &mut contents,
                "user",
                user_parts(m.get("content"), &mut inline)?,
            ),
        }
    }

    let mut out = OwnedValue::object_with_capacity(6);
    let o = out.as_object_mut().ok_or(WireError::Malformed)?;
    o.insert("contents".into(), OwnedValue::from(contents));
    if !system.is_empty() {
        o.insert(
            "systemInstruction".into(),
            json!({ "parts": [{ "text": system.join("\n\n") }] }),
        );
    }
    let config = generation_config(body, max_tokens_cap);
    if config.as_object().is_some_and(|c| !c.is_empty()) {
        o.insert("generationConfig".into(), config);
    }
    if let Some(tools) = function_declarations(body) {
        o.insert("tools".into(), tools);
    }
    if let Some(tc) = tool_config(body.get("tool_choice")) {
        o.insert("toolConfig".into(), tc);
    }
    let encoded = json::encode(&out);
    drop(out);
    Ok(inline.splice(encoded))
}

fn generation_config(body: &OwnedValue, max_tokens_cap: Option<u64>) -> OwnedValue {
    let mut config = OwnedValue::object();
    let Some(c) = config.as_object_mut() else {
        return config;
    };
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(v) = body.get(from).filter(|v| !v.is_null()) {
            c.insert(to.into(), v.clone());
        }
    }
    if let Some(v) = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        let capped = match (v.as_u64(), max_tokens_cap) {
            (Some(n), Some(cap)) if n > cap => OwnedValue::from(cap),
            _ => v.clone(),
        };
        c.insert("maxOutputTokens".into(), capped);
    }
    if let Some(seed) = body.get("seed").filter(|v| !v.is_null()) {
        c.insert("seed".into(), seed.clone());
    }
    match body.get("stop") {
        Some(s) if s.is_str() => {
            c.insert("stopSequences".into(), OwnedValue::from(vec![s.clone()]));
        }
        Some(s) if s.is_array() => {
            c.insert("stopSequences".into(), s.clone());
        }
        _ => {}
    }
    if let Some(rf) = body.get("response_format") {
        match rf.get_str("type") {
            Some("json_object") => {
                c.insert(
                    "responseMimeType".into(),
                    OwnedValue::from("application/json"),
                );
            }
            Some("json_schema") => {
                c.insert(
                    "responseMimeType".into(),
                    OwnedValue::from("application/json"),
                );
                if let Some(s) = rf.get("json_schema").and_then(|j| j.get("schema")) {
                    c.insert("responseSchema".into(), schema::clean(s));
                }
            }
            _ => {}
        }
    }
    config
}

fn function_declarations(body: &OwnedValue) -> Option<OwnedValue> {
    let tools = body.get_array("tools").filter(|t| !t.is_empty())?;
    let decls: Vec<OwnedValue> = tools
        .iter()
        .filter_map(|t| t.get("function"))
        .map(|f| {
            let mut d = json!({ "name": f.get_str("name").unwrap_or_default() });
            if let Some(o) = d.as_object_mut() {
                if let Some(desc) = f.get_str("description") {
                    o.insert("description".into(), OwnedValue::from(desc));
                }
                // An object schema without properties is refused by Gemini; no parameters is the same thing.
                if let Some(p) = f
                    .get("parameters")
                    .map(schema::clean)
                    .filter(|p| !schema::is_empty_object(p))
                {
                    o.insert("parameters".into(), p);
                }
            }
            d
        })
        .collect();
    Some(json!([{ "functionDeclarations": decls }]))
}

fn tool_config(choice: Option<&OwnedValue>) -> Option<OwnedValue> {
    let choice = choice.filter(|c| !c.is_null())?;
    let config = match choice.as_str() {
        Some("none") => json!({ "mode": "NONE" }),
        Some("auto") => json!({ "mode": "AUTO" }),
        Some("required") => json!({ "mode": "ANY" }),
        Some(_) => return None,
        None => {
            let name = choice.get("function").and_then(|f| f.get_str("name"))?;
            json!({ "mode": "ANY", "allowedFunctionNames": [name] })
        }
    };
    Some(json!({ "functionCallingConfig": config }))
}

/// Gemini's finish reasons in OpenAI's vocabulary.
fn finish_reason(reason: Option<&str>, tool_calls: bool) -> &'static str {
    if tool_calls {
        return "tool_calls";
    }
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
            | "LANGUAGE",
        ) => "content_filter",
        _ => "stop",
    }
}

fn usage(meta: Option<&OwnedValue>) -> Option<Usage> {
    let m = meta?;
    let prompt = m.get_u64("promptTokenCount").unwrap_or(0);
    let completion = m.get_u64("candidatesTokenCount").unwrap_or(0)
        + m.get_u64("thoughtsTokenCount").unwrap_or(0);
    let total = m.get_u64("totalTokenCount").unwrap_or(prompt + completion);
    Some(Usage {
        prompt,
        completion,
        total,
    })
}

fn usage_value(u: Usage) -> OwnedValue {
    json!({ "prompt_tokens": u.prompt, "completion_tokens": u.completion, "total_tokens": u.total })
}

/// What one Gemini candidate says, in OpenAI terms.
#[derive(Default)]
struct Said {
    text: String,
    reasoning: String,
    tool_calls: Vec<OwnedValue>,
    finish: Option<String>,
}

/// Reads `candidates[0]` (and a prompt block) of one response or stream frame.
fn read_candidate(v: &OwnedValue, next_call: &mut u32) -> Said {
    let mut said = Said::default();
    let candidate = v.get_array("candidates").and_then(|c| c.first());
    let Some(candidate) = candidate else {
        if v.get("promptFeedback")
            .and_then(|p| p.get("blockReason"))
            .is_some()
        {
            said.finish = Some("SAFETY".into());
        }
        return said;
    };
    for part in candidate
        .get("content")
        .and_then(|c| c.get_array("parts"))
        .map(|a| a.as_slice())
        .unwrap_or(&[])
    {
        if let Some(fc) = part.get("functionCall") {
            let args = fc
                .get("args")
                .map(json::encode)
                .unwrap_or_else(|| b"{}".to_vec());
            let id = fc
                .get_str("id")
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{}", crate::crypto::random_hex(8)));
            let mut call = json!({
                "id": id,
                "type": "function",
                "function": { "name": fc.get_str("name").unwrap_or_default(), "arguments": String::from_utf8_lossy(&args).into_owned() }
            });
            if let (Some(sig), Some(o)) = (part.get_str("thoughtSignature"), call.as_object_mut()) {
                o.insert("thought_signature".into(), OwnedValue::from(sig));
            }
            if let Some(o) = call.as_object_mut() {
                o.insert("index".into(), OwnedValue::from(*next_call));
            }
            *next_call += 1;
            said.tool_calls.push(call);
        } else if let Some(t) = part.get_str("text") {
            if part.get_bool("thought") == Some(true) {
                said.reasoning.push_str(t);
            } else {
                said.text.push_str(t);
            }
        }
    }
    said.finish = candidate.get_str("finishReason").map(str::to_string);
    said
}

fn completion_id() -> String {
    format!("chatcmpl-{}", crate::crypto::random_hex(12))
}

/// A non-streaming `generateContent` answer as an OpenAI chat completion.
pub fn completion(
    mut body: Vec<u8>,
    chat: &ChatRequest,
    model_id: &str,
) -> Result<Completion, WireError> {
    let v = json::parse_object(&mut body).map_err(|_| WireError::Malformed)?;
    if v.get("candidates").is_none() && v.get("promptFeedback").is_none() {
        return Err(if v.get("error").is_some() {
            WireError::UpstreamError
        } else {
            WireError::Malformed
        });
    }
    let mut next_call = 0;
    let said = read_candidate(&v, &mut next_call);
    let has_calls = !said.tool_calls.is_empty();
    let finish = finish_reason(said.finish.as_deref(), has_calls);
    let content = if said.text.is_empty() {
        OwnedValue::null()
    } else {
        OwnedValue::from(said.text.clone())
    };
    let mut message = json!({ "role": "assistant", "content": content });
    if let Some(o) = message.as_object_mut() {
        if !said.reasoning.is_empty() {
            o.insert(
                "reasoning_content".into(),
                OwnedValue::from(said.reasoning.clone()),
            );
        }
        if has_calls {
            let calls: Vec<OwnedValue> = said.tool_calls.into_iter().map(without_index).collect();
            o.insert("tool_calls".into(), OwnedValue::from(calls));
        }
    }
    let (usage, estimated) = match usage(v.get("usageMetadata")) {
        Some(u) => (u, false),
        None => {
            let completion = (said.text.chars().count() as u64).div_ceil(4);
            (
                Usage {
                    prompt: chat.input_tokens,
                    completion,
                    total: chat.input_tokens + completion,
                },
                true,
            )
        }
    };
    let out = json!({
        "id": completion_id(),
        "object": "chat.completion",
        "created": crate::time::now_ms() / 1000,
        "model": model_id,
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": usage_value(usage)
    });
    // A blocked or filtered answer is an answer; only a truly silent one fails over.
    let empty = said.text.is_empty()
        && !has_calls
        && finish != "content_filter"
        && said.reasoning.is_empty();
    Ok(Completion {
        body: json::encode(&out),
        usage,
        usage_estimated: estimated,
        empty,
    })
}

/// Non-streamed tool calls carry no `index`.
fn without_index(mut call: OwnedValue) -> OwnedValue {
    if let Some(o) = call.as_object_mut() {
        o.remove("index");
    }
    call
}

/// Turns `streamGenerateContent` frames into OpenAI chunks.
pub struct StreamDecoder {
    id: String,
    created: u64,
    model: String,
    sent_role: bool,
    next_call: u32,
    saw_calls: bool,
    finished: bool,
}

impl StreamDecoder {
    pub fn new(model_id: &str) -> StreamDecoder {
        StreamDecoder {
            id: completion_id(),
            created: crate::time::now_ms() / 1000,
            model: model_id.to_string(),
            sent_role: false,
            next_call: 0,
            saw_calls: false,
            finished: false,
        }
    }

    fn chunk(&self, delta: OwnedValue, finish: Option<&str>, usage: Option<Usage>) -> Vec<u8> {
        let mut c = json!({
            "id": self.id.clone(),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model.clone(),
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish.map(OwnedValue::from).unwrap_or_else(OwnedValue::null) }]
        });
        if let (Some(u), Some(o)) = (usage, c.as_object_mut()) {
            o.insert("usage".into(), usage_value(u));
        }
        json::encode(&c)
    }

    /// Feeds one frame; appends the OpenAI chunks it becomes. Frames after the finish are ignored.
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), WireError> {
        if self.finished {
            return Ok(());
        }
        let mut bytes = data.to_vec();
        let v = json::parse_object(&mut bytes).map_err(|_| WireError::Malformed)?;
        if v.get("error").is_some() && v.get("candidates").is_none() {
            return Err(WireError::UpstreamError);
        }
        let said = read_candidate(&v, &mut self.next_call);
        let mut delta = OwnedValue::object();
        if let Some(d) = delta.as_object_mut() {
            if !self.sent_role {
                d.insert("role".into(), OwnedValue::from("assistant"));
            }
            if !said.text.is_empty() {
                d.insert("content".into(), OwnedValue::from(said.text));
            }
            if !said.reasoning.is_empty() {
                d.insert("reasoning_content".into(), OwnedValue::from(said.reasoning));
            }
            if !said.tool_calls.is_empty() {
                self.saw_calls = true;
                d.insert("tool_calls".into(), OwnedValue::from(said.tool_calls));
            }
        }
        let has_delta = delta.as_object().is_some_and(|d| !d.is_empty());
        if has_delta {
            self.sent_role = true;
            out.push(self.chunk(delta, None, None));
        }
        if let Some(reason) = said.finish {
            self.finished = true;
            let finish = finish_reason(Some(&reason), self.saw_calls);
            out.push(self.chunk(
                OwnedValue::object(),
                Some(finish),
                usage(v.get("usageMetadata")),
            ));
        }
        Ok(())
    }

    /// Whether the stream reached its finish (Gemini sends no `[DONE]`).
    pub fn finished(&self) -> bool {
        self.finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &str) -> OwnedValue {
        json::parse_value(&mut s.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn tool_choice_modes() {
        let mode = |c: &str| {
            tool_config(Some(&value(c)))
                .map(|v| json::encode(&v))
                .map(|b| String::from_utf8(b).unwrap())
        };
        assert_eq!(
            mode(r#""none""#).unwrap(),
            r#"{"functionCallingConfig":{"mode":"NONE"}}"#
        );
        assert_eq!(
            mode(r#""auto""#).unwrap(),
            r#"{"functionCallingConfig":{"mode":"AUTO"}}"#
        );
        assert_eq!(
            mode(r#""required""#).unwrap(),
            r#"{"functionCallingConfig":{"mode":"ANY"}}"#
        );
        assert!(
            mode(r#"{"type":"function","function":{"name":"f"}}"#)
                .unwrap()
                .contains(r#""allowedFunctionNames":["f"]"#)
        );
        assert_eq!(tool_config(Some(&OwnedValue::null())), None);
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason(Some("STOP"), false), "stop");
        assert_eq!(finish_reason(Some("MAX_TOKENS"), false), "length");
        for r in [
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
        ] {
            assert_eq!(finish_reason(Some(r), false), "content_filter", "{r}");
        }
        assert_eq!(finish_reason(Some("STOP"), true), "tool_calls");
        assert_eq!(finish_reason(None, false), "stop");
    }

    #[test]
    fn data_urls() {
        assert_eq!(
            parse_data_url("data:image/jpeg;base64,AAA"),
            Some(("image/jpeg", "AAA"))
        );
        assert_eq!(
            parse_data_url("data:image/jpeg,AAA"),
            None,
            "only base64 data URLs"
        );
        assert_eq!(parse_data_url("https://x/y.png"), None);
    }

    #[test]
    fn a_stream_without_a_finish_is_not_finished() {
        let mut d = StreamDecoder::new("m");
        let mut out = Vec::new();
        d.decode(
            br#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#,
            &mut out,
        )
        .unwrap();
        assert!(!d.finished());
        assert!(d.decode(b"{broken", &mut out).is_err());
        assert_eq!(
            d.decode(br#"{"error":{"code":500}}"#, &mut out).err(),
            Some(WireError::UpstreamError)
        );
    }
}
