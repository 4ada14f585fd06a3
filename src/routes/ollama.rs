//! The Ollama listener's routes (`FREELLMAPI_OLLAMA_LISTEN`): Ollama's paths only, nothing of
//! the OpenAI API or the dashboard. Ollama has no API keys, so the apps that speak it send
//! none: a peer in `FREELLMAPI_OLLAMA_ALLOW` (loopback by default) is let in as it is, any
//! other must present a client key as `Authorization: Bearer`. Errors are Ollama's
//! `{"error": "…"}`.

use std::sync::Arc;

use super::{SMALL_BODY_LIMIT, matches, method_fits};
use crate::api::{self, ollama};
use crate::app::App;
use crate::config::Cidr;
use crate::http::{
    Admission, BodyLimit, Dialect, Handler, Method, Methods, Problem, Request, Responder,
};
use crate::surface::Surface;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goal {
    Root,
    Version,
    Tags,
    Show,
    Ps,
    Chat,
    Generate,
    Embed,
    Embeddings,
}

const ROUTES: &[(Method, &str, Goal)] = {
    use Goal::*;
    use Method::{Get, Post};
    &[
        (Get, "/", Root),
        (Get, "/api/version", Version),
        (Get, "/api/tags", Tags),
        (Post, "/api/show", Show),
        (Get, "/api/ps", Ps),
        (Post, "/api/chat", Chat),
        (Post, "/api/generate", Generate),
        (Post, "/api/embed", Embed),
        (Post, "/api/embeddings", Embeddings),
    ]
};

/// The handler of the Ollama listener.
pub struct OllamaRoutes {
    app: Arc<App>,
    allow: Vec<Cidr>,
}

impl OllamaRoutes {
    pub fn new(app: Arc<App>, allow: Vec<Cidr>) -> OllamaRoutes {
        OllamaRoutes { app, allow }
    }
}

fn no_route() -> Problem {
    Problem::new(
        404,
        "invalid_request_error",
        "not_found",
        "no such route; this Ollama API serves GET /, /api/version, /api/tags and /api/ps, \
         POST /api/show, /api/chat, /api/generate, /api/embed and /api/embeddings (hosted \
         models: nothing is pulled, created or deleted here)",
    )
}

fn resolve(method: Method, path: &str) -> Result<Goal, Problem> {
    let mut allow = Methods::default();
    for &(m, pattern, goal) in ROUTES {
        if matches(pattern, path).is_none() {
            continue;
        }
        if method_fits(m, method) {
            return Ok(goal);
        }
        allow = allow.with(m);
        if m == Method::Get {
            allow = allow.with(Method::Head);
        }
    }
    if allow == Methods::default() {
        Err(no_route())
    } else {
        Err(Problem::method_not_allowed(allow))
    }
}

impl Handler for OllamaRoutes {
    fn admit(&self, req: &Request<'_>) -> Admission {
        let verdict = resolve(req.method, req.path).and_then(|goal| {
            let open = matches!(goal, Goal::Root | Goal::Version);
            let allowed = self
                .allow
                .iter()
                .any(|c| c.contains(self.app.client_ip(req)));
            if !open && !allowed {
                api::authorized(&self.app, req).map_err(|e| e.problem())?;
            }
            Ok(BodyLimit::Buffered(match goal {
                Goal::Chat | Goal::Generate | Goal::Embed | Goal::Embeddings => usize::MAX,
                _ => SMALL_BODY_LIMIT,
            }))
        });
        Admission {
            dialect: Dialect::Ollama,
            verdict,
        }
    }

    fn handle(&self, req: &mut Request<'_>, res: &mut Responder<'_>) {
        let goal = match resolve(req.method, req.path) {
            Ok(g) => g,
            Err(p) => return p.write(res, Dialect::Ollama),
        };
        let app = &self.app;
        let outcome = match goal {
            Goal::Chat => return ollama::generate(app, Surface::OllamaChat, req, res),
            Goal::Generate => return ollama::generate(app, Surface::OllamaGenerate, req, res),
            Goal::Embed => return ollama::embed(app, false, req, res),
            Goal::Embeddings => return ollama::embed(app, true, req, res),
            Goal::Root => ollama::root(res),
            Goal::Version => ollama::version(res),
            Goal::Tags => ollama::tags(app, res),
            Goal::Show => ollama::show(app, req, res),
            Goal::Ps => ollama::ps(res),
        };
        if let Err(e) = outcome {
            e.problem().write(res, Dialect::Ollama);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_paths_only() {
        assert_eq!(resolve(Method::Post, "/api/chat"), Ok(Goal::Chat));
        assert_eq!(resolve(Method::Head, "/"), Ok(Goal::Root));
        let p = resolve(Method::Get, "/api/chat").unwrap_err();
        assert_eq!(
            (p.status, p.allow.unwrap().to_string()),
            (405, "POST".into())
        );
        // Tries the OpenAI API and the dashboard on this listener, and a model pull.
        for path in ["/v1/chat/completions", "/api/keys", "/api/pull"] {
            assert_eq!(
                resolve(Method::Post, path).unwrap_err().status,
                404,
                "{path}"
            );
        }
    }
}
