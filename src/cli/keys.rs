//! `freellmapi keys add|list|rm|proxy|import`: provider keys from the command line. A key is
//! read from stdin (never from the command line) and sealed before it is stored; a running
//! server picks changes up within its store poll.

use super::{CliError, open, read_secret_from_stdin};
use crate::catalog::Catalog;
use crate::config::{Config, DataDirUse, check_proxy_url};
use crate::server::Opened;
use crate::store::{Imported, NewKey};

/// `keys add <platform> [--label L] [--unlimited] [--proxy URL]`.
pub(super) fn add(
    config: &Config,
    builtin: &Catalog,
    platform: &str,
    label: &str,
    unlimited: bool,
    proxy: Option<&str>,
) -> Result<i32, CliError> {
    if let Some(url) = proxy {
        check_proxy_url(url).map_err(|why| CliError::Usage(format!("--proxy: {why}")))?;
    }
    let Opened { store, master } = open(config, DataDirUse::Write)?;
    // Custom platforms count too: they live in the store's catalog edits.
    let catalog = store.catalog(builtin)?;
    let Some(p) = catalog.platform_index(platform) else {
        return Err(CliError::Usage(format!(
            "unknown platform {platform:?}; known: {}",
            catalog.platform_ids().join(", ")
        )));
    };
    if let Some(why) = catalog.platforms[p].refuses_keys() {
        return Err(CliError::Usage(why));
    }
    if catalog.platforms[p].auth == crate::catalog::Auth::None {
        return Err(CliError::Usage(format!(
            "{platform} is a keyless platform; it needs no key"
        )));
    }
    let key = read_secret_from_stdin("provider key")?;
    catalog.check_key(platform, &key).map_err(CliError::Usage)?;
    let new = NewKey {
        platform,
        label,
        key: &key,
        unlimited,
        proxy,
    };
    let record = store.add_key(&master, &new)?;
    match &record.proxy_shown {
        Some(via) => println!(
            "added key {} for {platform} ({}), through {via}",
            record.id, record.masked
        ),
        None => println!("added key {} for {platform} ({})", record.id, record.masked),
    }
    if let Some(note) = catalog.platforms[p].not_free_note() {
        eprintln!(
            "warning: {} has no free tier now: {note}; its models are off until you enable them (`freellmapi models enable {platform}/<model>`), and the key should be a paid one (--unlimited)",
            catalog.platforms[p].name
        );
    }
    if let Some(warning) = catalog.dead_key_warning(p) {
        eprintln!("warning: {warning}");
    }
    Ok(0)
}

pub(super) fn list(config: &Config) -> Result<i32, CliError> {
    let Opened { store, .. } = open(config, DataDirUse::Read)?;
    let keys = store.list_keys()?;
    if keys.is_empty() {
        println!("no keys; add one with `freellmapi keys add <platform>` (the key on stdin)");
        return Ok(0);
    }
    println!(
        "{:<4} {:<12} {:<16} {:<20} {:<12} {:<8} CREATED",
        "ID", "PLATFORM", "LABEL", "KEY", "STATUS", "ENABLED"
    );
    let now = crate::time::now_ms();
    for k in keys {
        let status = k.effective_status(now).as_str();
        let created = crate::time::rfc3339_ms(k.created_ms);
        println!(
            "{:<4} {:<12} {:<16} {:<20} {:<12} {:<8} {}",
            k.id,
            k.platform,
            k.label,
            k.masked,
            status,
            if k.enabled { "yes" } else { "no" },
            &created[..19]
        );
        if let Some(reason) = &k.disabled_reason {
            println!("     disabled: {reason}");
        }
        if let Some(via) = &k.proxy_shown {
            println!("     through {via}");
        }
    }
    Ok(0)
}

pub(super) fn rm(config: &Config, id: &str) -> Result<i32, CliError> {
    let id = key_id(id)?;
    let Opened { store, .. } = open(config, DataDirUse::Write)?;
    if store.remove_key(id)? {
        println!("removed key {id}");
        Ok(0)
    } else {
        eprintln!("freellmapi: no key with id {id}");
        Ok(1)
    }
}

/// `keys proxy <id> <URL|none>`: sets or clears one key's own outbound proxy.
pub(super) fn proxy(config: &Config, id: &str, url: &str) -> Result<i32, CliError> {
    let id = key_id(id)?;
    let url = match url {
        "none" | "" => None,
        url => {
            check_proxy_url(url).map_err(|why| CliError::Usage(format!("proxy: {why}")))?;
            Some(url)
        }
    };
    let Opened { store, master } = open(config, DataDirUse::Write)?;
    if !store.set_key_proxy(&master, id, url)? {
        eprintln!("freellmapi: no key with id {id}");
        return Ok(1);
    }
    match url {
        Some(url) => println!(
            "key {id} now goes through {}",
            crate::config::redact_proxy_url(url)
        ),
        None => println!("key {id} has no proxy of its own now"),
    }
    Ok(0)
}

fn key_id(id: &str) -> Result<u64, CliError> {
    id.parse().map_err(|_| {
        CliError::Usage(format!(
            "{id:?} is not a key id; see `freellmapi keys list`"
        ))
    })
}

pub(super) fn import(config: &Config, catalog: &Catalog, file: &str) -> Result<i32, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {file}: {e}")))?;
    let crate::catalog::envfile::EnvKeys {
        found,
        ignored,
        cloudflare_incomplete,
    } = crate::catalog::envfile::parse(catalog, &text);
    if cloudflare_incomplete {
        eprintln!(
            "skipped Cloudflare: both CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN are needed"
        );
    }
    let Opened { store, master } = open(config, DataDirUse::Write)?;
    let (mut added, mut skipped) = (0, 0);
    for (platform, outcome) in store.import_keys(&master, catalog, found)? {
        match outcome {
            Imported::Malformed(why) => {
                eprintln!("skipped a {platform} key: {why}");
                skipped += 1;
            }
            Imported::Present => {
                println!("{platform}: already present");
                skipped += 1;
            }
            Imported::Added(r) => {
                println!("added key {} for {platform} ({})", r.id, r.masked);
                added += 1;
            }
        }
    }
    for name in ignored {
        eprintln!("ignored {name}: not a known provider key variable");
    }
    println!("imported {added} keys, skipped {skipped}");
    Ok(0)
}
