//! Tool calls a model wrote as text, made real: small and mid-size models on free tiers often
//! answer a request with tools by writing the call in their chat template's own syntax
//! instead of a structured `tool_calls` entry, and Groq refuses such an answer with a 400
//! `tool_use_failed` that carries the text as `failed_generation`. An agent then sees prose
//! and stops. Each dialect below is recognised only for tools the request declared, and
//! arguments that are double-encoded or slightly broken JSON are repaired; anything else is
//! left as the model wrote it.
//!
//! Owns the dialects and the repair. Pure functions over text; no I/O.

use simd_json::OwnedValue;
use simd_json::prelude::*;

/// Where a rescued call was found (a label of `/metrics` and the request log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `<tool_call>{"name":…,"arguments":…}</tool_call>` (Hermes, Qwen).
    Hermes,
    /// `<|python_tag|>{"name":…,"parameters":…}` (Llama 3.x).
    PythonTag,
    /// `[TOOL_CALLS][{…}]` or `[TOOL_CALLS]name[ARGS]{…}` (Mistral).
    Mistral,
    /// A bare `{"name":…,"arguments":…}` object as the whole answer (or in a code fence).
    Json,
    /// Groq's 400 `tool_use_failed`, rescued from its `failed_generation`.
    GroqFailed,
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [
        Dialect::Hermes,
        Dialect::PythonTag,
        Dialect::Mistral,
        Dialect::Json,
        Dialect::GroqFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Hermes => "hermes",
            Dialect::PythonTag => "python_tag",
            Dialect::Mistral => "mistral",
            Dialect::Json => "json",
            Dialect::GroqFailed => "groq_tool_use_failed",
        }
    }
}

/// One rescued call: the tool's name and its arguments as a JSON object's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub name: String,
    pub arguments: String,
}

/// Calls found in an answer's text, and the prose before them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rescued {
    pub dialect: Dialect,
    pub calls: Vec<Call>,
    /// What the model wrote before the first call (kept as the message's content).
    pub prose: String,
}

/// The openers a streamed answer is held back at.
pub const OPENERS: [&str; 4] = ["<tool_call>", "<|python_tag|>", "[TOOL_CALLS]", "```"];

/// The calls in `text`, if it is one of the dialects and every call names a declared tool.
pub fn from_text(text: &str, tools: &[&str]) -> Option<Rescued> {
    if tools.is_empty() {
        return None;
    }
    let found = hermes(text)
        .or_else(|| python_tag(text))
        .or_else(|| mistral(text))
        .or_else(|| bare_json(text))?;
    let (dialect, prose, calls) = found;
    if calls.is_empty() || !calls.iter().all(|c| tools.contains(&c.name.as_str())) {
        return None;
    }
    Some(Rescued {
        dialect,
        calls,
        prose: prose.trim_end().to_string(),
    })
}

/// Groq's `tool_use_failed` error body: its `failed_generation` read as any dialect, or as
/// the JSON list of calls Groq sometimes puts there.
pub fn from_groq_error(body: &[u8], tools: &[&str]) -> Option<Rescued> {
    let mut copy = body.to_vec();
    let v = crate::json::parse_object(&mut copy).ok()?;
    let e = v.get("error")?;
    if e.get_str("code") != Some("tool_use_failed") {
        return None;
    }
    let generation = e.get_str("failed_generation")?;
    let mut r = from_text(generation, tools).or_else(|| {
        let calls = calls_of(&parse_lenient(generation)?)?;
        (!calls.is_empty() && calls.iter().all(|c| tools.contains(&c.name.as_str()))).then(|| {
            Rescued {
                dialect: Dialect::GroqFailed,
                calls,
                prose: String::new(),
            }
        })
    })?;
    r.dialect = Dialect::GroqFailed;
    Some(r)
}

type Found<'t> = (Dialect, &'t str, Vec<Call>);

fn hermes(text: &str) -> Option<Found<'_>> {
    let start = text.find("<tool_call>")?;
    let mut calls = Vec::new();
    let mut rest = &text[start..];
    while let Some(open) = rest.find("<tool_call>") {
        let body = &rest[open + "<tool_call>".len()..];
        // A missing close tag at the very end is forgiven (the stop sequence ate it).
        let (inner, after) = match body.find("</tool_call>") {
            Some(close) => (&body[..close], &body[close + "</tool_call>".len()..]),
            None => (body, ""),
        };
        calls.extend(calls_of(&parse_lenient(inner)?)?);
        rest = after;
    }
    rest.trim()
        .is_empty()
        .then_some((Dialect::Hermes, &text[..start], calls))
}

fn python_tag(text: &str) -> Option<Found<'_>> {
    let start = text.find("<|python_tag|>")?;
    let body = text[start + "<|python_tag|>".len()..]
        .trim()
        .trim_end_matches("<|eom_id|>")
        .trim_end_matches("<|eot_id|>")
        .trim();
    // Several calls come separated by `;`.
    let mut calls = Vec::new();
    for part in split_top_level(body, b';') {
        calls.extend(calls_of(&parse_lenient(part)?)?);
    }
    Some((Dialect::PythonTag, &text[..start], calls))
}

fn mistral(text: &str) -> Option<Found<'_>> {
    let start = text.find("[TOOL_CALLS]")?;
    let body = text[start + "[TOOL_CALLS]".len()..].trim();
    let mut calls = Vec::new();
    if body.starts_with('[') || body.starts_with('{') {
        calls = calls_of(&parse_lenient(body)?)?;
    } else {
        // The newer template: `name[ARGS]{…}`, repeated.
        for part in body.split("[TOOL_CALLS]") {
            let (name, args) = part.split_once("[ARGS]")?;
            let args = repair_arguments(&parse_lenient(args.trim())?)?;
            calls.push(Call {
                name: name.trim().to_string(),
                arguments: args,
            });
        }
    }
    Some((Dialect::Mistral, &text[..start], calls))
}

fn bare_json(text: &str) -> Option<Found<'_>> {
    let t = text.trim();
    let t = match t.strip_prefix("```") {
        Some(fenced) => {
            let fenced = fenced.strip_prefix("json").unwrap_or(fenced);
            fenced.trim().strip_suffix("```")?.trim()
        }
        None => t,
    };
    if !t.starts_with('{') && !t.starts_with('[') {
        return None;
    }
    Some((Dialect::Json, "", calls_of(&parse_lenient(t)?)?))
}

/// `{"name", "arguments"|"parameters"}`, a list of them, or OpenAI's own `{"function": …}`.
fn calls_of(v: &OwnedValue) -> Option<Vec<Call>> {
    if let Some(list) = v.as_array() {
        let mut out = Vec::with_capacity(list.len());
        for item in list {
            out.extend(calls_of(item)?);
        }
        return Some(out);
    }
    let v = v.get("function").filter(|f| f.is_object()).unwrap_or(v);
    let name = v.get_str("name").filter(|n| !n.is_empty())?;
    let args = v
        .get("arguments")
        .or_else(|| v.get("parameters"))
        .or_else(|| v.get("args"));
    let arguments = match args {
        None => "{}".to_string(),
        Some(a) if a.is_null() => "{}".to_string(),
        Some(a) => repair_arguments(a)?,
    };
    Some(vec![Call {
        name: name.to_string(),
        arguments,
    }])
}

/// Arguments as a JSON object's text: an object as it is, a string holding one (double
/// encoded, perhaps twice) decoded; anything else is no call.
pub fn repair_arguments(a: &OwnedValue) -> Option<String> {
    let mut a = a.clone();
    for _ in 0..3 {
        match a.as_str() {
            Some(s) => a = parse_lenient(s)?,
            None => break,
        }
    }
    a.is_object()
        .then(|| simd_json::to_string(&a).ok())
        .flatten()
}

/// JSON as models write it: as is, else with trailing commas dropped, unclosed strings,
/// objects and arrays closed, and Python's `True`/`False`/`None` outside strings read as JSON.
pub fn parse_lenient(text: &str) -> Option<OwnedValue> {
    let text = text.trim();
    if text.is_empty() || text.len() > 1 << 20 {
        return None;
    }
    let mut bytes = text.as_bytes().to_vec();
    if let Ok(v) = crate::json::parse_value(&mut bytes) {
        return Some(v);
    }
    let mut fixed = repair(text).into_bytes();
    crate::json::parse_value(&mut fixed).ok()
}

/// The repairs of [`parse_lenient`], in one pass over the text.
fn repair(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut stack = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            let len = utf8_len(c);
            out.push_str(&text[i..(i + len).min(text.len())]);
            i += len;
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' => stack.push(b'}'),
            b'[' => stack.push(b']'),
            b'}' | b']' => {
                // A comma right before a close is dropped.
                let trimmed = out.trim_end().len();
                if out[..trimmed].ends_with(',') {
                    out.truncate(trimmed - 1);
                }
                stack.pop();
            }
            b'T' | b'F' | b'N' => {
                let literal = [("True", "true"), ("False", "false"), ("None", "null")]
                    .into_iter()
                    .find(|(py, _)| text[i..].starts_with(py));
                if let Some((py, js)) = literal {
                    out.push_str(js);
                    i += py.len();
                    continue;
                }
            }
            _ => {}
        }
        // Copy the whole UTF-8 character.
        let len = utf8_len(c);
        out.push_str(&text[i..(i + len).min(text.len())]);
        i += len;
    }
    if in_string {
        if escaped {
            out.pop();
        }
        out.push('"');
    }
    let trimmed = out.trim_end().len();
    if out[..trimmed].ends_with(',') {
        out.truncate(trimmed - 1);
    }
    while let Some(close) = stack.pop() {
        out.push(close as char);
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// `text` split at `sep` outside strings, objects and arrays.
fn split_top_level(text: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut from) = (0i32, false, false, 0);
    for (i, &c) in text.as_bytes().iter().enumerate() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            _ if c == sep && depth == 0 => {
                out.push(text[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    let last = text[from..].trim();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// The function names a request declared (`tools[].function.name`).
pub fn declared(request: &OwnedValue) -> Vec<String> {
    request
        .get_array("tools")
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t.get("function")?.get_str("name"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn call_id() -> String {
    let mut b = [0u8; 12];
    crate::crypto::fill_random(&mut b);
    format!("call_{}", crate::crypto::to_hex(&b))
}

fn tool_calls_value(calls: &[Call]) -> OwnedValue {
    OwnedValue::from(
        calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                simd_json::json!({
                    "index": i,
                    "id": call_id(),
                    "type": "function",
                    "function": { "name": c.name.as_str(), "arguments": c.arguments.as_str() }
                })
            })
            .collect::<Vec<_>>(),
    )
}

/// A normalised (OpenAI) completion whose text is a call in a known dialect, rewritten with
/// structured `tool_calls`; `None` leaves it as it is.
pub fn completion(body: &[u8], tools: &[String]) -> Option<(Vec<u8>, Dialect)> {
    if tools.is_empty() {
        return None;
    }
    let names: Vec<&str> = tools.iter().map(String::as_str).collect();
    let mut copy = body.to_vec();
    let mut v = crate::json::parse_object(&mut copy).ok()?;
    let choice = v.get_mut("choices")?.as_array_mut()?.first_mut()?;
    let message = choice.get("message")?;
    if message
        .get_array("tool_calls")
        .is_some_and(|c| !c.is_empty())
    {
        return None;
    }
    let rescued = from_text(message.get_str("content")?, &names)?;
    let o = choice.as_object_mut()?;
    o.insert("finish_reason".into(), OwnedValue::from("tool_calls"));
    let m = o.get_mut("message")?.as_object_mut()?;
    let content = if rescued.prose.is_empty() {
        OwnedValue::null()
    } else {
        OwnedValue::from(rescued.prose.as_str())
    };
    m.insert("content".into(), content);
    m.insert("tool_calls".into(), tool_calls_value(&rescued.calls));
    Some((crate::json::encode(&v), rescued.dialect))
}

/// A whole answer made from rescued calls (Groq's `tool_use_failed`), as a normalised
/// completion.
pub fn completion_of(rescued: &Rescued) -> Vec<u8> {
    let content = if rescued.prose.is_empty() {
        OwnedValue::null()
    } else {
        OwnedValue::from(rescued.prose.as_str())
    };
    crate::json::encode(&simd_json::json!({
        "id": format!("chatcmpl-{}", &call_id()[5..]),
        "object": "chat.completion",
        "created": crate::time::now_ms() / 1000,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content, "tool_calls": tool_calls_value(&rescued.calls) },
            "finish_reason": "tool_calls"
        }]
    }))
}

/// A rescued whole answer ([`completion_of`]) as the stream chunks that say the same: its
/// tool calls, then the finish.
pub fn chunks_of(completion: &[u8]) -> Vec<Vec<u8>> {
    let mut copy = completion.to_vec();
    let Ok(v) = crate::json::parse_object(&mut copy) else {
        return Vec::new();
    };
    let Some(choice) = v.get_array("choices").and_then(|c| c.first()) else {
        return Vec::new();
    };
    let message = choice.get("message");
    let mut out = Vec::with_capacity(3);
    let chunk = |delta: OwnedValue, finish: OwnedValue| {
        crate::json::encode(&simd_json::json!({
            "id": v.get("id").cloned().unwrap_or_else(|| OwnedValue::from("chatcmpl-rescue")),
            "object": "chat.completion.chunk",
            "created": v.get("created").cloned().unwrap_or_else(|| OwnedValue::from(0u64)),
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }]
        }))
    };
    if let Some(text) = message
        .and_then(|m| m.get_str("content"))
        .filter(|t| !t.is_empty())
    {
        out.push(chunk(
            simd_json::json!({ "role": "assistant", "content": text }),
            OwnedValue::null(),
        ));
    }
    if let Some(calls) = message.and_then(|m| m.get("tool_calls")) {
        out.push(chunk(
            simd_json::json!({ "role": "assistant", "tool_calls": calls.clone() }),
            OwnedValue::null(),
        ));
    }
    out.push(chunk(simd_json::json!({}), OwnedValue::from("tool_calls")));
    out
}

/// The same rescue for a stream of OpenAI chunks: text passes as it comes until it opens like
/// a dialect (an opener anywhere, or a JSON object or code fence as the very first text);
/// from there it is held to the end of the answer, then sent as tool calls if it reads as
/// them, else as the text it was. A model that makes structured calls turns the filter off.
pub struct StreamRescue {
    tools: Vec<String>,
    held: String,
    /// An opener was seen: hold to the end.
    holding: bool,
    /// Some text went out (a bare object counts only as the first text).
    released: bool,
    /// The model makes structured calls itself.
    structured: bool,
    /// `id`, `created`, `model` of the upstream chunks, for the chunks made here.
    template: Option<(OwnedValue, OwnedValue, OwnedValue)>,
    /// Set once calls were rescued.
    pub rescued: Option<Dialect>,
    done: bool,
}

impl StreamRescue {
    /// `None` when the request declared no tools (nothing to rescue).
    pub fn new(tools: Vec<String>) -> Option<StreamRescue> {
        (!tools.is_empty()).then_some(StreamRescue {
            tools,
            held: String::new(),
            holding: false,
            released: false,
            structured: false,
            template: None,
            rescued: None,
            done: false,
        })
    }

    fn chunk_with(&self, choice: OwnedValue) -> Vec<u8> {
        let mut v = simd_json::json!({ "object": "chat.completion.chunk", "choices": [choice] });
        if let (Some((id, created, model)), Some(o)) = (&self.template, v.as_object_mut()) {
            o.insert("id".into(), id.clone());
            o.insert("created".into(), created.clone());
            o.insert("model".into(), model.clone());
        }
        crate::json::encode(&v)
    }

    fn text_chunk(&self, text: &str) -> Vec<u8> {
        self.chunk_with(
            simd_json::json!({ "index": 0, "delta": { "content": text }, "finish_reason": null }),
        )
    }

    /// The text of `t` that may go out now; the rest is held.
    fn take_text(&mut self, t: &str) -> String {
        self.held.push_str(t);
        if self.holding {
            return String::new();
        }
        if !self.released {
            let start = self.held.trim_start();
            if start.is_empty() {
                return String::new();
            }
            if start.starts_with('{') || start.starts_with('[') || start.starts_with("```") {
                self.holding = true;
                return String::new();
            }
        }
        let opener = OPENERS[..3].iter().filter_map(|o| self.held.find(o)).min();
        let keep_from = match opener {
            Some(at) => {
                self.holding = true;
                at
            }
            // A tail that could still become an opener waits for the next text.
            None => (1..=self.held.len().min(15))
                .rev()
                .map(|n| self.held.len() - n)
                .filter(|&at| self.held.is_char_boundary(at))
                .find(|&at| OPENERS[..3].iter().any(|o| o.starts_with(&self.held[at..])))
                .unwrap_or(self.held.len()),
        };
        let out: String = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        if !out.trim().is_empty() {
            self.released = true;
        }
        out
    }

    /// What the held text comes to at the end of the answer: chunks to send, and whether
    /// calls were rescued.
    fn resolve(&mut self, out: &mut Vec<Vec<u8>>) -> bool {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return false;
        }
        let names: Vec<&str> = self.tools.iter().map(String::as_str).collect();
        match from_text(&held, &names) {
            Some(r) => {
                if !r.prose.is_empty() {
                    out.push(self.text_chunk(&r.prose));
                }
                let calls = tool_calls_value(&r.calls);
                out.push(self.chunk_with(simd_json::json!({
                    "index": 0, "delta": { "tool_calls": calls }, "finish_reason": null
                })));
                self.rescued = Some(r.dialect);
                true
            }
            None => {
                out.push(self.text_chunk(&held));
                false
            }
        }
    }

    /// One upstream chunk: the chunks to pass on in its place.
    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<Vec<u8>>) {
        if self.structured || self.done {
            out.push(data.to_vec());
            return;
        }
        let mut copy = data.to_vec();
        let Ok(mut v) = crate::json::parse_object(&mut copy) else {
            out.push(data.to_vec());
            return;
        };
        if self.template.is_none() && v.get("choices").is_some() {
            self.template = Some((
                v.get("id")
                    .cloned()
                    .unwrap_or_else(|| OwnedValue::from("chatcmpl-rescue")),
                v.get("created")
                    .cloned()
                    .unwrap_or_else(|| OwnedValue::from(0u64)),
                v.get("model")
                    .cloned()
                    .unwrap_or_else(|| OwnedValue::from("")),
            ));
        }
        let Some(choice) = v
            .get_mut("choices")
            .and_then(|c| c.as_array_mut())
            .and_then(|c| c.first_mut())
        else {
            out.push(data.to_vec());
            return;
        };
        let has_calls = choice
            .get("delta")
            .and_then(|d| d.get_array("tool_calls"))
            .is_some_and(|c| !c.is_empty());
        if has_calls {
            // Structured calls: whatever was held was text after all.
            self.structured = true;
            let held = std::mem::take(&mut self.held);
            if !held.is_empty() {
                out.push(self.text_chunk(&held));
            }
            out.push(data.to_vec());
            return;
        }
        let text = choice
            .get("delta")
            .and_then(|d| d.get_str("content"))
            .map(str::to_string);
        let finish = choice.get_str("finish_reason").map(str::to_string);
        if text.is_none() && finish.is_none() {
            out.push(data.to_vec());
            return;
        }
        let release = text.map(|t| self.take_text(&t)).unwrap_or_default();
        let mut before = Vec::new();
        let mut rescued = false;
        if finish.is_some() {
            if !release.is_empty() {
                before.push(self.text_chunk(&release));
            }
            rescued = self.resolve(&mut before);
            self.done = true;
        }
        out.append(&mut before);
        let Some(o) = choice.as_object_mut() else {
            return;
        };
        if let Some(delta) = o.get_mut("delta").and_then(|d| d.as_object_mut()) {
            if finish.is_none() && !release.is_empty() {
                delta.insert("content".into(), OwnedValue::from(release));
            } else {
                delta.remove("content");
            }
        }
        if rescued {
            o.insert("finish_reason".into(), OwnedValue::from("tool_calls"));
        }
        let empty = finish.is_none()
            && o.get("delta")
                .is_none_or(|d| d.as_object().is_none_or(|d| d.is_empty()))
            && v.get("usage").is_none_or(|u| u.is_null());
        if !empty {
            out.push(crate::json::encode(&v));
        }
    }

    /// The end of the stream without a finish chunk: what is held goes out.
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.structured || self.done {
            return;
        }
        self.done = true;
        if self.resolve(out) {
            out.push(self.chunk_with(simd_json::json!({
                "index": 0, "delta": {}, "finish_reason": "tool_calls"
            })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOLS: &[&str] = &["get_weather", "search"];

    fn one(text: &str) -> (Dialect, String, String, String) {
        let r = from_text(text, TOOLS).unwrap_or_else(|| panic!("no rescue: {text}"));
        assert_eq!(r.calls.len(), 1, "{text}");
        let c = &r.calls[0];
        (r.dialect, r.prose, c.name.clone(), c.arguments.clone())
    }

    #[test]
    fn every_dialect_is_read() {
        let paris = r#"{"city":"Paris"}"#.to_string();
        for (text, dialect, prose) in [
            (
                "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
                Dialect::Hermes,
                "Let me check.",
            ),
            (
                "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}",
                Dialect::Hermes,
                "",
            ),
            (
                "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eom_id|>",
                Dialect::PythonTag,
                "",
            ),
            (
                "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]",
                Dialect::Mistral,
                "",
            ),
            (
                "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}",
                Dialect::Mistral,
                "",
            ),
            (
                "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```",
                Dialect::Json,
                "",
            ),
            (
                "{\"function\": {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}}",
                Dialect::Json,
                "",
            ),
        ] {
            assert_eq!(
                one(text),
                (
                    dialect,
                    prose.to_string(),
                    "get_weather".into(),
                    paris.clone()
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn repair_closes_and_cleans() {
        assert_eq!(repair(r#"{"a":True,}"#), r#"{"a":true}"#);
        assert_eq!(repair(r#"{"a":[1,2,"#), r#"{"a":[1,2]}"#);
        assert_eq!(repair(r#"{"a":"x"#), r#"{"a":"x"}"#);
        assert_eq!(repair(r#"{"a":"True, é"}"#), r#"{"a":"True, é"}"#);
    }

    #[test]
    fn broken_arguments_are_repaired() {
        for text in [
            // A trailing comma, an unclosed object, Python's True, double encoding.
            r#"<tool_call>{"name":"search","arguments":{"q":"rust","exact":True,}}</tool_call>"#,
            r#"<tool_call>{"name":"search","arguments":{"q":"rust","exact":true"#,
            r#"{"name":"search","arguments":"{\"q\":\"rust\",\"exact\":true}"}"#,
        ] {
            let (_, _, name, args) = one(text);
            assert_eq!(
                (name.as_str(), args.as_str()),
                ("search", r#"{"q":"rust","exact":true}"#),
                "{text}"
            );
        }
    }

    #[test]
    fn prose_and_undeclared_tools_are_left_alone() {
        for text in [
            "The weather in Paris is mild.",
            "Use <tool_call> tags to call tools.",
            r#"{"name":"delete_everything","arguments":{}}"#,
            r#"{"city":"Paris"}"#,
            "<tool_call>{\"name\":\"get_weather\"}</tool_call> and then some prose",
        ] {
            assert_eq!(from_text(text, TOOLS), None, "{text}");
        }
        assert_eq!(
            from_text(r#"{"name":"search","arguments":{}}"#, &[]),
            None,
            "no tools"
        );
    }

    /// The text a stream's chunks carry, and its tool calls' names and arguments.
    fn stream_of(
        deltas: &[&str],
        tools: &[&str],
    ) -> (String, Vec<(String, String)>, Option<String>) {
        let mut r = StreamRescue::new(tools.iter().map(|t| t.to_string()).collect()).unwrap();
        let mut out = Vec::new();
        for d in deltas {
            let chunk = simd_json::json!({"id":"c1","created":7,"model":"m","choices":[{"index":0,"delta":{"content":*d}}]});
            r.chunk(&crate::json::encode(&chunk), &mut out);
        }
        r.chunk(
            br#"{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            &mut out,
        );
        r.finish(&mut out);
        let (mut text, mut calls, mut finish) = (String::new(), Vec::new(), None);
        for c in &out {
            let v = simd_json::to_owned_value(&mut c.clone()).unwrap();
            let choice = &v.get_array("choices").unwrap()[0];
            let delta = choice.get("delta").unwrap();
            text.push_str(delta.get_str("content").unwrap_or(""));
            for call in delta
                .get_array("tool_calls")
                .map(|c| c.as_slice())
                .unwrap_or(&[])
            {
                let f = call.get("function").unwrap();
                calls.push((
                    f.get_str("name").unwrap().to_string(),
                    f.get_str("arguments").unwrap().to_string(),
                ));
            }
            if let Some(f) = choice.get_str("finish_reason") {
                finish = Some(f.to_string());
            }
        }
        (text, calls, finish)
    }

    #[test]
    fn streams_are_rescued_however_the_text_is_split() {
        let answer = "Checking now.\n<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>";
        let want = (
            "Checking now.".to_string(),
            vec![("get_weather".to_string(), r#"{"city":"Paris"}"#.to_string())],
            Some("tool_calls".to_string()),
        );
        let chars: Vec<char> = answer.chars().collect();
        for at in 0..=chars.len() {
            let (a, b): (String, String) =
                (chars[..at].iter().collect(), chars[at..].iter().collect());
            let (text, calls, finish) = stream_of(&[&a, &b], TOOLS);
            assert_eq!(
                (text.trim_end().to_string(), calls, finish),
                want,
                "split at {at}"
            );
        }
        let one_by_one: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        let refs: Vec<&str> = one_by_one.iter().map(String::as_str).collect();
        let (text, calls, _) = stream_of(&refs, TOOLS);
        assert_eq!((text.trim_end(), calls.len()), ("Checking now.", 1));
    }

    #[test]
    fn streamed_prose_passes_whole_and_as_it_comes() {
        let prose = "Use [brackets] and <b>tags</b> freely; {braces} too.";
        let (text, calls, finish) = stream_of(
            &[
                "Use [br",
                "ackets] and <b>ta",
                "gs</b> freely; {braces} too.",
            ],
            TOOLS,
        );
        assert_eq!(
            (text.as_str(), calls.len(), finish.as_deref()),
            (prose, 0, Some("stop"))
        );
        // A bare JSON answer that is no call comes out as it was.
        let (text, calls, _) = stream_of(&["{\"city\":", " \"Paris\"}"], TOOLS);
        assert_eq!((text.as_str(), calls.len()), ("{\"city\": \"Paris\"}", 0));
        let (_, calls, _) = stream_of(&["[TOOL_CALLS]sea", "rch[ARGS]{\"q\":\"x\"}"], TOOLS);
        assert_eq!(calls, [("search".to_string(), r#"{"q":"x"}"#.to_string())]);
    }

    #[test]
    fn several_calls_and_groqs_failed_generation() {
        let r = from_text(
            "<|python_tag|>{\"name\":\"search\",\"parameters\":{\"q\":\"a;b\"}}; {\"name\":\"get_weather\",\"parameters\":{\"city\":\"Oslo\"}}",
            TOOLS,
        )
        .unwrap();
        let names: Vec<&str> = r.calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["search", "get_weather"]);
        assert_eq!(r.calls[0].arguments, r#"{"q":"a;b"}"#);
        let groq = br#"{"error":{"message":"Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.","type":"invalid_request_error","code":"tool_use_failed","failed_generation":"<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}</tool_call>"}}"#;
        let r = from_groq_error(groq, TOOLS).unwrap();
        assert_eq!(r.dialect, Dialect::GroqFailed);
        assert_eq!(r.calls[0].arguments, r#"{"city":"Paris"}"#);
        let list = br#"{"error":{"code":"tool_use_failed","failed_generation":"[{\"name\": \"search\", \"parameters\": {\"q\": \"x\"}}]"}}"#;
        assert_eq!(
            from_groq_error(list, TOOLS).unwrap().calls[0].name,
            "search"
        );
        let other = br#"{"error":{"code":"invalid_api_key","failed_generation":"x"}}"#;
        assert_eq!(from_groq_error(other, TOOLS), None);
    }
}
