//! `freellmapi backup <file>` and `restore <file>`: the store and the master key in one file
//! sealed with a passphrase read from stdin (see `crate::backup`). A backup is consistent while
//! the server runs; a restore goes into a new or empty data dir and writes nothing on failure.

use std::path::Path;

use super::{CliError, open, read_secret_from_stdin};
use crate::backup::{self, MIN_PASSPHRASE};
use crate::config::{Config, DataDirUse};
use crate::server::Opened;

fn passphrase() -> Result<String, CliError> {
    let p = read_secret_from_stdin("backup passphrase")?;
    if p.chars().count() < MIN_PASSPHRASE {
        return Err(CliError::Usage(format!(
            "the backup passphrase must be at least {MIN_PASSPHRASE} characters"
        )));
    }
    Ok(p)
}

pub(super) fn backup(config: &Config, file: &str) -> Result<i32, CliError> {
    let file = Path::new(file);
    if file.exists() {
        return Err(CliError::Usage(format!(
            "{} exists; choose a new file name",
            file.display()
        )));
    }
    let pass = passphrase()?;
    // Reads only: the copy is a read transaction's view, consistent while a server writes.
    let Opened { store, .. } = open(config, DataDirUse::Read)?;
    let size = backup::backup(
        &store,
        &config.data_dir,
        config.encryption_key.as_deref(),
        file,
        &pass,
    )
    .map_err(CliError::Backup)?;
    println!(
        "backup written to {} ({:.1} MiB); restore it with `freellmapi restore {} --data-dir NEW_DIR`",
        file.display(),
        size as f64 / (1024.0 * 1024.0),
        file.display()
    );
    Ok(0)
}

pub(super) fn restore(config: &Config, file: &str) -> Result<i32, CliError> {
    let pass = read_secret_from_stdin("backup passphrase")?;
    backup::restore(Path::new(file), &config.data_dir, &pass).map_err(CliError::Backup)?;
    println!(
        "restored into {}; start the server with --data-dir {}",
        config.data_dir.display(),
        config.data_dir.display()
    );
    Ok(0)
}
