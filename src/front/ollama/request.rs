//! Ollama's `/api/chat` and `/api/generate` bodies made internal: messages (with base64
//! `images` and object `arguments`), `format`, `options`, and `stream`, which Ollama turns on
//! unless the client says `false`.

use std::hash::Hasher;

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::owned::Object;
use simd_json::prelude::*;

use crate::chat::{ChatRequest, Invalid, invalid, parse_body, wrong_type};
use crate::front::Inbound;
use crate::front::tools::{self, Tool};

/// The catalog's name for an Ollama model name: Ollama clients add the `:latest` tag.
pub fn model_name(name: &str) -> &str {
    name.strip_suffix(":latest").unwrap_or(name)
}

/// The request's model: required, as Ollama requires it.
pub fn model(body: &OwnedValue) -> Result<String, Invalid> {
    match body.get("model") {
        Some(m) if m.as_str().is_some_and(|s| !s.is_empty()) => {
            let name = m.as_str().unwrap_or_default();
            crate::chat::check_model_name(name)?;
            Ok(name.to_string())
        }
        Some(m) if !m.is_null() && !m.is_str() => Err(wrong_type("model", "a string", m)),
        _ => Err(invalid(
            "missing_required_parameter",
            "model is required".into(),
        )),
    }
}

/// The model a request names, and whether it says nothing to generate from: Ollama's way of
/// loading a model (`/api/chat` with no messages, `/api/generate` with no prompt).
pub fn peek(bytes: &[u8], generate: bool) -> Result<(String, bool), Invalid> {
    let mut copy = bytes.to_vec();
    let body = parse_body(&mut copy)?;
    let name = model(&body)?;
    let load = if generate {
        body.get_str("prompt").is_none_or(str::is_empty)
            && body.get_array("images").is_none_or(|i| i.is_empty())
    } else {
        body.get_array("messages").is_none_or(|m| m.is_empty())
    };
    Ok((name, load))
}

/// `/api/chat`.
pub fn parse_chat(bytes: &mut [u8], hasher: impl Hasher) -> Result<Inbound, Invalid> {
    let body = parse_body(bytes)?;
    let model = model(&body)?;
    let list = body
        .get("messages")
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid("missing_required_parameter", "messages: required".into()))?;
    let list = list
        .as_array()
        .ok_or_else(|| wrong_type("messages", "an array", list))?;
    let mut messages = Vec::with_capacity(list.len());
    // Ollama's tool results name their tool, not a call id: each answers the oldest open
    // call of that name (or, unnamed, the oldest open call).
    let mut open: Vec<(String, String)> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let path = format!("messages[{i}]");
        if !m.is_object() {
            return Err(wrong_type(&path, "an object", m));
        }
        let role = m
            .get_str("role")
            .ok_or_else(|| invalid("invalid_value", format!("{path}.role: required")))?;
        let text = match m.get("content") {
            None => "",
            Some(c) if c.is_null() => "",
            Some(c) => c
                .as_str()
                .ok_or_else(|| wrong_type(format!("{path}.content"), "a string", c))?,
        };
        match role {
            "system" | "user" => {
                let content = with_images(text, m.get("images"), &format!("{path}.images"))?;
                messages.push(json!({ "role": role, "content": content }));
            }
            "assistant" => {
                let mut msg = json!({ "role": "assistant", "content": text });
                if let Some(calls) = m.get_array("tool_calls").filter(|c| !c.is_empty()) {
                    let mut out = Vec::with_capacity(calls.len());
                    for (j, c) in calls.iter().enumerate() {
                        let f = c.get("function");
                        let name = f.and_then(|f| f.get_str("name")).ok_or_else(|| {
                            invalid(
                                "invalid_value",
                                format!("{path}.tool_calls[{j}].function.name: required"),
                            )
                        })?;
                        let arguments = match f.and_then(|f| f.get("arguments")) {
                            None => "{}".to_string(),
                            Some(a) if a.is_str() => a.as_str().unwrap_or("{}").to_string(),
                            Some(a) => simd_json::to_string(a).unwrap_or_else(|_| "{}".into()),
                        };
                        let id = format!("call_{i}_{j}");
                        open.push((name.to_string(), id.clone()));
                        out.push(json!({
                            "id": id,
                            "type": "function",
                            "function": { "name": name, "arguments": arguments }
                        }));
                    }
                    if let Some(o) = msg.as_object_mut() {
                        o.insert("tool_calls".into(), OwnedValue::from(out));
                    }
                }
                messages.push(msg);
            }
            "tool" => {
                let name = m.get_str("tool_name").or_else(|| m.get_str("name"));
                let at = match name {
                    Some(n) => open.iter().position(|(open_name, _)| open_name == n),
                    None => (!open.is_empty()).then_some(0),
                };
                let Some(at) = at else {
                    return Err(invalid(
                        "invalid_value",
                        format!("{path}: a tool result with no tool call before it"),
                    ));
                };
                let (_, id) = open.remove(at);
                messages.push(json!({ "role": "tool", "tool_call_id": id, "content": text }));
            }
            other => {
                return Err(invalid(
                    "invalid_value",
                    format!(
                        "{path}.role: unknown role {other:?}; expected system, user, assistant or tool"
                    ),
                ));
            }
        }
    }
    let mut out = OwnedValue::object();
    let o = out.as_object_mut().expect("just made an object");
    o.insert("model".into(), OwnedValue::from(model_name(&model)));
    o.insert("messages".into(), OwnedValue::from(messages));
    let (kept, dropped) = tools::translate(body.get("tools"), read_tool)?;
    if !kept.is_empty() {
        o.insert("tools".into(), OwnedValue::from(kept));
    }
    common(&body, o)?;
    Ok(Inbound {
        chat: ChatRequest::from_value(out, hasher)?,
        echo_model: model,
        dropped_tools: dropped,
    })
}

/// `/api/generate`: a prompt (with `system`, `images`, or `suffix` for fill-in-the-middle).
pub fn parse_generate(bytes: &mut [u8], hasher: impl Hasher) -> Result<Inbound, Invalid> {
    let body = parse_body(bytes)?;
    let model = model(&body)?;
    let field = |name: &str| -> Result<Option<&str>, Invalid> {
        match body.get(name) {
            None => Ok(None),
            Some(v) if v.is_null() => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| wrong_type(name, "a string", v)),
        }
    };
    let prompt = field("prompt")?.unwrap_or_default();
    let suffix = field("suffix")?.filter(|s| !s.is_empty());
    let mut messages = Vec::with_capacity(2);
    if let Some(system) = field("system")?.filter(|s| !s.is_empty()) {
        messages.push(json!({ "role": "system", "content": system }));
    }
    let mut text = prompt.to_string();
    if let Some(s) = suffix {
        text.push_str(s);
    }
    messages.push(
        json!({ "role": "user", "content": with_images(&text, body.get("images"), "images")? }),
    );
    let mut out = OwnedValue::object();
    let o = out.as_object_mut().expect("just made an object");
    o.insert("model".into(), OwnedValue::from(model_name(&model)));
    o.insert("messages".into(), OwnedValue::from(messages));
    if let Some(s) = suffix {
        o.insert("prompt".into(), OwnedValue::from(prompt));
        o.insert("suffix".into(), OwnedValue::from(s));
    }
    common(&body, o)?;
    let mut chat = ChatRequest::from_value(out, hasher)?;
    chat.fim = suffix.is_some();
    Ok(Inbound {
        chat,
        echo_model: model,
        dropped_tools: Vec::new(),
    })
}

/// Ollama tools are OpenAI function tools already.
fn read_tool<'a>(t: &'a OwnedValue, path: &str) -> Result<Tool<'a>, Invalid> {
    let f = t
        .get("function")
        .filter(|f| f.is_object())
        .ok_or_else(|| invalid("invalid_value", format!("{path}.function: required")))?;
    let name = f
        .get_str("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("invalid_value", format!("{path}.function.name: required")))?;
    Ok(Tool::Function {
        name,
        parameters: f
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
        description: f.get_str("description"),
        strict: None,
    })
}

/// A message's text with its base64 images as OpenAI content parts (plain text when none).
fn with_images(text: &str, images: Option<&OwnedValue>, path: &str) -> Result<OwnedValue, Invalid> {
    let Some(images) = images.filter(|i| !i.is_null()) else {
        return Ok(OwnedValue::from(text));
    };
    let list = images
        .as_array()
        .ok_or_else(|| wrong_type(path, "an array of base64 strings", images))?;
    if list.is_empty() {
        return Ok(OwnedValue::from(text));
    }
    let mut parts = Vec::with_capacity(list.len() + 1);
    if !text.is_empty() {
        parts.push(json!({ "type": "text", "text": text }));
    }
    for (i, image) in list.iter().enumerate() {
        let data = image
            .as_str()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| wrong_type(format!("{path}[{i}]"), "a base64 string", image))?;
        let url = if data.starts_with("data:") {
            data.to_string()
        } else {
            format!("data:{};base64,{data}", sniff(data))
        };
        parts.push(json!({ "type": "image_url", "image_url": { "url": url } }));
    }
    Ok(OwnedValue::from(parts))
}

/// The image type base64 data starts like (Ollama sends bare base64, no type).
fn sniff(b64: &str) -> &'static str {
    match b64.as_bytes().get(..4) {
        Some(b"iVBO") => "image/png",
        Some(b"R0lG") => "image/gif",
        Some(b"UklG") => "image/webp",
        _ => "image/jpeg",
    }
}

/// `format`, `options`, `think` and `stream`, shared by both routes.
fn common(body: &OwnedValue, o: &mut Object) -> Result<(), Invalid> {
    match body.get("format") {
        None => {}
        Some(f) if f.is_null() => {}
        Some(f) if f.as_str() == Some("json") => {
            o.insert("response_format".into(), json!({ "type": "json_object" }));
        }
        Some(f) if f.as_str() == Some("") => {}
        Some(f) if f.is_object() => {
            o.insert(
                "response_format".into(),
                super::super::json_schema_format(f, None, None),
            );
        }
        Some(f) => return Err(wrong_type("format", "\"json\" or a JSON schema", f)),
    }
    if let Some(options) = body.get("options").filter(|v| !v.is_null()) {
        if !options.is_object() {
            return Err(wrong_type("options", "an object", options));
        }
        for (from, to) in [
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("seed", "seed"),
            ("stop", "stop"),
            ("presence_penalty", "presence_penalty"),
            ("frequency_penalty", "frequency_penalty"),
        ] {
            if let Some(v) = options.get(from).filter(|v| !v.is_null()) {
                o.insert(to.into(), v.clone());
            }
        }
        // -1 and -2 mean "no limit" to Ollama.
        if let Some(n) = options.get("num_predict").filter(|v| !v.is_null()) {
            match n.as_i64() {
                Some(n) if n > 0 => {
                    o.insert("max_tokens".into(), OwnedValue::from(n as u64));
                }
                Some(_) => {}
                None => return Err(wrong_type("options.num_predict", "an integer", n)),
            }
        }
    }
    if let Some(level) = body.get("think").and_then(|t| t.as_str()) {
        o.insert(
            "reasoning_effort".into(),
            super::super::reasoning_effort(&OwnedValue::from(level), "think")?,
        );
    }
    let stream = match body.get("stream") {
        None => true,
        Some(v) if v.is_null() => true,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| wrong_type("stream", "a boolean", v))?,
    };
    o.insert("stream".into(), OwnedValue::from(stream));
    if stream {
        o.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn chat(body: &str) -> Result<Inbound, Invalid> {
        parse_chat(&mut body.as_bytes().to_vec(), DefaultHasher::new())
    }

    #[test]
    fn a_tool_round_trip_gets_call_ids() {
        let i = chat(
            r#"{"model":"auto:latest","messages":[
                {"role":"user","content":"weather?","images":["iVBORw0KGgo="]},
                {"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
                {"role":"tool","content":"20","tool_name":"get_weather"}],
              "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],
              "format":"json","options":{"temperature":0.2,"num_predict":-1}}"#,
        )
        .unwrap();
        assert_eq!(i.echo_model, "auto:latest");
        assert!(i.chat.model.is_none(), "auto:latest is auto");
        assert!(i.chat.stream, "Ollama streams unless told not to");
        let b = &i.chat.body;
        let m = b.get_array("messages").unwrap();
        let image = m[0].get_array("content").unwrap()[1]
            .get("image_url")
            .unwrap();
        assert_eq!(
            image.get_str("url"),
            Some("data:image/png;base64,iVBORw0KGgo=")
        );
        let call = &m[1].get_array("tool_calls").unwrap()[0];
        assert_eq!(call.get_str("id"), Some("call_1_0"));
        assert_eq!(
            call.get("function").unwrap().get_str("arguments"),
            Some(r#"{"city":"Paris"}"#)
        );
        assert_eq!(m[2].get_str("tool_call_id"), Some("call_1_0"));
        assert_eq!(
            b.get("response_format").unwrap().get_str("type"),
            Some("json_object")
        );
        assert!(b.get("max_tokens").is_none(), "-1 is no limit");
        assert_eq!(b.get("temperature").unwrap().as_f64(), Some(0.2));
    }

    #[test]
    fn refusals_name_the_field() {
        // Tries: no model, no messages, a bad role, a tool result with no call, a bad format,
        // a bad image list, stream as a string.
        for (body, says) in [
            (r#"{"messages":[]}"#, "model is required"),
            (r#"{"model":"m"}"#, "messages: required"),
            (
                r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
                "messages[0].role: unknown role",
            ),
            (
                r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
                "messages[0]: a tool result with no tool call",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"format":3}"#,
                "format: expected",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x","images":"abc"}]}"#,
                "messages[0].images: expected",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
                "stream: expected a boolean",
            ),
        ] {
            let e = chat(body).err().unwrap();
            assert!(e.message.starts_with(says), "{body}: {}", e.message);
        }
    }

    #[test]
    fn generate_takes_system_suffix_and_a_schema() {
        let i = parse_generate(
            &mut br#"{"model":"codestral-latest","prompt":"def f(","suffix":"):","system":"be brief","stream":false,"format":{"type":"object"}}"#.to_vec(),
            DefaultHasher::new(),
        )
        .unwrap();
        assert!(i.chat.fim && !i.chat.stream);
        let b = &i.chat.body;
        assert_eq!(b.get_str("prompt"), Some("def f("));
        assert_eq!(b.get_str("suffix"), Some("):"));
        assert_eq!(
            b.get_array("messages").unwrap()[0].get_str("role"),
            Some("system")
        );
        assert_eq!(
            b.get("response_format").unwrap().get_str("type"),
            Some("json_schema")
        );
        assert_eq!(peek(br#"{"model":"m"}"#, true), Ok(("m".into(), true)));
        assert_eq!(
            peek(br#"{"model":"m","prompt":"hi"}"#, true),
            Ok(("m".into(), false))
        );
        assert_eq!(
            peek(br#"{"model":"m","messages":[]}"#, false),
            Ok(("m".into(), true))
        );
    }
}
