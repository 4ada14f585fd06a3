//! The Responses request made internal: items, `call_id` pairing, tools and formats.
use std::hash::Hasher;

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use crate::chat::{ChatRequest, Invalid, invalid, parse_body, wrong_type};
use crate::front::Inbound;
use crate::front::tools::{self, Tool};

pub fn parse(bytes: &mut [u8], hasher: impl Hasher) -> Result<Inbound, Invalid> {
    let body = parse_body(bytes)?;
    if body
        .get("previous_response_id")
        .is_some_and(|v| !v.is_null())
    {
        return Err(invalid(
            "invalid_value",
            "previous_response_id: this proxy is stateless and stores no responses; send the whole conversation in input".into(),
        ));
    }
    let model = match body.get("model") {
        None => None,
        Some(v) if v.is_null() => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| wrong_type("model", "a string", v))?,
        ),
    };
    let mut out = OwnedValue::object();
    let o = out.as_object_mut().expect("just made an object");
    if let Some(m) = model {
        o.insert("model".into(), OwnedValue::from(m));
    }
    let mut messages = Vec::new();
    if let Some(ins) = body.get("instructions").filter(|v| !v.is_null()) {
        let text = ins
            .as_str()
            .ok_or_else(|| wrong_type("instructions", "a string", ins))?;
        if !text.is_empty() {
            messages.push(json!({ "role": "system", "content": text }));
        }
    }
    let input = body
        .get("input")
        .filter(|v| !v.is_null())
        .ok_or_else(|| invalid("missing_required_parameter", "input: required".into()))?;
    if let Some(s) = input.as_str() {
        messages.push(json!({ "role": "user", "content": s }));
    } else {
        let items = input
            .as_array()
            .ok_or_else(|| wrong_type("input", "a string or an array of items", input))?;
        translate_items(items, &mut messages)?;
    }
    if messages.is_empty() {
        return Err(invalid(
            "invalid_value",
            "input: must contain at least one message".into(),
        ));
    }
    o.insert("messages".into(), OwnedValue::from(messages));

    if let Some(v) = body.get("max_output_tokens").filter(|v| !v.is_null()) {
        match v.as_u64() {
            Some(n) if n >= 1 => o.insert("max_tokens".into(), OwnedValue::from(n)),
            _ => {
                return Err(invalid(
                    "invalid_value",
                    "max_output_tokens: expected a positive integer".into(),
                ));
            }
        };
    }
    crate::front::sampling_and_stream(&body, o)?;
    if let Some(format) = body
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|v| !v.is_null())
        && let Some(rf) = response_format(format)?
    {
        o.insert("response_format".into(), rf);
    }
    if let Some(effort) = body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|v| !v.is_null())
    {
        let effort = crate::front::reasoning_effort(effort, "reasoning.effort")?;
        o.insert("reasoning_effort".into(), effort);
    }
    let (tools, dropped) = translate_tools(body.get("tools"))?;
    let has_tools = !tools.is_empty();
    if has_tools {
        o.insert("tools".into(), OwnedValue::from(tools));
        if let Some(p) = body.get("parallel_tool_calls").and_then(|p| p.as_bool()) {
            o.insert("parallel_tool_calls".into(), OwnedValue::from(p));
        }
    }
    if let Some(tc) = body.get("tool_choice").filter(|v| !v.is_null())
        && let Some(choice) = tool_choice(tc, has_tools, &dropped)?
    {
        o.insert("tool_choice".into(), choice);
    }
    let mut chat = ChatRequest::from_value(out, hasher)?;
    chat.clamp_output = true;
    Ok(Inbound {
        chat,
        echo_model: model.unwrap_or("auto").to_string(),
        dropped_tools: dropped,
    })
}

fn translate_items(items: &[OwnedValue], messages: &mut Vec<OwnedValue>) -> Result<(), Invalid> {
    // call_id → the input index of its function_call, until its output arrives.
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut answered: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("input[{i}]");
        if !item.is_object() {
            return Err(wrong_type(&path, "an object", item));
        }
        let kind = match item.get("type") {
            Some(t) => t
                .as_str()
                .ok_or_else(|| wrong_type(format!("{path}.type"), "a string", t))?,
            None if item.get("role").is_some() => "message",
            None => {
                return Err(invalid(
                    "missing_required_parameter",
                    format!("{path}.type: required"),
                ));
            }
        };
        match kind {
            "message" => message(item, &path, messages)?,
            "function_call" => {
                let call_id = string_field(item, "call_id", &path)?;
                let name = string_field(item, "name", &path)?;
                let arguments = item.get_str("arguments").unwrap_or("{}");
                open.push((call_id.to_string(), i));
                let call = json!({
                    "id": call_id,
                    "type": "function",
                    "function": { "name": name, "arguments": arguments }
                });
                // Consecutive calls are one assistant turn (with its text, if it had some).
                let joins = messages.last().is_some_and(|m| {
                    m.get_str("role") == Some("assistant")
                        && (m.get("tool_calls").is_some()
                            || i > 0 && is_assistant_message(&items[i - 1]))
                });
                match messages.last_mut().filter(|_| joins) {
                    Some(last) => {
                        let o = last.as_object_mut().expect("messages are objects");
                        if o.get("tool_calls").is_none() {
                            o.insert("tool_calls".into(), OwnedValue::array());
                        }
                        if let Some(calls) = o.get_mut("tool_calls").and_then(|c| c.as_array_mut())
                        {
                            calls.push(call);
                        }
                    }
                    None => messages.push(json!({
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [call]
                    })),
                }
            }
            "function_call_output" => {
                let call_id = string_field(item, "call_id", &path)?;
                let Some(at) = open.iter().position(|(c, _)| c == call_id) else {
                    let why = if answered.iter().any(|c| c == call_id) {
                        "already has an output"
                    } else {
                        "has no function_call before it"
                    };
                    return Err(invalid(
                        "invalid_value",
                        format!("{path}.call_id: {call_id:?} {why}"),
                    ));
                };
                open.remove(at);
                answered.push(call_id.to_string());
                let output = match item.get("output") {
                    Some(o) if o.is_str() => o.as_str().unwrap_or_default().to_string(),
                    Some(o) if o.is_array() => parts_text(o, &format!("{path}.output"))?,
                    Some(o) => return Err(wrong_type(format!("{path}.output"), "a string", o)),
                    None => String::new(),
                };
                messages
                    .push(json!({ "role": "tool", "tool_call_id": call_id, "content": output }));
            }
            "reasoning" => {}
            other => {
                return Err(invalid(
                    "invalid_value",
                    format!(
                        "{path}.type: unsupported item {other:?}; expected message, function_call, function_call_output or reasoning"
                    ),
                ));
            }
        }
    }
    if let Some((call_id, i)) = open.first() {
        return Err(invalid(
            "invalid_value",
            format!(
                "input[{i}].call_id: the function_call {call_id:?} has no function_call_output"
            ),
        ));
    }
    Ok(())
}

fn is_assistant_message(item: &OwnedValue) -> bool {
    item.get_str("role") == Some("assistant") && item.get_str("type").is_none_or(|t| t == "message")
}

fn string_field<'v>(item: &'v OwnedValue, field: &str, path: &str) -> Result<&'v str, Invalid> {
    match item.get(field) {
        Some(v) => v.as_str().filter(|s| !s.is_empty()).ok_or_else(|| {
            invalid(
                "invalid_value",
                format!("{path}.{field}: expected a non-empty string"),
            )
        }),
        None => Err(invalid(
            "missing_required_parameter",
            format!("{path}.{field}: required"),
        )),
    }
}

fn message(item: &OwnedValue, path: &str, messages: &mut Vec<OwnedValue>) -> Result<(), Invalid> {
    let role = string_field(item, "role", path)?;
    let role = match role {
        "user" | "assistant" | "system" => role,
        // Chat providers know `system`; not all know `developer`.
        "developer" => "system",
        other => {
            return Err(invalid(
                "invalid_value",
                format!(
                    "{path}.role: unknown role {other:?}; expected user, assistant, system or developer"
                ),
            ));
        }
    };
    let content = item.get("content").ok_or_else(|| {
        invalid(
            "missing_required_parameter",
            format!("{path}.content: required"),
        )
    })?;
    let cpath = format!("{path}.content");
    let content = if let Some(s) = content.as_str() {
        OwnedValue::from(s)
    } else {
        let parts = content
            .as_array()
            .ok_or_else(|| wrong_type(&cpath, "a string or an array of parts", content))?;
        let mut out = Vec::new();
        let mut has_image = false;
        for (k, p) in parts.iter().enumerate() {
            let ppath = format!("{cpath}[{k}]");
            match p.get_str("type") {
                Some("input_text" | "output_text" | "text") => {
                    let t = p.get_str("text").ok_or_else(|| {
                        invalid(
                            "missing_required_parameter",
                            format!("{ppath}.text: required"),
                        )
                    })?;
                    out.push(json!({ "type": "text", "text": t }));
                }
                Some("refusal") => out.push(
                    json!({ "type": "text", "text": p.get_str("refusal").unwrap_or_default() }),
                ),
                Some("input_image") => {
                    let url = p.get_str("image_url").ok_or_else(|| {
                        invalid(
                            "invalid_value",
                            format!("{ppath}.image_url: required (file ids are not supported: nothing is stored)"),
                        )
                    })?;
                    out.push(json!({ "type": "image_url", "image_url": { "url": url } }));
                    has_image = true;
                }
                other => {
                    return Err(invalid(
                        "invalid_value",
                        format!(
                            "{ppath}.type: unsupported part {:?}; expected input_text, output_text or input_image",
                            other.unwrap_or("")
                        ),
                    ));
                }
            }
        }
        if has_image && role == "user" {
            OwnedValue::from(out)
        } else {
            OwnedValue::from(
                out.iter()
                    .filter_map(|p| p.get_str("text"))
                    .collect::<Vec<_>>()
                    .join("\n\n"),
            )
        }
    };
    messages.push(json!({ "role": role, "content": content }));
    Ok(())
}

/// The text of an array of output parts (`input_text` / `output_text`).
fn parts_text(v: &OwnedValue, path: &str) -> Result<String, Invalid> {
    let mut text = String::new();
    for (k, p) in v
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        match p.get_str("text") {
            Some(t) => {
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(t);
            }
            None if p.get_str("type") == Some("input_image") => text.push_str("[image omitted]"),
            None => {
                return Err(invalid(
                    "invalid_value",
                    format!("{path}[{k}]: expected a text part"),
                ));
            }
        }
    }
    Ok(text)
}

fn response_format(format: &OwnedValue) -> Result<Option<OwnedValue>, Invalid> {
    match format.get_str("type") {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({ "type": "json_object" }))),
        Some("json_schema") => {
            let schema = format
                .get("schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    invalid(
                        "missing_required_parameter",
                        "text.format.schema: required (a JSON Schema object)".into(),
                    )
                })?;
            Ok(Some(crate::front::json_schema_format(
                schema,
                format.get_str("name"),
                format.get_bool("strict"),
            )))
        }
        other => Err(invalid(
            "invalid_value",
            format!(
                "text.format.type: unknown value {:?}; expected text, json_object or json_schema",
                other.unwrap_or("")
            ),
        )),
    }
}

/// Responses `tools`: function tools pass on; built-in tools (web search, file search, …) run
/// on OpenAI's side and are dropped.
fn translate_tools(tools: Option<&OwnedValue>) -> Result<(Vec<OwnedValue>, Vec<String>), Invalid> {
    tools::translate(tools, |t, path| {
        let kind = t.get_str("type").ok_or_else(|| {
            invalid(
                "missing_required_parameter",
                format!("{path}.type: required"),
            )
        })?;
        if kind != "function" {
            return Ok(Tool::Dropped(t.get_str("name").unwrap_or(kind).to_string()));
        }
        let name = string_field(t, "name", path)?;
        let parameters = match t.get("parameters") {
            Some(p) if p.is_object() => p.clone(),
            Some(p) if !p.is_null() => {
                return Err(wrong_type(
                    format!("{path}.parameters"),
                    "a JSON Schema object",
                    p,
                ));
            }
            _ => json!({ "type": "object", "properties": {} }),
        };
        Ok(Tool::Function {
            name,
            parameters,
            description: t.get_str("description"),
            strict: t.get_bool("strict"),
        })
    })
}

fn tool_choice(
    tc: &OwnedValue,
    has_tools: bool,
    dropped: &[String],
) -> Result<Option<OwnedValue>, Invalid> {
    if let Some(s) = tc.as_str() {
        return match s {
            "auto" | "none" => Ok(has_tools.then(|| OwnedValue::from(s))),
            "required" if has_tools => Ok(Some(OwnedValue::from("required"))),
            "required" => Err(invalid(
                "invalid_value",
                "tool_choice: \"required\" forces a tool, but no function tool is left (built-in tools are dropped)".into(),
            )),
            other => Err(invalid(
                "invalid_value",
                format!("tool_choice: unknown value {other:?}; expected auto, none, required or a function"),
            )),
        };
    }
    match tc.get_str("type") {
        Some("function") => {
            let name = tc
                .get_str("name")
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    invalid(
                        "invalid_value",
                        "tool_choice.name: expected a non-empty string".into(),
                    )
                })?;
            if dropped.iter().any(|d| d == name) || !has_tools {
                return Err(invalid(
                    "invalid_value",
                    format!("tool_choice.name: the tool {name:?} cannot be served by this proxy"),
                ));
            }
            Ok(Some(
                json!({ "type": "function", "function": { "name": name } }),
            ))
        }
        Some("allowed_tools") => Ok(has_tools.then(|| {
            OwnedValue::from(if tc.get_str("mode") == Some("required") {
                "required"
            } else {
                "auto"
            })
        })),
        Some(other) => Err(invalid(
            "invalid_value",
            format!("tool_choice.type: the built-in tool {other:?} cannot be served by this proxy"),
        )),
        None => Err(wrong_type("tool_choice", "a string or an object", tc)),
    }
}
