//! `GET /v1/models`, `GET /v1/models/{id}` and `GET /readyz`.

use super::{ClientError, Missing, respond_json};
use crate::app::App;
use crate::http::{Request, Responder, percent_decode};
use crate::json::write_str;
use crate::router::Snapshot;
use crate::time::now_ms;

fn write_model(out: &mut Vec<u8>, id: &str, owner: &str, context_window: Option<u32>) {
    out.extend_from_slice(b"{\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"object\":\"model\",\"created\":0,\"owned_by\":");
    write_str(out, owner);
    out.extend_from_slice(b",\"context_window\":");
    match context_window {
        Some(c) => out.extend_from_slice(c.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

/// Entries listed: the model and its chain entry are both enabled (and, when asked, a key is
/// free to serve it now).
fn listed(app: &App, snap: &Snapshot, available_only: bool) -> Vec<usize> {
    let now = now_ms();
    (0..snap.entries.len())
        .filter(|&e| snap.entries[e].enabled && snap.model(e).enabled)
        .filter(|&e| !available_only || app.router.entry_available(snap, e, now))
        .collect()
}

pub fn list(app: &App, req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let snap = app.router.snapshot();
    let available_only = matches!(req.query_param("available"), Some("true" | "1"));
    let entries = listed(app, &snap, available_only);
    let widest = entries
        .iter()
        .filter_map(|&e| snap.model(e).context_window)
        .max();
    let mut out = Vec::with_capacity(128 * (entries.len() + 1));
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    write_model(&mut out, "auto", "freellmapi", widest);
    for e in entries {
        let m = snap.model(e);
        out.push(b',');
        write_model(
            &mut out,
            &m.model_id,
            &snap.catalog.platforms[m.platform].id,
            m.context_window,
        );
    }
    out.extend_from_slice(b"]}");
    respond_json(res, 200, &out)
}

pub fn one(app: &App, raw_id: &str, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let snap = app.router.snapshot();
    let id = percent_decode(raw_id).unwrap_or_default();
    let mut out = Vec::with_capacity(160);
    if id == "auto" {
        let widest = listed(app, &snap, false)
            .iter()
            .filter_map(|&e| snap.model(e).context_window)
            .max();
        write_model(&mut out, "auto", "freellmapi", widest);
        return respond_json(res, 200, &out);
    }
    let entry = snap
        .catalog
        .find_model(&id)
        .and_then(|m| snap.entry_for_model(m));
    match entry {
        Some(e) if snap.entries[e].enabled && snap.model(e).enabled => {
            let m = snap.model(e);
            write_model(
                &mut out,
                &m.model_id,
                &snap.catalog.platforms[m.platform].id,
                m.context_window,
            );
            respond_json(res, 200, &out)
        }
        _ => Err(ClientError::ModelNotFound {
            model: id,
            why: Missing::Unlisted,
        }),
    }
}

/// 200 when some key can serve a request now; 503 with the reason otherwise.
pub fn readyz(app: &App, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let snap = app.router.snapshot();
    if app.router.usable_now(&snap, now_ms()) {
        return respond_json(res, 200, br#"{"status":"ready"}"#);
    }
    let message = if snap.keys.is_empty() {
        "no usable provider key; add one with `freellmapi keys add <platform>`".to_string()
    } else {
        format!(
            "all {} provider keys are cooling down or at their rate limits",
            snap.keys.len()
        )
    };
    Err(ClientError::NotReady { message })
}
