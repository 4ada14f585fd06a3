//! Provider keys as `.env` lines from the dashboard: export (plaintext, so the dashboard
//! password is asked again) and import (the same reader as `freellmapi keys import`: known
//! variables become keys, duplicates of stored keys are skipped, malformed keys are named).

use serde::Serialize;

use super::{AdminError, AdminState, off_worker, settings, storage};
use crate::app::App;
use crate::catalog::envfile;
use crate::http::{Request, Responder};
use crate::store::Imported;

/// `POST /api/keys/export {"password"}`: every key that opens, as a `.env` attachment.
pub fn export(
    app: &App,
    state: &AdminState,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let password = super::body::only_string(req.body, "password")?;
    settings::reauthenticate(app, state, req, password)?;
    let store = app.store.clone();
    let master = app.master();
    let keys: Vec<(String, String)> = off_worker(move || store.opened_keys(&master))?
        .map_err(storage)?
        .into_iter()
        .filter_map(|(platform, plain)| Some((platform, plain.as_str()?.to_string())))
        .collect();
    // Plaintext keys: wiped once sent.
    let mut text = envfile::write(&app.catalog(), &keys).into_bytes();
    log::info!("{} provider keys exported from the dashboard", keys.len());
    let _ = res
        .head(200)
        .header("Cache-Control", "no-store")
        .header(
            "Content-Disposition",
            "attachment; filename=\"freellmapi-keys.env\"",
        )
        .body("text/plain; charset=utf-8", &text);
    crate::crypto::wipe(&mut text);
    Ok(())
}

#[derive(Serialize)]
struct ImportReport {
    added: usize,
    /// Already stored, or not in the platform's key format (each named in `notes`).
    skipped: usize,
    notes: Vec<String>,
}

/// `POST /api/keys/import {"text"}`: `.env` lines (`GROQ_API_KEY=…`).
pub fn import(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let text = super::body::only_string(req.body, "text")?;
    let catalog = app.catalog();
    let parsed = envfile::parse(&catalog, &text);
    let mut notes: Vec<String> = parsed
        .ignored
        .iter()
        .map(|n| format!("ignored {n}: not a known provider key variable"))
        .collect();
    if parsed.cloudflare_incomplete {
        notes.push(
            "skipped Cloudflare: both CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN are needed"
                .into(),
        );
    }
    let (store, master) = (app.store.clone(), app.master());
    let outcomes =
        off_worker(move || store.import_keys(&master, &catalog, parsed.found))?.map_err(storage)?;
    let (mut added, mut skipped) = (0, 0);
    for (platform, outcome) in outcomes {
        match outcome {
            Imported::Malformed(why) => {
                notes.push(format!("skipped a {platform} key: {why}"));
                skipped += 1;
            }
            Imported::Present => {
                notes.push(format!("{platform}: already present"));
                skipped += 1;
            }
            Imported::Added(_) => added += 1,
        }
    }
    app.reload().map_err(storage)?;
    log::info!("{added} provider keys imported from the dashboard");
    super::reply(
        res,
        200,
        &ImportReport {
            added,
            skipped,
            notes,
        },
    )
}
