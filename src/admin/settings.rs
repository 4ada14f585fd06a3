//! Sessions (setup, login, logout, the gate every other route passes) and the unified key.

use serde::Serialize;

use super::AdminError;
use super::auth::{self, client_ip, is_tls};
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

/// Refuses the request while this address is locked out.
fn not_locked(
    app: &App,
    state: &AdminState,
    req: &Request<'_>,
) -> Result<std::net::IpAddr, AdminError> {
    let ip = client_ip(req, &app.trust_proxy);
    state
        .lockout
        .check(ip, now_ms())
        .map_err(|retry_after_s| AdminError::TooManyAttempts { retry_after_s })?;
    Ok(ip)
}

/// `POST /api/setup {code, password}`: the first password, with the code from the log.
pub fn setup(
    app: &App,
    state: &AdminState,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    auth::same_origin(req)?;
    let ip = not_locked(app, state, req)?;
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
    if !state.setup.matches(code) {
        state.lockout.fail(ip, now_ms());
        return Err(AdminError::WrongCredentials(
            "wrong setup code: use the one the server printed to its log at start",
        ));
    }
    state.setup.clear();
    let store = app.store.clone();
    off_worker(move || store.set_admin_password(&auth::hash_password(&password)))?
        .map_err(storage)?;
    log::info!("dashboard password set through the setup code");
    state.lockout.succeed(ip);
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
    let ip = not_locked(app, state, req)?;
    let value = super::body::parse(req.body)?;
    let password = Fields::new(&value, "", &["password"])?
        .req_str("password")?
        .to_string();
    if !verify(app, password)? {
        state.lockout.fail(ip, now_ms());
        return Err(AdminError::WrongCredentials("wrong password"));
    }
    state.lockout.succeed(ip);
    start_session(app, req, res)
}

/// Checks the admin password (for login and for revealing a key). `Conflict` when none is set.
pub fn verify(app: &App, password: String) -> Result<bool, AdminError> {
    let Some(stored) = app.store.admin_password().map_err(storage)? else {
        return Err(AdminError::Conflict {
            code: "setup_required",
            message: "no dashboard password is set yet: use the setup code from the server log, or run `freellmapi admin-password` on the server".into(),
        });
    };
    off_worker(move || auth::verify_password(&password, &stored))
}

/// Checks a password re-entered for a sensitive action, with the login lockout.
pub fn reauthenticate(
    app: &App,
    state: &AdminState,
    req: &Request<'_>,
    password: String,
) -> Result<(), AdminError> {
    let ip = not_locked(app, state, req)?;
    if verify(app, password)? {
        state.lockout.succeed(ip);
        Ok(())
    } else {
        state.lockout.fail(ip, now_ms());
        Err(AdminError::WrongCredentials("wrong password"))
    }
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
    let cookie = auth::set_cookie(&token, is_tls(req, &app.trust_proxy));
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
    let cookie = auth::clear_cookie(is_tls(req, &app.trust_proxy));
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
    let (store, master) = (app.store.clone(), app.master.clone());
    off_worker(move || store.set_unified_key(&master, &key))?.map_err(storage)?;
    app.reload().map_err(storage)?;
    log::info!("unified API key rotated from the dashboard");
    token(app, res)
}
