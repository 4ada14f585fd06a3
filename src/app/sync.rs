//! Keeping the catalog true from the running server: syncs (one at a time; on schedule, after
//! a key is added, on request) and the retirement of a model a provider said is gone.
//!
//! Owns when a sync runs and that only one does; what a listing changes is
//! `catalog::lifecycle`'s business and reading it `discover`'s. Every write goes through the
//! store writer, so no LMDB commit runs on a coroutine worker.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::App;
use crate::catalog::lifecycle::{PlatformSync, Step};
use crate::catalog::{Model, Origin, Platform};
use crate::discover::{self, DiscoverError};
use crate::store::StoreError;
use crate::time::now_ms;

/// Why a sync did not run.
#[derive(Debug)]
pub enum SyncError {
    /// Another sync is running.
    Busy,
    /// The named platform is not one a sync reads.
    UnknownPlatform(String),
    Store(StoreError),
    Failed(String),
}

/// The first scheduled sync comes this long after start (a restart loop must not hammer the
/// providers' listings).
pub const FIRST_SYNC_AFTER: Duration = Duration::from_secs(300);

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::Busy => f.write_str("a sync is running; try again when it is done"),
            SyncError::UnknownPlatform(p) => write!(
                f,
                "{p:?} is not a platform a sync reads (built-in platforms still in service)"
            ),
            SyncError::Store(e) => write!(f, "{e}"),
            SyncError::Failed(why) => f.write_str(why),
        }
    }
}

/// Marks a sync running; dropped, it is not.
struct Running<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl App {
    /// Reads the providers' listings (every platform with a key, or only `only`), records
    /// what they change and reloads. Returns each platform's outcome.
    pub fn sync(&self, only: Option<&str>) -> Result<Vec<PlatformSync>, SyncError> {
        if self.syncing.swap(true, Ordering::AcqRel) {
            return Err(SyncError::Busy);
        }
        let _running = Running(&self.syncing);
        let catalog = self.catalog();
        let overrides = self.store.overrides().map_err(SyncError::Store)?;
        let life = self.store.lifecycle().map_err(SyncError::Store)?;
        let steps = discover::sync_steps(
            &self.upstream,
            &catalog,
            &life,
            &overrides.keyless_on,
            &self.master,
            &self.store,
            only,
        )
        .map_err(|e| match e {
            DiscoverError::Store(e) => SyncError::Store(e),
            DiscoverError::UnknownPlatform(p) => SyncError::UnknownPlatform(p),
            other => SyncError::Failed(other.to_string()),
        })?;
        let now = now_ms();
        let report: Vec<PlatformSync> = steps
            .iter()
            .map(|s| PlatformSync {
                platform: s.platform().to_string(),
                at_ms: now,
                outcome: s.outcome(),
            })
            .collect();
        for s in &steps {
            log_step(s);
        }
        self.log
            .call(move |store| {
                store.update_lifecycle(|l| {
                    for s in steps {
                        l.apply_step(s, now);
                    }
                })
            })
            .ok_or(SyncError::Store(StoreError::WriterUnavailable))?
            .map_err(SyncError::Store)?;
        self.reload().map_err(SyncError::Store)?;
        Ok(report)
    }

    /// Platforms whose first key (or keyless use) arrived since the last look: the server
    /// syncs them right away.
    pub fn take_new_key_platforms(&self) -> Vec<String> {
        std::mem::take(&mut *self.new_key_platforms.lock())
    }

    /// Notes the platforms of keys not seen at the previous load (none at the first load).
    pub(super) fn note_new_keys(
        &self,
        keys: &[crate::router::UsableKey],
        catalog: &crate::catalog::Catalog,
    ) {
        let ids: Vec<u64> = keys.iter().map(|k| k.id).collect();
        let mut known = self.known_keys.lock();
        if let Some(before) = known.as_ref() {
            let mut pending = self.new_key_platforms.lock();
            for k in keys.iter().filter(|k| !before.contains(&k.id)) {
                let p = &catalog.platforms[k.platform].id;
                if !pending.contains(p) {
                    pending.push(p.clone());
                }
            }
        }
        *known = Some(ids);
    }

    /// A sync that waits its turn (up to a minute) instead of being refused: the server's own
    /// (after a key is added, on schedule).
    pub fn sync_when_free(&self, only: Option<&str>) {
        for _ in 0..60 {
            match self.sync(only) {
                Err(SyncError::Busy) => may::coroutine::sleep(Duration::from_secs(1)),
                Err(e) => {
                    log::warn!("catalog sync: {e}");
                    return;
                }
                Ok(_) => return,
            }
        }
        log::warn!("catalog sync skipped: another one ran for a minute");
    }

    /// A call was answered that `model` is gone: it leaves routing for good (until a sync
    /// lists it again), on the store writer; the next snapshot drops it.
    pub fn retire_gone(&self, platform: &Platform, model: &Model, status: u16, message: &str) {
        // A row the user added is theirs, and no sync could bring it back: its provider's
        // answer only cools it (the router did).
        if model.origin == Origin::Custom {
            return;
        }
        let (pid, mid, message) = (
            platform.id.clone(),
            model.model_id.clone(),
            message.to_string(),
        );
        self.log.run(move |store| {
            match store.update_lifecycle(|l| l.retire_gone(&pid, &mid, status, &message, now_ms()))
            {
                Ok(true) => log::warn!(
                    "{pid}/{mid} retired: the provider answered HTTP {status} ({message}); a sync brings it back if {pid} lists it again"
                ),
                Ok(false) => {}
                Err(e) => log::error!("recording that {pid}/{mid} is gone failed: {e}"),
            }
        });
    }
}

fn log_step(s: &Step) {
    use crate::catalog::lifecycle::SyncOutcome;
    match s.outcome() {
        o @ SyncOutcome::Synced {
            held_back: None, ..
        } => {
            log::info!("catalog sync of {}: {o}", s.platform())
        }
        o => log::warn!("catalog sync of {}: {o}", s.platform()),
    }
}
