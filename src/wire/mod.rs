//! Wire formats: how a chat request is written for a platform and how its answer is read back
//! into the OpenAI shape. One submodule per format; the platform's catalog row says which.
//!
//! Owns no state and does no I/O. Never sees a provider key: credentials are added by
//! `upstream::send` after the body is built here.

pub mod openai;

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
    /// The format cannot express this request for this platform (e.g. a remote image URL).
    Unsupported,
}

/// Whether this build speaks the platform's wire format.
pub fn supported(wire: Wire) -> bool {
    matches!(wire, Wire::Openai | Wire::Cloudflare)
}

/// Builds the upstream request for `model` on `platform`.
pub fn outbound(
    platform: &Platform,
    model: &Model,
    chat: &ChatRequest,
) -> Result<Outbound, WireError> {
    let dialect = match platform.wire {
        Wire::Openai => openai::Dialect::default(),
        Wire::Cloudflare => openai::Dialect {
            null_content_as_empty: true,
        },
        Wire::Gemini => return Err(WireError::Unsupported),
    };
    Ok(Outbound {
        url: format!("{}/chat/completions", platform.base_url),
        body: openai::request_body(chat, &model.model_id, dialect),
        first_byte: platform.first_byte_timeout,
    })
}

/// Reads a 2xx non-streaming body into the normalised OpenAI shape.
pub fn completion(
    platform: &Platform,
    body: Vec<u8>,
    chat: &ChatRequest,
) -> Result<Completion, WireError> {
    match platform.wire {
        Wire::Openai | Wire::Cloudflare => openai::normalise(body, chat.input_tokens),
        Wire::Gemini => Err(WireError::Unsupported),
    }
}
