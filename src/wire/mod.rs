//! Wire formats: how a chat request is written for a platform and how its answer is read back
//! into the OpenAI shape. One submodule per format; the platform's catalog row says which.
//!
//! Owns no state and does no I/O. Never sees a provider key: credentials are added by
//! `upstream::send` after the body is built here.

pub mod embeddings;
pub mod gemini;
pub mod glance;
pub mod openai;
pub mod rescue;
mod schema;
pub mod transcriptions;

use crate::catalog::{Model, Platform, Wire};
use crate::chat::ChatRequest;
use crate::upstream::Outbound;

/// Token counts of a completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub total: u64,
}

impl Usage {
    /// An estimate for an answer no provider counted: `prompt` as estimated, the answer's
    /// bytes / 4.
    pub fn estimate(prompt: u64, answer: &[u8]) -> Usage {
        let completion = (answer.len() as u64).div_ceil(4);
        Usage {
            prompt,
            completion,
            total: prompt + completion,
        }
    }
}

/// A normalised non-streaming answer.
pub struct Completion {
    pub body: Vec<u8>,
    pub usage: Usage,
    /// The provider sent no usage; ours is an estimate.
    pub usage_estimated: bool,
    /// No content and no tool calls: fail over.
    pub empty: bool,
}

/// An answer that could not be read as the format promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Not JSON, or JSON without the fields the format requires.
    Malformed,
    /// A success status carrying an error object.
    UpstreamError,
    /// The format cannot express this request for this platform; says why.
    Unsupported(&'static str),
}

/// Builds the upstream request for `model` on `platform`.
pub fn outbound(
    platform: &Platform,
    model: &Model,
    chat: &ChatRequest,
) -> Result<Outbound, WireError> {
    // Clients of other vendors' APIs ask for more output than free models give: lowered to
    // what the model allows rather than passed on to earn a 400.
    let cap = if chat.clamp_output {
        model.output_room(chat.input_tokens)
    } else {
        None
    };
    if chat.fim {
        if platform.wire != Wire::Openai || !model.fim {
            return Err(WireError::Unsupported(
                "this model does not serve fill-in-the-middle",
            ));
        }
        return Ok(Outbound {
            url: format!("{}/fim/completions", platform.base_url),
            body: openai::fim_body(chat, &model.model_id, cap),
            first_byte: platform.first_byte_timeout,
        });
    }
    let (url, body) = match platform.wire {
        Wire::Openai | Wire::Cloudflare => {
            let dialect = openai::Dialect {
                null_content_as_empty: platform.wire == Wire::Cloudflare,
                max_tokens_cap: cap,
                ask_stream_usage: platform.stream_usage,
                reasoning_effort: model.caps.contains(crate::catalog::Caps::REASONING),
            };
            (
                format!("{}/chat/completions", platform.base_url),
                openai::request_body(chat, &model.model_id, dialect),
            )
        }
        Wire::Gemini => (
            gemini::url(&platform.base_url, &model.model_id, chat.stream),
            gemini::request_body(chat, cap)?,
        ),
    };
    Ok(Outbound {
        url,
        body,
        first_byte: platform.first_byte_timeout,
    })
}

/// Reads a 2xx non-streaming body into the normalised OpenAI shape.
pub fn completion(
    platform: &Platform,
    model: &Model,
    body: Vec<u8>,
    chat: &ChatRequest,
) -> Result<Completion, WireError> {
    match platform.wire {
        Wire::Openai | Wire::Cloudflare => openai::normalise(body, chat.input_tokens),
        Wire::Gemini => gemini::completion(body, chat, &model.model_id),
    }
}

/// Turns a platform's stream events into OpenAI chunk payloads.
pub enum Decoder {
    /// OpenAI-compatible events are already chunks; they pass through as sent.
    Passthrough,
    Gemini(gemini::StreamDecoder),
}

impl Decoder {
    pub fn new(platform: &Platform, model: &Model) -> Decoder {
        match platform.wire {
            Wire::Openai | Wire::Cloudflare => Decoder::Passthrough,
            Wire::Gemini => Decoder::Gemini(gemini::StreamDecoder::new(&model.model_id)),
        }
    }

    /// Whether the stream's own end marker has been seen (formats without `[DONE]`).
    pub fn finished(&self) -> bool {
        match self {
            Decoder::Passthrough => false,
            Decoder::Gemini(g) => g.finished(),
        }
    }
}
