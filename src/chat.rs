//! A validated chat-completion request: the client's JSON kept whole (unknown fields survive
//! and reach OpenAI-compatible upstreams), plus the facts routing needs (model, stream, token
//! estimate, session key).
//!
//! Validation accepts everything current OpenAI clients send and answers anything
//! else with the field path, e.g. `messages[2].role: unknown role "bot"`. Iterative checks
//! only: the body's depth was bounded before parsing.

use std::hash::Hasher;

use simd_json::OwnedValue;
use simd_json::prelude::*;

use crate::json::{self, JsonError, type_name};

/// Output tokens reserved when the client names no `max_tokens`.
pub const DEFAULT_OUTPUT_RESERVE: u64 = 1000;
pub const MAX_OUTPUT_RESERVE: u64 = 4096;

const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// Why a request body was refused, with OpenAI's `code` vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub message: String,
    pub code: &'static str,
}

/// The longest model name a request may carry: every catalog id is far shorter, and a name is
/// echoed in answers and kept in the request log.
pub const MAX_MODEL_NAME: usize = 256;

/// Refuses a model name longer than [`MAX_MODEL_NAME`] bytes.
pub fn check_model_name(name: &str) -> Result<(), Invalid> {
    if name.len() > MAX_MODEL_NAME {
        return Err(invalid(
            "invalid_value",
            format!(
                "model: {} bytes is longer than any model name (at most {MAX_MODEL_NAME}); see /v1/models",
                name.len()
            ),
        ));
    }
    Ok(())
}

pub fn invalid(code: &'static str, message: String) -> Invalid {
    Invalid { message, code }
}

pub fn wrong_type(path: impl std::fmt::Display, want: &str, got: &OwnedValue) -> Invalid {
    invalid(
        "invalid_type",
        format!("{path}: expected {want}, got {}", type_name(got)),
    )
}

pub struct ChatRequest {
    /// The client's body, unknown fields included.
    pub body: OwnedValue,
    /// `None` means auto-routing (absent, empty or `"auto"`).
    pub model: Option<String>,
    pub stream: bool,
    /// ceil(characters / 4) over all text in messages and tools.
    pub input_tokens: u64,
    pub output_reserve: u64,
    /// Hash of the system prompt and first user message, when there is a user message.
    pub session: Option<u64>,
    /// The conversation already has an assistant turn (so a sticky model applies).
    pub continues: bool,
    /// Some tool call carries Gemini's `thought_signature`, which other providers reject.
    pub has_thought_signatures: bool,
    /// Some message has `content: null`.
    pub has_null_content: bool,
    /// `max_tokens` is lowered to what the routed model allows instead of being sent as is
    /// (clients of other vendors' APIs ask for more than free models give).
    pub clamp_output: bool,
    /// A vendor name (`gemini-*`) the catalog holds but cannot serve now (off, or no key)
    /// routes by alias instead of failing: set for clients that pick such names themselves.
    pub alias_when_unready: bool,
    /// Fill-in-the-middle: the body's `prompt` and `suffix` go to a `fim` model.
    pub fim: bool,
    /// Some message has an image part: only vision models can serve it.
    pub needs_vision: bool,
    /// Tools are offered, or the conversation has tool calls or results.
    pub needs_tools: bool,
    /// `response_format` is a JSON schema.
    pub needs_json_schema: bool,
}

impl ChatRequest {
    /// Parses and validates `bytes` in place. `session_hasher` keys the sticky-session hash.
    pub fn parse(bytes: &mut [u8], session_hasher: impl Hasher) -> Result<ChatRequest, Invalid> {
        ChatRequest::from_value(parse_body(bytes)?, session_hasher)
    }

    /// Validates a chat body already parsed (a front translator's output).
    pub fn from_value(
        body: OwnedValue,
        mut session_hasher: impl Hasher,
    ) -> Result<ChatRequest, Invalid> {
        let model = match body.get("model") {
            None => None,
            Some(v) if v.is_null() => None,
            Some(v) => match v.as_str() {
                Some(s) if s.is_empty() || s == "auto" => None,
                Some(s) => {
                    check_model_name(s)?;
                    Some(s.to_string())
                }
                None => return Err(wrong_type("model", "a string", v)),
            },
        };
        let stream = optional_bool(&body, "stream")?.unwrap_or(false);
        check_number(&body, "temperature")?;
        check_number(&body, "top_p")?;
        check_number(&body, "presence_penalty")?;
        check_number(&body, "frequency_penalty")?;
        let max_tokens = positive_int(&body, "max_tokens")?;
        let max_completion = positive_int(&body, "max_completion_tokens")?;
        if let Some(n) = positive_int(&body, "n")?
            && n > 1
        {
            return Err(invalid(
                "invalid_value",
                "n: only n=1 is supported (one completion per request)".into(),
            ));
        }
        check_int(&body, "seed")?;
        check_stop(&body)?;
        check_object(&body, "stream_options")?;
        check_object(&body, "response_format")?;
        if let Some(u) = body.get("user")
            && !u.is_str()
            && !u.is_null()
        {
            return Err(wrong_type("user", "a string", u));
        }
        optional_bool(&body, "parallel_tool_calls")?;
        let tools_chars = check_tools(&body)?;
        check_tool_choice(&body)?;

        let messages = match body.get("messages") {
            None => {
                return Err(invalid(
                    "missing_required_parameter",
                    "messages: required".into(),
                ));
            }
            Some(v) => v
                .as_array()
                .ok_or_else(|| wrong_type("messages", "an array", v))?,
        };
        if messages.is_empty() {
            return Err(invalid(
                "invalid_value",
                "messages: must contain at least one message".into(),
            ));
        }
        let mut facts = MessageFacts::default();
        for (i, m) in messages.iter().enumerate() {
            check_message(i, m, &mut facts)?;
        }

        let session = facts.first_user.map(|_| {
            for (i, m) in messages.iter().enumerate() {
                let role = m.get_str("role").unwrap_or("");
                if role == "system" || role == "developer" || Some(i) == facts.first_user {
                    session_hasher.write(role.as_bytes());
                    hash_content(&mut session_hasher, m.get("content"));
                }
            }
            session_hasher.finish()
        });

        let offers_tools = body
            .get("tools")
            .and_then(|t| t.as_array())
            .is_some_and(|t| !t.is_empty())
            && body.get_str("tool_choice") != Some("none");
        let needs_tools = facts.tool_turns || offers_tools;
        let needs_json_schema =
            body.get("response_format").and_then(|r| r.get_str("type")) == Some("json_schema");
        let chars = facts.chars + tools_chars;
        Ok(ChatRequest {
            body,
            model,
            stream,
            input_tokens: (chars as u64).div_ceil(4),
            output_reserve: max_tokens
                .or(max_completion)
                .unwrap_or(DEFAULT_OUTPUT_RESERVE)
                .min(MAX_OUTPUT_RESERVE),
            session,
            continues: facts.has_assistant,
            has_thought_signatures: facts.thought_signatures,
            has_null_content: facts.null_content,
            clamp_output: false,
            alias_when_unready: false,
            fim: false,
            needs_vision: facts.images,
            needs_tools,
            needs_json_schema,
        })
    }

    /// `stream_options.include_usage` as the client asked.
    pub fn wants_usage(&self) -> bool {
        self.body
            .get("stream_options")
            .and_then(|o| o.get_bool("include_usage"))
            .unwrap_or(false)
    }

    pub fn messages(&self) -> &[OwnedValue] {
        self.body
            .get_array("messages")
            .map(|a| a.as_slice())
            .unwrap_or(&[])
    }
}

/// Parses a request body that must be a JSON object, with the error every surface gives.
pub fn parse_body(bytes: &mut [u8]) -> Result<OwnedValue, Invalid> {
    json::parse_object(bytes).map_err(|e| match e {
        JsonError::NotObject => invalid("invalid_type", "body: expected a JSON object".into()),
        other => invalid("invalid_json", other.to_string()),
    })
}

#[derive(Default)]
struct MessageFacts {
    chars: usize,
    images: bool,
    /// Tool calls or tool results in the conversation.
    tool_turns: bool,
    first_user: Option<usize>,
    has_assistant: bool,
    thought_signatures: bool,
    null_content: bool,
}

/// A field's path (`messages[2].content[0]`), written out only when an error names it: a valid
/// request, the usual case, builds no strings however long its conversation.
enum At<'a> {
    /// `list[index]` at the top of the body.
    Item(&'static str, usize),
    /// `path.field`
    Field(&'a At<'a>, &'static str),
    /// `path[index]`
    Index(&'a At<'a>, usize),
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Item(list, i) => write!(f, "{list}[{i}]"),
            At::Field(at, field) => write!(f, "{at}.{field}"),
            At::Index(at, i) => write!(f, "{at}[{i}]"),
        }
    }
}

fn check_message(i: usize, m: &OwnedValue, facts: &mut MessageFacts) -> Result<(), Invalid> {
    let path = At::Item("messages", i);
    if !m.is_object() {
        return Err(wrong_type(&path, "an object", m));
    }
    let role = match m.get("role") {
        None => {
            return Err(invalid(
                "missing_required_parameter",
                format!("{path}.role: required"),
            ));
        }
        Some(r) => r
            .as_str()
            .ok_or_else(|| wrong_type(format!("{path}.role"), "a string", r))?,
    };
    if !ROLES.contains(&role) {
        return Err(invalid(
            "invalid_value",
            format!(
                "{path}.role: unknown role {role:?}; expected one of system, developer, user, assistant, tool"
            ),
        ));
    }
    if let Some(n) = m.get("name")
        && !n.is_str()
    {
        return Err(wrong_type(format!("{path}.name"), "a string", n));
    }
    let content = m.get("content");
    match content {
        None if role == "assistant" => {}
        None => {
            return Err(invalid(
                "missing_required_parameter",
                format!("{path}.content: required for role {role}"),
            ));
        }
        Some(c) if c.is_null() => {
            if role != "assistant" {
                return Err(invalid(
                    "invalid_type",
                    format!("{path}.content: null is only allowed for assistant messages"),
                ));
            }
            facts.null_content = true;
        }
        Some(c) => {
            facts.chars += check_content(&At::Field(&path, "content"), c, &mut facts.images)?
        }
    }
    facts.tool_turns |= role == "tool";
    match role {
        "user" => {
            facts.first_user.get_or_insert(i);
        }
        "assistant" => {
            facts.has_assistant = true;
            if let Some(calls) = m.get("tool_calls") {
                facts.tool_turns = true;
                let calls = calls
                    .as_array()
                    .ok_or_else(|| wrong_type(format!("{path}.tool_calls"), "an array", calls))?;
                let list = At::Field(&path, "tool_calls");
                for (j, call) in calls.iter().enumerate() {
                    facts.chars +=
                        check_tool_call(&At::Index(&list, j), call, &mut facts.thought_signatures)?;
                }
            }
        }
        "tool" => match m.get("tool_call_id") {
            Some(id) if id.is_str() => {}
            Some(id) => return Err(wrong_type(format!("{path}.tool_call_id"), "a string", id)),
            None => {
                return Err(invalid(
                    "missing_required_parameter",
                    format!("{path}.tool_call_id: required for role tool"),
                ));
            }
        },
        _ => {}
    }
    Ok(())
}

/// Validates string-or-parts content; returns its text length in characters and notes images.
fn check_content(path: &At<'_>, c: &OwnedValue, images: &mut bool) -> Result<usize, Invalid> {
    if let Some(s) = c.as_str() {
        return Ok(s.chars().count());
    }
    let parts = c
        .as_array()
        .ok_or_else(|| wrong_type(path, "a string or an array of content parts", c))?;
    let mut chars = 0;
    for (k, part) in parts.iter().enumerate() {
        let ppath = At::Index(path, k);
        if !part.is_object() {
            return Err(wrong_type(&ppath, "an object", part));
        }
        let kind = match part.get("type") {
            Some(t) => t
                .as_str()
                .ok_or_else(|| wrong_type(format!("{ppath}.type"), "a string", t))?,
            None => {
                return Err(invalid(
                    "missing_required_parameter",
                    format!("{ppath}.type: required"),
                ));
            }
        };
        match kind {
            "text" => match part.get("text") {
                Some(t) => {
                    chars += t
                        .as_str()
                        .ok_or_else(|| wrong_type(format!("{ppath}.text"), "a string", t))?
                        .chars()
                        .count()
                }
                None => {
                    return Err(invalid(
                        "missing_required_parameter",
                        format!("{ppath}.text: required"),
                    ));
                }
            },
            "image_url" => {
                let url = match part.get("image_url") {
                    Some(v) if v.is_str() => v.as_str(),
                    Some(v) if v.is_object() => v.get_str("url"),
                    _ => None,
                };
                if url.is_none() {
                    return Err(invalid(
                        "invalid_value",
                        format!("{ppath}.image_url: expected {{\"url\": \"...\"}}"),
                    ));
                }
                *images = true;
            }
            _ => {}
        }
    }
    Ok(chars)
}

fn check_tool_call(
    path: &At<'_>,
    call: &OwnedValue,
    signatures: &mut bool,
) -> Result<usize, Invalid> {
    if !call.is_object() {
        return Err(wrong_type(path, "an object", call));
    }
    let f = match call.get("function") {
        Some(f) if f.is_object() => f,
        Some(f) => return Err(wrong_type(format!("{path}.function"), "an object", f)),
        None => {
            return Err(invalid(
                "missing_required_parameter",
                format!("{path}.function: required"),
            ));
        }
    };
    let name = f.get("name").and_then(|n| n.as_str());
    if name.is_none_or(str::is_empty) {
        return Err(invalid(
            "invalid_value",
            format!("{path}.function.name: expected a non-empty string"),
        ));
    }
    let args = match f.get("arguments") {
        None => 0,
        Some(a) => a
            .as_str()
            .ok_or_else(|| wrong_type(format!("{path}.function.arguments"), "a JSON string", a))?
            .chars()
            .count(),
    };
    if call.get("thought_signature").is_some() {
        *signatures = true;
    }
    Ok(args + name.map_or(0, str::len))
}

fn check_tools(body: &OwnedValue) -> Result<usize, Invalid> {
    let Some(tools) = body.get("tools") else {
        return Ok(0);
    };
    if tools.is_null() {
        return Ok(0);
    }
    let list = tools
        .as_array()
        .ok_or_else(|| wrong_type("tools", "an array", tools))?;
    for (i, t) in list.iter().enumerate() {
        let path = At::Item("tools", i);
        if !t.is_object() {
            return Err(wrong_type(&path, "an object", t));
        }
        if let Some(kind) = t.get("type")
            && kind.as_str() != Some("function")
        {
            return Err(invalid(
                "invalid_value",
                format!("{path}.type: only \"function\" tools are supported"),
            ));
        }
        let f = match t.get("function") {
            Some(f) if f.is_object() => f,
            Some(f) => return Err(wrong_type(format!("{path}.function"), "an object", f)),
            None => {
                return Err(invalid(
                    "missing_required_parameter",
                    format!("{path}.function: required"),
                ));
            }
        };
        if f.get("name")
            .and_then(|n| n.as_str())
            .is_none_or(str::is_empty)
        {
            return Err(invalid(
                "invalid_value",
                format!("{path}.function.name: expected a non-empty string"),
            ));
        }
        if let Some(p) = f.get("parameters")
            && !p.is_object()
        {
            return Err(wrong_type(
                format!("{path}.function.parameters"),
                "a JSON Schema object",
                p,
            ));
        }
    }
    Ok(json::text_chars(tools))
}

fn check_tool_choice(body: &OwnedValue) -> Result<(), Invalid> {
    let Some(tc) = body.get("tool_choice") else {
        return Ok(());
    };
    match tc {
        v if v.is_null() => Ok(()),
        v if v.is_str() => match v.as_str() {
            Some("none" | "auto" | "required") => Ok(()),
            Some(other) => Err(invalid(
                "invalid_value",
                format!(
                    "tool_choice: unknown value {other:?}; expected none, auto, required or a function"
                ),
            )),
            None => Ok(()),
        },
        v if v.is_object() => {
            let name = v.get("function").and_then(|f| f.get_str("name"));
            if name.is_none_or(str::is_empty) {
                return Err(invalid(
                    "invalid_value",
                    "tool_choice.function.name: expected a non-empty string".into(),
                ));
            }
            Ok(())
        }
        v => Err(wrong_type("tool_choice", "a string or an object", v)),
    }
}

fn hash_content(h: &mut impl Hasher, content: Option<&OwnedValue>) {
    match content {
        Some(c) if c.is_str() => h.write(c.as_str().unwrap_or("").as_bytes()),
        Some(c) => {
            for part in c.as_array().map(|a| a.as_slice()).unwrap_or(&[]) {
                if let Some(t) = part.get_str("text") {
                    h.write(t.as_bytes());
                }
            }
        }
        None => {}
    }
    h.write_u8(0xff);
}

fn optional_bool(body: &OwnedValue, field: &str) -> Result<Option<bool>, Invalid> {
    match body.get(field) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| wrong_type(field, "a boolean", v)),
    }
}

fn check_number(body: &OwnedValue, field: &str) -> Result<(), Invalid> {
    match body.get(field) {
        Some(v) if !v.is_null() && v.cast_f64().is_none() => Err(wrong_type(field, "a number", v)),
        _ => Ok(()),
    }
}

fn check_int(body: &OwnedValue, field: &str) -> Result<(), Invalid> {
    match body.get(field) {
        Some(v) if !v.is_null() && v.as_i64().is_none() && v.as_u64().is_none() => {
            Err(wrong_type(field, "an integer", v))
        }
        _ => Ok(()),
    }
}

fn check_object(body: &OwnedValue, field: &str) -> Result<(), Invalid> {
    match body.get(field) {
        Some(v) if !v.is_null() && !v.is_object() => Err(wrong_type(field, "an object", v)),
        _ => Ok(()),
    }
}

fn positive_int(body: &OwnedValue, field: &str) -> Result<Option<u64>, Invalid> {
    match body.get(field) {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(Some(n)),
            Some(_) => Err(invalid(
                "invalid_value",
                format!("{field}: must be at least 1"),
            )),
            None if v.as_i64().is_some() => Err(invalid(
                "invalid_value",
                format!("{field}: must be at least 1"),
            )),
            None => Err(wrong_type(field, "an integer", v)),
        },
    }
}

fn check_stop(body: &OwnedValue) -> Result<(), Invalid> {
    match body.get("stop") {
        None => Ok(()),
        Some(v) if v.is_null() || v.is_str() => Ok(()),
        Some(v) => match v.as_array() {
            Some(a) if a.iter().all(|s| s.is_str()) => Ok(()),
            _ => Err(wrong_type("stop", "a string or an array of strings", v)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn parse(s: &str) -> Result<ChatRequest, Invalid> {
        ChatRequest::parse(&mut s.as_bytes().to_vec(), DefaultHasher::new())
    }

    fn err(s: &str) -> String {
        parse(s)
            .err()
            .map(|e| e.message)
            .unwrap_or_else(|| "accepted".into())
    }

    #[test]
    fn accepts_what_current_clients_send() {
        let r = parse(
            r#"{"model":"auto","stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"top_p":1,
            "max_completion_tokens":50,"n":1,"seed":7,"stop":["x"],"user":"u","response_format":{"type":"json_object"},
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto",
            "parallel_tool_calls":true,"reasoning_effort":"low","metadata":{"k":"v"},
            "messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"},"thought_signature":"S"}]},
            {"role":"tool","tool_call_id":"c1","content":"42"}]}"#,
        )
        .unwrap();
        assert_eq!(r.model, None);
        assert!(
            r.stream
                && r.wants_usage()
                && r.continues
                && r.has_thought_signatures
                && r.has_null_content
        );
        assert_eq!(r.output_reserve, 50);
        assert!(r.session.is_some());
        assert!(
            r.body.get("reasoning_effort").is_some(),
            "unknown fields are kept"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(
            err(
                r#"{"messages":[{"role":"user","content":"a"},{"role":"x","content":"b"},{"role":"bot","content":"c"}]}"#
            ),
            "messages[1].role: unknown role \"x\"; expected one of system, developer, user, assistant, tool"
        );
        assert_eq!(
            err(r#"{"messages":[]}"#),
            "messages: must contain at least one message"
        );
        assert_eq!(err(r#"{}"#), "messages: required");
        assert_eq!(
            err(r#"{"messages":"hi"}"#),
            "messages: expected an array, got a string"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":5}]}"#),
            "messages[0].content: expected a string or an array of content parts, got a number"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":"a"}],"temperature":"hot"}"#),
            "temperature: expected a number, got a string"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":"a"}],"max_tokens":0}"#),
            "max_tokens: must be at least 1"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":"a"}],"max_tokens":1.5}"#),
            "max_tokens: expected an integer, got a number"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":"a"}],"n":3}"#),
            "n: only n=1 is supported (one completion per request)"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":"a"}],"stream":"yes"}"#),
            "stream: expected a boolean, got a string"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":"a"}],"model":7}"#),
            "model: expected a string, got a number"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"tool","content":"a"}]}"#),
            "messages[0].tool_call_id: required for role tool"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":null}]}"#),
            "messages[0].content: null is only allowed for assistant messages"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":[{"type":"text"}]}]}"#),
            "messages[0].content[0].text: required"
        );
        assert_eq!(
            err(
                r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":null,"tool_calls":[{"function":{"name":"f"}},{"function":{"name":"g","arguments":{}}}]}]}"#
            ),
            "messages[1].tool_calls[1].function.arguments: expected a JSON string, got an object"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":["a",{"type":7}]}]}"#),
            "messages[0].content[0]: expected an object, got a string"
        );
        assert_eq!(
            err(
                r#"{"messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{}}]}"#
            ),
            "tools[0].function.name: expected a non-empty string"
        );
        assert_eq!(
            err(r#"{"messages":[{"role":"user","content":"a"}],"tool_choice":"sometimes"}"#),
            "tool_choice: unknown value \"sometimes\"; expected none, auto, required or a function"
        );
        assert_eq!(err(r#"[1,2]"#), "body: expected a JSON object");
        assert!(err(r#"{"messages":"#).starts_with("body is not valid JSON"));
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(err(&deep), "JSON nesting deeper than 128 levels");
    }

    #[test]
    fn estimates_and_sessions() {
        let r = parse(r#"{"messages":[{"role":"user","content":"12345678"}],"max_tokens":99999}"#)
            .unwrap();
        assert_eq!(r.input_tokens, 2);
        assert_eq!(r.output_reserve, MAX_OUTPUT_RESERVE);
        assert!(!r.continues);
        let turn1 = parse(
            r#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"hello"}]}"#,
        )
        .unwrap();
        let turn2 = parse(
            r#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"hello"},
            {"role":"assistant","content":"hi"},{"role":"user","content":"more"}]}"#,
        )
        .unwrap();
        assert_eq!(
            turn1.session, turn2.session,
            "turn 2 finds turn 1's session"
        );
        let other = parse(
            r#"{"messages":[{"role":"system","content":"T"},{"role":"user","content":"hello"}]}"#,
        )
        .unwrap();
        assert_ne!(
            turn1.session, other.session,
            "a different system prompt is a different session"
        );
    }
}
