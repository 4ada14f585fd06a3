//! The route table: which (method, path) reaches which handler, for both faces of the server.
//!
//! The client face (`api`: `/v1/*`, `/healthz`, `/livez`, `/readyz`, `/metrics`) and the
//! dashboard face (`admin`: `/api/*`, `/`, `/assets/*`) are siblings that never import each
//! other; this module is the only place that knows both. `ROUTES` is the one list of routes:
//! dispatch and every 405's `Allow` come from it. A request is judged on its head, before its
//! body is read: an unknown path gets a JSON 404, a known one with the wrong method a 405, a
//! client route without the client key a 401, a dashboard route without a session a 401 and a
//! dashboard change from another site a 403; each route also says how large a body it takes.
//! Those refusals and every handler's error are written here, in the dialect of the route's
//! client; the generating routes and embeddings answer their own failures (a stream may have
//! begun) and record them.

mod ollama;

use std::sync::Arc;

pub use ollama::OllamaRoutes;

use crate::admin::{self, AdminError, AdminState};
use crate::api::{self, ClientError};
use crate::app::App;
use crate::http::{
    Admission, BodyLimit, Dialect, Handler, Method, Methods, Problem, Request, Responder,
};
use crate::surface::Surface;

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

/// Where a request goes, decided from its method and path alone: the route and the path
/// segment its pattern left open (a key id, a model id; empty when none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Target<'p> {
    goal: Goal,
    param: &'p str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Healthz,
    Livez,
    Readyz,
    ListModels,
    Providers,
    OneModel,
    /// A generating surface: chat, messages, responses or completions.
    Generate(Surface),
    /// The Gemini API: `POST …/models/{model}:{method}`.
    Gemini,
    GeminiList,
    GeminiModel,
    CountTokens,
    Embeddings,
    Transcriptions,
    Metrics,
    Index,
    Asset,
    Admin(AdminRoute),
}

/// A dashboard API route (under `/api/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminRoute {
    Session,
    Setup,
    Login,
    Logout,
    ListKeys,
    AddKey,
    CheckAll,
    EditKey,
    RemoveKey,
    CheckKey,
    RevealKey,
    GetChain,
    PutChain,
    SortChain,
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
    GetEmbeddingAliases,
    PutEmbeddingAliases,
    Analytics,
    Health,
    Token,
    RotateToken,
    ListClientKeys,
    AddClientKey,
    RemoveClientKey,
    Backup,
    ExportKeys,
    ImportKeys,
}

impl AdminRoute {
    /// The routes that open a session, and so cannot require one.
    fn is_open(self) -> bool {
        matches!(
            self,
            AdminRoute::Session | AdminRoute::Setup | AdminRoute::Login
        )
    }
}

/// Every route: method, path pattern, where it goes. In a pattern `{}` is one path segment and
/// a final `*` the rest of the path (model ids have slashes). A GET route answers HEAD too. The
/// `Allow` of a 405 is the methods of the routes with the pattern the path matched, so the
/// table is the only list of either. Hot routes come first: a path that matches a pattern with
/// no open segment is resolved at that row.
const ROUTES: &[(Method, &str, Goal)] = {
    use AdminRoute as A;
    use Goal::*;
    use Method::*;
    &[
        (Post, "/v1/chat/completions", Generate(Surface::Chat)),
        (Post, "/v1/messages", Generate(Surface::Messages)),
        (Post, "/v1/responses", Generate(Surface::Responses)),
        (Post, "/v1/completions", Generate(Surface::Completions)),
        (Post, "/v1/embeddings", Embeddings),
        (Post, "/v1/audio/transcriptions", Transcriptions),
        (Post, "/v1/messages/count_tokens", CountTokens),
        (Get, "/v1/models", ListModels),
        (Get, "/v1/models/*", OneModel),
        (Post, "/v1/models/*", Gemini),
        (Get, "/v1beta/models", GeminiList),
        (Get, "/v1beta/models/*", GeminiModel),
        (Post, "/v1beta/models/*", Gemini),
        (Get, "/v1/providers", Providers),
        (Get, "/metrics", Metrics),
        (Get, "/healthz", Healthz),
        (Get, "/livez", Livez),
        (Get, "/readyz", Readyz),
        (Get, "/", Index),
        (Get, "/index.html", Index),
        (Get, "/assets/*", Asset),
        (Get, "/api/session", Admin(A::Session)),
        (Post, "/api/setup", Admin(A::Setup)),
        (Post, "/api/login", Admin(A::Login)),
        (Post, "/api/logout", Admin(A::Logout)),
        (Get, "/api/keys", Admin(A::ListKeys)),
        (Post, "/api/keys", Admin(A::AddKey)),
        (Post, "/api/keys/check-all", Admin(A::CheckAll)),
        (Post, "/api/keys/export", Admin(A::ExportKeys)),
        (Post, "/api/keys/import", Admin(A::ImportKeys)),
        (Patch, "/api/keys/{}", Admin(A::EditKey)),
        (Delete, "/api/keys/{}", Admin(A::RemoveKey)),
        (Post, "/api/keys/{}/check", Admin(A::CheckKey)),
        (Post, "/api/keys/{}/reveal", Admin(A::RevealKey)),
        (Get, "/api/fallback", Admin(A::GetChain)),
        (Put, "/api/fallback", Admin(A::PutChain)),
        (Post, "/api/fallback/sort/{}", Admin(A::SortChain)),
        (Post, "/api/cooldowns/clear", Admin(A::ClearCooldowns)),
        (Get, "/api/models", Admin(A::ListModels)),
        (Post, "/api/models", Admin(A::AddModel)),
        (Patch, "/api/models", Admin(A::EditModel)),
        (Delete, "/api/models", Admin(A::RemoveModel)),
        (Post, "/api/models/discover", Admin(A::DiscoverModels)),
        (Post, "/api/models/sync", Admin(A::SyncModels)),
        (Put, "/api/models/keyless", Admin(A::KeylessModels)),
        (Get, "/api/aliases", Admin(A::GetAliases)),
        (Put, "/api/aliases", Admin(A::PutAliases)),
        (Get, "/api/embedding-aliases", Admin(A::GetEmbeddingAliases)),
        (Put, "/api/embedding-aliases", Admin(A::PutEmbeddingAliases)),
        (Get, "/api/analytics/{}", Admin(A::Analytics)),
        (Get, "/api/health", Admin(A::Health)),
        (Get, "/api/settings/token", Admin(A::Token)),
        (Post, "/api/settings/token/rotate", Admin(A::RotateToken)),
        (Get, "/api/client-keys", Admin(A::ListClientKeys)),
        (Post, "/api/client-keys", Admin(A::AddClientKey)),
        (Delete, "/api/client-keys/{}", Admin(A::RemoveClientKey)),
        (Post, "/api/backup", Admin(A::Backup)),
    ]
};

/// The open segment `path` leaves in `pattern` (empty when there is none), and how many
/// segments matched literally; `None` when it does not match.
fn matches<'p>(pattern: &str, path: &'p str) -> Option<(&'p str, usize)> {
    if let Some(prefix) = pattern.strip_suffix('*') {
        let rest = path.strip_prefix(prefix)?;
        return (!rest.is_empty()).then(|| (rest, prefix.matches('/').count() - 1));
    }
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    let (mut param, mut literal) = ("", 0);
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some((param, literal)),
            (Some("{}"), Some(seg)) if !seg.is_empty() => param = seg,
            (Some(w), Some(seg)) if w == seg => literal += 1,
            _ => return None,
        }
    }
}

fn method_fits(route: Method, asked: Method) -> bool {
    route == asked || (route == Method::Get && asked == Method::Head)
}

/// The 404 for a path no route has: it names the routes that exist.
fn no_route() -> Problem {
    Problem::new(
        404,
        "invalid_request_error",
        "not_found",
        "no such route; the client API has POST /v1/chat/completions, /v1/messages, \
         /v1/messages/count_tokens, /v1/responses, /v1/completions, /v1/embeddings and \
         /v1/audio/transcriptions, GET \
         /v1/models, /v1/models/{id}, /v1/providers, /metrics, /healthz, /livez and /readyz; the \
         Gemini API under /v1beta/models (GET, and POST /v1beta/models/{model}:generateContent \
         and its siblings); the dashboard is at / and its API under /api/",
    )
}

/// The route `method` and `path` reach; a 404 naming what exists, or a 405 with `Allow`.
fn resolve(method: Method, path: &str) -> Result<Target<'_>, Problem> {
    // The most literal pattern the path matches decides (`/api/keys/check-all` over
    // `/api/keys/{}`); its routes answer the method or list theirs.
    let mut best: Option<(&str, usize)> = None;
    for &(m, pattern, goal) in ROUTES {
        let Some((param, literal)) = matches(pattern, path) else {
            continue;
        };
        if param.is_empty() && method_fits(m, method) {
            // No pattern is more literal than one without an open segment.
            return Ok(Target { goal, param });
        }
        if best.is_none_or(|(_, l)| literal > l) {
            best = Some((pattern, literal));
        }
    }
    let Some((pattern, _)) = best else {
        return Err(if path.starts_with("/api/") {
            AdminError::NoRoute.problem()
        } else {
            no_route()
        });
    };
    let mut allow = Methods::default();
    for &(m, p, goal) in ROUTES.iter().filter(|(_, p, _)| *p == pattern) {
        if method_fits(m, method) {
            let (param, _) = matches(p, path).expect("the pattern matched above");
            return Ok(Target { goal, param });
        }
        allow = allow.with(m);
        if m == Method::Get {
            allow = allow.with(Method::Head);
        }
    }
    Err(Problem::method_not_allowed(allow))
}

/// The gates of a resolved route (client key; the dashboard's host name, session and origin)
/// and its body limit.
fn gate(
    app: &App,
    admin: &AdminState,
    target: Target<'_>,
    req: &Request<'_>,
) -> Result<BodyLimit, Problem> {
    if matches!(target.goal, Goal::Admin(_) | Goal::Index | Goal::Asset) {
        admin
            .hosts
            .check(req.header("host"))
            .map_err(|e| e.problem())?;
    }
    match target.goal {
        Goal::Generate(_)
        | Goal::CountTokens
        | Goal::Embeddings
        | Goal::Transcriptions
        | Goal::Metrics
        | Goal::ListModels
        | Goal::Providers
        | Goal::OneModel
        | Goal::Gemini
        | Goal::GeminiList
        | Goal::GeminiModel => {
            if let Err(e) = api::authorized(app, req) {
                log::debug!(
                    "request {}: rejected client key from {}",
                    req.id(),
                    req.peer.ip()
                );
                return Err(e.problem());
            }
            // An upload is read by its handler as it arrives, to disk: memory stays flat.
            if target.goal == Goal::Transcriptions {
                return Ok(BodyLimit::Streamed(api::TRANSCRIPTION_BODY_LIMIT));
            }
            // Conversations are bounded by the server's own limit.
            Ok(BodyLimit::Buffered(match target.goal {
                Goal::Generate(_) | Goal::CountTokens | Goal::Embeddings | Goal::Gemini => {
                    usize::MAX
                }
                _ => SMALL_BODY_LIMIT,
            }))
        }
        Goal::Admin(route) if route.is_open() => Ok(BodyLimit::Buffered(SMALL_BODY_LIMIT)),
        Goal::Admin(_) => {
            let gate = admin::settings::require_session(app, req).and_then(|()| match req.method {
                Method::Get | Method::Head => Ok(()),
                _ => admin::auth::same_origin(req),
            });
            gate.map_err(|e| e.problem())?;
            Ok(BodyLimit::Buffered(ADMIN_BODY_LIMIT))
        }
        Goal::Healthz | Goal::Livez | Goal::Readyz | Goal::Index | Goal::Asset => {
            Ok(BodyLimit::Buffered(SMALL_BODY_LIMIT))
        }
    }
}

/// The error shape a route's client reads.
fn dialect(target: Target<'_>, req: &Request<'_>) -> Dialect {
    match target.goal {
        Goal::Generate(s) => api::dialect(s),
        Goal::CountTokens => Dialect::Anthropic,
        Goal::Gemini | Goal::GeminiList | Goal::GeminiModel => Dialect::Google,
        // Google's SDK lists and reads models under `/v1` with its key header.
        Goal::ListModels | Goal::OneModel if req.header_bytes("x-goog-api-key").is_some() => {
            Dialect::Google
        }
        // Anthropic's SDKs list models with this header and read errors in their shape.
        Goal::ListModels | Goal::OneModel if req.header_bytes("anthropic-version").is_some() => {
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
        let outcome = match target.goal {
            // The hot path, called from here so a stream's coroutine stack stays shallow.
            Goal::Generate(Surface::Completions) => {
                // Answers (and records) its own failures; several prompts are fanned out.
                api::completions(&self.app, req, res);
                Ok(())
            }
            Goal::Generate(surface) => {
                // Answers (and records) its own failures.
                api::generate(&self.app, surface, req, res);
                Ok(())
            }
            Goal::Gemini => {
                // Answers (and records) its own failures.
                api::gemini::post(&self.app, target.param, req, res);
                Ok(())
            }
            Goal::Admin(route) => dashboard(&self.app, &self.admin, route, target.param, req, res)
                .map_err(|e| e.problem()),
            _ => client(&self.app, target, req, res),
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
    match target.goal {
        Goal::Healthz | Goal::Livez => api::healthz(res).map_err(client),
        Goal::Providers => api::providers(app, res).map_err(client),
        Goal::Readyz => api::readyz(app, res).map_err(client),
        // Google's SDK lists and reads models under `/v1` with its key header.
        Goal::ListModels if req.header_bytes("x-goog-api-key").is_some() => {
            api::gemini::list(app, res).map_err(client)
        }
        Goal::ListModels => api::list_models(app, req, res).map_err(client),
        Goal::CountTokens => api::count_tokens(app, req, res).map_err(client),
        Goal::Embeddings => {
            // Answers (and records) its own failures.
            api::embeddings(app, req, res);
            Ok(())
        }
        Goal::Transcriptions => {
            // Answers (and records) its own failures.
            api::transcriptions(app, req, res);
            Ok(())
        }
        Goal::OneModel if req.header_bytes("x-goog-api-key").is_some() => {
            api::gemini::one(app, target.param, res).map_err(client)
        }
        Goal::OneModel => api::one_model(app, target.param, res).map_err(client),
        Goal::GeminiList => api::gemini::list(app, res).map_err(client),
        Goal::GeminiModel => api::gemini::one(app, target.param, res).map_err(client),
        Goal::Metrics => api::metrics(app, res).map_err(client),
        Goal::Index => admin::web::index(req, res).map_err(|e| e.problem()),
        Goal::Asset => admin::web::asset(req, res).map_err(|e| e.problem()),
        Goal::Generate(_) | Goal::Gemini | Goal::Admin(_) => Err(no_route()),
    }
}

/// One `/api/...` request that passed its gates.
#[inline(never)]
fn dashboard(
    app: &Arc<App>,
    state: &AdminState,
    route: AdminRoute,
    param: &str,
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
        R::EditKey => keys::edit(app, param, req, res),
        R::RemoveKey => keys::remove(app, param, res),
        R::CheckKey => keys::check(app, param, res),
        R::RevealKey => keys::reveal(app, state, param, req, res),
        R::GetChain => chain::get(app, res),
        R::PutChain => chain::put(app, req, res),
        R::SortChain => chain::sort(app, param, res),
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
        R::GetEmbeddingAliases => aliases::get_embedding(app, res),
        R::PutEmbeddingAliases => aliases::put_embedding(app, req, res),
        R::Analytics => analytics::route(app, param, req, res),
        R::Health => keys::health(app, state, res),
        R::Token => settings::token(app, res),
        R::RotateToken => settings::rotate_token(app, res),
        R::ListClientKeys => clientkeys::list(app, res),
        R::AddClientKey => clientkeys::add(app, req, res),
        R::RemoveClientKey => clientkeys::remove(app, param, res),
        R::Backup => backup::download(app, state, req, res),
        R::ExportKeys => envkeys::export(app, state, req, res),
        R::ImportKeys => envkeys::import(app, req, res),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(goal: Goal, param: &str) -> Result<Target<'_>, Problem> {
        Ok(Target { goal, param })
    }

    fn allow(p: Problem) -> (u16, String) {
        (p.status, p.allow.map(|a| a.to_string()).unwrap_or_default())
    }

    #[test]
    fn paths_and_methods_resolve_before_any_body() {
        use Method::*;
        assert_eq!(
            resolve(Post, "/v1/chat/completions"),
            to(Goal::Generate(Surface::Chat), "")
        );
        assert_eq!(
            resolve(Post, "/v1/messages"),
            to(Goal::Generate(Surface::Messages), "")
        );
        assert_eq!(
            resolve(Post, "/v1/messages/count_tokens"),
            to(Goal::CountTokens, "")
        );
        assert_eq!(
            resolve(Head, "/v1/models/a%2Fb"),
            to(Goal::OneModel, "a%2Fb")
        );
        assert_eq!(
            resolve(Get, "/v1/models/openai/gpt-oss-20b"),
            to(Goal::OneModel, "openai/gpt-oss-20b")
        );
        let p = resolve(Get, "/nope").unwrap_err();
        assert_eq!(p.status, 404);
        assert!(p.message.contains("/v1/messages") && p.message.contains("/api/"));
        assert_eq!(
            allow(resolve(Get, "/v1/chat/completions").unwrap_err()),
            (405, "POST".into())
        );
        assert_eq!(
            resolve(Patch, "/api/keys/7"),
            to(Goal::Admin(AdminRoute::EditKey), "7")
        );
        // A literal segment beats an open one: check-all is not a key id.
        assert_eq!(
            allow(resolve(Patch, "/api/keys/check-all").unwrap_err()),
            (405, "POST".into())
        );
        assert_eq!(resolve(Post, "/api/models/x").unwrap_err().status, 404);
        assert_eq!(resolve(Get, "/api/keys/").unwrap_err().status, 404);
        assert_eq!(
            allow(resolve(Put, "/api/keys").unwrap_err()),
            (405, "GET, HEAD, POST".into())
        );
        assert!(matches!(
            resolve(Get, "/api/session"),
            Ok(Target { goal: Goal::Admin(r), .. }) if r.is_open()
        ));
    }

    /// Tries: every path of the table with every method. A route's own method reaches it; any
    /// other is a 405 whose `Allow` lists exactly the methods the table has for that pattern.
    #[test]
    fn every_route_answers_its_methods_and_a_405_lists_them() {
        use Method::*;
        for &(_, pattern, _) in ROUTES {
            let path = pattern.replace("{}", "7").replace('*', "x/y");
            let mut table = Methods::default();
            for &(m, _, goal) in ROUTES.iter().filter(|(_, p, _)| *p == pattern) {
                table = table.with(m);
                if m == Get {
                    table = table.with(Head);
                    assert_eq!(
                        resolve(Head, &path).map(|t| t.goal),
                        Ok(goal),
                        "HEAD {path}"
                    );
                }
                assert_eq!(resolve(m, &path).map(|t| t.goal), Ok(goal), "{m:?} {path}");
            }
            for m in [Get, Head, Post, Put, Patch, Delete, Options] {
                if table.contains(m) {
                    continue;
                }
                let p = resolve(m, &path).unwrap_err();
                assert_eq!(allow(p), (405, table.to_string()), "{m:?} {path}");
            }
        }
        // The two the hand-kept lists had wrong.
        assert_eq!(
            allow(resolve(Get, "/api/cooldowns/clear").unwrap_err()),
            (405, "POST".into())
        );
        assert_eq!(
            allow(resolve(Get, "/api/backup").unwrap_err()),
            (405, "POST".into())
        );
    }
}
