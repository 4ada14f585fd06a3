//! `POST /api/backup {"password", "passphrase"}`: the same sealed backup file as
//! `freellmapi backup`, as a download. The dashboard password is asked again (a backup holds
//! the master key); the file is written beside the store by a worker thread, unlinked once
//! open, and streamed to the browser in 64 KiB chunks, so memory stays small however large
//! the store and nothing is left behind.

use std::io::Read;

use super::{AdminError, AdminState, Fields, bad, off_worker, settings};
use crate::app::App;
use crate::backup::{self, MIN_PASSPHRASE};
use crate::http::{Request, Responder};

pub fn download(
    app: &App,
    state: &AdminState,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let f = Fields::new(&value, "", &["password", "passphrase"])?;
    let password = f.req_str("password")?.to_string();
    let passphrase = f.req_str("passphrase")?.to_string();
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(bad(
            "passphrase",
            format!("at least {MIN_PASSPHRASE} characters"),
        ));
    }
    settings::reauthenticate(app, state, req, password)?;
    let name = format!(".download-{}.bak", crate::crypto::random_hex(6));
    let file = app.data_file(&name);
    let (dir, master_env) = app.backup_sources();
    let (store, target) = (app.store.clone(), file.clone());
    let made = off_worker(move || {
        backup::backup(&store, &dir, master_env.as_deref(), &target, &passphrase)
    })?;
    if let Err(e) = made {
        log::error!("dashboard backup failed: {e}");
        return Err(AdminError::Internal);
    }
    // Unlinked as soon as it is open: the open handle still reads it, and nothing is left
    // behind however the download ends.
    let input = std::fs::File::open(&file);
    let _ = std::fs::remove_file(&file);
    let input = input.map_err(|_| AdminError::Internal)?;
    log::info!("backup downloaded from the dashboard");
    send(input, res)
}

/// Streams the file as an attachment.
fn send(mut input: std::fs::File, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let date = crate::time::rfc3339_ms(crate::time::now_ms());
    let disposition = format!("attachment; filename=\"freellmapi-{}.bak\"", &date[..10]);
    let Ok(mut writer) = res
        .head(200)
        .header("Cache-Control", "no-store")
        .header("Content-Disposition", &disposition)
        .stream("application/octet-stream")
    else {
        return Ok(());
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if writer.write(&buf[..n]).is_err() {
                    return Ok(());
                }
            }
            Err(_) => return Ok(()),
        }
    }
    let _ = writer.finish();
    Ok(())
}
