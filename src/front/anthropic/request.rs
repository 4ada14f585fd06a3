//! The Messages request made internal: blocks, turns, tools and tool choice.
use std::hash::Hasher;

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use crate::chat::{ChatRequest, Invalid, invalid, parse_body, wrong_type};
use crate::front::Inbound;
use crate::front::tools::{self, Tool};

/// Parses a Messages request into the internal chat request.
pub fn parse(bytes: &mut [u8], hasher: impl Hasher) -> Result<Inbound, Invalid> {
    let body = parse_body(bytes)?;
    let t = translate(&body, true)?;
    let mut chat = ChatRequest::from_value(t.body, hasher)?;
    chat.clamp_output = true;
    Ok(Inbound {
        chat,
        echo_model: t.model,
        dropped_tools: t.dropped,
    })
}

/// `count_tokens`: the request's input estimate, with no upstream call.
pub fn count_tokens(bytes: &mut [u8], hasher: impl Hasher) -> Result<u64, Invalid> {
    let body = parse_body(bytes)?;
    let t = translate(&body, false)?;
    Ok(ChatRequest::from_value(t.body, hasher)?.input_tokens)
}

struct Translated {
    body: OwnedValue,
    model: String,
    dropped: Vec<String>,
}

fn required<'v>(body: &'v OwnedValue, field: &str) -> Result<&'v OwnedValue, Invalid> {
    body.get(field)
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid("missing_required_parameter", format!("{field}: required")))
}

fn translate(body: &OwnedValue, need_max_tokens: bool) -> Result<Translated, Invalid> {
    let model = required(body, "model")?;
    let model = model
        .as_str()
        .ok_or_else(|| wrong_type("model", "a string", model))?
        .to_string();
    let mut out = OwnedValue::object();
    let o = out.as_object_mut().expect("just made an object");
    o.insert("model".into(), OwnedValue::from(model.clone()));
    if need_max_tokens {
        let m = required(body, "max_tokens")?;
        match m.as_u64() {
            Some(n) if n >= 1 => o.insert("max_tokens".into(), OwnedValue::from(n)),
            _ if m.is_number() => {
                return Err(invalid(
                    "invalid_value",
                    "max_tokens: must be at least 1".into(),
                ));
            }
            _ => return Err(wrong_type("max_tokens", "an integer", m)),
        };
    }
    crate::front::sampling_and_stream(body, o)?;
    if let Some(v) = body.get("stop_sequences").filter(|v| !v.is_null()) {
        match v.as_array() {
            Some(a) if a.iter().all(|s| s.is_str()) => {
                if !a.is_empty() {
                    o.insert("stop".into(), v.clone());
                }
            }
            _ => return Err(wrong_type("stop_sequences", "an array of strings", v)),
        }
    }

    let mut messages = Vec::new();
    if let Some(system) = body.get("system").filter(|v| !v.is_null()) {
        let text = text_of(system, "system")?;
        if !text.is_empty() {
            messages.push(json!({ "role": "system", "content": text }));
        }
    }
    let turns = required(body, "messages")?;
    let turns = turns
        .as_array()
        .ok_or_else(|| wrong_type("messages", "an array", turns))?;
    if turns.is_empty() {
        return Err(invalid(
            "invalid_value",
            "messages: must contain at least one message".into(),
        ));
    }
    let mut open_calls: Vec<String> = Vec::new();
    for (i, turn) in turns.iter().enumerate() {
        translate_turn(i, turn, &mut messages, &mut open_calls)?;
    }
    o.insert("messages".into(), OwnedValue::from(messages));

    let (tools, dropped) = translate_tools(body.get("tools"))?;
    let has_tools = !tools.is_empty();
    if has_tools {
        o.insert("tools".into(), OwnedValue::from(tools));
    }
    if let Some(tc) = body.get("tool_choice").filter(|v| !v.is_null()) {
        if let Some(choice) = translate_tool_choice(tc, has_tools, &dropped, body.get("tools"))? {
            o.insert("tool_choice".into(), choice);
        }
        if tc.get_bool("disable_parallel_tool_use") == Some(true) && has_tools {
            o.insert("parallel_tool_calls".into(), OwnedValue::from(false));
        }
    }
    structured_output(body, o)?;
    Ok(Translated {
        body: out,
        model,
        dropped,
    })
}

/// Anthropic's structured output (`output_config.format`, or the beta's top-level
/// `output_format`) as `response_format`, and `output_config.effort` as `reasoning_effort`.
fn structured_output(body: &OwnedValue, o: &mut simd_json::owned::Object) -> Result<(), Invalid> {
    let config = body.get("output_config").filter(|v| !v.is_null());
    if let Some(c) = config
        && !c.is_object()
    {
        return Err(wrong_type("output_config", "an object", c));
    }
    let (format, path) = match config
        .and_then(|c| c.get("format"))
        .filter(|v| !v.is_null())
    {
        Some(f) => (Some(f), "output_config.format"),
        None => (
            body.get("output_format").filter(|v| !v.is_null()),
            "output_format",
        ),
    };
    if let Some(format) = format {
        match format.get_str("type") {
            Some("json_schema") => {
                let schema = format
                    .get("schema")
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        invalid(
                            "missing_required_parameter",
                            format!("{path}.schema: required (a JSON Schema object)"),
                        )
                    })?;
                o.insert(
                    "response_format".into(),
                    crate::front::json_schema_format(schema, None, None),
                );
            }
            other => {
                return Err(invalid(
                    "invalid_value",
                    format!(
                        "{path}.type: unknown value {:?}; expected json_schema",
                        other.unwrap_or("")
                    ),
                ));
            }
        }
    }
    if let Some(effort) = config
        .and_then(|c| c.get("effort"))
        .filter(|v| !v.is_null())
    {
        let effort = crate::front::reasoning_effort(effort, "output_config.effort")?;
        o.insert("reasoning_effort".into(), effort);
    }
    Ok(())
}

/// Text of a string or an array of `text` blocks (other blocks refused).
fn text_of(v: &OwnedValue, path: &str) -> Result<String, Invalid> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_string());
    }
    let blocks = v
        .as_array()
        .ok_or_else(|| wrong_type(path, "a string or an array of text blocks", v))?;
    let mut text = String::new();
    for (j, b) in blocks.iter().enumerate() {
        let bpath = format!("{path}[{j}]");
        match block_type(b, &bpath)? {
            "text" => {
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(block_text(b, &bpath)?);
            }
            other => {
                return Err(invalid(
                    "invalid_value",
                    format!("{bpath}.type: expected \"text\", got {other:?}"),
                ));
            }
        }
    }
    Ok(text)
}

fn block_type<'v>(b: &'v OwnedValue, path: &str) -> Result<&'v str, Invalid> {
    if !b.is_object() {
        return Err(wrong_type(path, "a content block object", b));
    }
    let t = required(b, "type").map_err(|_| {
        invalid(
            "missing_required_parameter",
            format!("{path}.type: required"),
        )
    })?;
    t.as_str()
        .ok_or_else(|| wrong_type(format!("{path}.type"), "a string", t))
}

fn block_text<'v>(b: &'v OwnedValue, path: &str) -> Result<&'v str, Invalid> {
    match b.get("text") {
        Some(t) => t
            .as_str()
            .ok_or_else(|| wrong_type(format!("{path}.text"), "a string", t)),
        None => Err(invalid(
            "missing_required_parameter",
            format!("{path}.text: required"),
        )),
    }
}

fn translate_turn(
    i: usize,
    turn: &OwnedValue,
    messages: &mut Vec<OwnedValue>,
    open_calls: &mut Vec<String>,
) -> Result<(), Invalid> {
    let path = format!("messages[{i}]");
    if !turn.is_object() {
        return Err(wrong_type(&path, "an object", turn));
    }
    let role = required(turn, "role").map_err(|_| {
        invalid(
            "missing_required_parameter",
            format!("{path}.role: required"),
        )
    })?;
    let role = role
        .as_str()
        .ok_or_else(|| wrong_type(format!("{path}.role"), "a string", role))?;
    let content = turn.get("content").ok_or_else(|| {
        invalid(
            "missing_required_parameter",
            format!("{path}.content: required"),
        )
    })?;
    let cpath = format!("{path}.content");
    match role {
        // Claude Code sends these inside `messages`.
        "system" => {
            let text = text_of(content, &cpath)?;
            messages.push(json!({ "role": "system", "content": text }));
        }
        "user" => user_turn(content, &cpath, messages, open_calls)?,
        "assistant" => {
            open_calls.clear();
            assistant_turn(content, &cpath, messages, open_calls)?;
        }
        other => {
            return Err(invalid(
                "invalid_value",
                format!("{path}.role: unknown role {other:?}; expected user or assistant"),
            ));
        }
    }
    Ok(())
}

fn user_turn(
    content: &OwnedValue,
    path: &str,
    messages: &mut Vec<OwnedValue>,
    open_calls: &[String],
) -> Result<(), Invalid> {
    if let Some(s) = content.as_str() {
        messages.push(json!({ "role": "user", "content": s }));
        return Ok(());
    }
    let blocks = content
        .as_array()
        .ok_or_else(|| wrong_type(path, "a string or an array of content blocks", content))?;
    let mut parts: Vec<OwnedValue> = Vec::new();
    let mut has_image = false;
    for (j, b) in blocks.iter().enumerate() {
        let bpath = format!("{path}[{j}]");
        match block_type(b, &bpath)? {
            "text" => parts.push(json!({ "type": "text", "text": block_text(b, &bpath)? })),
            "image" => {
                parts.push(image_part(b, &bpath)?);
                has_image = true;
            }
            "document" => parts.push(json!({ "type": "text", "text": document_text(b, &bpath)? })),
            "tool_result" => messages.push(tool_result(b, &bpath, open_calls)?),
            "thinking" | "redacted_thinking" => {}
            "tool_use" => {
                return Err(invalid(
                    "invalid_value",
                    format!("{bpath}.type: tool_use blocks belong in assistant turns"),
                ));
            }
            other => return Err(unsupported_block(&bpath, other)),
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let content = if has_image {
        OwnedValue::from(parts)
    } else {
        // Plain text as a string: some providers refuse content arrays.
        OwnedValue::from(
            parts
                .iter()
                .filter_map(|p| p.get_str("text"))
                .collect::<Vec<_>>()
                .join("\n\n"),
        )
    };
    messages.push(json!({ "role": "user", "content": content }));
    Ok(())
}

fn unsupported_block(path: &str, kind: &str) -> Invalid {
    invalid(
        "invalid_value",
        format!(
            "{path}.type: unsupported content block {kind:?}; expected text, image, document, tool_use, tool_result or thinking"
        ),
    )
}

fn image_part(b: &OwnedValue, path: &str) -> Result<OwnedValue, Invalid> {
    let source = b.get("source").filter(|s| s.is_object()).ok_or_else(|| {
        invalid(
            "missing_required_parameter",
            format!("{path}.source: required"),
        )
    })?;
    let url = match source.get_str("type") {
        Some("base64") => {
            let media = source.get_str("media_type").unwrap_or("image/png");
            let data = source.get_str("data").ok_or_else(|| {
                invalid(
                    "missing_required_parameter",
                    format!("{path}.source.data: required"),
                )
            })?;
            format!("data:{media};base64,{data}")
        }
        Some("url") => source
            .get_str("url")
            .ok_or_else(|| {
                invalid(
                    "missing_required_parameter",
                    format!("{path}.source.url: required"),
                )
            })?
            .to_string(),
        other => {
            return Err(invalid(
                "invalid_value",
                format!(
                    "{path}.source.type: {:?} is not supported; send base64 or url",
                    other.unwrap_or("")
                ),
            ));
        }
    };
    Ok(json!({ "type": "image_url", "image_url": { "url": url } }))
}

fn document_text(b: &OwnedValue, path: &str) -> Result<String, Invalid> {
    let source = b.get("source");
    match source.and_then(|s| s.get_str("type")) {
        Some("text") => Ok(source
            .and_then(|s| s.get_str("data"))
            .unwrap_or_default()
            .to_string()),
        Some("content") => text_of(
            source
                .and_then(|s| s.get("content"))
                .unwrap_or(&OwnedValue::null()),
            &format!("{path}.source.content"),
        ),
        other => Err(invalid(
            "invalid_value",
            format!(
                "{path}.source.type: {:?} documents are not supported; send text",
                other.unwrap_or("")
            ),
        )),
    }
}

fn tool_result(b: &OwnedValue, path: &str, open_calls: &[String]) -> Result<OwnedValue, Invalid> {
    let id = required(b, "tool_use_id").map_err(|_| {
        invalid(
            "missing_required_parameter",
            format!("{path}.tool_use_id: required"),
        )
    })?;
    let id = id
        .as_str()
        .ok_or_else(|| wrong_type(format!("{path}.tool_use_id"), "a string", id))?;
    if !open_calls.iter().any(|c| c == id) {
        return Err(invalid(
            "invalid_value",
            format!(
                "{path}.tool_use_id: no tool_use with id {id:?} in the previous assistant turn"
            ),
        ));
    }
    let mut text = match b.get("content") {
        None => String::new(),
        Some(c) if c.is_null() => String::new(),
        Some(c) if c.is_str() => c.as_str().unwrap_or_default().to_string(),
        Some(c) => {
            let blocks = c.as_array().ok_or_else(|| {
                wrong_type(
                    format!("{path}.content"),
                    "a string or an array of blocks",
                    c,
                )
            })?;
            let mut text = String::new();
            for (k, inner) in blocks.iter().enumerate() {
                let ipath = format!("{path}.content[{k}]");
                let piece = match block_type(inner, &ipath)? {
                    "text" => block_text(inner, &ipath)?.to_string(),
                    "document" => document_text(inner, &ipath)?,
                    // A chat `tool` message holds text only.
                    "image" => "[image omitted]".to_string(),
                    other => return Err(unsupported_block(&ipath, other)),
                };
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(&piece);
            }
            text
        }
    };
    if b.get_bool("is_error") == Some(true) {
        text.insert_str(0, "Error: ");
    }
    Ok(json!({ "role": "tool", "tool_call_id": id, "content": text }))
}

fn assistant_turn(
    content: &OwnedValue,
    path: &str,
    messages: &mut Vec<OwnedValue>,
    open_calls: &mut Vec<String>,
) -> Result<(), Invalid> {
    if let Some(s) = content.as_str() {
        messages.push(json!({ "role": "assistant", "content": s }));
        return Ok(());
    }
    let blocks = content
        .as_array()
        .ok_or_else(|| wrong_type(path, "a string or an array of content blocks", content))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bpath = format!("{path}[{j}]");
        match block_type(b, &bpath)? {
            "text" => text.push_str(block_text(b, &bpath)?),
            "tool_use" | "server_tool_use" => {
                let id = b.get_str("id").filter(|s| !s.is_empty()).ok_or_else(|| {
                    invalid(
                        "invalid_value",
                        format!("{bpath}.id: expected a non-empty string"),
                    )
                })?;
                let name = b.get_str("name").filter(|s| !s.is_empty()).ok_or_else(|| {
                    invalid(
                        "invalid_value",
                        format!("{bpath}.name: expected a non-empty string"),
                    )
                })?;
                let input = b.get("input").cloned().unwrap_or_else(OwnedValue::object);
                open_calls.push(id.to_string());
                calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": { "name": name, "arguments": encode_string(&input) }
                }));
            }
            "thinking" | "redacted_thinking" => {}
            "tool_result" => {
                return Err(invalid(
                    "invalid_value",
                    format!("{bpath}.type: tool_result blocks belong in user turns"),
                ));
            }
            other => return Err(unsupported_block(&bpath, other)),
        }
    }
    if calls.is_empty() && text.is_empty() {
        return Ok(());
    }
    let mut m = json!({ "role": "assistant", "content": text });
    if !calls.is_empty()
        && let Some(o) = m.as_object_mut()
    {
        if text.is_empty() {
            o.insert("content".into(), OwnedValue::null());
        }
        o.insert("tool_calls".into(), OwnedValue::from(calls));
    }
    messages.push(m);
    Ok(())
}

/// Anthropic's `tools`: custom tools pass on; server tools, built-in client tools and
/// deferred ones are dropped.
fn translate_tools(tools: Option<&OwnedValue>) -> Result<(Vec<OwnedValue>, Vec<String>), Invalid> {
    tools::translate(tools, |t, path| {
        let name = t.get_str("name").filter(|n| !n.is_empty()).ok_or_else(|| {
            invalid(
                "invalid_value",
                format!("{path}.name: expected a non-empty string"),
            )
        })?;
        // Anthropic's server tools (`web_search_…`, `code_execution_…`) and built-in client
        // tools (`bash_…`, `computer_…`, `text_editor_…`) carry a `type` and no schema we could
        // pass on; deferred placeholders are loaded by a tool-search tool we do not have.
        let server_tool = t.get_str("type").is_some_and(|k| k != "custom");
        if server_tool || t.get_bool("defer_loading") == Some(true) {
            return Ok(Tool::Dropped(name.to_string()));
        }
        let parameters = match t.get("input_schema") {
            Some(s) if s.is_object() => {
                let mut s = s.clone();
                if let Some(o) = s.as_object_mut() {
                    o.remove("$schema");
                }
                s
            }
            Some(s) => {
                return Err(wrong_type(
                    format!("{path}.input_schema"),
                    "a JSON Schema object",
                    s,
                ));
            }
            None => {
                return Err(invalid(
                    "missing_required_parameter",
                    format!("{path}.input_schema: required"),
                ));
            }
        };
        Ok(Tool::Function {
            name,
            parameters,
            description: t.get_str("description"),
            strict: None,
        })
    })
}

fn translate_tool_choice(
    tc: &OwnedValue,
    has_tools: bool,
    dropped: &[String],
    tools: Option<&OwnedValue>,
) -> Result<Option<OwnedValue>, Invalid> {
    if !tc.is_object() {
        return Err(wrong_type("tool_choice", "an object", tc));
    }
    match tc.get_str("type") {
        Some("auto") => Ok(has_tools.then(|| OwnedValue::from("auto"))),
        Some("none") => Ok(has_tools.then(|| OwnedValue::from("none"))),
        Some("any") if has_tools => Ok(Some(OwnedValue::from("required"))),
        Some("any") => Err(invalid(
            "invalid_value",
            format!(
                "tool_choice: \"any\" forces a tool, but every tool was dropped ({}): this proxy cannot serve them",
                dropped.join(", ")
            ),
        )),
        Some("tool") => {
            let name = tc
                .get_str("name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    invalid(
                        "invalid_value",
                        "tool_choice.name: expected a non-empty string".into(),
                    )
                })?;
            if dropped.iter().any(|d| d == name) {
                return Err(invalid(
                    "invalid_value",
                    format!(
                        "tool_choice.name: the tool {name:?} cannot be served by this proxy (it was dropped)"
                    ),
                ));
            }
            let known = tools
                .and_then(|t| t.as_array())
                .is_some_and(|l| l.iter().any(|t| t.get_str("name") == Some(name)));
            if !known {
                return Err(invalid(
                    "invalid_value",
                    format!("tool_choice.name: no tool named {name:?} in tools"),
                ));
            }
            Ok(Some(
                json!({ "type": "function", "function": { "name": name } }),
            ))
        }
        other => Err(invalid(
            "invalid_value",
            format!(
                "tool_choice.type: unknown value {:?}; expected auto, any, tool or none",
                other.unwrap_or("")
            ),
        )),
    }
}

fn encode_string(v: &OwnedValue) -> String {
    String::from_utf8(crate::json::encode(v)).unwrap_or_default()
}
