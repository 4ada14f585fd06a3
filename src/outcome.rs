//! What an upstream attempt came to, in the router's terms. `upstream::classify` produces these
//! from status codes, headers and structured error fields; the router reads them to cool,
//! penalise or reward a (model, key) pair. They live here so neither side imports the other.

/// What one upstream attempt means for the key and model that served it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// 429, or 503 with Retry-After. `daily` means the provider's daily quota is spent.
    RateLimited {
        retry_after_ms: Option<u64>,
        daily: bool,
    },
    /// 5xx, connect/TLS/timeout errors, truncated or malformed bodies.
    Unavailable,
    /// 401/403.
    Auth,
    /// The provider says the model is gone (404/410 naming it, or a 400 that it was
    /// decommissioned): it is retired, not cooled.
    ModelGone,
    /// The account's privacy settings exclude every endpoint of the model (OpenRouter's "data
    /// policy"): the model exists, this key cannot use it until its owner changes that.
    DataPolicy,
    /// 413 or a context-length error: needs a model with a larger window.
    ContextTooLong,
    /// Another 400/422: probably the request itself.
    BadRequest,
    /// 2xx with no content and no tool calls.
    Empty,
    /// The client went away; nobody's fault.
    Cancelled,
}

impl Verdict {
    /// The class the request log, the trail header and `/metrics` name it by.
    pub fn class(self) -> &'static str {
        match self {
            Verdict::Success => "ok",
            Verdict::RateLimited { .. } => "rate_limited",
            Verdict::Unavailable => "unavailable",
            Verdict::Auth => "auth",
            Verdict::ModelGone => "model_gone",
            Verdict::DataPolicy => "data_policy",
            Verdict::ContextTooLong => "context_too_long",
            Verdict::BadRequest => "bad_request",
            Verdict::Empty => "empty",
            Verdict::Cancelled => "cancelled",
        }
    }
}

/// Provider rate-limit headers, already parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHints {
    pub remaining_requests: Option<u64>,
    pub reset_requests_ms: Option<u64>,
    pub remaining_tokens: Option<u64>,
    pub reset_tokens_ms: Option<u64>,
}
