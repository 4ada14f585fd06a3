//! The API layer's one error type and its one mapping to an HTTP response.

use crate::chat::Invalid;
use crate::http::Responder;

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    Unauthorized,
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    Invalid(Invalid),
    ModelNotFound {
        model: String,
        disabled: bool,
    },
    /// `GET /v1/models/{id}` for an id that is not listed.
    NoSuchModel {
        model: String,
    },
    /// No model with a usable key can hold the request.
    ContextTooLarge {
        tokens: u64,
    },
    /// The first 400 an upstream gave, after other platforms were tried.
    UpstreamRejected {
        platform: String,
        message: String,
    },
    /// Nothing could serve the request now.
    Exhausted {
        message: String,
        retry_after_s: u64,
    },
    NotReady {
        message: String,
    },
    /// An admin route without a valid session (the client key does not count).
    LoginRequired,
    /// A wrong password or setup code.
    WrongCredentials(&'static str),
    /// A mutating admin request from another site.
    CrossOrigin,
    /// Too many failed logins from this address.
    TooManyAttempts {
        retry_after_s: u64,
    },
    Conflict {
        code: &'static str,
        message: String,
    },
    /// An admin route named something that does not exist (`no key with id 7`).
    Missing(String),
    /// The store failed; the detail goes to the log, not to the client.
    Storage,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized | ApiError::LoginRequired | ApiError::WrongCredentials(_) => 401,
            ApiError::CrossOrigin => 403,
            ApiError::NotFound | ApiError::NoSuchModel { .. } | ApiError::Missing(_) => 404,
            ApiError::Conflict { .. } => 409,
            ApiError::TooManyAttempts { .. } => 429,
            ApiError::Storage => 500,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Invalid(_)
            | ApiError::ModelNotFound { .. }
            | ApiError::ContextTooLarge { .. } => 400,
            ApiError::UpstreamRejected { .. } => 400,
            ApiError::Exhausted { .. } => 429,
            ApiError::NotReady { .. } => 503,
        }
    }

    /// A short class for the request log.
    pub fn class(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Invalid(_) => "invalid_request",
            ApiError::ModelNotFound { .. } | ApiError::NoSuchModel { .. } => "model_not_found",
            ApiError::ContextTooLarge { .. } => "context_length_exceeded",
            ApiError::UpstreamRejected { .. } => "upstream_rejected",
            ApiError::Exhausted { .. } => "exhausted",
            ApiError::NotReady { .. } => "not_ready",
            ApiError::LoginRequired => "login_required",
            ApiError::WrongCredentials(_) => "invalid_credentials",
            ApiError::CrossOrigin => "cross_origin",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::Conflict { code, .. } => code,
            ApiError::Missing(_) => "not_found",
            ApiError::Storage => "storage_error",
        }
    }

    /// Writes the error shape. Messages never carry secrets: upstream text is redacted.
    pub fn respond(&self, res: &mut Responder<'_>) {
        let status = self.status();
        let retry;
        let mut headers: Vec<(&str, &str)> = Vec::new();
        let (kind, code, message): (&str, Option<&str>, String) = match self {
            ApiError::Unauthorized => (
                "authentication_error",
                Some("invalid_api_key"),
                "Invalid API key".into(),
            ),
            ApiError::NotFound => (
                "invalid_request_error",
                Some("not_found"),
                "no such route".into(),
            ),
            ApiError::MethodNotAllowed { allow } => {
                headers.push(("Allow", allow));
                (
                    "invalid_request_error",
                    Some("method_not_allowed"),
                    format!("method not allowed; use {allow}"),
                )
            }
            ApiError::Invalid(i) => ("invalid_request_error", Some(i.code), i.message.clone()),
            ApiError::ModelNotFound {
                model,
                disabled: true,
            } => (
                "invalid_request_error",
                Some("model_not_found"),
                format!(
                    "Model '{model}' is disabled. Omit the 'model' field (or send \"auto\") to auto-route, or call /v1/models for the available list."
                ),
            ),
            ApiError::ModelNotFound {
                model,
                disabled: false,
            } => (
                "invalid_request_error",
                Some("model_not_found"),
                format!(
                    "Model '{model}' is not in the catalog. Omit the 'model' field (or send \"auto\") to auto-route, or call /v1/models for the available list."
                ),
            ),
            ApiError::NoSuchModel { model } => (
                "invalid_request_error",
                Some("model_not_found"),
                format!("The model '{model}' does not exist or is disabled"),
            ),
            ApiError::ContextTooLarge { tokens } => (
                "invalid_request_error",
                Some("context_length_exceeded"),
                format!(
                    "the request needs about {tokens} tokens (input plus reserved output), more than any model with a usable key accepts"
                ),
            ),
            ApiError::UpstreamRejected { platform, message } => (
                "invalid_request_error",
                Some("upstream_rejected"),
                format!(
                    "{platform} rejected the request: {}",
                    crate::logging::redact(message)
                ),
            ),
            ApiError::Exhausted {
                message,
                retry_after_s,
            } => {
                retry = retry_after_s.to_string();
                headers.push(("Retry-After", &retry));
                (
                    "rate_limit_error",
                    Some("rate_limit_exceeded"),
                    message.clone(),
                )
            }
            ApiError::NotReady { message } => ("server_error", Some("not_ready"), message.clone()),
            ApiError::LoginRequired => (
                "authentication_error",
                Some("login_required"),
                "log in to the dashboard first (POST /api/login); the client API key does not open /api".into(),
            ),
            ApiError::WrongCredentials(what) => (
                "authentication_error",
                Some("invalid_credentials"),
                (*what).into(),
            ),
            ApiError::CrossOrigin => (
                "permission_error",
                Some("cross_origin"),
                "cross-site request refused: admin changes must come from the dashboard's own origin".into(),
            ),
            ApiError::TooManyAttempts { retry_after_s } => {
                retry = retry_after_s.to_string();
                headers.push(("Retry-After", &retry));
                (
                    "rate_limit_error",
                    Some("too_many_attempts"),
                    format!("too many failed attempts from this address; try again in {retry_after_s} s"),
                )
            }
            ApiError::Conflict { code, message } => {
                ("invalid_request_error", Some(*code), message.clone())
            }
            ApiError::Missing(what) => ("invalid_request_error", Some("not_found"), what.clone()),
            ApiError::Storage => (
                "server_error",
                Some("storage_error"),
                "the data store failed; the server log has the detail".into(),
            ),
        };
        let _ = res.error_with(status, kind, code, &message, &headers);
    }
}
