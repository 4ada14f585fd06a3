//! Provider keys: list (masked), add, label / enable / disable, remove, check one, check all
//! in the background, reveal after the password is entered again, and the health summary.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Serialize;

use super::AdminError;
use super::{AdminState, Fields, bad, key_id, off_worker, reply, settings, storage};
use crate::app::App;
use crate::catalog::{Auth, Catalog, KeyFormat};
use crate::health::Selection;
use crate::http::{Request, Responder};
use crate::store::{KeyRecord, KeyStatus, NewKey};
use crate::time::{now_ms, rfc3339_ms};

const MAX_LABEL: usize = 100;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    id: u64,
    platform: String,
    platform_name: String,
    label: String,
    masked_key: String,
    status: KeyStatus,
    enabled: bool,
    unlimited: bool,
    created_at: String,
    last_checked_at: Option<String>,
    /// Why the health checker disabled the key, when it did.
    disabled_reason: Option<String>,
    /// What the last probe saw (`HTTP 401`, `timed out`, ...).
    last_detail: Option<String>,
    rate_limited_until: Option<String>,
    /// This key's own outbound proxy, credentials hidden.
    proxy: Option<String>,
    /// Why this key routes nothing (its platform has no enabled model), with what to do.
    warning: Option<String>,
    /// The platform has no free tier left: what its key needs instead.
    no_free_tier: Option<String>,
}

/// A key's status as shown: `retired` when its platform is gone.
pub(super) fn shown_status(r: &KeyRecord, catalog: &Catalog, now: u64) -> KeyStatus {
    match catalog.platform_index(&r.platform) {
        Some(p) if catalog.platforms[p].refuses_keys().is_some() => KeyStatus::Retired,
        _ => r.effective_status(now),
    }
}

fn view(r: &KeyRecord, catalog: &Catalog, now: u64) -> KeyView {
    KeyView {
        id: r.id,
        platform_name: catalog
            .platform_index(&r.platform)
            .map(|p| catalog.platforms[p].name.clone())
            .unwrap_or_else(|| r.platform.clone()),
        platform: r.platform.clone(),
        label: r.label.clone(),
        masked_key: r.masked.clone(),
        status: shown_status(r, catalog, now),
        enabled: r.enabled,
        unlimited: r.unlimited,
        created_at: rfc3339_ms(r.created_ms),
        last_checked_at: r.last_checked_ms.map(rfc3339_ms),
        disabled_reason: r.disabled_reason.clone(),
        last_detail: r.last_detail.clone(),
        rate_limited_until: r.rate_limited_until.filter(|t| *t > now).map(rfc3339_ms),
        proxy: r.proxy_shown.clone(),
        warning: catalog
            .platform_index(&r.platform)
            .and_then(|p| catalog.dead_key_warning(p)),
        no_free_tier: catalog
            .platform_index(&r.platform)
            .and_then(|p| catalog.platforms[p].not_free_note().map(str::to_string)),
    }
}

fn find(app: &App, id: u64) -> Result<KeyRecord, AdminError> {
    app.store
        .get_key(id)
        .map_err(storage)?
        .ok_or_else(|| AdminError::NotFound(format!("no key with id {id}")))
}

/// `GET /api/keys`: every key, newest first, masked.
pub fn list(app: &App, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let (catalog, now) = (app.catalog(), now_ms());
    let mut keys = app.store.list_keys().map_err(storage)?;
    keys.reverse();
    let views: Vec<KeyView> = keys.iter().map(|k| view(k, &catalog, now)).collect();
    reply(res, 200, &views)
}

fn check_label(label: &str) -> Result<(), AdminError> {
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(bad(
            "label",
            format!("at most {MAX_LABEL} characters, no control characters"),
        ));
    }
    Ok(())
}

/// A key's proxy URL as sent: checked, `None` when empty (no proxy of its own).
fn check_proxy(url: Option<&str>) -> Result<Option<String>, AdminError> {
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    crate::config::check_proxy_url(url).map_err(|why| bad("proxy", why))?;
    Ok(Some(url.to_string()))
}

/// `POST /api/keys {platform, key, label?, unlimited?, accountId?, proxy?}` → 201 with the new
/// key.
pub fn add(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let f = Fields::new(
        &value,
        "",
        &[
            "platform",
            "key",
            "label",
            "unlimited",
            "accountId",
            "proxy",
        ],
    )?;
    let platform = f.req_str("platform")?;
    let key = f.req_str("key")?.trim();
    let label = f.str("label")?.unwrap_or("").trim().to_string();
    let unlimited = f.bool("unlimited")?.unwrap_or(false);
    let account = f.str("accountId")?.map(str::trim);
    let proxy = check_proxy(f.str("proxy")?)?;
    check_label(&label)?;
    let catalog = app.catalog();
    let Some(p) = catalog.platform_index(platform) else {
        return Err(bad(
            "platform",
            format!(
                "unknown platform {platform:?}; known: {}",
                catalog.platform_ids().join(", ")
            ),
        ));
    };
    let p = &catalog.platforms[p];
    if let Some(why) = p.refuses_keys() {
        return Err(bad("platform", why));
    }
    if p.auth == Auth::None {
        return Err(bad(
            "platform",
            format!("{} is keyless; it needs no key", p.name),
        ));
    }
    let key = match account {
        Some(a) if p.key_format == KeyFormat::AccountToken => {
            if a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad(
                    "accountId",
                    format!(
                        "{} account ids are letters and digits (the 32-hex id in your dashboard URL)",
                        p.name
                    ),
                ));
            }
            format!("{a}:{key}")
        }
        Some(_) => {
            return Err(bad(
                "accountId",
                format!("only Cloudflare keys have an account id, not {}", p.name),
            ));
        }
        None => key.to_string(),
    };
    catalog.check_key(platform, &key).map_err(|m| {
        let field = if p.key_format == KeyFormat::AccountToken && account.is_some() {
            "accountId"
        } else {
            "key"
        };
        bad(field, m)
    })?;
    let (store, master, platform) = (app.store.clone(), app.master(), p.id.clone());
    let record = off_worker(move || {
        let new = NewKey {
            platform: &platform,
            label: &label,
            key: &key,
            unlimited,
            proxy: proxy.as_deref(),
        };
        store.add_key(&master, &new)
    })?
    .map_err(storage)?;
    app.reload().map_err(storage)?;
    log::info!(
        "key {} added for {} from the dashboard",
        record.id,
        record.platform
    );
    reply(res, 201, &view(&record, &catalog, now_ms()))
}

/// `PATCH /api/keys/{id} {label?, enabled?, unlimited?, proxy?}` (`proxy: null` or `""` clears
/// the key's own proxy).
pub fn edit(
    app: &App,
    id: &str,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let id = key_id(id)?;
    let value = super::body::parse(req.body)?;
    let f = Fields::new(&value, "", &["label", "enabled", "unlimited", "proxy"])?;
    let label = f.str("label")?.map(|l| l.trim().to_string());
    let enabled = f.bool("enabled")?;
    let unlimited = f.bool("unlimited")?;
    let proxy = f.str_or_null("proxy")?.map(check_proxy).transpose()?;
    if let Some(l) = &label {
        check_label(l)?;
    }
    if label.is_none() && enabled.is_none() && unlimited.is_none() && proxy.is_none() {
        return Err(bad(
            "",
            "nothing to change: send label, enabled, unlimited or proxy",
        ));
    }
    let (store, master) = (app.store.clone(), app.master());
    let found = off_worker(move || {
        store.update_key(id, |r| {
            if let Some(l) = label {
                r.label = l;
            }
            if let Some(p) = &proxy {
                r.set_proxy(&master, p.as_deref());
            }
            if let Some(u) = unlimited {
                r.unlimited = u;
            }
            match enabled {
                // A key the user turns back on starts over: the next check decides its status.
                Some(true) if !r.enabled || r.auto_disabled => {
                    r.enabled = true;
                    r.auto_disabled = false;
                    r.auth_failures = 0;
                    r.disabled_reason = None;
                    if r.status == KeyStatus::Invalid {
                        r.status = KeyStatus::Unknown;
                    }
                }
                Some(false) => {
                    r.enabled = false;
                    r.auto_disabled = false;
                }
                _ => {}
            }
        })
    })?
    .map_err(storage)?;
    if !found {
        return Err(AdminError::NotFound(format!("no key with id {id}")));
    }
    app.reload().map_err(storage)?;
    reply(res, 200, &view(&find(app, id)?, &app.catalog(), now_ms()))
}

#[derive(Serialize)]
struct Deleted {
    deleted: u64,
}

/// `DELETE /api/keys/{id}`.
pub fn remove(app: &App, id: &str, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let id = key_id(id)?;
    let store = app.store.clone();
    if !off_worker(move || store.remove_key(id))?.map_err(storage)? {
        return Err(AdminError::NotFound(format!("no key with id {id}")));
    }
    app.reload().map_err(storage)?;
    log::info!("key {id} removed from the dashboard");
    reply(res, 200, &Deleted { deleted: id })
}

/// `POST /api/keys/{id}/check`: probes the key now (even a disabled one) and saves the result.
pub fn check(app: &App, id: &str, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let id = key_id(id)?;
    let checked = app.health_pass(Selection::One(id)).map_err(storage)?;
    let Some(checked) = checked.into_iter().next() else {
        return Err(AdminError::NotFound(format!("no key with id {id}")));
    };
    app.reload().map_err(storage)?;
    reply(res, 200, &view(&checked.record, &app.catalog(), now_ms()))
}

#[derive(Serialize)]
struct CheckAll {
    started: bool,
    running: bool,
}

/// `POST /api/keys/check-all`: starts one health pass in the background (202); a second call
/// while it runs starts nothing.
pub fn check_all(
    app: &Arc<App>,
    state: &AdminState,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let started = !state.checking.swap(true, Ordering::AcqRel);
    if started {
        let (me, checking) = (app.clone(), state.checking.clone());
        may::go!(move || {
            match me.health_pass(Selection::Checkable) {
                Ok(_) => {
                    if let Err(e) = me.reload() {
                        log::error!("reloading after the health check failed: {e}");
                    }
                }
                Err(e) => log::error!("dashboard health check failed: {e}"),
            }
            checking.store(false, Ordering::Release);
        });
    }
    reply(
        res,
        202,
        &CheckAll {
            started,
            running: true,
        },
    )
}

#[derive(Serialize)]
struct Revealed {
    id: u64,
    key: String,
}

/// `POST /api/keys/{id}/reveal {password}`: the full key, after the password is entered again.
pub fn reveal(
    app: &App,
    state: &AdminState,
    id: &str,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let id = key_id(id)?;
    let password = super::body::only_string(req.body, "password")?;
    settings::reauthenticate(app, state, req, password)?;
    let record = find(app, id)?;
    let plain = app.open_key(&record).ok_or_else(|| AdminError::Conflict {
        code: "undecryptable",
        message: format!("key {id} cannot be decrypted with this master key"),
    })?;
    log::info!("key {id} revealed on the dashboard");
    reply(res, 200, &Revealed { id, key: plain })
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct PlatformHealth {
    platform: String,
    name: String,
    total_keys: u32,
    enabled_keys: u32,
    healthy: u32,
    rate_limited: u32,
    invalid: u32,
    error: u32,
    unknown: u32,
    /// Keys of a platform that is gone.
    retired: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    /// At least one key (or keyless platform) can serve now: what `/readyz` says.
    ready: bool,
    usable_keys: usize,
    checking: bool,
    platforms: Vec<PlatformHealth>,
    keys: Vec<KeyView>,
    /// Outbound proxies from the configuration (a key's own is in its row).
    proxies: Vec<ProxyView>,
}

#[derive(Serialize)]
struct ProxyView {
    /// A platform id, or `null` for every platform.
    platform: Option<String>,
    /// Credentials hidden.
    url: String,
}

/// `GET /api/health`: key status per platform and per key.
pub fn health(app: &App, state: &AdminState, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let (catalog, now) = (app.catalog(), now_ms());
    let keys = app.store.list_keys().map_err(storage)?;
    let mut platforms: Vec<PlatformHealth> = Vec::new();
    for k in &keys {
        let i = match platforms.iter().position(|p| p.platform == k.platform) {
            Some(i) => i,
            None => {
                platforms.push(PlatformHealth {
                    platform: k.platform.clone(),
                    name: view(k, &catalog, now).platform_name,
                    ..Default::default()
                });
                platforms.len() - 1
            }
        };
        let p = &mut platforms[i];
        p.total_keys += 1;
        p.enabled_keys += u32::from(k.enabled);
        *match shown_status(k, &catalog, now) {
            KeyStatus::Healthy => &mut p.healthy,
            KeyStatus::RateLimited => &mut p.rate_limited,
            KeyStatus::Invalid => &mut p.invalid,
            KeyStatus::Error => &mut p.error,
            KeyStatus::Unknown => &mut p.unknown,
            KeyStatus::Retired => &mut p.retired,
        } += 1;
    }
    let usable_keys = app.router.snapshot().serving_keys();
    let body = Health {
        ready: usable_keys > 0,
        usable_keys,
        checking: state.checking.load(Ordering::Acquire),
        platforms,
        keys: keys.iter().rev().map(|k| view(k, &catalog, now)).collect(),
        proxies: app
            .configured_proxies()
            .iter()
            .map(|(platform, url)| ProxyView {
                platform: platform.clone(),
                url: url.clone(),
            })
            .collect(),
    };
    reply(res, 200, &body)
}
