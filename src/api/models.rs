//! `GET /v1/models`, `GET /v1/models/{id}` and `GET /readyz`.

use super::{ClientError, Missing, respond_json};
use crate::app::App;
use crate::catalog::{Kind, Model};
use crate::http::{Request, Responder, percent_decode};
use crate::json::write_str;
use crate::router::Snapshot;
use crate::time::now_ms;

/// One model in OpenAI's list shape, with its kind (`chat` or `embedding`) and, for
/// embeddings, the vector length.
fn write_model(
    out: &mut Vec<u8>,
    id: &str,
    owner: &str,
    m: Option<&Model>,
    context_window: Option<u32>,
) {
    out.extend_from_slice(b"{\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"object\":\"model\",\"created\":0,\"owned_by\":");
    write_str(out, owner);
    out.extend_from_slice(b",\"type\":");
    write_str(out, m.map_or(Kind::Chat, |m| m.kind).as_str());
    // `context_length` is OpenRouter's name for it, which several clients read.
    for field in [&b",\"context_window\":"[..], b",\"context_length\":"] {
        out.extend_from_slice(field);
        match context_window {
            Some(c) => out.extend_from_slice(c.to_string().as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"capabilities\":[");
    let names = m.map_or_else(|| vec!["chat"], |m| m.capability_names());
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, n);
    }
    out.push(b']');
    if let Some(d) = m.and_then(|m| m.dimensions) {
        out.extend_from_slice(format!(",\"dimensions\":{d}").as_bytes());
    }
    if let Some(m) = m {
        out.extend_from_slice(b",\"supported_parameters\":[");
        for (i, p) in m.supported_parameters().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, p);
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// One model in Anthropic's list shape.
fn write_anthropic_model(out: &mut Vec<u8>, id: &str, display_name: &str) {
    out.extend_from_slice(b"{\"type\":\"model\",\"id\":");
    write_str(out, id);
    out.extend_from_slice(b",\"display_name\":");
    write_str(out, display_name);
    out.extend_from_slice(b",\"created_at\":\"1970-01-01T00:00:00Z\"}");
}

/// Anthropic's `GET /v1/models`: chat models only (Anthropic clients cannot embed), with the
/// first and last ids for paging (one page holds everything).
fn list_anthropic(
    snap: &Snapshot,
    entries: &[usize],
    res: &mut Responder<'_>,
) -> Result<(), ClientError> {
    let chat: Vec<&Model> = entries
        .iter()
        .map(|&e| snap.model(e))
        .filter(|m| m.kind == Kind::Chat)
        .collect();
    let mut out = Vec::with_capacity(96 * (chat.len() + 1));
    out.extend_from_slice(b"{\"data\":[");
    write_anthropic_model(&mut out, "auto", "Auto (the fallback chain)");
    for m in &chat {
        out.push(b',');
        write_anthropic_model(&mut out, &m.model_id, &m.display_name);
    }
    out.extend_from_slice(b"],\"has_more\":false,\"first_id\":\"auto\",\"last_id\":");
    write_str(
        &mut out,
        chat.last().map_or("auto", |m| m.model_id.as_str()),
    );
    out.push(b'}');
    respond_json(res, 200, &out)
}

/// Entries listed: the model and its chain entry are both enabled (and, when asked, a key is
/// free to serve it now).
pub(super) fn listed(app: &App, snap: &Snapshot, available_only: bool) -> Vec<usize> {
    let now = now_ms();
    (0..snap.entries.len())
        .filter(|&e| snap.entries[e].enabled && snap.model(e).serves())
        .filter(|&e| !available_only || app.router.entry_available(snap, e, now))
        .collect()
}

pub fn list(app: &App, req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), ClientError> {
    let snap = app.router.snapshot();
    let available_only = matches!(req.query_param("available"), Some("true" | "1"));
    let entries = listed(app, &snap, available_only);
    if req.header_bytes("anthropic-version").is_some() {
        return list_anthropic(&snap, &entries, res);
    }
    let widest = entries
        .iter()
        .filter_map(|&e| snap.model(e).context_window)
        .max();
    let mut out = Vec::with_capacity(128 * (entries.len() + 1));
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    write_model(&mut out, "auto", "freellmapi", None, widest);
    for e in entries {
        let m = snap.model(e);
        out.push(b',');
        write_model(
            &mut out,
            &m.model_id,
            &snap.catalog.platforms[m.platform].id,
            Some(m),
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
        write_model(&mut out, "auto", "freellmapi", None, widest);
        return respond_json(res, 200, &out);
    }
    let entry = snap
        .catalog
        .find_model(&id)
        .and_then(|m| snap.entry_for_model(m));
    match entry {
        Some(e) if snap.entries[e].enabled && snap.model(e).serves() => {
            let m = snap.model(e);
            write_model(
                &mut out,
                &m.model_id,
                &snap.catalog.platforms[m.platform].id,
                Some(m),
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
    let serving = snap.serving_keys();
    let message = if snap.keys.is_empty() {
        "no usable provider key; add one with `freellmapi keys add <platform>`".to_string()
    } else if serving == 0 {
        let mut dead: Vec<&str> = snap
            .keys
            .iter()
            .map(|k| snap.catalog.platforms[k.platform].id.as_str())
            .collect();
        dead.dedup();
        format!(
            "{} provider keys are stored, but none can serve: their platforms ({}) have no enabled model; add a key for another platform or enable a model",
            snap.keys.len(),
            dead.join(", ")
        )
    } else {
        format!("all {serving} usable provider keys are cooling down or at their rate limits")
    };
    Err(ClientError::NotReady { message })
}
