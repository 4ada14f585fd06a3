//! The catalog as the user edits it: list models and platforms, add a model (to any platform,
//! or to a new `custom-*` platform with its base URL), edit limits / switches / ranks, and
//! remove a model the user added. Edits are stored as overrides over the built-in catalog.

use serde::Serialize;

use super::AdminError;
use super::{Fields, bad, off_worker, reply, storage};
use crate::app::App;
use simd_json::OwnedValue;
use simd_json::prelude::*;

use crate::catalog::lifecycle::{PlatformSync, SyncOutcome};
use crate::catalog::{
    Auth, Caps, Catalog, CustomModel, CustomPlatform, FreeTier, KeyFormat, Limits, ModelOverride,
    Origin, Overrides,
};
use crate::http::{Request, Responder};
use crate::router::chain::Snapshot;

const MAX_RANK: u64 = 10_000;
/// What a user may set on a model, when adding it and when editing it.
const EDITABLE: [&str; 10] = [
    "displayName",
    "contextWindow",
    "rpm",
    "rpd",
    "tpm",
    "tpd",
    "intelligenceRank",
    "speedRank",
    "enabled",
    "capabilities",
];
const MAX_LIMIT: u64 = u32::MAX as u64;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelView<'a> {
    id: String,
    platform: &'a str,
    model_id: &'a str,
    display_name: &'a str,
    enabled: bool,
    intelligence_rank: u32,
    speed_rank: u32,
    context_window: Option<u32>,
    rpm: Option<u32>,
    rpd: Option<u32>,
    tpm: Option<u64>,
    tpd: Option<u64>,
    /// The user added this model (it can be removed).
    custom: bool,
    /// `builtin`, `custom` or `discovered` (named by a provider's listing).
    origin: Origin,
    /// `active`, `disabled`, `retired` or `discovered`.
    state: &'static str,
    /// Why and since when a retired model left routing.
    retired: Option<String>,
    /// The model parameters it accepts, as far as known.
    supported_parameters: Vec<&'a str>,
    /// The user changed a built-in model.
    edited: bool,
    pool: Option<&'a str>,
    key_count: usize,
    capabilities: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlatformView<'a> {
    id: &'a str,
    name: &'a str,
    /// Calls need no key (a custom local server).
    keyless: bool,
    /// It can also serve without a key, once turned on (`keylessOn`).
    keyless_possible: bool,
    keyless_on: bool,
    /// The key is `account_id:api_token` (Cloudflare).
    account_token: bool,
    custom: bool,
    /// Shown for custom platforms only (built-in URLs are not a user setting).
    base_url: Option<&'a str>,
    /// Where its free tier stands, when and where that was checked.
    free_tier: Option<&'a FreeTier>,
    /// The last sync of its listing.
    last_sync: Option<SyncView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncView {
    at: String,
    #[serde(flatten)]
    outcome: SyncOutcome,
}

impl SyncView {
    fn of(s: &PlatformSync) -> SyncView {
        SyncView {
            at: crate::time::rfc3339_ms(s.at_ms),
            outcome: s.outcome.clone(),
        }
    }
}

#[derive(Serialize)]
struct Listing<'a> {
    platforms: Vec<PlatformView<'a>>,
    models: Vec<ModelView<'a>>,
}

/// `GET /api/models`.
pub fn list(app: &App, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let snap = app.router.snapshot();
    let overrides = app.store.overrides().map_err(storage)?;
    let life = app.store.lifecycle().map_err(storage)?;
    let c = &snap.catalog;
    let platforms = c
        .platforms
        .iter()
        .map(|p| PlatformView {
            id: &p.id,
            name: &p.name,
            keyless: p.auth == Auth::None,
            keyless_possible: p.keyless,
            keyless_on: overrides.keyless_on.contains(&p.id),
            account_token: p.key_format == KeyFormat::AccountToken,
            custom: p.custom,
            base_url: p.custom.then_some(p.base_url.as_str()),
            free_tier: p.free_tier.as_ref(),
            last_sync: life.last_sync(&p.id).map(SyncView::of),
        })
        .collect();
    let models = (0..c.models.len())
        .map(|i| view(&snap, &overrides, i))
        .collect();
    reply(res, 200, &Listing { platforms, models })
}

/// The listing entry of catalog model `i`.
fn view<'a>(snap: &'a Snapshot, overrides: &Overrides, i: usize) -> ModelView<'a> {
    let c = &snap.catalog;
    let m = &c.models[i];
    let p = &c.platforms[m.platform];
    ModelView {
        id: format!("{}/{}", p.id, m.model_id),
        platform: &p.id,
        model_id: &m.model_id,
        display_name: &m.display_name,
        enabled: m.enabled,
        intelligence_rank: m.intelligence_rank,
        speed_rank: m.speed_rank,
        context_window: m.context_window,
        rpm: m.limits.rpm,
        rpd: m.limits.rpd,
        tpm: m.limits.tpm,
        tpd: m.limits.tpd,
        custom: m.origin == Origin::Custom,
        origin: m.origin,
        state: m.state(),
        retired: m.retired.as_ref().map(|r| r.describe(&p.name)),
        supported_parameters: m.supported_parameters(),
        edited: overrides
            .models
            .iter()
            .any(|o| o.platform == p.id && o.model_id == m.model_id),
        pool: m.pool.map(|k| p.pools[k].id.as_str()),
        key_count: snap
            .entry_for_model(i)
            .map_or(0, |e| snap.entries[e].slots.len()),
        capabilities: m.capability_names(),
    }
}

fn find<'c>(catalog: &'c Catalog, id: &str) -> Option<&'c crate::catalog::Model> {
    let (platform, model) = id.split_once('/')?;
    let p = catalog.platform_index(platform)?;
    catalog
        .models
        .iter()
        .find(|m| m.platform == p && m.model_id == model)
}

/// Validates and stores the user's catalog edits, then reloads the routing snapshot.
pub(super) fn save(app: &App, o: Overrides) -> Result<(), AdminError> {
    app.check_overrides(&o).map_err(|m| bad("", m))?;
    let store = app.store.clone();
    off_worker(move || store.put_overrides(&o))?.map_err(storage)?;
    app.reload().map_err(storage)
}

/// `capabilities`: an array of `vision`, `tools`, `json_schema`.
fn caps_field(value: &OwnedValue) -> Result<Option<Vec<String>>, AdminError> {
    let Some(v) = value.get("capabilities") else {
        return Ok(None);
    };
    let names: Vec<String> = v
        .as_array()
        .and_then(|a| a.iter().map(|n| n.as_str().map(str::to_string)).collect())
        .ok_or_else(|| bad("capabilities", "expected an array of names"))?;
    Caps::parse(&names).map_err(|m| bad("capabilities", m))?;
    Ok(Some(names))
}

fn u32_field(f: &Fields<'_>, key: &str, max: u64) -> Result<Option<u32>, AdminError> {
    Ok(f.uint(key, max)?.map(|v| v as u32))
}

/// `POST /api/models`: a model the user adds, to a known platform or to a new custom one.
pub fn add(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let allowed: Vec<&str> = ["platform", "modelId", "baseUrl", "platformName", "keyless"]
        .into_iter()
        .chain(EDITABLE)
        .collect();
    let f = Fields::new(&value, "", &allowed)?;
    let platform = f.req_str("platform")?.trim().to_string();
    let model_id = f.req_str("modelId")?.trim().to_string();
    if model_id.is_empty()
        || model_id.len() > 200
        || model_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad(
            "modelId",
            "1-200 characters without spaces or control characters",
        ));
    }
    let context_window = u32_field(&f, "contextWindow", MAX_LIMIT)?;
    if context_window == Some(0) {
        return Err(bad("contextWindow", "must be at least 1"));
    }
    let mut o = app.store.overrides().map_err(storage)?;
    let catalog = app.catalog();
    match (catalog.platform_index(&platform), f.str("baseUrl")?) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "baseUrl",
                format!("platform {platform:?} exists already; its base URL is not set here"),
            ));
        }
        (Some(_), None) => {
            for k in ["platformName", "keyless"] {
                if f.has(k) {
                    return Err(bad(k, "only for a new custom platform (with baseUrl)"));
                }
            }
        }
        (None, Some(url)) => {
            let ok_id = (platform == "custom"
                || platform
                    .strip_prefix("custom-")
                    .is_some_and(|n| !n.is_empty()))
                && platform
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok_id {
                return Err(bad(
                    "platform",
                    "a new platform is named \"custom\" or \"custom-<name>\" (lowercase letters, digits, dashes)",
                ));
            }
            crate::netguard::check_base_url(url.trim()).map_err(|m| bad("baseUrl", m))?;
            o.custom_platforms.push(CustomPlatform {
                id: platform.clone(),
                name: f.str("platformName")?.unwrap_or("").trim().to_string(),
                base_url: url.trim().to_string(),
                keyless: f.bool("keyless")?.unwrap_or(false),
            });
        }
        (None, None) => {
            return Err(bad(
                "platform",
                format!(
                    "unknown platform {platform:?}; known: {} (or name a new custom-<name> platform and give its baseUrl)",
                    catalog.platform_ids().join(", ")
                ),
            ));
        }
    }
    let id = format!("{platform}/{model_id}");
    if find(&catalog, &id).is_some() {
        return Err(AdminError::Conflict {
            code: "model_exists",
            message: format!("{id} is already in the catalog; edit it with PATCH /api/models"),
        });
    }
    o.custom_models.push(CustomModel {
        platform: platform.clone(),
        model_id: model_id.clone(),
        display_name: f.str("displayName")?.unwrap_or("").trim().to_string(),
        context_window,
        limits: Limits {
            rpm: u32_field(&f, "rpm", MAX_LIMIT)?,
            rpd: u32_field(&f, "rpd", MAX_LIMIT)?,
            tpm: f.uint("tpm", u64::MAX)?,
            tpd: f.uint("tpd", u64::MAX)?,
        },
        intelligence_rank: u32_field(&f, "intelligenceRank", MAX_RANK)?.unwrap_or(50),
        speed_rank: u32_field(&f, "speedRank", MAX_RANK)?.unwrap_or(50),
        enabled: f.bool("enabled")?.unwrap_or(true),
        capabilities: caps_field(&value)?
            .unwrap_or_else(|| vec!["tools".into(), "json_schema".into()]),
    });
    save(app, o)?;
    log::info!("model {id} added from the dashboard");
    list_one(app, &id, 201, res)
}

/// Replies with the listing entry of one model.
fn list_one(app: &App, id: &str, status: u16, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let snap = app.router.snapshot();
    let overrides = app.store.overrides().map_err(storage)?;
    let i = find(&snap.catalog, id)
        .and_then(|m| snap.catalog.models.iter().position(|x| std::ptr::eq(x, m)))
        .ok_or_else(|| AdminError::NotFound(format!("no model {id}")))?;
    reply(res, status, &view(&snap, &overrides, i))
}

/// `PATCH /api/models {id, enabled?, displayName?, contextWindow?, rpm?, rpd?, tpm?, tpd?,
/// intelligenceRank?, speedRank?}`; `null` removes a limit.
pub fn edit(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let allowed: Vec<&str> = ["id"].into_iter().chain(EDITABLE).collect();
    let f = Fields::new(&value, "", &allowed)?;
    let id = f.req_str("id")?;
    let catalog = app.catalog();
    let Some(model) = find(&catalog, id) else {
        return Err(bad(
            "id",
            format!("{id:?} is not a model in the catalog (use platform/model_id)"),
        ));
    };
    let narrow = |v: Option<Option<u64>>| v.map(|o| o.map(|n| n as u32));
    let edit = ModelOverride {
        platform: catalog.platforms[model.platform].id.clone(),
        model_id: model.model_id.clone(),
        enabled: f.bool("enabled")?,
        intelligence_rank: u32_field(&f, "intelligenceRank", MAX_RANK)?,
        speed_rank: u32_field(&f, "speedRank", MAX_RANK)?,
        context_window: narrow(f.uint_or_null("contextWindow", MAX_LIMIT)?),
        rpm: narrow(f.uint_or_null("rpm", MAX_LIMIT)?),
        rpd: narrow(f.uint_or_null("rpd", MAX_LIMIT)?),
        tpm: f.uint_or_null("tpm", u64::MAX)?,
        tpd: f.uint_or_null("tpd", u64::MAX)?,
        capabilities: caps_field(&value)?,
    };
    if edit.context_window == Some(Some(0)) {
        return Err(bad(
            "contextWindow",
            "must be at least 1 (or null for unknown)",
        ));
    }
    let display_name = f.str("displayName")?.map(|s| s.trim().to_string());
    let mut o = app.store.overrides().map_err(storage)?;
    o.edit_model(edit, display_name)
        .map_err(|m| bad("displayName", m))?;
    let id = id.to_string();
    save(app, o)?;
    list_one(app, &id, 200, res)
}

/// `PUT /api/models/keyless {platform, enabled}`: lets a platform that serves without a key
/// route keyless (its operator sees the prompts, so this is never on by default). Turned on,
/// its listing is read at once.
pub fn keyless(
    app: &App,
    req: &mut Request<'_>,
    res: &mut Responder<'_>,
) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let f = Fields::new(&value, "", &["platform", "enabled"])?;
    let platform = f.req_str("platform")?.to_string();
    let enabled = f
        .bool("enabled")?
        .ok_or_else(|| bad("enabled", "required: true or false"))?;
    app.catalog()
        .check_keyless(&platform)
        .map_err(|why| bad("platform", why))?;
    let mut o = app.store.overrides().map_err(storage)?;
    o.set_keyless(&platform, enabled);
    save(app, o)?;
    log::info!(
        "{platform}: keyless use turned {} from the dashboard",
        if enabled { "on" } else { "off" }
    );
    list(app, res)
}

#[derive(Serialize)]
struct Removed {
    removed: String,
}

/// `DELETE /api/models?id=platform%2Fmodel`: removes a model the user added.
pub fn remove(app: &App, req: &Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let id = req
        .query_param("id")
        .and_then(crate::http::percent_decode)
        .ok_or_else(|| {
            bad(
                "id",
                "required as a query parameter: ?id=platform%2Fmodel_id",
            )
        })?;
    let mut o = app.store.overrides().map_err(storage)?;
    let before = o.custom_models.len();
    o.custom_models
        .retain(|c| format!("{}/{}", c.platform, c.model_id) != id);
    if o.custom_models.len() == before {
        return Err(if find(&app.catalog(), &id).is_some() {
            bad(
                "id",
                format!("{id} is built in; disable it instead of removing it"),
            )
        } else {
            AdminError::NotFound(format!("no model {id}"))
        });
    }
    save(app, o)?;
    reply(res, 200, &Removed { removed: id })
}
