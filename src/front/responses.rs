//! OpenAI Responses (`/v1/responses`), stateless, as Codex CLI and the `openai` SDKs'
//! `client.responses` speak it.
//!
//! Requests: `instructions` and `system`/`developer` messages become system messages;
//! `input_text`/`output_text`/`input_image` parts become content; `function_call` items become
//! assistant tool calls and `function_call_output` items `tool` messages, paired by `call_id`
//! (an unpaired one is refused); `reasoning` items are dropped. Built-in tools (`web_search`,
//! `file_search`, `namespace`, …) are dropped and named. Nothing is stored, so
//! `previous_response_id` is refused with the reason.
//!
//! Answers: the response object; streams as the full event sequence with increasing
//! `sequence_number`, ending in `response.completed` (or `.incomplete` / `.failed`).

use std::hash::Hasher;

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use super::chunk::{self, Piece};
use super::{Echo, Inbound, event, new_id, unix_now};
use crate::chat::{ChatRequest, Invalid, invalid, parse_body, wrong_type};
use crate::json::encode;
use crate::wire::{Usage, WireError};

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
    for field in ["temperature", "top_p"] {
        if let Some(v) = body.get(field).filter(|v| !v.is_null()) {
            o.insert(field.into(), v.clone());
        }
    }
    if let Some(v) = body.get("stream").filter(|v| !v.is_null()) {
        let stream = v
            .as_bool()
            .ok_or_else(|| wrong_type("stream", "a boolean", v))?;
        o.insert("stream".into(), OwnedValue::from(stream));
        if stream {
            o.insert("stream_options".into(), json!({ "include_usage": true }));
        }
    }
    if let Some(format) = body
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|v| !v.is_null())
        && let Some(rf) = response_format(format)?
    {
        o.insert("response_format".into(), rf);
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
                .ok_or_else(|| wrong_type(&format!("{path}.type"), "a string", t))?,
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
                    Some(o) => return Err(wrong_type(&format!("{path}.output"), "a string", o)),
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
            let mut js = json!({
                "name": format.get_str("name").unwrap_or("response"),
                "schema": schema.clone()
            });
            if let (Some(strict), Some(o)) = (format.get_bool("strict"), js.as_object_mut()) {
                o.insert("strict".into(), OwnedValue::from(strict));
            }
            Ok(Some(json!({ "type": "json_schema", "json_schema": js })))
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

fn translate_tools(tools: Option<&OwnedValue>) -> Result<(Vec<OwnedValue>, Vec<String>), Invalid> {
    let Some(tools) = tools.filter(|t| !t.is_null()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let list = tools
        .as_array()
        .ok_or_else(|| wrong_type("tools", "an array", tools))?;
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let path = format!("tools[{i}]");
        let kind = t.get_str("type").ok_or_else(|| {
            invalid(
                "missing_required_parameter",
                format!("{path}.type: required"),
            )
        })?;
        if kind != "function" {
            // Built-in tools run on OpenAI's side; the proxy has none of them.
            dropped.push(t.get_str("name").unwrap_or(kind).to_string());
            continue;
        }
        let name = string_field(t, "name", &path)?;
        let mut function = json!({ "name": name });
        let f = function.as_object_mut().expect("an object");
        match t.get("parameters") {
            Some(p) if p.is_object() => {
                f.insert("parameters".into(), p.clone());
            }
            Some(p) if !p.is_null() => {
                return Err(wrong_type(
                    &format!("{path}.parameters"),
                    "a JSON Schema object",
                    p,
                ));
            }
            _ => {
                f.insert(
                    "parameters".into(),
                    json!({ "type": "object", "properties": {} }),
                );
            }
        }
        if let Some(d) = t.get_str("description") {
            f.insert("description".into(), OwnedValue::from(d));
        }
        if let Some(s) = t.get_bool("strict") {
            f.insert("strict".into(), OwnedValue::from(s));
        }
        kept.push(json!({ "type": "function", "function": function }));
    }
    Ok((kept, dropped))
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

fn usage_value(u: Usage) -> OwnedValue {
    json!({
        "input_tokens": u.prompt,
        "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": u.completion,
        "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": u.total
    })
}

/// The response object around `output`.
fn response(
    id: &str,
    created: u64,
    model: &str,
    status: &str,
    output: Vec<OwnedValue>,
    usage: Option<Usage>,
) -> OwnedValue {
    let incomplete = (status == "incomplete").then(|| json!({ "reason": "max_output_tokens" }));
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": null,
        "max_output_tokens": null,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": null,
        "reasoning": { "effort": null, "summary": null },
        "store": false,
        "temperature": null,
        "text": { "format": { "type": "text" } },
        "tool_choice": "auto",
        "tools": [],
        "top_p": null,
        "truncation": "disabled",
        "usage": usage.map(usage_value),
        "metadata": {}
    })
}

fn message_item(id: &str, text: &str, status: &str) -> OwnedValue {
    let content = if status == "in_progress" {
        OwnedValue::array()
    } else {
        OwnedValue::from(vec![text_part(text)])
    };
    json!({ "id": id, "type": "message", "status": status, "role": "assistant", "content": content })
}

fn text_part(text: &str) -> OwnedValue {
    json!({ "type": "output_text", "text": text, "annotations": [] })
}

fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> OwnedValue {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments
    })
}

fn status_of(finish: &str) -> &'static str {
    if finish == "length" {
        "incomplete"
    } else {
        "completed"
    }
}

pub fn render(completion: Vec<u8>, echo: &Echo<'_>) -> Result<Vec<u8>, WireError> {
    let a = chunk::answer(completion)?;
    let mut output = Vec::new();
    if !a.text.is_empty() {
        output.push(message_item(&new_id("msg_"), &a.text, "completed"));
    }
    for c in &a.calls {
        let call_id = if c.id.is_empty() {
            new_id("call_")
        } else {
            c.id.clone()
        };
        output.push(call_item(
            &new_id("fc_"),
            &call_id,
            &c.name,
            &c.arguments,
            "completed",
        ));
    }
    let r = response(
        &new_id("resp_"),
        unix_now(),
        echo.model,
        status_of(&a.finish),
        output,
        Some(echo.usage),
    );
    Ok(encode(&r))
}

enum Item {
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        index: u64,
    },
}

impl Item {
    fn value(&self, status: &str) -> OwnedValue {
        match self {
            Item::Message { id, text } => message_item(id, text, status),
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                ..
            } => call_item(id, call_id, name, arguments, status),
        }
    }
}

/// OpenAI chunks → Responses stream events.
pub struct StreamEncoder {
    id: String,
    created: u64,
    model: String,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    /// The last item is still receiving deltas.
    open: bool,
    finish: Option<String>,
    scratch: Vec<u8>,
}

impl StreamEncoder {
    pub fn new(model: &str, _input_tokens: u64) -> StreamEncoder {
        StreamEncoder {
            id: new_id("resp_"),
            created: unix_now(),
            model: model.to_string(),
            seq: 0,
            started: false,
            items: Vec::new(),
            open: false,
            finish: None,
            scratch: Vec::new(),
        }
    }

    /// Writes one event: `fields` gets `type` and `sequence_number` added.
    fn emit(&mut self, name: &str, mut fields: OwnedValue, out: &mut Vec<u8>) {
        if let Some(o) = fields.as_object_mut() {
            o.insert("type".into(), OwnedValue::from(name));
            o.insert("sequence_number".into(), OwnedValue::from(self.seq));
        }
        self.seq += 1;
        event(out, name, &encode(&fields));
    }

    fn snapshot(&self, status: &str, usage: Option<Usage>) -> OwnedValue {
        let item_status = if status == "in_progress" {
            "in_progress"
        } else {
            "completed"
        };
        let output = self.items.iter().map(|i| i.value(item_status)).collect();
        response(&self.id, self.created, &self.model, status, output, usage)
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.snapshot("in_progress", None);
        self.emit("response.created", json!({ "response": r.clone() }), out);
        self.emit("response.in_progress", json!({ "response": r }), out);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let index = self.items.len() - 1;
        let done = self.items[index].value("completed");
        match &self.items[index] {
            Item::Message { id, text } => {
                let (id, text) = (id.clone(), text.clone());
                self.emit(
                    "response.output_text.done",
                    json!({ "item_id": id.as_str(), "output_index": index, "content_index": 0, "text": text.as_str(), "logprobs": [] }),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({ "item_id": id, "output_index": index, "content_index": 0, "part": text_part(&text) }),
                    out,
                );
            }
            Item::Call {
                id,
                name,
                arguments,
                ..
            } => {
                let fields = json!({ "item_id": id.as_str(), "output_index": index, "name": name.as_str(), "arguments": arguments.as_str() });
                self.emit("response.function_call_arguments.done", fields, out);
            }
        }
        self.emit(
            "response.output_item.done",
            json!({ "output_index": index, "item": done }),
            out,
        );
    }

    fn piece(&mut self, piece: Piece<'_>, out: &mut Vec<u8>) {
        match piece {
            Piece::Text(t) => {
                let in_message =
                    self.open && matches!(self.items.last(), Some(Item::Message { .. }));
                if !in_message {
                    self.close(out);
                    let id = new_id("msg_");
                    self.items.push(Item::Message {
                        id: id.clone(),
                        text: String::new(),
                    });
                    self.open = true;
                    let index = self.items.len() - 1;
                    let added = self.items[index].value("in_progress");
                    self.emit(
                        "response.output_item.added",
                        json!({ "output_index": index, "item": added }),
                        out,
                    );
                    self.emit(
                        "response.content_part.added",
                        json!({ "item_id": id.as_str(), "output_index": index, "content_index": 0, "part": text_part("") }),
                        out,
                    );
                }
                let index = self.items.len() - 1;
                let Some(Item::Message { id, text }) = self.items.last_mut() else {
                    return;
                };
                text.push_str(t);
                let id = id.clone();
                self.emit(
                    "response.output_text.delta",
                    json!({ "item_id": id, "output_index": index, "content_index": 0, "delta": t, "logprobs": [] }),
                    out,
                );
            }
            Piece::Tool {
                index: upstream,
                id,
                name,
                arguments,
            } => {
                // A fragment continues the open call of its index; an id on an index whose call
                // already has arguments starts a new call (providers that reuse index 0).
                let same = self.open
                    && matches!(self.items.last(), Some(Item::Call { index, arguments: so_far, .. })
                        if *index == upstream && (id.is_none() || so_far.is_empty()));
                if !same {
                    self.close(out);
                    self.items.push(Item::Call {
                        id: new_id("fc_"),
                        call_id: id.map_or_else(|| new_id("call_"), str::to_string),
                        name: name.unwrap_or_default().to_string(),
                        arguments: String::new(),
                        index: upstream,
                    });
                    self.open = true;
                    let index = self.items.len() - 1;
                    let added = self.items[index].value("in_progress");
                    self.emit(
                        "response.output_item.added",
                        json!({ "output_index": index, "item": added }),
                        out,
                    );
                }
                if arguments.is_empty() {
                    return;
                }
                let index = self.items.len() - 1;
                let Some(Item::Call {
                    id, arguments: all, ..
                }) = self.items.last_mut()
                else {
                    return;
                };
                all.push_str(arguments);
                let id = id.clone();
                self.emit(
                    "response.function_call_arguments.delta",
                    json!({ "item_id": id, "output_index": index, "delta": arguments }),
                    out,
                );
            }
            Piece::Finish(r) => self.finish = Some(r.to_string()),
        }
    }

    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
        self.start(out);
        // The parse buffer leaves `self` for the call, so pieces can borrow it.
        let mut scratch = std::mem::take(&mut self.scratch);
        let r = chunk::pieces(data, &mut scratch, |p| self.piece(p, out));
        self.scratch = scratch;
        r
    }

    pub fn finish(&mut self, usage: Usage, out: &mut Vec<u8>) {
        self.start(out);
        self.close(out);
        // An empty call's arguments are `{}` so they parse.
        for item in &mut self.items {
            if let Item::Call { arguments, .. } = item
                && arguments.trim().is_empty()
            {
                arguments.push_str("{}");
            }
        }
        let status = status_of(self.finish.as_deref().unwrap_or("stop"));
        let r = self.snapshot(status, Some(usage));
        let name = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(name, json!({ "response": r }), out);
    }

    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        let mut r = self.snapshot("failed", None);
        if let Some(o) = r.as_object_mut() {
            o.insert(
                "error".into(),
                json!({ "code": "server_error", "message": message }),
            );
        }
        self.emit("response.failed", json!({ "response": r }), out);
    }
}
