//! `freellmapi token add|list|rm`: named client keys from the command line. A new key is
//! printed once (only its digest is stored); a removed key is refused on its next request to a
//! running server.

use super::{CliError, open};
use crate::config::{Config, DataDirUse};
use crate::server::Opened;
use crate::store::AddClientKey;

pub(super) fn add(config: &Config, label: Option<&str>) -> Result<i32, CliError> {
    let Some(label) = label else {
        return Err(CliError::Usage(
            "usage: freellmapi token add --label L (who or what the key is for)".into(),
        ));
    };
    let Opened { store, .. } = open(config, DataDirUse::Write)?;
    match store.add_client_key(label, crate::time::now_ms()) {
        Ok((row, key)) => {
            eprintln!(
                "client key {} ({}) made; it is shown only now, keep it:",
                row.id, row.label
            );
            println!("{}", key.as_str().unwrap_or_default());
            Ok(0)
        }
        Err(AddClientKey::BadLabel(why)) => Err(CliError::Usage(why.into())),
        Err(AddClientKey::TooMany) => {
            eprintln!(
                "freellmapi: already {} client keys; remove one first",
                crate::store::MAX_CLIENT_KEYS
            );
            Ok(1)
        }
        Err(AddClientKey::Store(e)) => Err(e.into()),
    }
}

pub(super) fn list(config: &Config) -> Result<i32, CliError> {
    let Opened { store, .. } = open(config, DataDirUse::Read)?;
    let keys = store.client_keys()?;
    if keys.is_empty() {
        println!(
            "no named client keys (the unified key: `freellmapi token`); add one with `freellmapi token add --label L`"
        );
        return Ok(0);
    }
    println!(
        "{:<4} {:<24} {:<22} {:<20} LAST USED",
        "ID", "LABEL", "KEY", "CREATED"
    );
    for k in keys {
        let created = crate::time::rfc3339_ms(k.created_ms);
        let used = k.last_used_ms.map_or_else(
            || "never".to_string(),
            |ms| crate::time::rfc3339_ms(ms)[..19].to_string(),
        );
        println!(
            "{:<4} {:<24} {:<22} {:<20} {}",
            k.id,
            k.label,
            k.masked,
            &created[..19],
            used
        );
    }
    Ok(0)
}

pub(super) fn rm(config: &Config, id: &str) -> Result<i32, CliError> {
    let id: u64 = id.parse().map_err(|_| {
        CliError::Usage(format!(
            "{id:?} is not a client key id; see `freellmapi token list`"
        ))
    })?;
    let Opened { store, .. } = open(config, DataDirUse::Write)?;
    if store.remove_client_key(id)? {
        println!("client key {id} revoked");
        Ok(0)
    } else {
        eprintln!("freellmapi: no client key with id {id}");
        Ok(1)
    }
}
