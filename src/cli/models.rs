//! `freellmapi models list|discover|add|enable|disable`: the catalog from the command line.
//! Changes are stored as catalog overrides, like the dashboard's; a running server picks them
//! up within two seconds.

use super::{CliError, ModelLimits, catalog_in_effect, open};
use crate::catalog::lifecycle::SyncOutcome;
use crate::catalog::{Catalog, CustomModel, Limits, ModelOverride, Overrides};
use crate::config::{Config, DataDirUse};
use crate::discover::{self, DiscoverError};
use crate::server::{self, Opened};

fn limit(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |n| n.to_string())
}

pub(super) fn list(config: &Config, platform: Option<&str>) -> Result<i32, CliError> {
    let Opened { store, .. } = open(config, DataDirUse::Read)?;
    let c = catalog_in_effect(config, &store)?;
    if let Some(p) = platform
        && c.platform_index(p).is_none()
    {
        return Err(CliError::Usage(format!(
            "unknown platform {p:?}; known: {}",
            c.platform_ids().join(", ")
        )));
    }
    let keys = store.list_keys()?;
    println!(
        "{:<56} {:<10} {:<9} {:>5} {:>6} {:>4}  CAPABILITIES",
        "MODEL", "STATE", "CONTEXT", "RPM", "RPD", "KEYS"
    );
    for m in &c.models {
        let p = &c.platforms[m.platform];
        if platform.is_some_and(|id| id != p.id) {
            continue;
        }
        let key_count = keys
            .iter()
            .filter(|k| k.platform == p.id && k.enabled)
            .count();
        println!(
            "{:<56} {:<10} {:<9} {:>5} {:>6} {:>4}  {}",
            format!("{}/{}", p.id, m.model_id),
            m.state(),
            limit(m.context_window),
            limit(m.limits.rpm),
            limit(m.limits.rpd),
            key_count,
            m.capability_names().join(",")
        );
        if let Some(r) = &m.retired {
            println!("    retired: {}", r.describe(&p.name));
        }
    }
    Ok(0)
}

/// `models sync [PLATFORM]`: reads the providers' listings now (every platform with a key,
/// or one) and keeps the catalog true; a running server picks the result up within 2 s.
pub(super) fn sync(config: &Config, platform: Option<&str>) -> Result<i32, CliError> {
    let Opened { store, master } = open(config, DataDirUse::Write)?;
    let c = catalog_in_effect(config, &store)?;
    let overrides = store.overrides()?;
    let life = store.lifecycle()?;
    server::configure_runtime(config.workers);
    let upstream = crate::app::upstream(config);
    let found = may::coroutine::scope(|scope| {
        // SAFETY: the scope joins the coroutine before the borrowed arguments go away.
        let h = unsafe {
            scope.spawn(|| {
                discover::sync_steps(
                    &upstream,
                    &c,
                    &life,
                    &overrides.keyless_on,
                    &master,
                    &store,
                    platform,
                )
            })
        };
        h.join()
    });
    let steps = match found {
        Ok(steps) => steps,
        Err(DiscoverError::UnknownPlatform(p)) => {
            let ids: Vec<&str> = c.syncable().map(|i| c.platforms[i].id.as_str()).collect();
            return Err(CliError::Usage(format!(
                "{p:?} is not a platform a sync reads; these are: {}",
                ids.join(", ")
            )));
        }
        Err(e) => {
            eprintln!("freellmapi: {e}");
            return Ok(1);
        }
    };
    if steps.is_empty() {
        println!(
            "no platform has a usable key to read its listing with; add one with `freellmapi keys add <platform>`"
        );
        return Ok(0);
    }
    let failed = steps
        .iter()
        .filter(|s| matches!(s.outcome(), SyncOutcome::Failed { .. }))
        .count();
    for s in &steps {
        println!("{:<14} {}", s.platform(), s.outcome());
    }
    let now = crate::time::now_ms();
    store.update_lifecycle(|l| {
        for s in steps {
            l.apply_step(s, now);
        }
    })?;
    println!(
        "a running server routes by this within 2 s; `freellmapi models list` shows each model's state"
    );
    Ok(if failed > 0 { 1 } else { 0 })
}

pub(super) fn discover(config: &Config, platform: &str) -> Result<i32, CliError> {
    let Opened { store, master } = open(config, DataDirUse::Read)?;
    let c = catalog_in_effect(config, &store)?;
    server::configure_runtime(config.workers);
    let upstream = crate::app::upstream(config);
    // Upstream I/O runs on a coroutine, as in the server.
    let found = may::coroutine::scope(|scope| {
        // SAFETY: the scope joins the coroutine before the borrowed arguments go away.
        let h =
            unsafe { scope.spawn(|| discover::discover(&upstream, &c, &master, &store, platform)) };
        h.join()
    });
    let listed = match found {
        Ok(l) => l,
        Err(DiscoverError::UnknownPlatform(p)) => {
            return Err(CliError::Usage(format!(
                "unknown platform {p:?}; known: {}",
                c.platform_ids().join(", ")
            )));
        }
        Err(e) => {
            eprintln!("freellmapi: {e}");
            return Ok(1);
        }
    };
    let missing: Vec<_> = listed
        .iter()
        .filter(|f| !f.known)
        .map(|f| &f.listed)
        .collect();
    println!(
        "{platform} lists {} models; {} are not in the catalog:",
        listed.len(),
        missing.len()
    );
    for l in &missing {
        let free = match l.free {
            Some(true) => "  free",
            Some(false) => "  priced",
            None => "",
        };
        println!(
            "  {:<60} context {}{free}",
            l.model_id,
            limit(l.context_window)
        );
    }
    if let Some(first) = missing.first() {
        println!(
            "add one with `freellmapi models add {platform} {} [--context N] [--rpm N] ...`",
            first.model_id
        );
    }
    Ok(0)
}

fn narrow(v: Option<u64>, name: &str) -> Result<Option<u32>, CliError> {
    v.map(|n| {
        u32::try_from(n)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| CliError::Usage(format!("{name}: expected 1 to {}", u32::MAX)))
    })
    .transpose()
}

pub(super) fn add(
    config: &Config,
    platform: &str,
    model_id: &str,
    o: &ModelLimits,
) -> Result<i32, CliError> {
    let Opened { store, .. } = open(config, DataDirUse::Write)?;
    let c = catalog_in_effect(config, &store)?;
    let Some(p) = c.platform_index(platform) else {
        return Err(CliError::Usage(format!(
            "unknown platform {platform:?}; known: {}",
            c.platform_ids().join(", ")
        )));
    };
    if c.models
        .iter()
        .any(|m| m.platform == p && m.model_id == model_id)
    {
        return Err(CliError::Usage(format!(
            "{platform}/{model_id} is already in the catalog; see `freellmapi models list --platform {platform}`"
        )));
    }
    let mut capabilities = vec!["json_schema".to_string()];
    if o.tools || !o.vision {
        capabilities.push("tools".into());
    }
    if o.vision {
        capabilities.push("vision".into());
    }
    let mut overrides: Overrides = store.overrides()?;
    overrides.custom_models.push(CustomModel {
        platform: platform.to_string(),
        model_id: model_id.to_string(),
        display_name: String::new(),
        context_window: narrow(o.context, "--context")?,
        limits: Limits {
            rpm: narrow(o.rpm, "--rpm")?,
            rpd: narrow(o.rpd, "--rpd")?,
            tpm: o.tpm,
            tpd: o.tpd,
        },
        intelligence_rank: 50,
        speed_rank: 50,
        enabled: true,
        capabilities,
    });
    overrides
        .validate(&Catalog::builtin())
        .map_err(CliError::Usage)?;
    store.put_overrides(&overrides)?;
    println!("added {platform}/{model_id}; a running server routes to it within 2 s");
    if c.platforms[p].pools.is_empty() && o.rpm.is_none() && o.rpd.is_none() {
        eprintln!(
            "warning: no limits given and {platform} has no shared pool: only the provider's 429s will pace it"
        );
    }
    Ok(0)
}

pub(super) fn switch(config: &Config, id: &str, enabled: bool) -> Result<i32, CliError> {
    let Opened { store, .. } = open(config, DataDirUse::Write)?;
    let c = catalog_in_effect(config, &store)?;
    let found = id.split_once('/').and_then(|(platform, model)| {
        let p = c.platform_index(platform)?;
        c.models
            .iter()
            .find(|m| m.platform == p && m.model_id == model)
            .map(|m| (platform.to_string(), m.model_id.clone()))
    });
    let Some((platform, model_id)) = found else {
        return Err(CliError::Usage(format!(
            "no model {id:?} in the catalog (use platform/model_id; see `freellmapi models list`)"
        )));
    };
    let mut overrides = store.overrides()?;
    let edit = ModelOverride {
        platform,
        model_id,
        enabled: Some(enabled),
        ..ModelOverride::default()
    };
    overrides
        .edit_model(edit, None)
        .map_err(|m| CliError::Usage(m.into()))?;
    store.put_overrides(&overrides)?;
    println!(
        "{id} {}; a running server applies it within 2 s",
        if enabled { "enabled" } else { "disabled" }
    );
    Ok(0)
}

/// `providers`: each platform's free tier, keys, models in service, keyless use, last sync.
pub(super) fn providers(config: &Config) -> Result<i32, CliError> {
    let Opened { store, .. } = open(config, DataDirUse::Read)?;
    let c = catalog_in_effect(config, &store)?;
    let keys = store.list_keys()?;
    let overrides = store.overrides()?;
    let life = store.lifecycle()?;
    println!(
        "{:<14} {:<8} {:<11} {:>4} {:>7}  NOTE",
        "PLATFORM", "TIER", "CHECKED", "KEYS", "MODELS"
    );
    for (i, p) in c.platforms.iter().enumerate() {
        let (status, checked, note) = match &p.free_tier {
            Some(t) => (t.status.as_str(), t.checked.as_str(), t.note.as_str()),
            None => ("custom", "-", ""),
        };
        let key_count = keys
            .iter()
            .filter(|k| k.platform == p.id && k.enabled)
            .count();
        let serving = c
            .models
            .iter()
            .filter(|m| m.platform == i && m.serves())
            .count();
        println!(
            "{:<14} {:<8} {:<11} {:>4} {:>7}  {note}",
            p.id, status, checked, key_count, serving
        );
        if let Some(t) = &p.free_tier {
            println!("{:<14} source: {}", "", t.source);
        }
        if p.keyless {
            let on = overrides.keyless_on.contains(&p.id);
            println!(
                "{:<14} keyless use: {} (`freellmapi providers keyless {} {}`)",
                "",
                if on { "on" } else { "off" },
                p.id,
                if on { "off" } else { "on" }
            );
        }
        if let Some(s) = life.last_sync(&p.id) {
            let at = crate::time::rfc3339_ms(s.at_ms);
            println!("{:<14} last sync {}: {}", "", &at[..16], s.outcome);
        }
    }
    Ok(0)
}

/// `providers keyless <platform> on|off`.
pub(super) fn keyless(config: &Config, platform: &str, on: bool) -> Result<i32, CliError> {
    let Opened { store, .. } = open(config, DataDirUse::Write)?;
    let c = catalog_in_effect(config, &store)?;
    c.check_keyless(platform).map_err(CliError::Usage)?;
    let mut overrides = store.overrides()?;
    overrides.set_keyless(platform, on);
    store.put_overrides(&overrides)?;
    println!(
        "{platform}: keyless use {}; a running server routes by this within 2 s{}",
        if on { "on" } else { "off" },
        if on {
            " (its operator sees the prompts)"
        } else {
            ""
        }
    );
    Ok(0)
}
