//! The client face: what OpenAI clients call under `/v1`, plus the liveness and readiness
//! probes and the Prometheus scrape (`metrics`). Owns client authentication, the failover loop (`proxy`), the SSE relay (`relay`)
//! and the model listing (`models`); its failures are [`ClientError`]s.
//!
//! Which path reaches which handler is `routes`' business. This module must not import the
//! dashboard face (`admin`).

mod batch;
mod embeddings;
mod errors;
mod failover;
pub mod gemini;
mod metrics;
mod models;
pub mod ollama;
mod providers;
mod proxy;
mod relay;
mod trail;
mod transcriptions;

use crate::app::App;
use crate::crypto::ct_eq;
use crate::http::{Request, Responder};

pub use batch::completions;
pub use embeddings::embeddings;
pub use errors::{ClientError, Missing};
pub use failover::MAX_ATTEMPTS;
pub use metrics::metrics;
pub use models::{list as list_models, one as one_model, readyz};
pub use providers::providers;
pub use proxy::{dialect, generate};
pub use transcriptions::{BODY_LIMIT as TRANSCRIPTION_BODY_LIMIT, transcriptions};

/// `POST /v1/messages/count_tokens`: the input estimate of a Messages request, without an
/// upstream call.
pub fn count_tokens(
    app: &App,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), ClientError> {
    let n = crate::front::anthropic::count_tokens(req.body, app.router.session_hasher())
        .map_err(ClientError::Invalid)?;
    respond_json(res, 200, format!("{{\"input_tokens\":{n}}}").as_bytes())
}

/// `GET /healthz`: the process answers.
pub fn healthz(res: &mut Responder<'_>) -> Result<(), ClientError> {
    respond_json(res, 200, br#"{"status":"ok"}"#)
}

fn respond_json(res: &mut Responder<'_>, status: u16, body: &[u8]) -> Result<(), ClientError> {
    let _ = res
        .head(status)
        .header("Cache-Control", "no-store")
        .body("application/json", body);
    Ok(())
}

/// The key a client presented: `Authorization: Bearer <key>` exactly, `x-api-key: <key>`
/// (Anthropic's clients), or `x-goog-api-key: <key>` (Google's).
fn presented<'r>(req: &'r Request<'_>) -> Option<&'r [u8]> {
    match req.header_bytes("authorization") {
        Some(v) => v.strip_prefix(b"Bearer "),
        None => req
            .header_bytes("x-api-key")
            .or_else(|| req.header_bytes("x-goog-api-key")),
    }
}

/// Client auth: the unified key or a named client key, from every peer. No loopback
/// exemption, no trust in forwarding headers. An address (or IPv6 /64) that sent
/// [`crate::app::KEY_FAILURES`] wrong keys within a minute gets 429 instead of 401 for the rest of the
/// minute. A right key still passes: keys are 192 random bits, so the limit is about noise
/// and load, and one misconfigured client must not lock out the good ones beside it.
pub fn authorized(app: &App, req: &Request<'_>) -> Result<(), ClientError> {
    match presented(req) {
        Some(k) if ct_eq(k, app.token().as_bytes()) => return Ok(()),
        Some(k) if app.named_client_key(k).is_some() => return Ok(()),
        _ => {}
    }
    let (ip, now) = (app.client_ip(req), crate::time::now_ms());
    let failures = app.key_failures();
    if let Err(retry_after_s) = failures.check(ip, now) {
        return Err(ClientError::TooManyKeyFailures { retry_after_s });
    }
    let _ = failures.take(ip, now);
    Err(ClientError::Unauthorized)
}

/// Which named client key made an admitted request (`None`: the unified key).
fn caller(app: &App, req: &Request<'_>) -> Option<u64> {
    match presented(req) {
        Some(k) if !ct_eq(k, app.token().as_bytes()) => app.client_key_of(k),
        _ => None,
    }
}
