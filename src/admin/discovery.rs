//! `POST /api/models/discover {platform}`: what the provider lists, marked known or not, so
//! the Models page can offer to add what the catalog lacks; `POST /api/models/sync
//! {platform?}`: read the listings now and keep the catalog true (the Models page's "Sync
//! now").

use serde::Serialize;

use super::{AdminError, Fields, bad, reply, storage};
use crate::app::{App, SyncError};
use crate::catalog::lifecycle::{PlatformSync, SyncOutcome};
use crate::discover::DiscoverError;
use crate::http::{Request, Responder};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedView {
    model_id: String,
    context_window: Option<u32>,
    /// Already in the catalog for this platform.
    known: bool,
    /// The listing's prices say it is free (`null`: the listing has no prices).
    free: Option<bool>,
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
    let platform = super::body::only_string(req.body, "platform")?;
    let listed = app.discover(&platform).map_err(|e| match e {
        DiscoverError::UnknownPlatform(_) | DiscoverError::NoKey(_) => bad("platform", e),
        DiscoverError::Store(e) => storage(e),
        other => AdminError::Upstream(format!("{platform}: {other}")),
    })?;
    let models: Vec<ListedView> = listed
        .into_iter()
        .map(|f| ListedView {
            model_id: f.listed.model_id,
            context_window: f.listed.context_window,
            known: f.known,
            free: f.listed.free,
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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncResult {
    platform: String,
    at: String,
    #[serde(flatten)]
    outcome: SyncOutcome,
}

#[derive(Serialize)]
struct Synced {
    /// Per platform read: what changed, or why nothing did.
    platforms: Vec<SyncResult>,
}

/// `POST /api/models/sync {platform?}`: every platform with a key (or the one named).
pub fn sync(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let f = Fields::new(&value, "", &["platform"])?;
    let only = f.str("platform")?.map(str::to_string);
    let report: Vec<PlatformSync> = app.sync(only.as_deref()).map_err(|e| match e {
        SyncError::Busy => AdminError::Conflict {
            code: "sync_running",
            message: e.to_string(),
        },
        SyncError::UnknownPlatform(_) => bad("platform", e),
        SyncError::Store(e) => storage(e),
        SyncError::Failed(why) => AdminError::Upstream(why),
    })?;
    let platforms = report
        .into_iter()
        .map(|s| SyncResult {
            platform: s.platform,
            at: crate::time::rfc3339_ms(s.at_ms),
            outcome: s.outcome,
        })
        .collect();
    reply(res, 200, &Synced { platforms })
}
