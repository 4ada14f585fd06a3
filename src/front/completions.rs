//! Legacy text completions (`/v1/completions`), as editors' ghost text uses them.
//!
//! A prompt alone runs as a one-turn chat; a prompt with a `suffix` is fill-in-the-middle and
//! only models the catalog marks `fim` serve it. Several prompts (up to 16, not streamed) are
//! answered one by one and come back as one choice each. Options with no chat equivalent
//! (`n>1`, `best_of>1`, `logprobs`, `echo:true`) are refused, not ignored.

use std::hash::Hasher;

use simd_json::OwnedValue;
use simd_json::json;
use simd_json::prelude::*;

use super::chunk::{self, Piece};
use super::{Echo, Inbound, new_id, unix_now};
use crate::chat::{ChatRequest, Invalid, invalid, parse_body, wrong_type};
use crate::json::write_str;
use crate::wire::{Usage, WireError};

pub fn parse(bytes: &mut [u8], hasher: impl Hasher) -> Result<Inbound, Invalid> {
    let body = parse_body(bytes)?;
    let prompt = match body.get("prompt") {
        None => {
            return Err(invalid(
                "missing_required_parameter",
                "prompt: required".into(),
            ));
        }
        Some(p) if p.is_str() => p.as_str().unwrap_or_default().to_string(),
        Some(p) => match p.as_array().map(|a| a.as_slice()) {
            Some([one]) if one.is_str() => one.as_str().unwrap_or_default().to_string(),
            Some([one]) if one.is_array() || one.is_number() => {
                return Err(invalid(
                    "invalid_value",
                    "prompt: token arrays are not supported; send text".into(),
                ));
            }
            Some(many) if many.iter().all(|v| v.is_number()) && !many.is_empty() => {
                return Err(invalid(
                    "invalid_value",
                    "prompt: token arrays are not supported; send text".into(),
                ));
            }
            Some(many) if many.iter().all(|v| v.is_str()) => {
                // The route splits these (`split_prompts`) before a prompt is parsed.
                return Err(invalid(
                    "invalid_value",
                    "prompt: one prompt per parsed request; several are split first".into(),
                ));
            }
            Some(_) => {
                return Err(invalid(
                    "invalid_value",
                    "prompt: expected a string or an array of strings".into(),
                ));
            }
            None => return Err(wrong_type("prompt", "a string", p)),
        },
    };
    for (field, what) in [("n", "n"), ("best_of", "best_of")] {
        if let Some(v) = body.get(field).filter(|v| !v.is_null())
            && v.as_u64() != Some(1)
        {
            return Err(invalid(
                "invalid_value",
                format!("{what}: only 1 is supported (one completion per request)"),
            ));
        }
    }
    if body.get("logprobs").is_some_and(|v| !v.is_null()) {
        return Err(invalid("invalid_value", "logprobs: not supported".into()));
    }
    if body.get_bool("echo") == Some(true) {
        return Err(invalid(
            "invalid_value",
            "echo: only false is supported".into(),
        ));
    }
    let suffix = match body.get("suffix") {
        None => None,
        Some(s) if s.is_null() => None,
        Some(s) => Some(
            s.as_str()
                .ok_or_else(|| wrong_type("suffix", "a string", s))?,
        ),
    };
    let mut out = OwnedValue::object();
    let o = out.as_object_mut().expect("just made an object");
    for field in [
        "model",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "stream",
        "seed",
        "presence_penalty",
        "frequency_penalty",
    ] {
        if let Some(v) = body.get(field).filter(|v| !v.is_null()) {
            o.insert(field.into(), v.clone());
        }
    }
    if body.get_bool("stream") == Some(true) {
        o.insert("stream_options".into(), json!({ "include_usage": true }));
    }
    // The estimate and the session see the whole text, prefix and suffix.
    let mut text = prompt.clone();
    if let Some(s) = suffix {
        text.push_str(s);
        o.insert("prompt".into(), OwnedValue::from(prompt));
        o.insert("suffix".into(), OwnedValue::from(s));
    }
    o.insert(
        "messages".into(),
        json!([{ "role": "user", "content": text }]),
    );
    let mut chat = ChatRequest::from_value(out, hasher)?;
    chat.fim = suffix.is_some();
    Ok(Inbound {
        echo_model: chat.model.clone().unwrap_or_else(|| "auto".into()),
        chat,
        dropped_tools: Vec::new(),
    })
}

fn write_choice(out: &mut Vec<u8>, text: &str, finish: Option<&str>) {
    out.push(b'[');
    write_one_choice(out, 0, text, finish);
    out.push(b']');
}

fn write_one_choice(out: &mut Vec<u8>, index: usize, text: &str, finish: Option<&str>) {
    out.extend_from_slice(b"{\"text\":");
    write_str(out, text);
    out.extend_from_slice(
        format!(",\"index\":{index},\"logprobs\":null,\"finish_reason\":").as_bytes(),
    );
    match finish {
        Some(f) => write_str(out, f),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

fn write_head(out: &mut Vec<u8>, id: &str, created: u64, model: &str) {
    out.extend_from_slice(b"{\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"object\":\"text_completion\",\"created\":");
    out.extend_from_slice(created.to_string().as_bytes());
    out.extend_from_slice(b",\"model\":");
    write_str(out, model);
}

fn write_usage(out: &mut Vec<u8>, u: Usage) {
    out.extend_from_slice(
        format!(
            ",\"usage\":{{\"prompt_tokens\":{},\"completion_tokens\":{},\"total_tokens\":{}}}",
            u.prompt, u.completion, u.total
        )
        .as_bytes(),
    );
}

pub fn render(completion: Vec<u8>, echo: &Echo<'_>) -> Result<Vec<u8>, WireError> {
    let a = chunk::answer(completion)?;
    let mut out = Vec::with_capacity(192 + a.text.len());
    write_head(&mut out, &new_id("cmpl-"), unix_now(), echo.model);
    out.extend_from_slice(b",\"choices\":");
    write_choice(&mut out, &a.text, Some(&a.finish));
    write_usage(&mut out, echo.usage);
    out.push(b'}');
    Ok(out)
}

/// One `text_completion` for several prompts answered one by one: a choice per prompt with
/// `index` in the prompts' order, the usage summed.
pub fn render_many(answers: Vec<(Vec<u8>, Usage)>, model: &str) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(256 * answers.len());
    write_head(&mut out, &new_id("cmpl-"), unix_now(), model);
    out.extend_from_slice(b",\"choices\":[");
    let mut total = Usage::default();
    for (i, (completion, usage)) in answers.into_iter().enumerate() {
        let a = chunk::answer(completion)?;
        if i > 0 {
            out.push(b',');
        }
        write_one_choice(&mut out, i, &a.text, Some(&a.finish));
        total.prompt += usage.prompt;
        total.completion += usage.completion;
        total.total += usage.total;
    }
    out.push(b']');
    write_usage(&mut out, total);
    out.push(b'}');
    Ok(out)
}

/// The most prompts one request may carry; each is answered in turn.
pub const MAX_PROMPTS: usize = 16;

/// A request with several prompts (`prompt: ["…", "…"]`, what LangChain's `batch` sends) as one
/// body per prompt, in order; `None` for one prompt (or token ids: `parse` refuses those).
pub fn split_prompts(bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, Invalid> {
    let mut copy = bytes.to_vec();
    let body = parse_body(&mut copy)?;
    let Some(list) = body.get("prompt").and_then(|p| p.as_array()) else {
        return Ok(None);
    };
    if list.len() < 2 || !list.iter().all(|p| p.is_str()) {
        return Ok(None);
    }
    if list.len() > MAX_PROMPTS {
        return Err(invalid(
            "invalid_value",
            format!(
                "prompt: {} prompts; at most {MAX_PROMPTS} per request",
                list.len()
            ),
        ));
    }
    if body.get_bool("stream") == Some(true) {
        return Err(invalid(
            "invalid_value",
            "prompt: several prompts cannot stream; send them without stream, or one per request"
                .into(),
        ));
    }
    let mut bodies = Vec::with_capacity(list.len());
    for p in list {
        let mut one = body.clone();
        if let Some(o) = one.as_object_mut() {
            o.insert("prompt".into(), p.clone());
        }
        bodies.push(simd_json::to_vec(&one).map_err(|e| invalid("invalid_json", e.to_string()))?);
    }
    Ok(Some(bodies))
}

/// OpenAI chat chunks → `text_completion` chunks.
pub struct StreamEncoder {
    id: String,
    created: u64,
    model: String,
}

impl StreamEncoder {
    pub fn new(model: &str) -> StreamEncoder {
        StreamEncoder {
            id: new_id("cmpl-"),
            created: unix_now(),
            model: model.to_string(),
        }
    }

    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
        let mut text = String::new();
        let mut finish = None;
        chunk::pieces(data, |p| match p {
            Piece::Text(t) => text.push_str(t),
            Piece::Finish(f) => finish = Some(f.to_string()),
            Piece::Tool { .. } => {}
        })?;
        if text.is_empty() && finish.is_none() {
            return Ok(());
        }
        out.extend_from_slice(b"data: ");
        write_head(out, &self.id, self.created, &self.model);
        out.extend_from_slice(b",\"choices\":");
        write_choice(out, &text, finish.as_deref());
        out.extend_from_slice(b"}\n\n");
        Ok(())
    }

    /// Usage is not sent: editors read `choices[0]` of every chunk, and a usage chunk has none.
    pub fn finish(&mut self, _usage: Usage, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: {\"error\":{\"message\":");
        write_str(out, message);
        out.extend_from_slice(b",\"type\":\"stream_error\"}}\n\ndata: [DONE]\n\n");
    }
}
