//! `GET /v1/providers`: each platform with where its free tier stands (status, when and where
//! that was checked), its usable keys, its models in service and whether it can route now,
//! and its last sync. For clients and scripts that want to know what is behind the endpoint.

use serde::Serialize;

use super::{ClientError, respond_json};
use crate::app::App;
use crate::catalog::FreeTier;
use crate::catalog::lifecycle::SyncOutcome;
use crate::time::{now_ms, rfc3339_ms};

#[derive(Serialize)]
struct Provider<'a> {
    id: &'a str,
    name: &'a str,
    object: &'static str,
    /// `null` for the user's own platforms.
    free_tier: Option<&'a FreeTier>,
    /// Usable keys (a keyless platform the admin turned on counts one).
    keys: usize,
    /// It serves without a key and the admin turned that on.
    keyless: bool,
    models: usize,
    enabled_models: usize,
    retired_models: usize,
    /// A key is free to take a small request now.
    can_route: bool,
    last_sync: Option<LastSync>,
}

#[derive(Serialize)]
struct LastSync {
    at: String,
    #[serde(flatten)]
    outcome: SyncOutcome,
}

#[derive(Serialize)]
struct List<'a> {
    object: &'static str,
    data: Vec<Provider<'a>>,
}

pub fn providers(app: &App, res: &mut super::Responder<'_>) -> Result<(), ClientError> {
    let snap = app.router.snapshot();
    let snap = &*snap;
    let life = app.store.lifecycle().unwrap_or_default();
    let keyless_on = app.store.overrides().unwrap_or_default().keyless_on;
    let now = now_ms();
    let c = &snap.catalog;
    let data = c
        .platforms
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let models = || c.models.iter().filter(move |m| m.platform == i);
            let entries = || (0..snap.entries.len()).filter(move |&e| snap.model(e).platform == i);
            Provider {
                id: &p.id,
                name: &p.name,
                object: "provider",
                free_tier: p.free_tier.as_ref(),
                keys: snap.keys.iter().filter(|k| k.platform == i).count(),
                keyless: keyless_on.contains(&p.id),
                models: models().count(),
                enabled_models: models().filter(|m| m.serves()).count(),
                retired_models: models().filter(|m| m.retired.is_some()).count(),
                can_route: entries().any(|e| {
                    snap.entries[e].enabled
                        && snap.model(e).serves()
                        && app.router.entry_available(snap, e, now)
                }),
                last_sync: life.last_sync(&p.id).map(|s| LastSync {
                    at: rfc3339_ms(s.at_ms),
                    outcome: s.outcome.clone(),
                }),
            }
        })
        .collect();
    let body = simd_json::serde::to_vec(&List {
        object: "list",
        data,
    })
    .unwrap_or_default();
    respond_json(res, 200, &body)
}
