//! The route table: which (method, path) reaches which handler, for both faces of the server.
//!
//! The client face (`api`: `/v1/*`, `/healthz`, `/readyz`) and the dashboard face (`admin`:
//! `/api/*`, `/`, `/assets/*`) are siblings that never import each other; this module is the
//! only place that knows both. It also places the dashboard's gates: every `/api` route but
//! `session`, `setup` and `login` needs a session, and every `/api` change must come from the
//! dashboard's own origin. Unknown paths get a JSON 404, known paths with the wrong method a
//! 405 with `Allow`. Failures are written once, here, in the OpenAI error shape.

use std::sync::Arc;

use crate::admin::{self, AdminError, AdminState};
use crate::api::{self, ClientError};
use crate::app::App;
use crate::http::{Handler, Method, Problem, Request, Responder};

const GET: &str = "GET, HEAD";
const POST: &str = "POST";

/// The server's request handler: the shared app and the dashboard's own state, side by side.
pub struct Routes {
    app: Arc<App>,
    admin: AdminState,
}

impl Routes {
    pub fn new(app: Arc<App>) -> Routes {
        Routes {
            app,
            admin: AdminState::default(),
        }
    }

    /// The dashboard's state (the server issues the setup code through it).
    pub fn admin(&self) -> &AdminState {
        &self.admin
    }
}

impl Handler for Routes {
    fn handle(&self, req: &mut Request<'_>, res: &mut Responder<'_>) {
        let outcome = match req.path.strip_prefix("/api/") {
            Some(rest) => dashboard_api(&self.app, &self.admin, rest, req, res).map_err(problem),
            None => self.other(req, res),
        };
        if let Err(p) = outcome {
            p.write_openai(res);
        }
    }
}

fn problem(e: AdminError) -> Problem {
    e.problem()
}

fn client(e: ClientError) -> Problem {
    e.problem()
}

/// Passes when `method` is one of `allow`'s (`HEAD` goes with `GET`).
fn only(method: Method, allow: &'static str) -> Result<(), Problem> {
    let ok = match allow {
        GET => matches!(method, Method::Get | Method::Head),
        _ => method == Method::Post,
    };
    if ok {
        Ok(())
    } else {
        Err(Problem::method_not_allowed(allow))
    }
}

impl Routes {
    /// Everything outside `/api/`: the client API, the probes and the dashboard's files.
    fn other(&self, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), Problem> {
        let app = &*self.app;
        match req.path {
            "/healthz" => {
                only(req.method, GET)?;
                api::healthz(res).map_err(client)
            }
            "/readyz" => {
                only(req.method, GET)?;
                api::readyz(app, res).map_err(client)
            }
            "/v1/models" => {
                only(req.method, GET)?;
                api::authorized(app, req).map_err(client)?;
                api::list_models(app, req, res).map_err(client)
            }
            "/v1/chat/completions" => {
                only(req.method, POST)?;
                // Answers (and records) its own failures.
                api::chat_completions(app, req, res);
                Ok(())
            }
            "/" | "/index.html" => {
                only(req.method, GET)?;
                admin::web::index(req, res).map_err(problem)
            }
            p if p.starts_with("/v1/models/") => {
                only(req.method, GET)?;
                api::authorized(app, req).map_err(client)?;
                api::one_model(app, &p["/v1/models/".len()..], res).map_err(client)
            }
            p if p.starts_with("/assets/") => {
                only(req.method, GET)?;
                admin::web::asset(req, res).map_err(problem)
            }
            _ => Err(Problem::no_route()),
        }
    }
}

/// One `/api/...` request; `path` is what follows `/api/`.
fn dashboard_api(
    app: &Arc<App>,
    state: &AdminState,
    path: &str,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    use Method::*;
    use admin::{analytics, chain, keys, models, settings};
    let m = req.method;
    let get = matches!(m, Get | Head);
    // The routes that open a session are the only ones without the session gate.
    match (path, m) {
        ("session", Get | Head) => return settings::session_state(app, req, res),
        ("setup", Post) => return settings::setup(app, state, req, res),
        ("login", Post) => return settings::login(app, state, req, res),
        ("session", _) => return Err(AdminError::MethodNotAllowed { allow: GET }),
        ("setup" | "login", _) => return Err(AdminError::MethodNotAllowed { allow: POST }),
        _ => {}
    }
    settings::require_session(app, req)?;
    let segments: Vec<&str> = path.split('/').collect();
    let allow = match segments[..] {
        ["logout"] => POST,
        ["keys"] => "GET, HEAD, POST",
        ["keys", "check-all"] => POST,
        ["keys", _] => "PATCH, DELETE",
        ["keys", _, "check" | "reveal"] => POST,
        ["fallback"] => "GET, HEAD, PUT",
        ["fallback", "sort", _] => POST,
        ["models"] => "GET, HEAD, POST, PATCH, DELETE",
        ["analytics", _] | ["health"] | ["settings", "token"] => GET,
        ["settings", "token", "rotate"] => POST,
        _ => return Err(AdminError::NoRoute),
    };
    if !get {
        admin::auth::same_origin(req)?;
    }
    match (&segments[..], m) {
        (["logout"], Post) => settings::logout(app, req, res),
        (["keys"], Get | Head) => keys::list(app, res),
        (["keys"], Post) => keys::add(app, req, res),
        (["keys", "check-all"], Post) => keys::check_all(app, state, res),
        (["keys", "check-all"], _) => Err(AdminError::MethodNotAllowed { allow }),
        (["keys", id], Patch) => keys::edit(app, id, req, res),
        (["keys", id], Delete) => keys::remove(app, id, res),
        (["keys", id, "check"], Post) => keys::check(app, id, res),
        (["keys", id, "reveal"], Post) => keys::reveal(app, state, id, req, res),
        (["fallback"], Get | Head) => chain::get(app, res),
        (["fallback"], Put) => chain::put(app, req, res),
        (["fallback", "sort", preset], Post) => chain::sort(app, preset, res),
        (["models"], Get | Head) => models::list(app, res),
        (["models"], Post) => models::add(app, req, res),
        (["models"], Patch) => models::edit(app, req, res),
        (["models"], Delete) => models::remove(app, req, res),
        (["analytics", which], Get | Head) => analytics::route(app, which, req, res),
        (["health"], Get | Head) => keys::health(app, state, res),
        (["settings", "token"], Get | Head) => settings::token(app, res),
        (["settings", "token", "rotate"], Post) => settings::rotate_token(app, res),
        _ => Err(AdminError::MethodNotAllowed { allow }),
    }
}
