//! The route table: which (method, path) reaches which handler, for both faces of the server.
//!
//! The client face (`api`: `/v1/*`, `/healthz`, `/readyz`) and the dashboard face (`admin`:
//! `/api/*`, `/`, `/assets/*`) are siblings that never import each other; this module is the
//! only place that knows both. A request is judged on its head, before its body is read: an
//! unknown path gets a JSON 404, a known one with the wrong method a 405 with `Allow`, a client
//! route without the client key a 401, a dashboard route without a session a 401 and a
//! dashboard change from another site a 403; each route also says how large a body it takes.
//! Failures are written once, here, in the OpenAI error shape.

use std::sync::Arc;

use crate::admin::{self, AdminError, AdminState};
use crate::api::{self, ClientError};
use crate::app::App;
use crate::http::{Admission, Dialect, Handler, Method, Problem, Request, Responder};
use crate::surface::Surface;

const GET: &str = "GET, HEAD";
const POST: &str = "POST";
/// Bodies of the dashboard's API: JSON forms and lists, never bulk data.
const ADMIN_BODY_LIMIT: usize = 1024 * 1024;
/// Bodies of routes that take none (a stray body is read and ignored, up to this).
const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// The server's request handler: the shared app and the dashboard's own state, side by side.
pub struct Routes {
    app: Arc<App>,
    admin: AdminState,
}

impl Routes {
    /// `allowed_hosts`: the names the dashboard answers to besides this machine's own.
    pub fn new(app: Arc<App>, allowed_hosts: &[String]) -> Routes {
        Routes {
            app,
            admin: AdminState::new(admin::hosts::AllowedHosts::new(allowed_hosts)),
        }
    }

    /// The dashboard's state (the server issues the setup code through it).
    pub fn admin(&self) -> &AdminState {
        &self.admin
    }
}

/// Where a request goes, decided from its method and path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target<'p> {
    Healthz,
    Livez,
    Readyz,
    ListModels,
    Providers,
    OneModel(&'p str),
    /// A generating surface: chat, messages, responses or completions.
    Generate(Surface),
    CountTokens,
    Embeddings,
    Metrics,
    Index,
    Asset,
    Admin(AdminRoute<'p>),
}

/// A dashboard API route (what follows `/api/`), with its method already matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminRoute<'p> {
    Session,
    Setup,
    Login,
    Logout,
    ListKeys,
    AddKey,
    CheckAll,
    EditKey(&'p str),
    RemoveKey(&'p str),
    CheckKey(&'p str),
    RevealKey(&'p str),
    GetChain,
    PutChain,
    SortChain(&'p str),
    ClearCooldowns,
    ListModels,
    AddModel,
    EditModel,
    RemoveModel,
    DiscoverModels,
    SyncModels,
    KeylessModels,
    GetAliases,
    PutAliases,
    Analytics(&'p str),
    Health,
    Token,
    RotateToken,
    ListClientKeys,
    AddClientKey,
    RemoveClientKey(&'p str),
    Backup,
    ExportKeys,
    ImportKeys,
}

impl AdminRoute<'_> {
    /// The routes that open a session, and so cannot require one.
    fn is_open(self) -> bool {
        matches!(
            self,
            AdminRoute::Session | AdminRoute::Setup | AdminRoute::Login
        )
    }
}

/// The 404 for a path no route has: it names the routes that exist.
fn no_route() -> Problem {
    Problem::new(
        404,
        "invalid_request_error",
        "not_found",
        "no such route; the client API has POST /v1/chat/completions, /v1/messages, \
         /v1/messages/count_tokens, /v1/responses, /v1/completions and /v1/embeddings, GET \
         /v1/models, /v1/models/{id}, /v1/providers, /metrics, /healthz, /livez and /readyz; the \
         dashboard is at / and its API under /api/",
    )
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

fn resolve(method: Method, path: &str) -> Result<Target<'_>, Problem> {
    if let Some(rest) = path.strip_prefix("/api/") {
        return resolve_admin(method, rest)
            .map(Target::Admin)
            .map_err(|e| e.problem());
    }
    let (target, allow) = match path {
        "/healthz" => (Target::Healthz, GET),
        "/livez" => (Target::Livez, GET),
        "/readyz" => (Target::Readyz, GET),
        "/v1/models" => (Target::ListModels, GET),
        "/v1/providers" => (Target::Providers, GET),
        "/v1/chat/completions" => (Target::Generate(Surface::Chat), POST),
        "/v1/messages" => (Target::Generate(Surface::Messages), POST),
        "/v1/messages/count_tokens" => (Target::CountTokens, POST),
        "/v1/responses" => (Target::Generate(Surface::Responses), POST),
        "/v1/completions" => (Target::Generate(Surface::Completions), POST),
        "/v1/embeddings" => (Target::Embeddings, POST),
        "/metrics" => (Target::Metrics, GET),
        "/" | "/index.html" => (Target::Index, GET),
        p if p.starts_with("/v1/models/") => (Target::OneModel(&p["/v1/models/".len()..]), GET),
        p if p.starts_with("/assets/") => (Target::Asset, GET),
        _ => return Err(no_route()),
    };
    only(method, allow)?;
    Ok(target)
}

fn resolve_admin(method: Method, path: &str) -> Result<AdminRoute<'_>, AdminError> {
    use AdminRoute as R;
    use Method::*;
    let segments: Vec<&str> = path.split('/').collect();
    let get = matches!(method, Get | Head);
    let route = match (&segments[..], method) {
        (["session"], _) if get => R::Session,
        (["setup"], Post) => R::Setup,
        (["login"], Post) => R::Login,
        (["logout"], Post) => R::Logout,
        (["keys"], _) if get => R::ListKeys,
        (["keys"], Post) => R::AddKey,
        (["keys", "check-all"], Post) => R::CheckAll,
        (["keys", "export"], Post) => R::ExportKeys,
        (["keys", "import"], Post) => R::ImportKeys,
        (["keys", "check-all" | "export" | "import"], _) => return Err(not_allowed(POST)),
        (["keys", id], Patch) => R::EditKey(id),
        (["keys", id], Delete) => R::RemoveKey(id),
        (["keys", id, "check"], Post) => R::CheckKey(id),
        (["keys", id, "reveal"], Post) => R::RevealKey(id),
        (["fallback"], _) if get => R::GetChain,
        (["fallback"], Put) => R::PutChain,
        (["fallback", "sort", preset], Post) => R::SortChain(preset),
        (["cooldowns", "clear"], Post) => R::ClearCooldowns,
        (["models"], _) if get => R::ListModels,
        (["models"], Post) => R::AddModel,
        (["models"], Patch) => R::EditModel,
        (["models"], Delete) => R::RemoveModel,
        (["models", "discover"], Post) => R::DiscoverModels,
        (["models", "sync"], Post) => R::SyncModels,
        (["models", "keyless"], Put) => R::KeylessModels,
        (["models", "discover" | "sync"], _) => return Err(not_allowed(POST)),
        (["models", "keyless"], _) => return Err(not_allowed("PUT")),
        (["aliases"], _) if get => R::GetAliases,
        (["aliases"], Put) => R::PutAliases,
        (["analytics", which], _) if get => R::Analytics(which),
        (["health"], _) if get => R::Health,
        (["settings", "token"], _) if get => R::Token,
        (["settings", "token", "rotate"], Post) => R::RotateToken,
        (["client-keys"], _) if get => R::ListClientKeys,
        (["client-keys"], Post) => R::AddClientKey,
        (["client-keys", id], Delete) => R::RemoveClientKey(id),
        (["backup"], Post) => R::Backup,
        (["backup"], _) => return Err(not_allowed(POST)),
        (["session" | "health"] | ["analytics", _] | ["settings", "token"], _) => {
            return Err(not_allowed(GET));
        }
        (["setup" | "login" | "logout"] | ["keys", _, "check" | "reveal"], _)
        | (["fallback", "sort", _] | ["settings", "token", "rotate"], _) => {
            return Err(not_allowed(POST));
        }
        (["keys"] | ["client-keys"], _) => return Err(not_allowed("GET, HEAD, POST")),
        (["client-keys", _], _) => return Err(not_allowed("DELETE")),
        (["keys", _], _) => return Err(not_allowed("PATCH, DELETE")),
        (["fallback"] | ["aliases"], _) => return Err(not_allowed("GET, HEAD, PUT")),
        (["models"], _) => return Err(not_allowed("GET, HEAD, POST, PATCH, DELETE")),
        _ => return Err(AdminError::NoRoute),
    };
    Ok(route)
}

fn not_allowed(allow: &'static str) -> AdminError {
    AdminError::MethodNotAllowed { allow }
}

/// The gates of a resolved route (client key; the dashboard's host name, session and origin)
/// and its body limit.
fn gate(
    app: &App,
    admin: &AdminState,
    target: Target<'_>,
    req: &Request<'_>,
) -> Result<usize, Problem> {
    if matches!(target, Target::Admin(_) | Target::Index | Target::Asset) {
        admin
            .hosts
            .check(req.header("host"))
            .map_err(|e| e.problem())?;
    }
    match target {
        Target::Generate(_)
        | Target::CountTokens
        | Target::Embeddings
        | Target::Metrics
        | Target::ListModels
        | Target::Providers
        | Target::OneModel(_) => {
            if let Err(e) = api::authorized(app, req) {
                log::debug!(
                    "request {}: rejected client key from {}",
                    req.id(),
                    req.peer.ip()
                );
                return Err(e.problem());
            }
            // Conversations are bounded by the server's own limit.
            Ok(match target {
                Target::Generate(_) | Target::CountTokens | Target::Embeddings => usize::MAX,
                _ => SMALL_BODY_LIMIT,
            })
        }
        Target::Admin(route) if route.is_open() => Ok(SMALL_BODY_LIMIT),
        Target::Admin(_) => {
            let gate = admin::settings::require_session(app, req).and_then(|()| match req.method {
                Method::Get | Method::Head => Ok(()),
                _ => admin::auth::same_origin(req),
            });
            gate.map_err(|e| e.problem())?;
            Ok(ADMIN_BODY_LIMIT)
        }
        Target::Healthz | Target::Livez | Target::Readyz | Target::Index | Target::Asset => {
            Ok(SMALL_BODY_LIMIT)
        }
    }
}

/// The error shape a route's client reads.
fn dialect(target: Target<'_>, req: &Request<'_>) -> Dialect {
    match target {
        Target::Generate(s) => api::dialect(s),
        Target::CountTokens => Dialect::Anthropic,
        // Anthropic's SDKs list models with this header and read errors in their shape.
        Target::ListModels | Target::OneModel(_)
            if req.header_bytes("anthropic-version").is_some() =>
        {
            Dialect::Anthropic
        }
        _ => Dialect::OpenAi,
    }
}

impl Handler for Routes {
    fn admit(&self, req: &Request<'_>) -> Admission {
        match resolve(req.method, req.path) {
            Ok(target) => Admission {
                dialect: dialect(target, req),
                verdict: gate(&self.app, &self.admin, target, req),
            },
            Err(p) => Admission {
                dialect: Dialect::OpenAi,
                verdict: Err(p),
            },
        }
    }

    fn handle(&self, req: &mut Request<'_>, res: &mut Responder<'_>) {
        // `admit` passed this request (route, method, key or session, origin); only where it
        // goes is decided again.
        let target = match resolve(req.method, req.path) {
            Ok(t) => t,
            Err(p) => return p.write_openai(res),
        };
        let outcome = match target {
            // The hot path, called from here so a stream's coroutine stack stays shallow.
            Target::Generate(surface) => {
                // Answers (and records) its own failures.
                api::generate(&self.app, surface, req, res);
                Ok(())
            }
            Target::Admin(route) => {
                dashboard(&self.app, &self.admin, route, req, res).map_err(|e| e.problem())
            }
            target => client(&self.app, target, req, res),
        };
        if let Err(p) = outcome {
            p.write(res, dialect(target, req));
        }
    }
}

/// Everything outside `/api/` but chat: the client API, the probes and the dashboard's files.
#[inline(never)]
fn client(
    app: &App,
    target: Target<'_>,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), Problem> {
    let client = |e: ClientError| e.problem();
    match target {
        Target::Healthz | Target::Livez => api::healthz(res).map_err(client),
        Target::Providers => api::providers(app, res).map_err(client),
        Target::Readyz => api::readyz(app, res).map_err(client),
        Target::ListModels => api::list_models(app, req, res).map_err(client),
        Target::CountTokens => api::count_tokens(app, req, res).map_err(client),
        Target::Embeddings => {
            // Answers (and records) its own failures.
            api::embeddings(app, req, res);
            Ok(())
        }
        Target::OneModel(id) => api::one_model(app, id, res).map_err(client),
        Target::Metrics => api::metrics(app, res).map_err(client),
        Target::Index => admin::web::index(req, res).map_err(|e| e.problem()),
        Target::Asset => admin::web::asset(req, res).map_err(|e| e.problem()),
        Target::Generate(_) | Target::Admin(_) => Err(no_route()),
    }
}

/// One `/api/...` request that passed its gates.
#[inline(never)]
fn dashboard(
    app: &Arc<App>,
    state: &AdminState,
    route: AdminRoute<'_>,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    use AdminRoute as R;
    use admin::{
        aliases, analytics, backup, chain, clientkeys, cooldowns, discovery, envkeys, keys, models,
        settings,
    };
    match route {
        R::Session => settings::session_state(app, req, res),
        R::Setup => settings::setup(app, state, req, res),
        R::Login => settings::login(app, state, req, res),
        R::Logout => settings::logout(app, req, res),
        R::ListKeys => keys::list(app, res),
        R::AddKey => keys::add(app, req, res),
        R::CheckAll => keys::check_all(app, state, res),
        R::EditKey(id) => keys::edit(app, id, req, res),
        R::RemoveKey(id) => keys::remove(app, id, res),
        R::CheckKey(id) => keys::check(app, id, res),
        R::RevealKey(id) => keys::reveal(app, state, id, req, res),
        R::GetChain => chain::get(app, res),
        R::PutChain => chain::put(app, req, res),
        R::SortChain(preset) => chain::sort(app, preset, res),
        R::ClearCooldowns => cooldowns::clear(app, req, res),
        R::ListModels => models::list(app, res),
        R::AddModel => models::add(app, req, res),
        R::EditModel => models::edit(app, req, res),
        R::RemoveModel => models::remove(app, req, res),
        R::DiscoverModels => discovery::discover(app, req, res),
        R::SyncModels => discovery::sync(app, req, res),
        R::KeylessModels => models::keyless(app, req, res),
        R::GetAliases => aliases::get(app, res),
        R::PutAliases => aliases::put(app, req, res),
        R::Analytics(which) => analytics::route(app, which, req, res),
        R::Health => keys::health(app, state, res),
        R::Token => settings::token(app, res),
        R::RotateToken => settings::rotate_token(app, res),
        R::ListClientKeys => clientkeys::list(app, res),
        R::AddClientKey => clientkeys::add(app, req, res),
        R::RemoveClientKey(id) => clientkeys::remove(app, id, res),
        R::Backup => backup::download(app, state, req, res),
        R::ExportKeys => envkeys::export(app, state, req, res),
        R::ImportKeys => envkeys::import(app, req, res),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_methods_resolve_before_any_body() {
        use Method::*;
        assert_eq!(
            resolve(Post, "/v1/chat/completions"),
            Ok(Target::Generate(Surface::Chat))
        );
        assert_eq!(
            resolve(Post, "/v1/messages"),
            Ok(Target::Generate(Surface::Messages))
        );
        assert_eq!(
            resolve(Post, "/v1/messages/count_tokens"),
            Ok(Target::CountTokens)
        );
        assert_eq!(
            resolve(Head, "/v1/models/a%2Fb"),
            Ok(Target::OneModel("a%2Fb"))
        );
        let p = resolve(Get, "/nope").unwrap_err();
        assert_eq!(p.status, 404);
        assert!(p.message.contains("/v1/messages") && p.message.contains("/api/"));
        let p = resolve(Get, "/v1/chat/completions").unwrap_err();
        assert_eq!((p.status, p.allow), (405, Some(POST)));
        assert_eq!(
            resolve(Patch, "/api/keys/7"),
            Ok(Target::Admin(AdminRoute::EditKey("7")))
        );
        let p = resolve(Patch, "/api/keys/check-all").unwrap_err();
        assert_eq!((p.status, p.allow), (405, Some(POST)));
        let p = resolve(Post, "/api/models/x").unwrap_err();
        assert_eq!(p.status, 404);
        let p = resolve(Put, "/api/keys").unwrap_err();
        assert_eq!(p.allow, Some("GET, HEAD, POST"));
        assert!(matches!(
            resolve(Get, "/api/session"),
            Ok(Target::Admin(r)) if r.is_open()
        ));
    }
}
