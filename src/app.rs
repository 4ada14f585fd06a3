//! The application state shared by every request: catalog, router, upstream client, master
//! key, store and request-log sink, plus the unified client key.
//!
//! Owns reloading: when the store's generation changes (the CLI added a key, the token was
//! rotated), [`App::reload`] rebuilds the router snapshot and swaps the token. Keys that cannot
//! be decrypted are skipped with a warning, never fatal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::catalog::Catalog;
use crate::config::{Cidr, Config};
use crate::crypto::{MasterKey, Secret};
use crate::router::{Router, UsableKey};
use crate::store::{KeyStatus, LogSink, Store, StoreError};
use crate::upstream::{Timeouts, Upstream};

pub struct App {
    pub catalog: Arc<Catalog>,
    pub router: Router,
    pub upstream: Upstream,
    pub master: MasterKey,
    pub store: Arc<Store>,
    pub log: LogSink,
    pub request_budget: Duration,
    pub sse_keepalive: Duration,
    pub trust_proxy: Vec<Cidr>,
    token: ArcSwap<Secret>,
    generation: AtomicU64,
}

impl App {
    pub fn new(
        catalog: Arc<Catalog>,
        store: Arc<Store>,
        master: MasterKey,
        log: LogSink,
        config: &Config,
    ) -> Result<App, StoreError> {
        let router = Router::new(catalog.clone());
        if let Some(bytes) = store.ledger_snapshot()? {
            match router.registry().restore(&bytes) {
                Ok(n) => log::info!("restored ledger state for {n} model/key pairs"),
                Err(e) => log::warn!("ignoring unreadable ledger snapshot: {e}"),
            }
        }
        let (token, _) = store.unified_key(&master)?;
        let app = App {
            catalog,
            router,
            upstream: Upstream::new(Timeouts {
                first_byte: config.first_byte_timeout,
                idle: config.idle_timeout,
                ..Timeouts::default()
            }),
            master,
            store,
            log,
            request_budget: config.request_budget,
            sse_keepalive: config.sse_keepalive,
            trust_proxy: config.trust_proxy.clone(),
            token: ArcSwap::from_pointee(token),
            generation: AtomicU64::new(u64::MAX),
        };
        app.reload()?;
        Ok(app)
    }

    /// The unified client key.
    pub fn token(&self) -> arc_swap::Guard<Arc<Secret>> {
        self.token.load()
    }

    /// Rebuilds the snapshot from the store if anything changed since the last load.
    pub fn reload_if_changed(&self) -> Result<bool, StoreError> {
        if self.store.generation()? == self.generation.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    /// Loads keys and the token from the store and publishes a new snapshot.
    pub fn reload(&self) -> Result<(), StoreError> {
        let generation = self.store.generation()?;
        let (token, _) = self.store.unified_key(&self.master)?;
        self.token.store(Arc::new(token));
        let mut usable = Vec::new();
        for k in self.store.list_keys()? {
            if !k.enabled || k.status == KeyStatus::Invalid {
                continue;
            }
            let Some(platform) = self.catalog.platform_index(&k.platform) else {
                log::warn!(
                    "key {} is for unknown platform {:?} and is skipped",
                    k.id,
                    k.platform
                );
                continue;
            };
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
            usable.push(UsableKey {
                id: k.id,
                platform,
                sealed,
                masked: k.masked,
                unlimited: k.unlimited,
            });
        }
        let order: Vec<(usize, bool)> = self
            .store
            .chain_order()?
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                let p = self.catalog.platform_index(&e.platform)?;
                let m = self
                    .catalog
                    .models
                    .iter()
                    .position(|m| m.platform == p && m.model_id == e.model)?;
                Some((m, e.enabled))
            })
            .collect();
        let count = usable.len();
        self.router.rebuild(self.catalog.clone(), usable, &order);
        self.generation.store(generation, Ordering::Release);
        log::debug!("routing snapshot rebuilt with {count} usable keys (generation {generation})");
        Ok(())
    }

    /// Queues the ledger for persistence.
    pub fn persist_ledger(&self) {
        self.log.ledger(self.router.persist());
    }
}
