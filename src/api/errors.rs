//! The client API's error type. Each variant says, in one place, its status, its code (also
//! the request log's class) and its message; the wire shape is `http::Problem`'s business.

use crate::chat::Invalid;
use crate::http::Problem;

#[derive(Debug, Clone, PartialEq)]
pub enum ClientError {
    /// No client key, or the wrong one.
    Unauthorized,
    /// Too many wrong keys from this address within a minute.
    TooManyKeyFailures { retry_after_s: u64 },
    /// The request body is not a valid chat request.
    Invalid(Invalid),
    /// The named model cannot be used; `why` says how it is missing.
    ModelNotFound { model: String, why: Missing },
    /// The named model's provider stopped offering it; `why` says since when and how we know.
    ModelRetired { model: String, why: String },
    /// No model with a usable key can hold the request.
    ContextTooLarge { tokens: u64 },
    /// No enabled model with a key has what the request needs (`vision`, `tools`,
    /// `json_schema`).
    NoCapableModel { needs: String },
    /// The first 400 an upstream gave, after other platforms were tried.
    UpstreamRejected { platform: String, message: String },
    /// Nothing could serve the request now.
    Exhausted { message: String, retry_after_s: u64 },
    /// `/readyz`: no key can serve.
    NotReady { message: String },
    /// The server failed at its own work; the words are for the client, the detail is logged.
    Internal(&'static str),
    /// A request body the handler reads itself failed (too large, too slow, malformed framing).
    Body(crate::http::HttpError),
    /// An uploaded file over the route's limit (bytes).
    UploadTooLarge { limit: u64 },
    /// As many uploads as the server keeps on disk at once are already there.
    UploadsBusy,
}

/// How a named model is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Not in the catalog at all (chat).
    Unknown,
    /// Not an embedding model of the catalog, nor an embedding alias (`/v1/embeddings`).
    UnknownEmbedding,
    /// Not a speech-to-text model of the catalog, nor `whisper-1`.
    UnknownTranscription,
    /// `whisper-1`, and the catalog has no enabled Whisper model.
    NoTranscriptionModel,
    /// An embedding alias whose model cannot serve: none chosen and none with a key.
    NoEmbeddingModel,
    /// In the catalog but switched off (chat).
    Disabled,
    /// Not among the listed models (`GET /v1/models/{id}`).
    Unlisted,
    /// In the catalog, but it does not do what the route asks (an embedding model for chat,
    /// a chat model for embeddings).
    WrongKind,
}

impl ClientError {
    /// Why catalog model `m`, asked for as `name`, cannot serve: retired, or switched off.
    pub fn not_serving(snap: &crate::router::Snapshot, m: usize, name: &str) -> ClientError {
        let model = &snap.catalog.models[m];
        match &model.retired {
            Some(r) => ClientError::ModelRetired {
                model: name.to_string(),
                why: r.describe(&snap.catalog.platforms[model.platform].name),
            },
            None => ClientError::ModelNotFound {
                model: name.to_string(),
                why: Missing::Disabled,
            },
        }
    }

    /// Whether the request itself was at fault (logged as rejected, not as a failure).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            ClientError::Invalid(_)
                | ClientError::Body(_)
                | ClientError::UploadTooLarge { .. }
                | ClientError::ModelNotFound { .. }
                | ClientError::ModelRetired { .. }
                | ClientError::NoCapableModel { .. }
        )
    }

    pub fn problem(&self) -> Problem {
        const INVALID: &str = "invalid_request_error";
        match self {
            ClientError::Unauthorized => Problem::new(
                401,
                "authentication_error",
                "invalid_api_key",
                "Invalid API key",
            ),
            ClientError::TooManyKeyFailures { retry_after_s } => Problem::new(
                429,
                "rate_limit_error",
                "too_many_key_failures",
                format!(
                    "too many requests with a wrong API key from this address; check the client's key (`freellmapi token` prints it) and try again in {retry_after_s} s"
                ),
            )
            .retry_after(*retry_after_s),
            ClientError::Invalid(i) => Problem::new(400, INVALID, i.code, i.message.clone()),
            ClientError::ModelNotFound { model, why } => {
                let message = match why {
                    Missing::Unknown => format!(
                        "Model '{model}' is not in the catalog. Omit the 'model' field (or send \"auto\") to auto-route, or call /v1/models for the available list."
                    ),
                    Missing::UnknownEmbedding => format!(
                        "Model '{model}' is not an embedding model here. Send one that /v1/models lists with \"type\": \"embedding\" (such as mistral-embed), or an OpenAI name (text-embedding-3-small) to use the embedding model the admin chose."
                    ),
                    Missing::UnknownTranscription => format!(
                        "Model '{model}' is not a speech-to-text model here. Send whisper-1 (any Whisper model, in chain order) or one that /v1/models lists with \"type\": \"transcription\" (such as whisper-large-v3-turbo)."
                    ),
                    Missing::NoTranscriptionModel => format!(
                        "Model '{model}' routes to the Whisper models, and none is enabled; switch one on in the dashboard (Models) or with `freellmapi models enable groq/whisper-large-v3-turbo`."
                    ),
                    Missing::NoEmbeddingModel => format!(
                        "Model '{model}' routes to the default embedding model, and no enabled embedding model has a usable key; add a key for a platform with one (Mistral, Cohere, NVIDIA, Google, Cloudflare) or choose the default in the dashboard (Models, Embedding aliases)."
                    ),
                    Missing::Disabled => format!(
                        "Model '{model}' is disabled. Omit the 'model' field (or send \"auto\") to auto-route, or call /v1/models for the available list."
                    ),
                    Missing::Unlisted => {
                        format!("The model '{model}' does not exist or is disabled")
                    }
                    Missing::WrongKind => format!(
                        "Model '{model}' cannot serve this route: embedding models serve /v1/embeddings only, speech-to-text models /v1/audio/transcriptions only, chat models everything else. Call /v1/models for the available list."
                    ),
                };
                let status = if *why == Missing::Unlisted { 404 } else { 400 };
                Problem::new(status, INVALID, "model_not_found", message)
            }
            ClientError::ModelRetired { model, why } => Problem::new(
                400,
                INVALID,
                "model_not_found",
                format!(
                    "Model '{model}' is retired ({why}). Omit the 'model' field (or send \"auto\") to auto-route, or call /v1/models for the available list."
                ),
            ),
            ClientError::ContextTooLarge { tokens } => Problem::new(
                400,
                INVALID,
                "context_length_exceeded",
                format!(
                    "the request needs about {tokens} tokens (input plus reserved output), more than any model with a usable key accepts"
                ),
            ),
            ClientError::NoCapableModel { needs } => Problem::new(
                400,
                INVALID,
                "no_capable_model",
                format!(
                    "no enabled model with a provider key supports {needs}, which this request needs; add a key for a model that does (the capabilities are in /v1/models), or send the request without it"
                ),
            ),
            ClientError::UpstreamRejected { platform, message } => Problem::new(
                400,
                INVALID,
                "upstream_rejected",
                format!(
                    "{platform} rejected the request: {}",
                    crate::logging::redact(message)
                ),
            ),
            ClientError::Exhausted {
                message,
                retry_after_s,
            } => Problem::new(
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
                message.clone(),
            )
            .retry_after(*retry_after_s),
            ClientError::NotReady { message } => {
                Problem::new(503, "server_error", "not_ready", message.clone())
            }
            ClientError::Internal(message) => Problem::internal(message),
            ClientError::Body(e) => e.problem().unwrap_or_else(|| {
                // The client is gone: nobody reads this.
                Problem::new(400, INVALID, "client_closed", "the request body ended early")
            }),
            ClientError::UploadTooLarge { limit } => Problem::new(
                413,
                INVALID,
                "request_too_large",
                format!(
                    "file: larger than the {} MiB limit of speech to text (OpenAI's too); split the audio or send it compressed (mp3, ogg, flac)",
                    limit / (1024 * 1024)
                ),
            ),
            ClientError::UploadsBusy => Problem::new(
                503,
                "server_error",
                "server_busy",
                format!(
                    "{} uploads are being transcribed already; retry shortly",
                    crate::spool::MAX_ACTIVE
                ),
            )
            .retry_after(5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_text_is_redacted_and_statuses_match_the_variant() {
        let e = ClientError::UpstreamRejected {
            platform: "groq".into(),
            message: "bad key gsk_abcdefghijklmnopqrstuvwxyz0123456789".into(),
        };
        let p = e.problem();
        assert_eq!((p.status, p.code), (400, "upstream_rejected"));
        assert!(!p.message.contains("gsk_abcdefghijklmnop"), "{}", p.message);
        let unlisted = ClientError::ModelNotFound {
            model: "x".into(),
            why: Missing::Unlisted,
        };
        assert_eq!(unlisted.problem().status, 404);
        let p = ClientError::Exhausted {
            message: "m".into(),
            retry_after_s: 9,
        }
        .problem();
        assert_eq!((p.status, p.retry_after_s), (429, Some(9)));
    }
}
