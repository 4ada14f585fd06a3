//! A Gemini `generateContent` body made internal: `contents` (text, inline images, function
//! calls and responses; thoughts dropped), `systemInstruction`, `tools` (function
//! declarations; Google's own tools dropped), `toolConfig` and `generationConfig`. The REST API
//! takes field names in camelCase and snake_case alike, so both are read.

use std::hash::Hasher;

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use crate::chat::{ChatRequest, Invalid, invalid, parse_body, wrong_type};
use crate::front::Inbound;
use crate::front::tools::{self, Tool};

/// A field by its camelCase or snake_case name.
fn field<'v>(o: &'v OwnedValue, camel: &str, snake: &str) -> Option<&'v OwnedValue> {
    o.get(camel)
        .or_else(|| o.get(snake))
        .filter(|v| !v.is_null())
}

/// The path's model (`models/{model}:generateContent`) without the `models/` prefix.
pub fn model_name(path_model: &str) -> &str {
    path_model.strip_prefix("models/").unwrap_or(path_model)
}

/// `generateContent` (`stream`: `streamGenerateContent`) for `model`.
pub fn parse(
    bytes: &mut [u8],
    model: &str,
    stream: bool,
    hasher: impl Hasher,
) -> Result<Inbound, Invalid> {
    let body = parse_body(bytes)?;
    // countTokens may wrap the request.
    let body = field(&body, "generateContentRequest", "generate_content_request")
        .cloned()
        .unwrap_or(body);
    let mut messages = Vec::new();
    if let Some(system) = field(&body, "systemInstruction", "system_instruction") {
        let text = parts_text(system, "systemInstruction")?;
        if !text.is_empty() {
            messages.push(json!({ "role": "system", "content": text }));
        }
    }
    let contents = field(&body, "contents", "contents")
        .ok_or_else(|| invalid("missing_required_parameter", "contents: required".into()))?;
    let list = match contents.as_array() {
        Some(l) => l.as_slice(),
        // One Content object is taken as a list of one.
        None if contents.is_object() => std::slice::from_ref(contents),
        None => return Err(wrong_type("contents", "an array", contents)),
    };
    if list.is_empty() {
        return Err(invalid(
            "invalid_value",
            "contents: must not be empty".into(),
        ));
    }
    // Function responses name their function: each answers the oldest open call of that name.
    let mut open: Vec<(String, String)> = Vec::new();
    for (i, content) in list.iter().enumerate() {
        turn(
            content,
            &format!("contents[{i}]"),
            i,
            &mut open,
            &mut messages,
        )?;
    }
    let mut out = OwnedValue::object();
    let o = out.as_object_mut().expect("just made an object");
    o.insert("model".into(), OwnedValue::from(model));
    o.insert("messages".into(), OwnedValue::from(messages));
    let (kept, dropped) = translate_tools(body.get("tools"))?;
    let has_tools = !kept.is_empty();
    if has_tools {
        o.insert("tools".into(), OwnedValue::from(kept));
        if let Some(choice) = tool_choice(&body)? {
            o.insert("tool_choice".into(), choice);
        }
    }
    if let Some(g) = field(&body, "generationConfig", "generation_config") {
        generation(g, o)?;
    }
    o.insert("stream".into(), OwnedValue::from(stream));
    if stream {
        o.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    let mut chat = ChatRequest::from_value(out, hasher)?;
    chat.alias_when_unready = true;
    chat.clamp_output = true;
    Ok(Inbound {
        chat,
        echo_model: model.to_string(),
        dropped_tools: dropped,
    })
}

/// The text of a Content's parts, joined (system instructions).
fn parts_text(content: &OwnedValue, path: &str) -> Result<String, Invalid> {
    let parts = content
        .get_array("parts")
        .ok_or_else(|| invalid("invalid_value", format!("{path}.parts: required")))?;
    let mut text = String::new();
    for p in parts {
        if let Some(t) = p.get_str("text") {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(t);
        }
    }
    Ok(text)
}

fn turn(
    content: &OwnedValue,
    path: &str,
    index: usize,
    open: &mut Vec<(String, String)>,
    messages: &mut Vec<OwnedValue>,
) -> Result<(), Invalid> {
    if !content.is_object() {
        return Err(wrong_type(path, "an object", content));
    }
    let role = content.get_str("role").unwrap_or("user");
    let parts = content
        .get_array("parts")
        .ok_or_else(|| invalid("invalid_value", format!("{path}.parts: required")))?;
    let mut text = String::new();
    let mut images = Vec::new();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let ppath = format!("{path}.parts[{j}]");
        if !part.is_object() {
            return Err(wrong_type(&ppath, "an object", part));
        }
        // Thoughts are the model's own; providers are not sent them back.
        if part.get_bool("thought") == Some(true) {
            continue;
        }
        if let Some(t) = part.get_str("text") {
            text.push_str(t);
        } else if let Some(data) = field(part, "inlineData", "inline_data") {
            let mime = field(data, "mimeType", "mime_type")
                .and_then(|m| m.as_str())
                .unwrap_or("application/octet-stream");
            if !mime.starts_with("image/") {
                return Err(invalid(
                    "invalid_value",
                    format!("{ppath}.inlineData: {mime} is not supported; images only"),
                ));
            }
            let b64 = data.get_str("data").ok_or_else(|| {
                invalid(
                    "invalid_value",
                    format!("{ppath}.inlineData.data: required"),
                )
            })?;
            images.push(format!("data:{mime};base64,{b64}"));
        } else if let Some(call) = field(part, "functionCall", "function_call") {
            let name = call.get_str("name").ok_or_else(|| {
                invalid(
                    "invalid_value",
                    format!("{ppath}.functionCall.name: required"),
                )
            })?;
            let args = call
                .get("args")
                .filter(|a| !a.is_null())
                .map(|a| simd_json::to_string(a).unwrap_or_else(|_| "{}".into()))
                .unwrap_or_else(|| "{}".into());
            let id = call
                .get_str("id")
                .map_or_else(|| format!("call_{index}_{j}"), str::to_string);
            open.push((name.to_string(), id.clone()));
            calls.push(json!({
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": args }
            }));
        } else if let Some(response) = field(part, "functionResponse", "function_response") {
            let name = response.get_str("name").unwrap_or_default();
            let at = match response.get_str("id") {
                Some(id) => open.iter().position(|(_, open_id)| open_id == id),
                None => open.iter().position(|(n, _)| n == name),
            };
            let Some(at) = at else {
                return Err(invalid(
                    "invalid_value",
                    format!("{ppath}.functionResponse: no functionCall of {name:?} before it"),
                ));
            };
            let (_, id) = open.remove(at);
            let output = response
                .get("response")
                .map(|r| simd_json::to_string(r).unwrap_or_default())
                .unwrap_or_default();
            results.push(json!({ "role": "tool", "tool_call_id": id, "content": output }));
        } else if field(part, "fileData", "file_data").is_some() {
            return Err(invalid(
                "invalid_value",
                format!("{ppath}.fileData: uploaded files are not supported; send inlineData"),
            ));
        } else if field(part, "executableCode", "executable_code").is_some()
            || field(part, "codeExecutionResult", "code_execution_result").is_some()
        {
            // Code execution runs on Google's servers: its record is not passed on.
        } else {
            return Err(invalid(
                "invalid_value",
                format!("{ppath}: expected text, inlineData, functionCall or functionResponse"),
            ));
        }
    }
    match role {
        "model" => {
            let mut msg = json!({ "role": "assistant", "content": text });
            if !calls.is_empty()
                && let Some(o) = msg.as_object_mut()
            {
                o.insert("tool_calls".into(), OwnedValue::from(calls));
            }
            messages.push(msg);
        }
        "user" | "function" | "tool" => {
            messages.extend(results);
            if !text.is_empty() || !images.is_empty() {
                let content = if images.is_empty() {
                    OwnedValue::from(text)
                } else {
                    let mut p = Vec::with_capacity(images.len() + 1);
                    if !text.is_empty() {
                        p.push(json!({ "type": "text", "text": text }));
                    }
                    for url in images {
                        p.push(json!({ "type": "image_url", "image_url": { "url": url } }));
                    }
                    OwnedValue::from(p)
                };
                messages.push(json!({ "role": "user", "content": content }));
            }
        }
        other => {
            return Err(invalid(
                "invalid_value",
                format!("{path}.role: unknown role {other:?}; expected user or model"),
            ));
        }
    }
    Ok(())
}

/// Function declarations as OpenAI tools; Google's own tools (search, code execution, URL
/// context) are dropped and named.
fn translate_tools(tools: Option<&OwnedValue>) -> Result<(Vec<OwnedValue>, Vec<String>), Invalid> {
    let Some(list) = tools.filter(|t| !t.is_null()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let list = list
        .as_array()
        .ok_or_else(|| wrong_type("tools", "an array", list))?;
    // Each Tool object holds several declarations; flatten them into one list of entries.
    let mut declarations = Vec::new();
    let mut dropped = Vec::new();
    for (i, t) in list.iter().enumerate() {
        if !t.is_object() {
            return Err(wrong_type(format!("tools[{i}]"), "an object", t));
        }
        let Some(o) = t.as_object() else { continue };
        for (k, v) in o.iter() {
            match k.as_ref() {
                "functionDeclarations" | "function_declarations" => {
                    let decls = v
                        .as_array()
                        .ok_or_else(|| wrong_type(format!("tools[{i}].{k}"), "an array", v))?;
                    declarations.extend(decls.iter().cloned());
                }
                other => dropped.push(other.to_string()),
            }
        }
    }
    let list = OwnedValue::from(declarations);
    let (kept, _) = tools::translate(Some(&list), read_declaration)?;
    Ok((kept, dropped))
}

fn read_declaration<'a>(d: &'a OwnedValue, path: &str) -> Result<Tool<'a>, Invalid> {
    let name = d
        .get_str("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid("invalid_value", format!("{path}.name: required")))?;
    let parameters = match field(d, "parametersJsonSchema", "parameters_json_schema") {
        Some(p) => p.clone(),
        None => field(d, "parameters", "parameters")
            .map(openapi_schema)
            .unwrap_or_else(|| json!({ "type": "object", "properties": {} })),
    };
    Ok(Tool::Function {
        name,
        parameters,
        description: d.get_str("description"),
        strict: None,
    })
}

/// Gemini's OpenAPI-style Schema as JSON Schema: its `type` enums are upper case (`OBJECT`),
/// and `nullable` is a flag of its own.
fn openapi_schema(schema: &OwnedValue) -> OwnedValue {
    match schema {
        OwnedValue::Object(o) => {
            let mut out = simd_json::owned::Object::with_capacity(o.len());
            let mut nullable = false;
            for (k, v) in o.iter() {
                match k.as_ref() {
                    "type" => {
                        let t = v.as_str().map(str::to_ascii_lowercase);
                        out.insert(k.clone(), t.map_or_else(|| v.clone(), OwnedValue::from));
                    }
                    "nullable" => nullable = v.as_bool() == Some(true),
                    "propertyOrdering" | "property_ordering" => {}
                    _ => {
                        out.insert(k.clone(), openapi_schema(v));
                    }
                }
            }
            if nullable && let Some(t) = out.get("type").and_then(|t| t.as_str()) {
                let t = t.to_string();
                out.insert("type".into(), json!([t, "null"]));
            }
            OwnedValue::from(out)
        }
        OwnedValue::Array(a) => OwnedValue::from(a.iter().map(openapi_schema).collect::<Vec<_>>()),
        other => other.clone(),
    }
}

/// `toolConfig.functionCallingConfig`: AUTO, ANY (one named function → that one), NONE.
fn tool_choice(body: &OwnedValue) -> Result<Option<OwnedValue>, Invalid> {
    let Some(config) = field(body, "toolConfig", "tool_config")
        .and_then(|c| field(c, "functionCallingConfig", "function_calling_config"))
    else {
        return Ok(None);
    };
    let allowed = field(config, "allowedFunctionNames", "allowed_function_names")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|n| n.as_str()).collect::<Vec<_>>())
        .unwrap_or_default();
    Ok(
        match config
            .get_str("mode")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("AUTO" | "MODE_UNSPECIFIED" | "VALIDATED") => None,
            Some("NONE") => Some(OwnedValue::from("none")),
            Some("ANY") => Some(match allowed.as_slice() {
                [one] => json!({ "type": "function", "function": { "name": *one } }),
                _ => OwnedValue::from("required"),
            }),
            Some(other) => {
                return Err(invalid(
                    "invalid_value",
                    format!("toolConfig.functionCallingConfig.mode: unknown value {other:?}"),
                ));
            }
        },
    )
}

/// `generationConfig`: sampling, length, stops, JSON output and thinking.
fn generation(g: &OwnedValue, o: &mut simd_json::owned::Object) -> Result<(), Invalid> {
    if !g.is_object() {
        return Err(wrong_type("generationConfig", "an object", g));
    }
    for (camel, snake, to) in [
        ("temperature", "temperature", "temperature"),
        ("topP", "top_p", "top_p"),
        ("seed", "seed", "seed"),
        ("presencePenalty", "presence_penalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty", "frequency_penalty"),
        ("stopSequences", "stop_sequences", "stop"),
    ] {
        if let Some(v) = field(g, camel, snake) {
            o.insert(to.into(), v.clone());
        }
    }
    if let Some(n) = field(g, "maxOutputTokens", "max_output_tokens") {
        match n.as_u64() {
            Some(n) if n >= 1 => {
                o.insert("max_tokens".into(), OwnedValue::from(n));
            }
            _ => {
                return Err(invalid(
                    "invalid_value",
                    "generationConfig.maxOutputTokens: expected a positive integer".into(),
                ));
            }
        }
    }
    if let Some(n) = field(g, "candidateCount", "candidate_count")
        && n.as_u64() != Some(1)
    {
        return Err(invalid(
            "invalid_value",
            "generationConfig.candidateCount: only 1 is supported".into(),
        ));
    }
    let schema = match field(g, "responseJsonSchema", "response_json_schema") {
        Some(s) => Some(s.clone()),
        None => field(g, "responseSchema", "response_schema").map(openapi_schema),
    };
    let mime = field(g, "responseMimeType", "response_mime_type").and_then(|m| m.as_str());
    match (schema, mime) {
        (Some(schema), _) => {
            o.insert(
                "response_format".into(),
                super::super::json_schema_format(&schema, None, None),
            );
        }
        (None, Some("application/json")) => {
            o.insert("response_format".into(), json!({ "type": "json_object" }));
        }
        _ => {}
    }
    if let Some(thinking) = field(g, "thinkingConfig", "thinking_config") {
        let level = field(thinking, "thinkingLevel", "thinking_level")
            .and_then(|l| l.as_str())
            .map(str::to_ascii_lowercase)
            .or_else(|| {
                // A budget in tokens, as the nearest level.
                let b = field(thinking, "thinkingBudget", "thinking_budget")?.as_i64()?;
                Some(
                    match b {
                        ..=0 => "low",
                        1..=4096 => "low",
                        4097..=16384 => "medium",
                        _ => "high",
                    }
                    .to_string(),
                )
            });
        if let Some(level) = level {
            o.insert(
                "reasoning_effort".into(),
                super::super::reasoning_effort(
                    &OwnedValue::from(level),
                    "generationConfig.thinkingConfig.thinkingLevel",
                )?,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn parse_str(body: &str) -> Result<Inbound, Invalid> {
        parse(
            &mut body.as_bytes().to_vec(),
            "gemini-3.1-pro-preview",
            false,
            DefaultHasher::new(),
        )
    }

    #[test]
    fn schemas_come_out_as_json_schema() {
        let s = openapi_schema(&json!({
            "type": "OBJECT",
            "properties": { "city": { "type": "STRING", "nullable": true } },
            "propertyOrdering": ["city"],
            "required": ["city"]
        }));
        assert_eq!(
            s,
            json!({
                "type": "object",
                "properties": { "city": { "type": ["string", "null"] } },
                "required": ["city"]
            })
        );
    }

    #[test]
    fn refusals_name_the_field() {
        // Tries: no contents, a file part, an unknown part, a response with no call, a bad
        // mode, several candidates.
        for (body, says) in [
            (r#"{}"#, "contents: required"),
            (
                r#"{"contents":[{"role":"user","parts":[{"fileData":{"fileUri":"gs://x"}}]}]}"#,
                "contents[0].parts[0].fileData",
            ),
            (
                r#"{"contents":[{"role":"user","parts":[{"video":1}]}]}"#,
                "contents[0].parts[0]: expected",
            ),
            (
                r#"{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}"#,
                "contents[0].parts[0].functionResponse: no functionCall",
            ),
            (
                r#"{"contents":[{"parts":[{"text":"x"}]}],"tools":[{"functionDeclarations":[{"name":"f"}]}],"toolConfig":{"functionCallingConfig":{"mode":"SOMETIMES"}}}"#,
                "toolConfig.functionCallingConfig.mode",
            ),
            (
                r#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"candidateCount":2}}"#,
                "generationConfig.candidateCount",
            ),
        ] {
            let e = parse_str(body).err().unwrap();
            assert!(e.message.starts_with(says), "{body}: {}", e.message);
        }
    }
}
