//! `POST /v1/embeddings`: parse → plan within the model's family → fail over across keys and
//! platforms serving that family → vectors in the client's encoding → account.
//!
//! Vectors of different models are not interchangeable, so a request never fails over to
//! another family, and the model must be named.

use std::time::Instant;

use super::failover::{Failover, Step};
use super::proxy::{Whole, call, recorded, untranslatable};
use super::trail::Trail;
use super::{ClientError, Missing};
use crate::app::App;
use crate::catalog::{EmbeddingRoute, Kind};
use crate::chat::invalid;
use crate::front::embeddings::{self as front, Parsed};
use crate::http::{Dialect, Request, Responder, header_safe};
use crate::outcome::Verdict;
use crate::router::{Candidate, Demand, Order, Plan, Snapshot, Task};
use crate::store::{RequestRecord, Spent};
use crate::surface::Surface;
use crate::upstream::classify;
use crate::wire::embeddings;

/// Vectors are large: 2 048 inputs of 1 024 floats are ~20 MiB of JSON.
const MAX_EMBEDDINGS_BODY: u64 = 24 * 1024 * 1024;

#[inline(never)]
pub fn embeddings(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) {
    recorded(
        app,
        Surface::Embeddings,
        Dialect::OpenAi,
        req,
        res,
        |req, res, rec, started| {
            let parsed = front::parse(req.body, app.vocabularies());
            serve(app, parsed, req, res, rec, started)
        },
    );
}

/// The Ollama API's `/api/embed` or (`legacy`) `/api/embeddings`.
#[inline(never)]
pub fn ollama_embeddings(app: &App, legacy: bool, req: &mut Request<'_>, res: &mut Responder<'_>) {
    recorded(
        app,
        Surface::Embeddings,
        Dialect::Ollama,
        req,
        res,
        |req, res, rec, started| {
            let parsed = front::parse_ollama(req.body, legacy);
            serve(app, parsed, req, res, rec, started)
        },
    );
}

/// The Gemini API's `embedContent` (`batch`: `batchEmbedContents`) for `model`.
#[inline(never)]
pub fn gemini_embeddings(
    app: &App,
    model: &str,
    batch: bool,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) {
    recorded(
        app,
        Surface::Embeddings,
        Dialect::Google,
        req,
        res,
        |req, res, rec, started| {
            let parsed = front::parse_gemini(req.body, model, batch);
            serve(app, parsed, req, res, rec, started)
        },
    );
}

fn serve(
    app: &App,
    parsed: Result<Parsed, crate::chat::Invalid>,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
    rec: &mut RequestRecord,
    started: Instant,
) -> Result<(), ClientError> {
    let parsed = parsed.map_err(ClientError::Invalid)?;
    *req.body = Vec::new();
    rec.requested_model = Some(parsed.model.clone());
    let snap = app.router.snapshot();
    let plan = plan(&snap, &parsed, req)?;
    Failover::new(app, &snap, &plan, None, started).run(
        req.client_fd(),
        rec,
        res,
        |cand, trail, res| attempt(app, &snap, &parsed, cand, trail, res),
    )
}

/// The catalog model `name` means: itself, or the model an embedding alias routes it to.
fn resolve(snap: &Snapshot, name: &str) -> Result<usize, ClientError> {
    let missing = |why| ClientError::ModelNotFound {
        model: name.to_string(),
        why,
    };
    if let Some(m) = snap.find_model(name) {
        return Ok(m);
    }
    match snap.catalog.embedding_aliases.route(name) {
        None => Err(missing(Missing::UnknownEmbedding)),
        Some(EmbeddingRoute::Model(target) | EmbeddingRoute::Default(Some(target))) => snap
            .find_model(target)
            .ok_or_else(|| missing(Missing::UnknownEmbedding)),
        Some(EmbeddingRoute::Default(None)) => snap
            .first_embedding_with_key()
            .ok_or_else(|| missing(Missing::NoEmbeddingModel)),
    }
}

fn plan(snap: &Snapshot, parsed: &Parsed, req: &Request<'_>) -> Result<Plan, ClientError> {
    let name = &parsed.model;
    let m = resolve(snap, name)?;
    let model = &snap.catalog.models[m];
    if model.kind != Kind::Embedding {
        return Err(ClientError::ModelNotFound {
            model: name.clone(),
            why: Missing::WrongKind,
        });
    }
    if let (Some(want), Some(has)) = (parsed.request.dimensions, model.dimensions)
        && want != has
        && !(model.flexible_dimensions && want < has)
    {
        return Err(ClientError::Invalid(invalid(
            "invalid_value",
            if model.flexible_dimensions {
                format!("dimensions: {name} gives at most {has}")
            } else {
                format!("dimensions: {name} gives {has}-dimensional vectors only")
            },
        )));
    }
    let (index, tokens) = parsed.longest;
    if let Some(window) = model.context_window
        && tokens > u64::from(window)
    {
        return Err(ClientError::Invalid(invalid(
            "context_length_exceeded",
            format!(
                "input[{index}]: about {tokens} tokens, more than the {window}-token window of {name}"
            ),
        )));
    }
    let entry = snap
        .entry_for_model(m)
        .filter(|&e| snap.entries[e].enabled && model.serves())
        .ok_or_else(|| ClientError::not_serving(snap, m, name))?;
    let strict = req
        .header("x-freellmapi-pin")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("strict"));
    Ok(Plan {
        first: Some(entry),
        strict,
        demand: Demand {
            input_tokens: parsed.input_tokens,
            output_reserve: 0,
        },
        task: Task::Embedding { like: m },
        order: Order::Chain,
        needs: crate::catalog::Caps::NONE,
    })
}

fn attempt(
    app: &App,
    snap: &Snapshot,
    parsed: &Parsed,
    cand: Candidate,
    before: &Trail,
    res: &mut Responder<'_>,
) -> Step {
    let model = snap.model(cand.entry);
    let platform = &snap.catalog.platforms[model.platform];
    // The length the client gets: the one it asked for, else the named model's. It is sent
    // only to a model whose native length differs (some refuse the parameter otherwise).
    let want = parsed.request.dimensions.or_else(|| {
        let asked = snap.find_model(&parsed.model)?;
        snap.catalog.models[asked].dimensions
    });
    let request_dims = want.filter(|w| model.dimensions != Some(*w));
    let request = embeddings::EmbedRequest {
        inputs: parsed.request.inputs.clone(),
        dimensions: request_dims,
    };
    let out = match embeddings::outbound(platform, model, &request) {
        Ok(o) => o,
        Err(e) => return untranslatable(e),
    };
    drop(request);
    let (reply, sent_at) = match call(app, snap, cand, out) {
        Ok(r) => r,
        Err(step) => return step,
    };
    let body = match reply.read_body(MAX_EMBEDDINGS_BODY) {
        Ok(b) => b,
        Err(e) => return Step::failed(classify::transport(e), Some(200)),
    };
    let Ok(embedded) = embeddings::read(platform, body, parsed.request.inputs.len()) else {
        return Step::failed(Verdict::Unavailable, Some(200));
    };
    let estimated = embedded.prompt_tokens.is_none();
    let prompt = embedded.prompt_tokens.unwrap_or(parsed.input_tokens);
    let body = front::render(&embedded.vectors, parsed.format, &parsed.model, prompt);
    drop(embedded);
    let routed = header_safe(&format!("{}/{}", platform.id, model.model_id));
    let answer = Whole {
        routed: &routed,
        before,
        extra: None,
        content_type: "application/json",
    };
    if !answer.write(res, &body) {
        return Step::Cancelled;
    }
    Step::Served {
        spent: Spent {
            input_tokens: prompt,
            output_tokens: 0,
            estimated,
            ttfb_ms: Some(sent_at.elapsed().as_millis() as u64),
            tool_rescue: None,
        },
        interrupted: false,
    }
}
