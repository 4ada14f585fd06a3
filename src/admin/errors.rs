//! The dashboard API's error type. Each variant says, in one place, its status, code and
//! message; the wire shape is `http::Problem`'s business.

use crate::http::Problem;

#[derive(Debug, Clone, PartialEq)]
pub enum AdminError {
    /// No valid session (the client API key does not count).
    LoginRequired,
    /// A wrong password or setup code.
    WrongCredentials(&'static str),
    /// A mutating request from another site.
    CrossOrigin,
    /// A `Host` that is not one of this machine's names (DNS rebinding).
    MisdirectedHost { host: String },
    /// Too many failed guesses from this address (or its IPv6 /64).
    TooManyAttempts { retry_after_s: u64 },
    /// Too many failed guesses from everywhere together: every address waits.
    EveryoneWaits { retry_after_s: u64 },
    /// A body or path value that is not acceptable; the message names the field.
    Invalid { code: &'static str, message: String },
    /// The request conflicts with the current state (`already_set`, `duplicate_key`...).
    Conflict { code: &'static str, message: String },
    /// The request names something that does not exist (`no key with id 7`).
    NotFound(String),
    /// Under `/api/` but no such resource.
    NoRoute,
    /// A provider the dashboard asked (model discovery) failed; says how, never with a key.
    Upstream(String),
    /// The store failed; the detail is in the log.
    Storage,
    /// The server could not do the work (a worker thread, encoding the answer); the detail
    /// is in the log.
    Internal,
}

impl AdminError {
    pub fn problem(&self) -> Problem {
        const INVALID: &str = "invalid_request_error";
        match self {
            AdminError::LoginRequired => Problem::new(
                401,
                "authentication_error",
                "login_required",
                "log in to the dashboard first (POST /api/login); the client API key does not open /api",
            ),
            AdminError::WrongCredentials(what) => {
                Problem::new(401, "authentication_error", "invalid_credentials", *what)
            }
            AdminError::CrossOrigin => Problem::new(
                403,
                "permission_error",
                "cross_origin",
                "cross-site request refused: admin changes must come from the dashboard's own origin",
            ),
            AdminError::MisdirectedHost { host } => Problem::new(
                421,
                "permission_error",
                "host_not_allowed",
                format!(
                    "this dashboard does not answer to the name {host:?} (a guard against DNS rebinding); to use that name, add it to FREELLMAPI_ALLOWED_HOSTS (comma-separated) and restart"
                ),
            ),
            AdminError::TooManyAttempts { retry_after_s } => Problem::new(
                429,
                "rate_limit_error",
                "too_many_attempts",
                format!(
                    "too many failed attempts from this address; try again in {retry_after_s} s"
                ),
            )
            .retry_after(*retry_after_s),
            AdminError::EveryoneWaits { retry_after_s } => Problem::new(
                429,
                "rate_limit_error",
                "too_many_attempts",
                format!(
                    "too many failed sign-ins from many addresses; sign-ins are slowed for everyone: try again in {retry_after_s} s"
                ),
            )
            .retry_after(*retry_after_s),
            AdminError::Invalid { code, message } => {
                Problem::new(400, INVALID, code, message.clone())
            }
            AdminError::Conflict { code, message } => {
                Problem::new(409, INVALID, code, message.clone())
            }
            AdminError::NotFound(what) => Problem::new(404, INVALID, "not_found", what.clone()),
            AdminError::NoRoute => Problem::no_route(),
            AdminError::Upstream(m) => Problem::new(502, "api_error", "upstream_error", m.clone()),
            AdminError::Storage => Problem::new(
                500,
                "server_error",
                "storage_error",
                "the data store failed; the server log has the detail",
            ),
            AdminError::Internal => {
                Problem::internal("the server could not do this; the server log has the detail")
            }
        }
    }
}
