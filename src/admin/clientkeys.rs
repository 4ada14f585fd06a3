//! Named client keys from the dashboard: list (masked, label, created, last used), make one
//! (the key is in the answer, once), revoke one (refused on its next request).

use serde::Serialize;

use super::{AdminError, bad, off_worker, reply, storage};
use crate::app::App;
use crate::http::{Request, Responder};
use crate::store::{AddClientKey, ClientKey};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct View<'a> {
    id: u64,
    label: &'a str,
    masked: &'a str,
    created_ms: u64,
    last_used_ms: Option<u64>,
}

fn view(k: &ClientKey) -> View<'_> {
    View {
        id: k.id,
        label: &k.label,
        masked: &k.masked,
        created_ms: k.created_ms,
        last_used_ms: k.last_used_ms,
    }
}

/// `GET /api/client-keys`.
pub fn list(app: &App, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let store = app.store.clone();
    let mut keys = off_worker(move || store.client_keys())?.map_err(storage)?;
    // Use this server saw and has not saved yet.
    for (id, ms) in app.client_key_use() {
        if let Some(k) = keys.iter_mut().find(|k| k.id == id && ms > 0) {
            k.last_used_ms = Some(k.last_used_ms.unwrap_or(0).max(ms));
        }
    }
    reply(res, 200, &keys.iter().map(view).collect::<Vec<_>>())
}

#[derive(Serialize)]
struct Made<'a> {
    #[serde(flatten)]
    view: View<'a>,
    /// The key itself: shown this once.
    key: &'a str,
}

/// `POST /api/client-keys {"label"}`.
pub fn add(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let label = super::body::only_string(req.body, "label")?;
    let store = app.store.clone();
    let made = off_worker(move || store.add_client_key(&label, crate::time::now_ms()))?;
    let (row, key) = match made {
        Ok(m) => m,
        Err(AddClientKey::BadLabel(why)) => return Err(bad("label", why)),
        Err(AddClientKey::TooMany) => {
            return Err(AdminError::Conflict {
                code: "too_many_client_keys",
                message: format!(
                    "already {} client keys; revoke one first",
                    crate::store::MAX_CLIENT_KEYS
                ),
            });
        }
        Err(AddClientKey::Store(e)) => return Err(storage(e)),
    };
    app.reload().map_err(storage)?;
    log::info!(
        "client key {} ({}) made from the dashboard",
        row.id,
        row.label
    );
    reply(
        res,
        201,
        &Made {
            view: view(&row),
            key: key.as_str().unwrap_or_default(),
        },
    )
}

#[derive(Serialize)]
struct Revoked {
    revoked: u64,
}

/// `DELETE /api/client-keys/{id}`.
pub fn remove(app: &App, id: &str, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let id: u64 = id
        .parse()
        .map_err(|_| AdminError::NotFound(format!("no client key with id {id:?}")))?;
    let store = app.store.clone();
    if !off_worker(move || store.remove_client_key(id))?.map_err(storage)? {
        return Err(AdminError::NotFound(format!("no client key with id {id}")));
    }
    app.reload().map_err(storage)?;
    log::info!("client key {id} revoked from the dashboard");
    reply(res, 200, &Revoked { revoked: id })
}
