//! Provider keys as `.env` lines from the dashboard: export (plaintext, so the dashboard
//! password is asked again) and import (the same reader as `freellmapi keys import`: known
//! variables become keys, duplicates of stored keys are skipped, malformed keys are named).

use serde::Serialize;

use super::{AdminError, AdminState, Fields, off_worker, settings, storage};
use crate::app::App;
use crate::catalog::envfile;
use crate::http::{Request, Responder};

/// `POST /api/keys/export {"password"}`: every key that opens, as a `.env` attachment.
pub fn export(
    app: &App,
    state: &AdminState,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let password = Fields::new(&value, "", &["password"])?
        .req_str("password")?
        .to_string();
    settings::reauthenticate(app, state, req, password)?;
    let store = app.store.clone();
    let rows = off_worker(move || store.list_keys())?.map_err(storage)?;
    let keys: Vec<(String, String)> = rows
        .into_iter()
        .filter_map(|k| {
            let plain = app.master.open(&k.sealed_bytes()?, &k.platform).ok()?;
            Some((k.platform, plain.as_str()?.to_string()))
        })
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
struct Imported {
    added: usize,
    /// Already stored, or not in the platform's key format (each named in `notes`).
    skipped: usize,
    notes: Vec<String>,
}

/// `POST /api/keys/import {"text"}`: `.env` lines (`GROQ_API_KEY=…`).
pub fn import(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let text = Fields::new(&value, "", &["text"])?
        .req_str("text")?
        .to_string();
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
    let (store, master) = (app.store.clone(), app.master.clone());
    let outcome = off_worker(
        move || -> crate::store::Result<(usize, usize, Vec<String>)> {
            let existing: Vec<(String, Vec<u8>)> = store
                .list_keys()?
                .into_iter()
                .filter_map(|k| {
                    let plain = master.open(&k.sealed_bytes()?, &k.platform).ok()?;
                    Some((k.platform, plain.as_bytes().to_vec()))
                })
                .collect();
            let (mut added, mut skipped, mut notes) = (0, 0, Vec::new());
            for (platform, key) in parsed.found {
                if let Err(why) = catalog.check_key(&platform, &key) {
                    notes.push(format!("skipped a {platform} key: {why}"));
                    skipped += 1;
                } else if existing
                    .iter()
                    .any(|(p, k)| *p == platform && k == key.as_bytes())
                {
                    notes.push(format!("{platform}: already present"));
                    skipped += 1;
                } else {
                    store.add_key(&master, &platform, "imported", &key, false)?;
                    added += 1;
                }
            }
            Ok((added, skipped, notes))
        },
    )?;
    let (added, skipped, more) = outcome.map_err(storage)?;
    notes.extend(more);
    app.reload().map_err(storage)?;
    log::info!("{added} provider keys imported from the dashboard");
    super::reply(
        res,
        200,
        &Imported {
            added,
            skipped,
            notes,
        },
    )
}
