//! The Ollama API (its own listener): what Open WebUI, Home Assistant's Ollama integration,
//! Zed, JetBrains and the `ollama` client libraries call. The listing routes (`/api/tags`,
//! `/api/show`, `/api/ps`, `/api/version`) are written here from the snapshot; `/api/chat` and
//! `/api/generate` run the shared chat pipeline with Ollama's front, and `/api/embed` and
//! `/api/embeddings` the embeddings pipeline. A request with nothing to generate from (how
//! Ollama clients load a model) is answered at once.
//!
//! Model names carry Ollama's tag: `auto:latest`, `mistral-small-latest:latest`; a name with a
//! tag of its own (`…:free`) is listed as it is.

use simd_json::prelude::*;

use super::models::listed;
use super::{ClientError, Missing, respond_json};
use crate::app::App;
use crate::catalog::{Caps, Kind, Model, aliases};
use crate::front::ollama::{self, Route};
use crate::http::{Request, Responder};
use crate::json::write_str;
use crate::router::Snapshot;
use crate::surface::Surface;

/// The Ollama API version answered: clients compare it with the least they support.
pub const VERSION: &str = "0.13.0";

/// `GET /`: what Ollama answers, which clients use as a liveness check.
pub fn root(res: &mut Responder<'_>) -> Result<(), ClientError> {
    let _ = res
        .head(200)
        .header("Cache-Control", "no-store")
        .body("text/plain; charset=utf-8", b"Ollama is running");
    Ok(())
}

/// `GET /api/version`.
pub fn version(res: &mut Responder<'_>) -> Result<(), ClientError> {
    respond_json(
        res,
        200,
        format!("{{\"version\":\"{VERSION}\"}}").as_bytes(),
    )
}

/// `GET /api/ps`: no model is loaded in this process; every one is a call away.
pub fn ps(res: &mut Responder<'_>) -> Result<(), ClientError> {
    respond_json(res, 200, br#"{"models":[]}"#)
}

/// The Ollama name of a catalog id: with `:latest` unless it has a tag already.
fn tagged(id: &str) -> String {
    if id.rsplit('/').next().is_some_and(|last| last.contains(':')) {
        id.to_string()
    } else {
        format!("{id}:latest")
    }
}

/// Ollama's capability names for a model (or `auto`, when `None`).
fn capabilities(m: Option<&Model>) -> Vec<&'static str> {
    let Some(m) = m else {
        return vec!["completion", "tools", "vision"];
    };
    if m.kind == Kind::Embedding {
        return vec!["embedding"];
    }
    let mut out = vec!["completion"];
    for (cap, name) in [
        (Caps::TOOLS, "tools"),
        (Caps::VISION, "vision"),
        (Caps::REASONING, "thinking"),
    ] {
        if m.caps.contains(cap) {
            out.push(name);
        }
    }
    if m.fim {
        out.push("insert");
    }
    out
}

fn write_details(out: &mut Vec<u8>, m: Option<&Model>) {
    let family = m.and_then(|m| m.family.as_deref()).unwrap_or("freellmapi");
    out.extend_from_slice(b"{\"parent_model\":\"\",\"format\":\"api\",\"family\":");
    write_str(out, family);
    out.extend_from_slice(b",\"families\":[");
    write_str(out, family);
    out.extend_from_slice(b"],\"parameter_size\":");
    write_str(out, m.map_or("", |m| m.size_label.as_str()));
    out.extend_from_slice(b",\"quantization_level\":\"\"}");
}

/// A digest per name, so clients that key models by digest tell them apart.
fn digest(name: &str) -> String {
    crate::crypto::to_hex(&crate::crypto::digest(name.as_bytes()))
}

/// `GET /api/tags`: `auto` and every listed model, once per name.
pub fn tags(app: &App, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let snap = app.router.snapshot();
    let now = crate::time::rfc3339_ms(crate::time::now_ms());
    let entries = listed(app, &snap, false);
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    let mut out = Vec::with_capacity(256 * (entries.len() + 1));
    out.extend_from_slice(b"{\"models\":[");
    let models = std::iter::once(None).chain(
        entries
            .iter()
            .map(|&e| Some(snap.model(e)))
            .filter(|m| m.is_some_and(|m| matches!(m.kind, Kind::Chat | Kind::Embedding))),
    );
    for m in models {
        let name = tagged(m.map_or("auto", |m| m.model_id.as_str()));
        if !seen.insert(name.clone()) {
            continue;
        }
        if out.len() > 11 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_str(&mut out, &name);
        out.extend_from_slice(b",\"model\":");
        write_str(&mut out, &name);
        out.extend_from_slice(b",\"modified_at\":");
        write_str(&mut out, &now);
        out.extend_from_slice(b",\"size\":0,\"digest\":");
        write_str(&mut out, &digest(&name));
        out.extend_from_slice(b",\"details\":");
        write_details(&mut out, m);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    respond_json(res, 200, &out)
}

/// The catalog model an Ollama name means; `Ok(None)` for `auto` and vendor aliases.
fn find(snap: &Snapshot, name: &str) -> Result<Option<usize>, ClientError> {
    let bare = ollama::model_name(name);
    if bare == "auto" || (snap.find_model(bare).is_none() && aliases::is_aliased(bare)) {
        return Ok(None);
    }
    let m = snap
        .find_model(bare)
        .ok_or_else(|| ClientError::ModelNotFound {
            model: name.to_string(),
            why: Missing::Unlisted,
        })?;
    let listed = snap
        .entry_for_model(m)
        .is_some_and(|e| snap.entries[e].enabled && snap.catalog.models[m].serves());
    if !listed {
        return Err(ClientError::ModelNotFound {
            model: name.to_string(),
            why: Missing::Unlisted,
        });
    }
    Ok(Some(m))
}

/// `POST /api/show {"model"}` (older clients send `name`): details, context length and
/// capabilities.
pub fn show(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let body = crate::chat::parse_body(req.body).map_err(ClientError::Invalid)?;
    let name = body
        .get_str("model")
        .or_else(|| body.get_str("name"))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ClientError::Invalid(crate::chat::invalid(
                "missing_required_parameter",
                "model is required".into(),
            ))
        })?
        .to_string();
    let snap = app.router.snapshot();
    let m = find(&snap, &name)?.map(|m| &snap.catalog.models[m]);
    let context = match m {
        Some(m) => m.context_window,
        None => listed(app, &snap, false)
            .iter()
            .filter_map(|&e| snap.model(e).context_window)
            .max(),
    };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(
        b"{\"license\":\"\",\"modelfile\":\"\",\"parameters\":\"\",\"template\":\"{{ .Prompt }}\",\"details\":",
    );
    write_details(&mut out, m);
    out.extend_from_slice(
        b",\"model_info\":{\"general.architecture\":\"freellmapi\",\"general.basename\":",
    );
    write_str(&mut out, m.map_or("auto", |m| m.model_id.as_str()));
    if let Some(c) = context {
        out.extend_from_slice(format!(",\"freellmapi.context_length\":{c}").as_bytes());
    }
    if let Some(d) = m.and_then(|m| m.dimensions) {
        out.extend_from_slice(format!(",\"freellmapi.embedding_length\":{d}").as_bytes());
    }
    out.extend_from_slice(b"},\"capabilities\":[");
    for (i, c) in capabilities(m).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(&mut out, c);
    }
    out.extend_from_slice(b"],\"modified_at\":");
    write_str(&mut out, &crate::time::rfc3339_ms(crate::time::now_ms()));
    out.push(b'}');
    respond_json(res, 200, &out)
}

/// `POST /api/chat` and `/api/generate`. The model is looked up first, so an unknown name
/// gets Ollama's 404 (its clients offer to pull on it) rather than the OpenAI advice, and a
/// request with nothing to generate from (a load) is answered at once.
#[inline(never)]
pub fn generate(app: &App, surface: Surface, req: &mut Request<'_>, res: &mut Responder<'_>) {
    let route = if surface == Surface::OllamaGenerate {
        Route::Generate
    } else {
        Route::Chat
    };
    // A body that does not parse goes on, to be refused (and recorded) by the pipeline.
    if let Ok((name, load)) = ollama::peek(req.body, route == Route::Generate) {
        if let Err(e) = find(&app.router.snapshot(), &name) {
            return e.problem().write(res, crate::http::Dialect::Ollama);
        }
        if load {
            let _ = respond_json(res, 200, &ollama::loaded(route, &name));
            return;
        }
    }
    super::proxy::generate(app, surface, req, res);
}

/// `POST /api/embed` (`legacy`: `/api/embeddings`).
pub fn embed(app: &App, legacy: bool, req: &mut Request<'_>, res: &mut Responder<'_>) {
    super::embeddings::ollama_embeddings(app, legacy, req, res);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_ollamas_tag_once() {
        assert_eq!(tagged("auto"), "auto:latest");
        assert_eq!(tagged("openai/gpt-oss-20b"), "openai/gpt-oss-20b:latest");
        assert_eq!(tagged("z-ai/glm-5.2:free"), "z-ai/glm-5.2:free");
        assert_eq!(tagged("@cf/meta/llama-3.3"), "@cf/meta/llama-3.3:latest");
    }
}
