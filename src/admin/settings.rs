//! Sessions (setup, login, logout, the gate every other route passes) and the unified key.

use serde::Serialize;

use super::AdminError;
use super::auth;
use super::{AdminState, Fields, bad, off_worker, reply, reply_with, storage};
use crate::app::App;
use crate::http::{Request, Responder};
use crate::time::now_ms;

/// Passes when the request carries a live session cookie.
pub fn require_session(app: &App, req: &Request<'_>) -> Result<(), AdminError> {
    let Some(token) = auth::session_cookie(req) else {
        return Err(AdminError::LoginRequired);
    };
    match app
        .store
        .session_valid(&auth::token_hash(&token), now_ms())
        .map_err(storage)?
    {
        true => Ok(()),
        false => Err(AdminError::LoginRequired),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionState {
    authenticated: bool,
    setup_required: bool,
    version: &'static str,
}

/// `GET /api/session`: what the dashboard should show (setup, login, or the app).
pub fn session_state(
    app: &App,
    req: &Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let state = SessionState {
        authenticated: require_session(app, req).is_ok(),
        setup_required: app.store.admin_password().map_err(storage)?.is_none(),
        version: env!("CARGO_PKG_VERSION"),
    };
    reply(res, 200, &state)
}

/// Counts a guess from this request's client (see [`auth::Attempts`]).
fn begin<'s>(
    app: &App,
    state: &'s AdminState,
    req: &Request<'_>,
) -> Result<auth::Attempt<'s>, AdminError> {
    state.attempts.begin(app.client_ip(req), now_ms())
}

/// `POST /api/setup {code, password}`: the first password, with the code from the log.
pub fn setup(
    app: &App,
    state: &AdminState,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    auth::same_origin(req)?;
    let value = super::body::parse(req.body)?;
    let f = Fields::new(&value, "", &["code", "password"])?;
    let code = f.req_str("code")?;
    let password = f.req_str("password")?.to_string();
    if app.store.admin_password().map_err(storage)?.is_some() {
        return Err(AdminError::Conflict {
            code: "already_set",
            message: "a password is already set: log in, or reset it on the server with `freellmapi admin-password`".into(),
        });
    }
    auth::check_new_password(&password).map_err(|m| bad("password", m))?;
    let attempt = begin(app, state, req)?;
    if !state.setup.matches(code) {
        return Err(AdminError::WrongCredentials(
            "wrong setup code: use the one the server printed to its log at start",
        ));
    }
    state.setup.clear();
    let store = app.store.clone();
    attempt
        .hash(move || store.set_admin_password(&auth::hash_password(&password)))?
        .map_err(storage)?;
    log::info!("dashboard password set through the setup code");
    attempt.succeeded();
    start_session(app, req, res)
}

/// `POST /api/login {password}`.
pub fn login(
    app: &App,
    state: &AdminState,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    auth::same_origin(req)?;
    let value = super::body::parse(req.body)?;
    let password = Fields::new(&value, "", &["password"])?
        .req_str("password")?
        .to_string();
    reauthenticate(app, state, req, password)?;
    start_session(app, req, res)
}

/// Checks the dashboard password (a login, or the re-entry before a sensitive action) as one
/// counted guess. A right password stored under an older, cheaper hash is hashed again at
/// today's cost and stored in its place.
pub fn reauthenticate(
    app: &App,
    state: &AdminState,
    req: &Request<'_>,
    password: String,
) -> Result<(), AdminError> {
    let Some(stored) = app.store.admin_password().map_err(storage)? else {
        return Err(AdminError::Conflict {
            code: "setup_required",
            message: "no dashboard password is set yet: use the setup code from the server log, or run `freellmapi admin-password` on the server".into(),
        });
    };
    let attempt = begin(app, state, req)?;
    let store = app.store.clone();
    let right = attempt.hash(move || {
        let right = auth::verify_password(&password, &stored);
        if right && auth::needs_rehash(&stored) {
            match store.upgrade_admin_password(&stored, &auth::hash_password(&password)) {
                Ok(true) => log::info!("dashboard password hash upgraded to today's cost"),
                Ok(false) => {}
                Err(e) => log::warn!("upgrading the dashboard password hash failed: {e}"),
            }
        }
        right
    })?;
    if !right {
        return Err(AdminError::WrongCredentials("wrong password"));
    }
    attempt.succeeded();
    Ok(())
}

fn start_session(app: &App, req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let (token, hash) = auth::new_session();
    let store = app.store.clone();
    let now = now_ms();
    off_worker(move || {
        if let Err(e) = store.prune_sessions(now) {
            log::warn!("pruning expired sessions failed: {e}");
        }
        store.create_session(&hash, now + auth::SESSION_TTL_MS)
    })?
    .map_err(storage)?;
    let cookie = auth::set_cookie(&token, app.came_over_tls(req));
    reply_with(res, 200, &Done { ok: true }, &[("Set-Cookie", &cookie)])
}

#[derive(Serialize)]
struct Done {
    ok: bool,
}

/// `POST /api/logout`: ends this session.
pub fn logout(app: &App, req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    if let Some(token) = auth::session_cookie(req) {
        let store = app.store.clone();
        off_worker(move || store.delete_session(&auth::token_hash(&token)))?.map_err(storage)?;
    }
    let cookie = auth::clear_cookie(app.came_over_tls(req));
    reply_with(res, 200, &Done { ok: true }, &[("Set-Cookie", &cookie)])
}

#[derive(Serialize)]
struct Token<'a> {
    token: &'a str,
}

/// `GET /api/settings/token`: the unified client key (session only).
pub fn token(app: &App, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let token = app.token();
    reply(
        res,
        200,
        &Token {
            token: token.as_str().unwrap_or_default(),
        },
    )
}

/// `POST /api/settings/token/rotate`: a new unified key; the old one stops working at once.
pub fn rotate_token(app: &App, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let key = crate::crypto::new_unified_key();
    let (store, master) = (app.store.clone(), app.master());
    off_worker(move || store.set_unified_key(&master, &key))?.map_err(storage)?;
    app.reload().map_err(storage)?;
    log::info!("unified API key rotated from the dashboard");
    token(app, res)
}
