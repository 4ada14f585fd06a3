//! The fallback chain: its order and switches, live penalties and cooldowns per entry, sort
//! presets, and the monthly token budget bar.

use serde::Serialize;
use simd_json::prelude::*;

use super::AdminError;
use super::{Fields, bad, off_worker, reply, storage};
use crate::app::App;
use crate::catalog::{Catalog, Model};
use crate::http::{Request, Responder};
use crate::router::chain::Snapshot;
use crate::store::ChainEntry;
use crate::time::{now_ms, utc_month_start};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView<'a> {
    /// `platform/model_id`: what `PUT /api/fallback` and the `model` field of a request name.
    id: String,
    position: usize,
    platform: &'a str,
    platform_name: &'a str,
    model_id: &'a str,
    display_name: &'a str,
    /// The chain's own switch.
    enabled: bool,
    /// The model's switch in the catalog (a disabled model is skipped even when listed).
    model_enabled: bool,
    intelligence_rank: u32,
    speed_rank: u32,
    size_label: &'a str,
    /// `chat` or `embedding` (embedding models serve `/v1/embeddings` by name, never `auto`).
    kind: &'static str,
    context_window: Option<u32>,
    rpm: Option<u32>,
    rpd: Option<u32>,
    tpm: Option<u64>,
    tpd: Option<u64>,
    monthly_budget: &'a str,
    /// The monthly free budget of one key (account), from the catalog's label.
    budget_tokens: u64,
    /// The same for every key of the entry: each key is its own account's budget.
    keys_budget_tokens: u64,
    key_count: usize,
    /// Keys cooling down (a 429, a pool's daily cap, an auth pause) for this model now.
    cooling_keys: usize,
    /// When every key is cooling: seconds until the first one is ready.
    ready_in_s: Option<u64>,
    penalty: u64,
    rate_limit_hits: u32,
    requests_24h: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Budget {
    /// Sum of the monthly budgets of enabled entries, once per key.
    total_tokens: u64,
    /// Tokens through the proxy since the first of this month (UTC), from the request log.
    used_this_month: u64,
}

#[derive(Serialize)]
struct ChainView<'a> {
    entries: Vec<EntryView<'a>>,
    budget: Budget,
}

/// Tokens of a free-tier budget label: `~50-100M` → 100 000 000, `~4M` → 4 000 000,
/// `credits-based` → 0. The upper end of a range counts.
pub fn budget_tokens(label: &str) -> u64 {
    let s = label.trim().trim_start_matches('~');
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    let upper = number.rsplit('-').next().unwrap_or("");
    let Ok(n) = upper.parse::<f64>() else {
        return 0;
    };
    let scale = match unit.trim_start().chars().next() {
        Some('B') => 1e9,
        Some('M') => 1e6,
        Some('K' | 'k') => 1e3,
        _ => 1.0,
    };
    (n * scale) as u64
}

fn entry_view<'a>(snap: &'a Snapshot, i: usize, now: u64) -> EntryView<'a> {
    let e = &snap.entries[i];
    let m: &Model = &snap.catalog.models[e.model];
    let p = &snap.catalog.platforms[m.platform];
    let mut cooling = 0;
    let mut soonest = u64::MAX;
    let mut requests = 0;
    for s in &e.slots {
        let slot = s.cell.get();
        let wait = s.cooldown_remaining(now);
        if wait > 0 {
            cooling += 1;
        }
        soonest = soonest.min(wait);
        requests += slot.map_or(0, |x| x.usage(now).1);
    }
    EntryView {
        id: format!("{}/{}", p.id, m.model_id),
        position: i + 1,
        platform: &p.id,
        platform_name: &p.name,
        model_id: &m.model_id,
        display_name: &m.display_name,
        enabled: e.enabled,
        model_enabled: m.enabled,
        intelligence_rank: m.intelligence_rank,
        speed_rank: m.speed_rank,
        size_label: &m.size_label,
        kind: m.kind.as_str(),
        context_window: m.context_window,
        rpm: m.limits.rpm,
        rpd: m.limits.rpd,
        tpm: m.limits.tpm,
        tpd: m.limits.tpd,
        monthly_budget: &m.monthly_token_budget,
        budget_tokens: budget_tokens(&m.monthly_token_budget),
        keys_budget_tokens: budget_tokens(&m.monthly_token_budget) * e.slots.len() as u64,
        key_count: e.slots.len(),
        cooling_keys: cooling,
        ready_in_s: (cooling > 0 && cooling == e.slots.len()).then(|| soonest.div_ceil(1000)),
        penalty: e.state.penalty.value(now),
        rate_limit_hits: e.state.penalty.hits(),
        requests_24h: requests,
    }
}

/// `GET /api/fallback`: the whole chain in order, disabled entries included.
pub fn get(app: &App, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let snap = app.router.snapshot();
    let now = now_ms();
    let entries: Vec<EntryView> = (0..snap.entries.len())
        .map(|i| entry_view(&snap, i, now))
        .collect();
    let total_tokens = entries
        .iter()
        .filter(|e| e.enabled && e.model_enabled)
        .map(|e| e.keys_budget_tokens)
        .sum();
    let store = app.store.clone();
    let since = utc_month_start(now);
    let used_this_month = off_worker(move || store.tokens_since(since))?.map_err(storage)?;
    let view = ChainView {
        entries,
        budget: Budget {
            total_tokens,
            used_this_month,
        },
    };
    reply(res, 200, &view)
}

/// The chain as stored: every model, in snapshot order, with its switch.
fn current(snap: &Snapshot) -> Vec<ChainEntry> {
    snap.entries
        .iter()
        .map(|e| {
            let m = &snap.catalog.models[e.model];
            ChainEntry {
                platform: snap.catalog.platforms[m.platform].id.clone(),
                model: m.model_id.clone(),
                enabled: e.enabled,
            }
        })
        .collect()
}

/// Resolves `platform/model_id` against the catalog.
fn resolve(catalog: &Catalog, id: &str) -> Option<(String, String)> {
    let (platform, model) = id.split_once('/')?;
    let p = catalog.platform_index(platform)?;
    catalog
        .models
        .iter()
        .any(|m| m.platform == p && m.model_id == model)
        .then(|| (platform.to_string(), model.to_string()))
}

fn save(app: &App, order: Vec<ChainEntry>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let store = app.store.clone();
    off_worker(move || store.put_chain_order(&order))?.map_err(storage)?;
    app.reload().map_err(storage)?;
    get(app, res)
}

/// `PUT /api/fallback [{id, enabled}, ...]`: the listed entries first, in the order given; entries
/// not listed keep their relative order after them.
pub fn put(app: &App, req: &mut Request<'_>, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let value = super::body::parse(req.body)?;
    let Some(items) = value.as_array() else {
        return Err(bad(
            "body",
            format!(
                "expected an array of {{\"id\": \"platform/model\", \"enabled\": bool}}, got {}",
                crate::json::type_name(&value)
            ),
        ));
    };
    let snap = app.router.snapshot();
    let mut order: Vec<ChainEntry> = Vec::with_capacity(snap.entries.len());
    for (i, item) in items.iter().enumerate() {
        let f = Fields::new(item, &format!("[{i}]"), &["id", "enabled"])?;
        let id = f.req_str("id")?;
        let enabled = f.bool("enabled")?.ok_or_else(|| f.missing("enabled"))?;
        let (platform, model) = resolve(&snap.catalog, id).ok_or_else(|| {
            bad(
                &f.path("id"),
                format!("{id:?} is not a model in the catalog (use platform/model_id)"),
            )
        })?;
        if order
            .iter()
            .any(|e| e.platform == platform && e.model == model)
        {
            return Err(bad(&f.path("id"), format!("{id:?} is listed twice")));
        }
        order.push(ChainEntry {
            platform,
            model,
            enabled,
        });
    }
    for e in current(&snap) {
        if !order
            .iter()
            .any(|o| o.platform == e.platform && o.model == e.model)
        {
            order.push(e);
        }
    }
    save(app, order, res)
}

/// `POST /api/fallback/sort/{intelligence|speed|budget}`: reorders every entry; switches stay.
pub fn sort(app: &App, preset: &str, res: &mut Responder<'_>) -> Result<(), AdminError> {
    let snap = app.router.snapshot();
    let models = &snap.catalog.models;
    let mut idx: Vec<usize> = (0..snap.entries.len()).collect();
    let model = |i: usize| &models[snap.entries[i].model];
    match preset {
        "intelligence" => idx.sort_by_key(|&i| (model(i).intelligence_rank, model(i).speed_rank)),
        "speed" => idx.sort_by_key(|&i| (model(i).speed_rank, model(i).intelligence_rank)),
        "budget" => idx.sort_by_key(|&i| {
            (
                std::cmp::Reverse(budget_tokens(&model(i).monthly_token_budget)),
                model(i).intelligence_rank,
            )
        }),
        other => {
            return Err(bad(
                "preset",
                format!("unknown sort preset {other:?}; use intelligence, speed or budget"),
            ));
        }
    }
    let all = current(&snap);
    let order = idx.into_iter().map(|i| all[i].clone()).collect();
    save(app, order, res)
}

#[cfg(test)]
mod tests {
    use super::budget_tokens;

    #[test]
    fn budget_labels_parse_to_the_upper_end() {
        assert_eq!(budget_tokens("~50-100M"), 100_000_000);
        assert_eq!(budget_tokens("~4M"), 4_000_000);
        assert_eq!(budget_tokens("~1.5M"), 1_500_000);
        assert_eq!(budget_tokens("~120K"), 120_000);
        assert_eq!(budget_tokens("credits-based"), 0);
        assert_eq!(budget_tokens(""), 0);
        assert_eq!(budget_tokens("~18-45M tokens"), 45_000_000);
    }
}
