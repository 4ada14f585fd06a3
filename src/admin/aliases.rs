//! Model aliases as the user edits them: how vendor model names (`claude-*` from Claude Code
//! and the Anthropic SDKs) route. Stored with the catalog overrides; `null` restores the
//! shipped defaults.

use serde::Serialize;
use simd_json::prelude::*;

use super::{AdminError, Fields, bad, models, reply, storage};
use crate::app::App;
use crate::catalog::{Alias, aliases};
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
