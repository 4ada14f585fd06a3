//! `POST /api/models/discover {platform}`: what the provider lists, marked known or not, so
//! the Models page can offer to add what the catalog lacks.

use serde::Serialize;

use super::{AdminError, Fields, bad, reply, storage};
use crate::app::App;
use crate::discover::{self, DiscoverError};
use crate::http::{Request, Responder};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedView {
    model_id: String,
    context_window: Option<u32>,
    /// Already in the catalog for this platform.
    known: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Discovered {
    platform: String,
    /// How many the provider lists that the catalog lacks.
    missing: usize,
    models: Vec<ListedView>,
}

pub fn discover(
    app: &App,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let f = Fields::new(&value, "", &["platform"])?;
    let platform = f.req_str("platform")?.to_string();
    let catalog = app.catalog();
    let listed = discover::discover(&app.upstream, &catalog, &app.master, &app.store, &platform)
        .map_err(|e| match e {
            DiscoverError::UnknownPlatform(_) | DiscoverError::NoKey(_) => bad("platform", e),
            DiscoverError::Store(e) => storage(e),
            other => AdminError::Upstream(format!("{platform}: {other}")),
        })?;
    let models: Vec<ListedView> = listed
        .into_iter()
        .map(|l| ListedView {
            model_id: l.model_id,
            context_window: l.context_window,
            known: l.known,
        })
        .collect();
    reply(
        res,
        200,
        &Discovered {
            platform,
            missing: models.iter().filter(|m| !m.known).count(),
            models,
        },
    )
}
