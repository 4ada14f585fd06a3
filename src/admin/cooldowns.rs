//! Clearing cooldowns by hand: `POST /api/cooldowns/clear {platform?, model?, keyId?}`. The
//! router's cooldowns, auth pauses and penalties of the matching (model, key) pairs end at
//! once; the keys' stored `rate_limited` status goes with them. Usage windows stay: a model
//! at its real rate limit stays there.

use serde::Serialize;
use simd_json::prelude::*;

use super::{AdminError, Fields, bad, off_worker, reply, storage};
use crate::app::App;
use crate::http::{Request, Responder};
use crate::time::now_ms;

#[derive(Serialize)]
struct Cleared {
    /// (model, key) pairs that were cooling.
    cleared: usize,
    /// Keys whose stored `rate_limited` status ended.
    keys: usize,
}

/// `POST /api/cooldowns/clear`.
pub fn clear(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let value = if req.body.iter().all(u8::is_ascii_whitespace) {
        simd_json::OwnedValue::object()
    } else {
        super::body::parse(req.body)?
    };
    let f = Fields::new(&value, "", &["platform", "model", "keyId"])?;
    let platform = f.str("platform")?.map(str::to_string);
    let model = f.str("model")?.map(str::to_string);
    let key_id = f.uint("keyId", u64::MAX)?;
    let snap = app.router.snapshot();
    let c = &snap.catalog;
    if let Some(p) = &platform
        && c.platform_index(p).is_none()
    {
        return Err(bad("platform", format!("no platform {p:?}")));
    }
    if let Some(m) = &model {
        let known = c.models.iter().any(|x| {
            x.model_id == *m
                && platform
                    .as_deref()
                    .is_none_or(|p| c.platforms[x.platform].id == p)
        });
        if !known {
            return Err(bad("model", format!("no model {m:?} on that platform")));
        }
    }
    if let Some(k) = key_id
        && !snap.keys.iter().any(|x| x.id == k)
    {
        return Err(bad("keyId", format!("no usable key {k}")));
    }
    let cleared = app.router.clear_cooldowns(
        &snap,
        platform.as_deref(),
        model.as_deref(),
        key_id,
        now_ms(),
    );
    let store = app.store.clone();
    let keys = off_worker(move || store.clear_rate_limited(platform.as_deref(), key_id))?
        .map_err(storage)?;
    log::info!("cleared the cooldowns of {cleared} model/key pairs from the dashboard");
    reply(res, 200, &Cleared { cleared, keys })
}
