//! The admin API under `/api` (SPEC §10) and the dashboard's static files (SPEC §11).
//!
//! Owns routing of `/api/*`, the session gate and the CSRF gate; each resource lives in its
//! own file (`keys`, `chain`, `models`, `analytics`, `settings`). Every `/api` route except
//! `session`, `setup` and `login` needs a session cookie; the client API key opens nothing
//! here. Slow work (PBKDF2, LMDB write transactions, scans of the request log) runs on a
//! short-lived OS thread through [`off_worker`] so it parks only the calling coroutine.
//! This module must not touch the proxy's hot path.

pub mod analytics;
pub mod auth;
mod body;
mod chain;
mod keys;
mod models;
mod settings;
pub mod web;

use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::api::ApiError;
use crate::app::App;
use crate::http::{Method, Request, Responder};
use crate::store::StoreError;

pub use body::{Fields, bad};

/// Admin state that lives only in memory.
#[derive(Default)]
pub struct AdminState {
    pub lockout: auth::Lockout,
    pub setup: auth::SetupCode,
    /// A background "check all keys" pass is running.
    pub checking: AtomicBool,
}

/// Runs `f` on its own OS thread and parks only this coroutine until it returns.
pub fn off_worker<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = may::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("admin-work".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| {
            log::error!("admin API: cannot start a worker thread: {e}");
            ApiError::Storage
        })?;
    // The sender is gone without a value only if `f` panicked (the panic hook logged it).
    rx.recv().map_err(|_| ApiError::Storage)
}

/// Logs a store failure and turns it into the generic 500.
pub fn storage(e: StoreError) -> ApiError {
    log::error!("admin API: {e}");
    ApiError::Storage
}

/// A JSON response with `Cache-Control: no-store` (admin data must not sit in caches).
pub fn reply<T: Serialize>(
    res: &mut Responder<'_>,
    status: u16,
    value: &T,
) -> Result<(), ApiError> {
    reply_with(res, status, value, &[])
}

pub fn reply_with<T: Serialize>(
    res: &mut Responder<'_>,
    status: u16,
    value: &T,
    headers: &[(&str, &str)],
) -> Result<(), ApiError> {
    let body = simd_json::serde::to_vec(value).map_err(|e| {
        log::error!("admin API: encoding a response failed: {e}");
        ApiError::Storage
    })?;
    let mut head = res.head(status).header("Cache-Control", "no-store");
    for (n, v) in headers {
        head = head.header(n, v);
    }
    let _ = head.body("application/json", &body);
    Ok(())
}

/// Which resource a path names, with the methods it allows.
enum Route<'p> {
    Logout,
    Keys,
    CheckAll,
    Key(&'p str),
    KeyCheck(&'p str),
    KeyReveal(&'p str),
    Fallback,
    Sort(&'p str),
    Models,
    Analytics(&'p str),
    Health,
    Token,
    TokenRotate,
}

fn route<'p>(segments: &[&'p str]) -> Option<(Route<'p>, &'static str)> {
    Some(match segments {
        ["logout"] => (Route::Logout, "POST"),
        ["keys"] => (Route::Keys, "GET, HEAD, POST"),
        ["keys", "check-all"] => (Route::CheckAll, "POST"),
        ["keys", id] => (Route::Key(id), "PATCH, DELETE"),
        ["keys", id, "check"] => (Route::KeyCheck(id), "POST"),
        ["keys", id, "reveal"] => (Route::KeyReveal(id), "POST"),
        ["fallback"] => (Route::Fallback, "GET, HEAD, PUT"),
        ["fallback", "sort", preset] => (Route::Sort(preset), "POST"),
        ["models"] => (Route::Models, "GET, HEAD, POST, PATCH, DELETE"),
        ["analytics", which] => (Route::Analytics(which), "GET, HEAD"),
        ["health"] => (Route::Health, "GET, HEAD"),
        ["settings", "token"] => (Route::Token, "GET, HEAD"),
        ["settings", "token", "rotate"] => (Route::TokenRotate, "POST"),
        _ => return None,
    })
}

/// Handles one `/api/...` request.
pub fn handle(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), ApiError> {
    let path = req.path.strip_prefix("/api/").unwrap_or("");
    let get = matches!(req.method, Method::Get | Method::Head);
    match path {
        "session" if get => return settings::session_state(app, req, res),
        "setup" if req.method == Method::Post => return settings::setup(app, req, res),
        "login" if req.method == Method::Post => return settings::login(app, req, res),
        "session" => return Err(ApiError::MethodNotAllowed { allow: "GET, HEAD" }),
        "setup" | "login" => return Err(ApiError::MethodNotAllowed { allow: "POST" }),
        _ => {}
    }
    settings::require_session(app, req)?;
    let segments: Vec<&str> = path.split('/').collect();
    let Some((route, allow)) = route(&segments) else {
        return Err(ApiError::NotFound);
    };
    let m = req.method;
    if !get {
        auth::same_origin(req)?;
    }
    use Method::*;
    match (route, m) {
        (Route::Logout, Post) => settings::logout(app, req, res),
        (Route::Keys, Get | Head) => keys::list(app, res),
        (Route::Keys, Post) => keys::add(app, req, res),
        (Route::CheckAll, Post) => keys::check_all(app, res),
        (Route::Key(id), Patch) => keys::edit(app, id, req, res),
        (Route::Key(id), Delete) => keys::remove(app, id, res),
        (Route::KeyCheck(id), Post) => keys::check(app, id, res),
        (Route::KeyReveal(id), Post) => keys::reveal(app, id, req, res),
        (Route::Fallback, Get | Head) => chain::get(app, res),
        (Route::Fallback, Put) => chain::put(app, req, res),
        (Route::Sort(preset), Post) => chain::sort(app, preset, res),
        (Route::Models, Get | Head) => models::list(app, res),
        (Route::Models, Post) => models::add(app, req, res),
        (Route::Models, Patch) => models::edit(app, req, res),
        (Route::Models, Delete) => models::remove(app, req, res),
        (Route::Analytics(which), Get | Head) => analytics::route(app, which, req, res),
        (Route::Health, Get | Head) => keys::health(app, res),
        (Route::Token, Get | Head) => settings::token(app, res),
        (Route::TokenRotate, Post) => settings::rotate_token(app, res),
        _ => Err(ApiError::MethodNotAllowed { allow }),
    }
}

/// Parses a numeric id from a path segment.
fn key_id(s: &str) -> Result<u64, ApiError> {
    match s.parse::<u64>() {
        Ok(id) if id > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(bad(
            "id",
            format!("{s:?} is not a key id (a positive integer)"),
        )),
    }
}
