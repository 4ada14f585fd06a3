//! Model aliases as the user edits them: how vendor model names (`claude-*` from Claude Code
//! and the Anthropic SDKs) route. Stored with the catalog overrides; `null` restores the
//! shipped defaults.

use serde::Serialize;
use simd_json::prelude::*;

use super::{AdminError, Fields, bad, models, reply, storage};
use crate::app::App;
use crate::catalog::embedding_aliases::EmbeddingAlias;
use crate::catalog::{Alias, EmbeddingAliases, Kind, aliases};
use crate::http::{Request, Responder};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Listing<'a> {
    aliases: &'a [Alias],
    /// The list is the shipped one (never edited, or reset).
    defaults: bool,
    /// The route words besides a model id.
    orders: [&'static str; 3],
}

/// `GET /api/aliases`.
pub fn get(app: &App, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let catalog = app.catalog();
    let edited = app.store.overrides().map_err(storage)?.aliases.is_some();
    reply(
        res,
        200,
        &Listing {
            aliases: &catalog.aliases,
            defaults: !edited,
            orders: ["chain", "intelligence", "speed"],
        },
    )
}

/// `PUT /api/aliases {"aliases": [{pattern, route}, …] | null}`.
pub fn put(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let f = Fields::new(&value, "", &["aliases"])?;
    let list = match value.get("aliases") {
        None => return Err(f.missing("aliases")),
        Some(v) if v.is_null() => None,
        Some(v) => {
            let items = v
                .as_array()
                .ok_or_else(|| bad("aliases", "expected an array or null"))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let f = Fields::new(item, &format!("aliases[{i}]"), &["pattern", "route"])?;
                out.push(Alias {
                    pattern: f.req_str("pattern")?.trim().to_string(),
                    route: f.req_str("route")?.trim().to_string(),
                });
            }
            let catalog = app.catalog();
            aliases::validate(&out, |m| catalog.find_model(m).is_some()).map_err(|m| {
                let (field, why) = m.split_once(": ").unwrap_or(("aliases", &m));
                bad(field, why)
            })?;
            Some(out)
        }
    };
    let mut o = app.store.overrides().map_err(storage)?;
    o.aliases = list;
    models::save(app, o)?;
    get(app, res)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbeddingListing<'a> {
    #[serde(flatten)]
    aliases: &'a EmbeddingAliases,
    /// What `default` means now: the chosen model, or the one taken while none is chosen.
    default_now: Option<String>,
    /// The embedding models a route may name.
    models: Vec<String>,
}

/// `GET /api/embedding-aliases`.
pub fn get_embedding(app: &App, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let snap = app.router.snapshot();
    let c = &snap.catalog;
    let name = |m: usize| {
        let model = &c.models[m];
        format!("{}/{}", c.platforms[model.platform].id, model.model_id)
    };
    let default_now = match &c.embedding_aliases.default {
        Some(d) => Some(d.clone()),
        None => snap.first_embedding_with_key().map(name),
    };
    let models = (0..c.models.len())
        .filter(|&m| c.models[m].kind == Kind::Embedding && c.models[m].serves())
        .map(name)
        .collect();
    reply(
        res,
        200,
        &EmbeddingListing {
            aliases: &c.embedding_aliases,
            default_now,
            models,
        },
    )
}

/// `PUT /api/embedding-aliases {"default": model | null, "aliases": [{name, route}, …]}` or
/// `null` for the shipped set.
pub fn put_embedding(
    app: &App,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let edited = if value.is_null() {
        None
    } else {
        let f = Fields::new(&value, "", &["default", "aliases"])?;
        let default = f
            .str_or_null("default")?
            .flatten()
            .map(|d| d.trim().to_string());
        let aliases = match value.get("aliases") {
            None => EmbeddingAliases::default().aliases,
            Some(v) => {
                let items = v
                    .as_array()
                    .ok_or_else(|| bad("aliases", "expected an array"))?;
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let f = Fields::new(item, &format!("aliases[{i}]"), &["name", "route"])?;
                    out.push(EmbeddingAlias {
                        name: f.req_str("name")?.trim().to_string(),
                        route: f.req_str("route")?.trim().to_string(),
                    });
                }
                out
            }
        };
        let set = EmbeddingAliases { default, aliases };
        let catalog = app.catalog();
        set.validate(|m| {
            catalog
                .find_model(m)
                .is_some_and(|i| catalog.models[i].kind == Kind::Embedding)
        })
        .map_err(|m| {
            let (field, why) = m.split_once(": ").unwrap_or(("aliases", &m));
            bad(field, why)
        })?;
        Some(set)
    };
    let mut o = app.store.overrides().map_err(storage)?;
    o.embedding_aliases = edited;
    models::save(app, o)?;
    log::info!("embedding aliases saved from the dashboard");
    get_embedding(app, res)
}
