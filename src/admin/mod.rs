//! The dashboard face: the admin API under `/api` and the dashboard's static files.
//!
//! Owns the dashboard's in-memory state ([`AdminState`]: sign-in attempts, setup code, the
//! background check flag), the session gate and the CSRF gate, and one file per resource
//! (`keys`, `chain`, `cooldowns`, `models`, `aliases`, `analytics`, `settings`). Which path reaches which handler is
//! `routes`' business; every `/api` route except `session`, `setup` and `login` passes the
//! session gate, and the client API key opens nothing here. Slow work (PBKDF2, LMDB write
//! transactions, scans of the request log) runs on a short-lived OS thread through
//! [`off_worker`] so it parks only the calling coroutine. This module must not touch the
//! proxy's hot path, and must not import the client face (`api`).

pub mod aliases;
pub mod analytics;
pub mod auth;
pub mod backup;
mod body;
pub mod chain;
pub mod clientkeys;
pub mod cooldowns;
pub mod discovery;
pub mod envkeys;
mod errors;
pub mod hosts;
pub mod keys;
pub mod models;
pub mod settings;
pub mod web;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::http::Responder;
use crate::store::StoreError;

pub use body::{Fields, bad};
pub use errors::AdminError;

/// What the dashboard keeps in memory only, beside the shared `App`.
pub struct AdminState {
    /// The names the dashboard answers to.
    pub hosts: hosts::AllowedHosts,
    pub attempts: auth::Attempts,
    pub setup: auth::SetupCode,
    /// A background "check all keys" pass is running (shared with that pass).
    pub checking: Arc<AtomicBool>,
}

impl AdminState {
    pub fn new(hosts: hosts::AllowedHosts) -> AdminState {
        AdminState {
            hosts,
            attempts: Default::default(),
            setup: Default::default(),
            checking: Default::default(),
        }
    }
}

/// Runs `f` on its own OS thread and parks only this coroutine until it returns.
pub fn off_worker<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdminError> {
    let (tx, rx) = may::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("admin-work".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| {
            log::error!("admin API: cannot start a worker thread: {e}");
            AdminError::Internal
        })?;
    // The sender is gone without a value only if `f` panicked (the panic hook logged it).
    rx.recv().map_err(|_| AdminError::Internal)
}

/// Logs a store failure and turns it into the generic 500.
pub fn storage(e: StoreError) -> AdminError {
    log::error!("admin API: {e}");
    AdminError::Storage
}

/// A JSON response with `Cache-Control: no-store` (admin data must not sit in caches).
pub fn reply<T: Serialize>(
    res: &mut Responder<'_>,
    status: u16,
    value: &T,
) -> Result<(), AdminError> {
    reply_with(res, status, value, &[])
}

pub fn reply_with<T: Serialize>(
    res: &mut Responder<'_>,
    status: u16,
    value: &T,
    headers: &[(&str, &str)],
) -> Result<(), AdminError> {
    let body = simd_json::serde::to_vec(value).map_err(|e| {
        log::error!("admin API: encoding a response failed: {e}");
        AdminError::Storage
    })?;
    let mut head = res.head(status).header("Cache-Control", "no-store");
    for (n, v) in headers {
        head = head.header(n, v);
    }
    let _ = head.body("application/json", &body);
    Ok(())
}

/// Parses a numeric id from a path segment.
fn key_id(s: &str) -> Result<u64, AdminError> {
    match s.parse::<u64>() {
        Ok(id) if id > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(bad(
            "id",
            format!("{s:?} is not a key id (a positive integer)"),
        )),
    }
}
