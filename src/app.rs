//! The application state shared by every request: the built-in catalog, router, upstream
//! client, master key, store and request-log sink, plus the unified client key.
//!
//! Owns reloading: when the store's generation changes (the CLI added a key, the token was
//! rotated, the catalog was edited), [`App::reload`] merges the user's catalog edits over the
//! built-in catalog, rebuilds the router snapshot and swaps the token. Keys that cannot be
//! decrypted are skipped with a warning, never fatal. Also runs health passes.

mod serving;
mod sync;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};

use crate::catalog::{Auth, Catalog};
use crate::config::{Cidr, Config};
use crate::crypto::{MasterKey, Secret};
use crate::health::{self, Checked, Selection};
use crate::router::{Router, UsableKey};
use crate::store::{KeyStatus, LogSink, Store, StoreError};
use crate::throttle::Failures;
use crate::upstream::{Timeouts, Upstream};

/// Wrong client keys an address may send in a minute before it gets 429s.
pub const KEY_FAILURES: u32 = 20;

/// Keyless (local) platforms get one synthetic key each, numbered down from here.
pub const KEYLESS_KEY_BASE: u64 = u64::MAX - 1024;

pub struct App {
    /// The shipped catalog with base-URL overrides from the environment.
    builtin: Catalog,
    pub router: Router,
    upstream: Upstream,
    master: Arc<MasterKey>,
    pub store: Arc<Store>,
    pub log: LogSink,
    /// The counters `/metrics` shows.
    pub metrics: crate::metrics::Metrics,
    /// Where the store and `master.key` live, and the master key's text when it comes from
    /// the environment instead (both for backups).
    data_dir: std::path::PathBuf,
    master_from_env: Option<Secret>,
    request_budget: Duration,
    sse_keepalive: Duration,
    /// The longest an upstream stream may go without a complete event.
    event_idle: Duration,
    trust_proxy: Vec<Cidr>,
    token: ArcSwap<Secret>,
    /// Named client keys by digest, with when each was last used (loaded with the snapshot).
    /// A lock, not an `ArcSwap`: it is read from the store-poll coroutine, which sleeps and
    /// may wake on another worker thread, and arc-swap's thread-local bookkeeping was seen to
    /// trip there (a panic in a release build); a read lock held for a clone has no such state.
    client_keys: RwLock<Arc<ClientKeyIndex>>,
    /// Wrong client keys per address (or IPv6 /64).
    key_failures: Failures,
    generation: AtomicU64,
    /// The last cooldown-clear request (left by the CLI) applied to the router.
    cooldown_clears_seen: AtomicU64,
    /// A catalog sync is running.
    syncing: AtomicBool,
    /// The key ids of the last load (`None` before the first), to see new ones.
    known_keys: Mutex<Option<Vec<u64>>>,
    /// Platforms with a key new since the last look, to sync.
    new_key_platforms: Mutex<Vec<String>>,
    /// Token-id vocabularies, read on first use.
    vocabularies: crate::vocab::Vocabularies,
    /// Uploads on disk while their request needs them (`<data dir>/spool`).
    spool: crate::spool::Spool,
}

pub use sync::{FIRST_SYNC_AFTER, SyncError};

/// The upstream client the configuration asks for: its timeouts and outbound proxies.
pub fn upstream(config: &Config) -> Upstream {
    let proxies = crate::upstream::proxy::Proxies::from_config(&config.proxies);
    if !config.ca_roots.0.is_empty() {
        log::info!(
            "provider TLS is verified against the {} certificates of FREELLMAPI_CA_FILE only",
            config.ca_roots.0.len()
        );
    }
    Upstream::new(timeouts(config), &proxies, &config.ca_roots.0)
}

/// Upstream timeouts from the configuration.
pub fn timeouts(config: &Config) -> Timeouts {
    Timeouts {
        first_byte: config.first_byte_timeout,
        idle: config.idle_timeout,
        ..Timeouts::default()
    }
}

impl App {
    pub fn new(
        builtin: Catalog,
        store: Arc<Store>,
        master: MasterKey,
        log: LogSink,
        config: &Config,
    ) -> Result<App, StoreError> {
        let router = Router::new(Arc::new(builtin.clone()));
        if let Some(bytes) = store.ledger_snapshot()? {
            match router.registry().restore(&bytes) {
                Ok(n) => log::info!("restored ledger state for {n} model/key pairs"),
                Err(e) => log::warn!("ignoring unreadable ledger snapshot: {e}"),
            }
        }
        let (token, _) = store.unified_key(&master)?;
        let app = App {
            builtin,
            router,
            upstream: upstream(config),
            master: Arc::new(master),
            store,
            log,
            metrics: Default::default(),
            data_dir: config.data_dir.clone(),
            spool: crate::spool::Spool::new(&config.data_dir),
            master_from_env: config
                .encryption_key
                .as_ref()
                .map(|k| Secret::new(k.clone().into_bytes())),
            request_budget: config.request_budget,
            sse_keepalive: config.sse_keepalive,
            event_idle: config.idle_timeout,
            trust_proxy: config.trust_proxy.clone(),
            token: ArcSwap::from_pointee(token),
            client_keys: Default::default(),
            key_failures: Failures::new(KEY_FAILURES, 60_000),
            generation: AtomicU64::new(u64::MAX),
            cooldown_clears_seen: AtomicU64::new(0),
            syncing: AtomicBool::new(false),
            known_keys: Mutex::new(None),
            new_key_platforms: Mutex::new(Vec::new()),
            vocabularies: crate::vocab::Vocabularies::new(config.vocab_dirs.clone()),
        };
        app.reload()?;
        Ok(app)
    }

    /// The count of wrong client keys per address.
    pub fn key_failures(&self) -> &Failures {
        &self.key_failures
    }

    /// The unified client key.
    pub fn token(&self) -> arc_swap::Guard<Arc<Secret>> {
        self.token.load()
    }

    /// The named client key `presented` is, if any. A key revoked by another process (the
    /// CLI) stops working on the very next request: a match is confirmed against the store's
    /// generation, and a changed store is reloaded first.
    pub fn named_client_key(&self, presented: &[u8]) -> Option<u64> {
        let index = self.client_keys.read().clone();
        if index.ids.is_empty() {
            return None;
        }
        let digest = crate::crypto::digest(presented);
        index.find(&digest)?;
        let current = self.store.generation().ok();
        if current.is_some_and(|g| g != self.generation.load(Ordering::Acquire))
            && let Err(e) = self.reload()
        {
            log::error!("reloading from the store failed: {e}");
        }
        let index = self.client_keys.read().clone();
        let at = index.find(&digest)?;
        index.last_used[at].store(crate::time::now_ms(), Ordering::Relaxed);
        Some(index.ids[at])
    }

    /// Which named key (if any) made a request already admitted: no store read.
    pub fn client_key_of(&self, presented: &[u8]) -> Option<u64> {
        let index = self.client_keys.read().clone();
        if index.ids.is_empty() {
            return None;
        }
        index
            .find(&crate::crypto::digest(presented))
            .map(|at| index.ids[at])
    }

    /// When each named key was last used, as this server knows it (`(id, ms)`, 0: not since
    /// start or ever).
    pub fn client_key_use(&self) -> Vec<(u64, u64)> {
        let index = self.client_keys.read().clone();
        index
            .ids
            .iter()
            .zip(&index.last_used)
            .map(|(id, used)| (*id, used.load(Ordering::Relaxed)))
            .collect()
    }

    /// Saves when named keys were last used (on the store writer, off the request path).
    pub fn persist_client_key_use(&self) {
        let index = self.client_keys.read().clone();
        let used: Vec<(u64, u64)> = index
            .ids
            .iter()
            .zip(&index.last_used)
            .zip(&index.saved)
            .filter_map(|((id, used), saved)| {
                let ms = used.load(Ordering::Relaxed);
                (ms > saved.swap(ms, Ordering::Relaxed)).then_some((*id, ms))
            })
            .collect();
        if !used.is_empty() {
            self.log.run(move |store| {
                if let Err(e) = store.touch_client_keys(&used) {
                    log::warn!("saving when client keys were last used failed: {e}");
                }
            });
        }
    }

    /// The catalog in effect (built-in plus the user's edits).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.router.snapshot().catalog.clone()
    }

    /// Rebuilds the snapshot from the store if anything changed since the last load.
    pub fn reload_if_changed(&self) -> Result<bool, StoreError> {
        if self.store.generation()? == self.generation.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    /// Loads the catalog edits, keys, chain order and token from the store and publishes a new
    /// snapshot.
    pub fn reload(&self) -> Result<(), StoreError> {
        let generation = self.store.generation()?;
        let (token, _) = self.store.unified_key(&self.master)?;
        self.token.store(Arc::new(token));
        *self.client_keys.write() = Arc::new(ClientKeyIndex::new(self.store.client_keys()?));
        let overrides = self.store.overrides()?;
        let catalog = Arc::new(self.builtin.merged(&overrides, &self.store.lifecycle()?));
        let mut usable = Vec::new();
        for k in self.store.list_keys()? {
            if !k.enabled || k.status == KeyStatus::Invalid {
                continue;
            }
            let Some(platform) = catalog.platform_index(&k.platform) else {
                log::warn!(
                    "key {} is for unknown platform {:?} and is skipped",
                    k.id,
                    k.platform
                );
                continue;
            };
            if catalog.platforms[platform].refuses_keys().is_some() {
                log::debug!("key {} is for retired platform {}", k.id, k.platform);
                continue;
            }
            let opened = k
                .sealed_bytes()
                .filter(|s| self.master.open(s, &k.platform).is_ok());
            let Some(sealed) = opened else {
                log::warn!(
                    "key {} ({}) cannot be decrypted with this master key and is skipped",
                    k.id,
                    k.platform
                );
                continue;
            };
            // A key whose own proxy cannot be read is left out: calling directly would bypass
            // the proxy its operator set.
            let Ok(proxy) = k.open_proxy(&self.master) else {
                log::warn!(
                    "key {} ({}): its proxy cannot be decrypted with this master key; skipped",
                    k.id,
                    k.platform
                );
                continue;
            };
            usable.push(UsableKey {
                id: k.id,
                platform,
                sealed,
                proxy: proxy.map(String::into_boxed_str),
                masked: k.masked,
                unlimited: k.unlimited,
            });
        }
        for (i, p) in catalog.platforms.iter().enumerate() {
            // A built-in platform that also serves without a key does so only when the admin
            // turned that on, and only while no key of its own is stored.
            let keyless_on = p.keyless
                && overrides.keyless_on.contains(&p.id)
                && !usable.iter().any(|k: &UsableKey| k.platform == i);
            if p.auth == Auth::None || keyless_on {
                usable.push(UsableKey {
                    id: KEYLESS_KEY_BASE - i as u64,
                    platform: i,
                    sealed: vec![],
                    proxy: None,
                    masked: "(no key)".into(),
                    unlimited: false,
                });
            }
        }
        let order: Vec<(usize, bool)> = self
            .store
            .chain_order()?
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                let p = catalog.platform_index(&e.platform)?;
                let m = catalog
                    .models
                    .iter()
                    .position(|m| m.platform == p && m.model_id == e.model)?;
                Some((m, e.enabled))
            })
            .collect();
        let count = usable.len();
        self.note_new_keys(&usable, &catalog);
        self.router.rebuild(catalog, usable, &order);
        self.apply_cooldown_clears()?;
        self.generation.store(generation, Ordering::Release);
        log::debug!("routing snapshot rebuilt with {count} usable keys (generation {generation})");
        Ok(())
    }

    /// Queues the ledger for persistence.
    pub fn persist_ledger(&self) {
        self.log.ledger(self.router.persist());
    }

    /// One health pass over the selected keys: probes them (parking only this coroutine), saves
    /// the outcomes on the store writer thread and waits for that, and logs what changed.
    pub fn health_pass(&self, selection: Selection) -> Result<Vec<Checked>, StoreError> {
        let now = crate::time::now_ms();
        let catalog = self.catalog();
        let probed = health::probe(
            &self.upstream,
            &catalog,
            &self.master,
            &self.store,
            selection,
            now,
        )?;
        let checked = self
            .log
            .call(move |store| health::save(store, probed, now))
            .ok_or(StoreError::WriterUnavailable)??;
        for note in checked.iter().filter_map(|c| c.note.as_deref()) {
            log::warn!("{note}");
        }
        let bad = checked
            .iter()
            .filter(|c| c.outcome != health::Outcome::Valid)
            .count();
        log::info!(
            "health check: {} keys probed, {bad} not healthy",
            checked.len()
        );
        Ok(checked)
    }

    /// Applies the cooldown clears another process asked for since the last look, then drops
    /// them from the store (on the writer thread).
    fn apply_cooldown_clears(&self) -> Result<(), StoreError> {
        let seen = self.cooldown_clears_seen.load(Ordering::Acquire);
        let pending: Vec<_> = self
            .store
            .cooldown_clears()?
            .into_iter()
            .filter(|r| r.seq > seen)
            .collect();
        let Some(last) = pending.last().map(|r| r.seq) else {
            return Ok(());
        };
        let snap = self.router.snapshot();
        for r in &pending {
            let n = self.router.clear_cooldowns(
                &snap,
                r.platform.as_deref(),
                r.model.as_deref(),
                r.key_id,
                crate::time::now_ms(),
            );
            log::info!("cleared the cooldowns of {n} model/key pairs, as the command line asked");
        }
        self.cooldown_clears_seen.store(last, Ordering::Release);
        self.log.run(move |store| {
            if let Err(e) = store.drop_cooldown_clears(last) {
                log::error!("dropping applied cooldown clear requests failed: {e}");
            }
        });
        Ok(())
    }

    /// A 429 marks the key `rate_limited` in the store until its cooldown ends (without a
    /// snapshot rebuild: the router already knows).
    pub fn note_rate_limited(&self, key_id: u64, until_ms: u64) {
        if key_id >= KEYLESS_KEY_BASE {
            return;
        }
        self.log.run(move |store| {
            if let Err(e) = store.set_rate_limited_until(key_id, until_ms) {
                log::error!("saving the rate-limit state of key {key_id} failed: {e}");
            }
        });
    }
}

/// Named client keys as the request path looks them up.
#[derive(Default)]
struct ClientKeyIndex {
    by_digest: std::collections::HashMap<[u8; 32], usize>,
    ids: Vec<u64>,
    /// When each key was last used (ms), and the last time saved.
    last_used: Vec<AtomicU64>,
    saved: Vec<AtomicU64>,
}

impl ClientKeyIndex {
    fn new(rows: Vec<crate::store::ClientKey>) -> ClientKeyIndex {
        let mut index = ClientKeyIndex::default();
        for row in rows {
            let Some(d) = row.digest_bytes() else {
                log::warn!(
                    "client key {} has no readable digest and is skipped",
                    row.id
                );
                continue;
            };
            index.by_digest.insert(d, index.ids.len());
            index.ids.push(row.id);
            let used = row.last_used_ms.unwrap_or(0);
            index.last_used.push(AtomicU64::new(used));
            index.saved.push(AtomicU64::new(used));
        }
        index
    }

    fn find(&self, digest: &[u8; 32]) -> Option<usize> {
        self.by_digest.get(digest).copied()
    }
}
