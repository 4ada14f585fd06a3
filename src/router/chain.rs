//! The chain snapshot: the ordered fallback chain with, per entry, the keys that may serve it.
//! Built whole from the catalog, the key rows and the chain order, then published through an
//! `arc-swap`; readers never lock and a snapshot is never mutated after it is built.
//!
//! Mutable routing state (usage windows, cooldowns, penalties, round-robin cursors) does not
//! live in the snapshot: it lives in the [`Registry`], keyed by stable identities, and each
//! snapshot holds `Arc`s into it, so a rebuild (a key added) keeps every counter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::ledger::{Slot, SlotSnapshot};
use super::penalty::Penalty;
use crate::catalog::Catalog;

/// Per-model state: penalty and the round-robin cursor over its keys.
#[derive(Default)]
pub struct ModelState {
    pub penalty: Penalty,
    pub cursor: AtomicUsize,
}

/// A (model, key) slot, allocated on first use so unused pairs cost a pointer.
#[derive(Default)]
pub struct SlotCell(OnceLock<Box<Slot>>);

impl SlotCell {
    pub fn get(&self) -> Option<&Slot> {
        self.0.get().map(|b| &**b)
    }

    pub fn get_or_init(&self) -> &Slot {
        self.0.get_or_init(Box::default)
    }
}

/// Per-key state shared by every model of the key's platform.
#[derive(Default)]
pub struct KeyState {
    /// The key answered 401/403: it is paused everywhere until this time.
    pub paused_until: AtomicU64,
    pub auth_failures: AtomicU32,
    /// An upstream said 429 for this key; its status reads `rate_limited` until then.
    pub rate_limited_until: AtomicU64,
}

/// A usable provider key as the router sees it. The key stays sealed here.
pub struct KeyInfo {
    pub id: u64,
    pub platform: usize,
    pub sealed: Vec<u8>,
    /// The key's own outbound proxy URL (opened: it may hold a password; never logged).
    pub proxy: Option<Box<str>>,
    pub masked: String,
    pub unlimited: bool,
    pub state: Arc<KeyState>,
}

pub struct KeySlot {
    pub key: Arc<KeyInfo>,
    pub cell: Arc<SlotCell>,
    /// The shared (platform, pool, key) slot when the model belongs to a pool.
    pub pool: Option<Arc<SlotCell>>,
}

impl KeySlot {
    /// How long (ms) this slot still cools down: its own cooldown, its pool's, or its key's pause.
    pub fn cooldown_remaining(&self, now_ms: u64) -> u64 {
        let own = self.cell.get().map_or(0, |x| x.cooldown_remaining(now_ms));
        let pool = self
            .pool
            .as_ref()
            .and_then(|c| c.get())
            .map_or(0, |x| x.cooldown_remaining(now_ms));
        let paused = self
            .key
            .state
            .paused_until
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(now_ms);
        own.max(pool).max(paused)
    }
}

pub struct Entry {
    /// Index into the catalog's models.
    pub model: usize,
    /// The chain's own switch (independent of the model's `enabled`).
    pub enabled: bool,
    pub state: Arc<ModelState>,
    pub slots: Vec<KeySlot>,
}

/// One immutable view of everything routing needs.
pub struct Snapshot {
    pub catalog: Arc<Catalog>,
    pub entries: Vec<Entry>,
    pub keys: Vec<Arc<KeyInfo>>,
    /// Catalog model index → entry index.
    entry_of_model: Vec<Option<usize>>,
    /// Model id → the catalog model a bare id means: the first one that serves and has a key,
    /// else the first that serves, else the first (several platforms offer the same id). A
    /// request names its model by id, and a scan of the catalog for it touched every model
    /// before it (cold, on each request).
    model_by_id: HashMap<Box<str>, usize>,
}

impl Snapshot {
    /// Resolves a client's `model` as [`Catalog::find_model`] does: an exact id first, then
    /// `platform/model_id`.
    pub fn find_model(&self, name: &str) -> Option<usize> {
        match self.model_by_id.get(name) {
            Some(&m) => Some(m),
            None => self.catalog.find_qualified(name),
        }
    }

    pub fn entry_for_model(&self, model: usize) -> Option<usize> {
        self.entry_of_model.get(model).copied().flatten()
    }

    pub fn model(&self, entry: usize) -> &crate::catalog::Model {
        &self.catalog.models[self.entries[entry].model]
    }

    /// The embedding model an alias routed to `default` takes while the admin has chosen none:
    /// the first enabled one with a key, in chain order.
    pub fn first_embedding_with_key(&self) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| {
                let m = &self.catalog.models[e.model];
                e.enabled
                    && m.kind == crate::catalog::Kind::Embedding
                    && m.serves()
                    && !e.slots.is_empty()
            })
            .map(|e| e.model)
    }

    /// Keys that can serve at least one enabled model (a key for a platform whose models are
    /// all disabled, or that has none, routes nothing).
    pub fn serving_keys(&self) -> usize {
        self.keys
            .iter()
            .filter(|k| {
                self.entries.iter().any(|e| {
                    e.enabled
                        && self.catalog.models[e.model].serves()
                        && e.slots.iter().any(|s| s.key.id == k.id)
                })
            })
            .count()
    }
}

/// A key ready for the snapshot: its row plus the sealed bytes, already proven to open.
pub struct UsableKey {
    pub id: u64,
    pub platform: usize,
    pub sealed: Vec<u8>,
    pub proxy: Option<Box<str>>,
    pub masked: String,
    pub unlimited: bool,
}

/// (platform, model or pool id, key id) → its slot.
type SlotMap = HashMap<(String, String, u64), Arc<SlotCell>>;

/// Routing state that outlives snapshots, keyed by (platform, model id) and key id.
#[derive(Default)]
pub struct Registry {
    models: Mutex<HashMap<(String, String), Arc<ModelState>>>,
    slots: Mutex<SlotMap>,
    pools: Mutex<SlotMap>,
    keys: Mutex<HashMap<u64, Arc<KeyState>>>,
}

impl Registry {
    fn model(&self, platform: &str, model: &str) -> Arc<ModelState> {
        self.models
            .lock()
            .entry((platform.to_string(), model.to_string()))
            .or_default()
            .clone()
    }

    fn slot(&self, platform: &str, model: &str, key: u64) -> Arc<SlotCell> {
        self.slots
            .lock()
            .entry((platform.to_string(), model.to_string(), key))
            .or_default()
            .clone()
    }

    fn pool(&self, platform: &str, pool: &str, key: u64) -> Arc<SlotCell> {
        self.pools
            .lock()
            .entry((platform.to_string(), pool.to_string(), key))
            .or_default()
            .clone()
    }

    /// The routing state of one key, if it has been used.
    pub fn key_state(&self, id: u64) -> Option<Arc<KeyState>> {
        self.keys.lock().get(&id).cloned()
    }

    fn key(&self, id: u64) -> Arc<KeyState> {
        self.keys.lock().entry(id).or_default().clone()
    }

    /// Builds a snapshot. `order` lists (model index, chain-enabled) in chain order; models
    /// missing from it are appended by intelligence rank, enabled.
    pub fn build(
        &self,
        catalog: Arc<Catalog>,
        keys: Vec<UsableKey>,
        order: &[(usize, bool)],
    ) -> Snapshot {
        let mut chain: Vec<(usize, bool)> = order
            .iter()
            .copied()
            .filter(|(m, _)| *m < catalog.models.len())
            .collect();
        let mut seen = vec![false; catalog.models.len()];
        chain.retain(|(m, _)| !std::mem::replace(&mut seen[*m], true));
        for m in catalog.intelligence_order() {
            if !seen[m] {
                chain.push((m, true));
            }
        }

        let keys: Vec<Arc<KeyInfo>> = keys
            .into_iter()
            .map(|k| {
                Arc::new(KeyInfo {
                    id: k.id,
                    platform: k.platform,
                    sealed: k.sealed,
                    proxy: k.proxy,
                    masked: k.masked,
                    unlimited: k.unlimited,
                    state: self.key(k.id),
                })
            })
            .collect();

        let mut entry_of_model = vec![None; catalog.models.len()];
        let entries: Vec<Entry> = chain
            .into_iter()
            .enumerate()
            .map(|(i, (m, enabled))| {
                entry_of_model[m] = Some(i);
                let model = &catalog.models[m];
                let platform = &catalog.platforms[model.platform].id;
                let slots = keys
                    .iter()
                    .filter(|k| k.platform == model.platform)
                    .map(|k| KeySlot {
                        key: k.clone(),
                        cell: self.slot(platform, &model.model_id, k.id),
                        pool: model.pool.map(|i| {
                            let pool = &catalog.platforms[model.platform].pools[i];
                            self.pool(platform, &pool.id, k.id)
                        }),
                    })
                    .collect();
                Entry {
                    model: m,
                    enabled,
                    state: self.model(platform, &model.model_id),
                    slots,
                }
            })
            .collect();
        let rank = |i: usize| {
            let m = &catalog.models[i];
            let keyed = entry_of_model[i].is_some_and(|e| !entries[e].slots.is_empty());
            u8::from(m.serves()) + u8::from(m.serves() && keyed)
        };
        let mut model_by_id: HashMap<Box<str>, usize> =
            HashMap::with_capacity(catalog.models.len());
        for (i, m) in catalog.models.iter().enumerate() {
            match model_by_id.get_mut(m.model_id.as_str()) {
                Some(best) if rank(i) > rank(*best) => *best = i,
                Some(_) => {}
                None => {
                    model_by_id.insert(m.model_id.as_str().into(), i);
                }
            }
        }
        Snapshot {
            catalog,
            entries,
            keys,
            entry_of_model,
            model_by_id,
        }
    }

    /// Serialises every used slot, penalty and key pause.
    pub fn persist(&self) -> Vec<u8> {
        let saved = |map: &Mutex<SlotMap>| -> Vec<SavedSlot> {
            map.lock()
                .iter()
                .filter_map(|((p, m, k), cell)| {
                    cell.get().map(|s| SavedSlot {
                        platform: p.clone(),
                        model: m.clone(),
                        key: *k,
                        slot: s.snapshot(),
                    })
                })
                .collect()
        };
        let slots = saved(&self.slots);
        let pools = saved(&self.pools);
        let penalties = self
            .models
            .lock()
            .iter()
            .map(|((p, m), st)| {
                let (packed, hits) = st.penalty.snapshot();
                SavedPenalty {
                    platform: p.clone(),
                    model: m.clone(),
                    packed,
                    hits,
                }
            })
            .filter(|p| p.packed != 0 || p.hits != 0)
            .collect();
        let keys = self
            .keys
            .lock()
            .iter()
            .map(|(id, st)| SavedKey {
                id: *id,
                paused_until: st.paused_until.load(Ordering::Relaxed),
                rate_limited_until: st.rate_limited_until.load(Ordering::Relaxed),
            })
            .filter(|k| k.paused_until != 0 || k.rate_limited_until != 0)
            .collect();
        simd_json::serde::to_vec(&Saved {
            version: 1,
            slots,
            pools,
            penalties,
            keys,
        })
        .unwrap_or_default()
    }

    /// Loads a persisted state; call before the first snapshot is built.
    pub fn restore(&self, bytes: &[u8]) -> Result<usize, String> {
        let mut bytes = bytes.to_vec();
        let saved: Saved = simd_json::serde::from_slice(&mut bytes).map_err(|e| e.to_string())?;
        for s in &saved.slots {
            self.slot(&s.platform, &s.model, s.key)
                .get_or_init()
                .restore(&s.slot);
        }
        for p in &saved.penalties {
            self.model(&p.platform, &p.model)
                .penalty
                .restore(p.packed, p.hits);
        }
        for k in &saved.keys {
            self.key(k.id)
                .paused_until
                .store(k.paused_until, Ordering::Relaxed);
        }
        Ok(saved.slots.len())
    }
}

#[derive(Serialize, Deserialize)]
struct Saved {
    version: u32,
    slots: Vec<SavedSlot>,
    /// Pool slots; `model` holds the pool id.
    #[serde(default)]
    pools: Vec<SavedSlot>,
    penalties: Vec<SavedPenalty>,
    keys: Vec<SavedKey>,
}

#[derive(Serialize, Deserialize)]
struct SavedSlot {
    platform: String,
    model: String,
    key: u64,
    slot: SlotSnapshot,
}

#[derive(Serialize, Deserialize)]
struct SavedPenalty {
    platform: String,
    model: String,
    packed: u64,
    hits: u32,
}

#[derive(Serialize, Deserialize)]
struct SavedKey {
    id: u64,
    paused_until: u64,
    #[serde(default)]
    rate_limited_until: u64,
}
