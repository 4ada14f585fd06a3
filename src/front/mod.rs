//! Front translators: the client APIs other than chat completions, each written once as a
//! translation to and from the internal chat request, so routing, failover, the ledger, the
//! request log and the SSE relay are shared by every surface.
//!
//! A front turns the client's body into a [`ChatRequest`] (validating the client's own fields,
//! so errors name them), renders a normalised chat completion in the client's shape, and
//! encodes OpenAI stream chunks as the client's event sequence ([`Encoder`]). Owns no state
//! beyond one response's encoder and does no I/O; never sees a provider key.

pub mod anthropic;
mod chunk;
pub mod completions;
pub mod embeddings;
pub mod gemini;
pub mod ollama;
pub mod responses;
mod tools;
pub mod transcriptions;

use std::hash::Hasher;

use crate::surface::Surface;
use simd_json::OwnedValue;
use simd_json::owned::Object;
use simd_json::prelude::*;

use crate::chat::{ChatRequest, Invalid};
use crate::wire::{Usage, WireError};

/// A client request made internal, with what the answer must echo.
pub struct Inbound {
    pub chat: ChatRequest,
    /// The model name the client sent, echoed in the answer (`auto` when none). Empty for
    /// chat, whose answers pass through with the provider's own `model`.
    pub echo_model: String,
    /// Tools the proxy cannot serve, dropped from the request (named in a response header).
    pub dropped_tools: Vec<String>,
}

/// Parses a request of a translated surface (chat, embeddings and speech to text have their
/// own paths).
pub fn parse(surface: Surface, bytes: &mut [u8], hasher: impl Hasher) -> Result<Inbound, Invalid> {
    match surface {
        Surface::Messages => anthropic::parse(bytes, hasher),
        Surface::Responses => responses::parse(bytes, hasher),
        Surface::Completions => completions::parse(bytes, hasher),
        Surface::OllamaChat => ollama::parse_chat(bytes, hasher),
        Surface::OllamaGenerate => ollama::parse_generate(bytes, hasher),
        // Its model and whether it streams are in the path: `gemini::parse` takes them.
        Surface::Gemini => Err(crate::chat::invalid(
            "invalid_request",
            "a Gemini request names its model in the path (models/{model}:generateContent)".into(),
        )),
        Surface::Chat | Surface::Embeddings | Surface::Transcriptions => {
            let chat = ChatRequest::parse(bytes, hasher)?;
            Ok(Inbound {
                // Nothing is echoed on this path; an empty `String` costs no allocation.
                echo_model: String::new(),
                chat,
                dropped_tools: Vec::new(),
            })
        }
    }
}

/// What every rendered answer carries besides the completion.
pub struct Echo<'a> {
    pub model: &'a str,
    pub usage: Usage,
    /// From sending the request upstream to its answer (Ollama reports durations).
    pub took: std::time::Duration,
}

/// Renders a normalised chat completion body in the surface's shape.
pub fn render(
    surface: Surface,
    completion: Vec<u8>,
    echo: &Echo<'_>,
) -> Result<Vec<u8>, WireError> {
    match surface {
        Surface::Chat | Surface::Embeddings | Surface::Transcriptions => Ok(completion),
        Surface::Messages => anthropic::render(completion, echo),
        Surface::Responses => responses::render(completion, echo),
        Surface::Completions => completions::render(completion, echo),
        Surface::OllamaChat => ollama::render(ollama::Route::Chat, completion, echo),
        Surface::OllamaGenerate => ollama::render(ollama::Route::Generate, completion, echo),
        Surface::Gemini => gemini::render(completion, echo),
    }
}

/// Encodes a stream of OpenAI chunks as one surface's event stream.
pub enum Encoder {
    /// Chunks pass through as `data:` frames.
    Chat,
    Messages(anthropic::StreamEncoder),
    Responses(responses::StreamEncoder),
    Completions(completions::StreamEncoder),
    Ollama(ollama::StreamEncoder),
    Gemini(gemini::StreamEncoder),
}

impl Encoder {
    /// `input_tokens` is the estimate announced before the real usage is known.
    pub fn new(surface: Surface, echo_model: &str, input_tokens: u64) -> Encoder {
        match surface {
            Surface::Chat | Surface::Embeddings | Surface::Transcriptions => Encoder::Chat,
            Surface::Messages => {
                Encoder::Messages(anthropic::StreamEncoder::new(echo_model, input_tokens))
            }
            Surface::Responses => Encoder::Responses(responses::StreamEncoder::new(echo_model)),
            Surface::Completions => {
                Encoder::Completions(completions::StreamEncoder::new(echo_model))
            }
            Surface::OllamaChat => {
                Encoder::Ollama(ollama::StreamEncoder::new(ollama::Route::Chat, echo_model))
            }
            Surface::OllamaGenerate => Encoder::Ollama(ollama::StreamEncoder::new(
                ollama::Route::Generate,
                echo_model,
            )),
            Surface::Gemini => Encoder::Gemini(gemini::StreamEncoder::new(echo_model, true)),
        }
    }

    /// The Gemini stream as one JSON array (`streamGenerateContent` without `alt=sse`)
    /// instead of events; other encoders are unchanged.
    pub fn json_array(self) -> Encoder {
        match self {
            Encoder::Gemini(e) => Encoder::Gemini(e.json_array()),
            other => other,
        }
    }

    /// Appends the events one OpenAI chunk becomes (`Chat` is written by the relay itself).
    pub fn chunk(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
        match self {
            Encoder::Chat => {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(data);
                out.extend_from_slice(b"\n\n");
                Ok(())
            }
            Encoder::Messages(e) => e.chunk(data, out),
            Encoder::Responses(e) => e.chunk(data, out),
            Encoder::Completions(e) => e.chunk(data, out),
            Encoder::Ollama(e) => e.chunk(data, out),
            Encoder::Gemini(e) => e.chunk(data, out),
        }
    }

    /// Appends the end of a complete stream.
    pub fn finish(&mut self, usage: Usage, out: &mut Vec<u8>) {
        match self {
            Encoder::Chat => out.extend_from_slice(b"data: [DONE]\n\n"),
            Encoder::Messages(e) => e.finish(usage, out),
            Encoder::Responses(e) => e.finish(usage, out),
            Encoder::Completions(e) => e.finish(usage, out),
            Encoder::Ollama(e) => e.finish(usage, out),
            Encoder::Gemini(e) => e.finish(usage, out),
        }
    }

    /// Appends the end of a stream that broke after it started.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        match self {
            Encoder::Chat => {
                out.extend_from_slice(b"data: {\"error\":{\"message\":");
                crate::json::write_str(out, message);
                out.extend_from_slice(b",\"type\":\"stream_error\"}}\n\ndata: [DONE]\n\n");
            }
            Encoder::Messages(e) => e.fail(message, out),
            Encoder::Responses(e) => e.fail(message, out),
            Encoder::Completions(e) => e.fail(message, out),
            Encoder::Ollama(e) => e.fail(message, out),
            Encoder::Gemini(e) => e.fail(message, out),
        }
    }

    /// The frame sent on a quiet stream; empty where the format has none (an NDJSON
    /// reader would take any line for an object; Google's SDK reads lines that are not
    /// `data:` as JSON).
    pub fn keepalive(&self) -> &'static [u8] {
        match self {
            Encoder::Messages(_) => b"event: ping\ndata: {\"type\":\"ping\"}\n\n",
            Encoder::Ollama(_) | Encoder::Gemini(_) => b"",
            _ => b": keep-alive\n\n",
        }
    }

    /// The stream's `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self {
            Encoder::Ollama(_) => "application/x-ndjson",
            Encoder::Gemini(e) => e.content_type(),
            _ => "text/event-stream; charset=utf-8",
        }
    }
}

/// Copies `temperature`, `top_p` and `stream` (checked) into the internal request; a stream
/// asks upstream for real token counts (`stream_options.include_usage`), which the encoders
/// report at the end instead of an estimate.
fn sampling_and_stream(body: &OwnedValue, out: &mut Object) -> Result<(), Invalid> {
    for field in ["temperature", "top_p"] {
        if let Some(v) = body.get(field).filter(|v| !v.is_null()) {
            out.insert(field.into(), v.clone());
        }
    }
    if let Some(v) = body.get("stream").filter(|v| !v.is_null()) {
        let stream = v
            .as_bool()
            .ok_or_else(|| crate::chat::wrong_type("stream", "a boolean", v))?;
        out.insert("stream".into(), OwnedValue::from(stream));
        if stream {
            out.insert(
                "stream_options".into(),
                simd_json::json!({ "include_usage": true }),
            );
        }
    }
    Ok(())
}

/// `response_format` for a JSON Schema a client gave (Responses `text.format`, Anthropic
/// `output_config.format`), in the internal (OpenAI) shape; `ChatRequest` then asks for a
/// model that takes `json_schema`.
fn json_schema_format(schema: &OwnedValue, name: Option<&str>, strict: Option<bool>) -> OwnedValue {
    let mut js = simd_json::json!({ "name": name.unwrap_or("response"), "schema": schema.clone() });
    if let (Some(strict), Some(o)) = (strict, js.as_object_mut()) {
        o.insert("strict".into(), OwnedValue::from(strict));
    }
    simd_json::json!({ "type": "json_schema", "json_schema": js })
}

/// `reasoning_effort` from a client's effort level (`path` names its field), in the levels
/// providers share: `low`, `medium`, `high`.
fn reasoning_effort(effort: &OwnedValue, path: &str) -> Result<OwnedValue, Invalid> {
    let level = match effort.as_str() {
        Some("none" | "minimal" | "low") => "low",
        Some("medium") => "medium",
        Some("high" | "xhigh" | "max") => "high",
        Some(other) => {
            return Err(crate::chat::invalid(
                "invalid_value",
                format!(
                    "{path}: unknown value {other:?}; expected low, medium or high (minimal, xhigh and max are taken as the nearest)"
                ),
            ));
        }
        None => return Err(crate::chat::wrong_type(path, "a string", effort)),
    };
    Ok(OwnedValue::from(level))
}

/// A response id: `prefix` and 24 random hex digits.
fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 12];
    crate::crypto::fill_random(&mut b);
    format!("{prefix}{}", crate::crypto::to_hex(&b))
}

/// Unix seconds now.
fn unix_now() -> u64 {
    crate::time::now_ms() / 1000
}

/// One SSE event with a name: `event: <name>\ndata: <json>\n\n`.
fn event(out: &mut Vec<u8>, name: &str, json: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
}
