//! The router: picks the next (model, key) for a request and learns from what happened.
//!
//! Owns the published chain [`Snapshot`] (replaced whole through `arc-swap`), the [`Registry`]
//! of usage windows, cooldowns and penalties, and sticky sessions. Selection reads atomics
//! only; no lock is taken on the request path except the sticky map's short critical section,
//! and nothing here performs I/O. Outcomes arrive as [`Verdict`]s already classified by status
//! and transport outcome; this module never reads upstream text.

pub mod chain;
pub mod ledger;
pub mod penalty;
pub mod sticky;

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use arc_swap::ArcSwap;

pub use chain::{Entry, KeyInfo, KeySlot, Registry, Snapshot, UsableKey};
use ledger::Blocked;
pub use sticky::Sticky;

use crate::catalog::{Caps, Catalog, Kind, Limits};
use crate::outcome::{RateHints, Verdict};
use crate::time::next_utc_midnight;

/// How long a key that answered 401/403 is left alone before it is tried again.
pub const AUTH_PAUSE_MS: u64 = 60_000;
/// Cooldown after an outage-like failure (5xx, transport, timeout).
pub const UNAVAILABLE_COOLDOWN_MS: u64 = 60_000;
/// Cooldown after the model was reported gone (404/410).
pub const MODEL_GONE_COOLDOWN_MS: u64 = 3_600_000;
/// A rate-limit wait this long means an account quota, not a per-minute limit.
pub const QUOTA_WAIT_MS: u64 = 3_600_000;
/// After this many outage-like failures on one platform, a request skips that platform.
pub const PLATFORM_FAILURES_TO_SKIP: u8 = 2;

/// The token demand of one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Demand {
    pub input_tokens: u64,
    pub output_reserve: u64,
}

impl Demand {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_reserve
    }
}

/// What kind of model a request needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Task {
    #[default]
    Chat,
    /// Fill-in-the-middle: chat models the catalog marks `fim`.
    Fim,
    /// Embeddings from this catalog model or one of its family (vectors of other models are
    /// not interchangeable).
    Embedding { like: usize },
    /// Speech to text by this catalog model or one of its family.
    Transcription { like: usize },
}

impl Task {
    pub fn fits(self, catalog: &Catalog, model: usize) -> bool {
        let m = &catalog.models[model];
        match self {
            Task::Chat => m.kind == Kind::Chat,
            Task::Fim => m.kind == Kind::Chat && m.fim,
            Task::Embedding { like } => same_family(catalog, Kind::Embedding, like, model),
            Task::Transcription { like } => same_family(catalog, Kind::Transcription, like, model),
        }
    }
}

/// Whether `model` is of `kind` and is `like` or of its family.
fn same_family(catalog: &Catalog, kind: Kind, like: usize, model: usize) -> bool {
    let (m, want) = (&catalog.models[model], &catalog.models[like]);
    m.kind == kind && (model == like || (want.family.is_some() && m.family == want.family))
}

/// The order candidates are offered in after `first`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// The fallback chain as configured.
    #[default]
    Chain,
    /// The chain's entries by the model's intelligence rank.
    Intelligence,
    /// The chain's entries by the model's speed rank.
    Speed,
}

/// What the request asks of routing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    /// An entry to try first (an explicit or sticky model).
    pub first: Option<usize>,
    /// Only `first` may serve (`X-Freellmapi-Pin: strict`).
    pub strict: bool,
    pub demand: Demand,
    pub task: Task,
    pub order: Order,
    /// What the request needs beyond plain text (images, tools, a JSON schema).
    pub needs: Caps,
}

/// What one request has tried and learnt so far.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    tried: Vec<(usize, usize)>,
    paused_keys: Vec<u64>,
    platform_failures: Vec<(usize, u8)>,
    bad_request_platforms: Vec<usize>,
    min_context: u64,
}

impl Progress {
    fn platform_failures(&self, p: usize) -> u8 {
        self.platform_failures
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, n)| *n)
            .unwrap_or(0)
    }
}

/// A chosen (entry, key) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub entry: usize,
    /// Index into the entry's `slots`.
    pub slot: usize,
}

/// Why no candidate is left, in numbers the error message is built from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exhaustion {
    /// No usable key exists for any enabled model.
    pub no_keys: bool,
    pub cooling: u32,
    pub limited: u32,
    /// Models with keys whose context window (or token limit) cannot hold the request.
    pub too_small: u32,
    /// Pairs already tried in this request or skipped after its failures.
    pub tried: u32,
    /// Soonest moment (ms from now) a cooling or limited pair frees up.
    pub soonest_ms: Option<u64>,
}

impl Exhaustion {
    fn note_wait(&mut self, ms: u64) {
        self.soonest_ms = Some(self.soonest_ms.map_or(ms, |s| s.min(ms)));
    }
}

pub struct Router {
    snapshot: ArcSwap<Snapshot>,
    registry: Registry,
    pub sticky: Sticky,
    hasher: std::collections::hash_map::RandomState,
}

impl Router {
    pub fn new(catalog: Arc<Catalog>) -> Router {
        let registry = Registry::default();
        let snapshot = registry.build(catalog, Vec::new(), &[]);
        Router {
            snapshot: ArcSwap::from_pointee(snapshot),
            registry,
            sticky: Sticky::default(),
            hasher: Default::default(),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Replaces the snapshot with one built from `keys` and the chain `order`.
    pub fn rebuild(&self, catalog: Arc<Catalog>, keys: Vec<UsableKey>, order: &[(usize, bool)]) {
        self.snapshot
            .store(Arc::new(self.registry.build(catalog, keys, order)));
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A keyed hash for sticky-session keys (random per process, so clients cannot aim collisions).
    pub fn session_hasher(&self) -> impl Hasher {
        self.hasher.build_hasher()
    }

    /// The next pair to try, or why there is none.
    pub fn select(
        &self,
        snap: &Snapshot,
        plan: &Plan,
        progress: &Progress,
        now_ms: u64,
    ) -> Result<Candidate, Exhaustion> {
        let mut why = Exhaustion {
            no_keys: true,
            ..Exhaustion::default()
        };
        let consider = |entry: usize, why: &mut Exhaustion| {
            self.try_entry(snap, entry, plan, progress, now_ms, why)
        };
        if let Some(first) = plan.first {
            if let Some(c) = consider(first, &mut why) {
                return Ok(c);
            }
            if plan.strict {
                return Err(why);
            }
        }
        for entry in effective_order(snap, plan.order, now_ms) {
            if Some(entry) == plan.first {
                continue;
            }
            if let Some(c) = consider(entry, &mut why) {
                return Ok(c);
            }
        }
        Err(why)
    }

    /// The candidates `select` would still offer this request, in order, at most `max` (what a
    /// request that ran out of time leaves untried).
    pub fn remaining(
        &self,
        snap: &Snapshot,
        plan: &Plan,
        progress: &Progress,
        now_ms: u64,
        max: usize,
    ) -> Vec<Candidate> {
        let mut progress = progress.clone();
        let mut out = Vec::new();
        while out.len() < max {
            let Ok(c) = self.select(snap, plan, &progress, now_ms) else {
                break;
            };
            progress.tried.push((c.entry, c.slot));
            out.push(c);
        }
        out
    }

    fn try_entry(
        &self,
        snap: &Snapshot,
        e: usize,
        plan: &Plan,
        progress: &Progress,
        now_ms: u64,
        why: &mut Exhaustion,
    ) -> Option<Candidate> {
        let entry = &snap.entries[e];
        let model = &snap.catalog.models[entry.model];
        if !plan.task.fits(&snap.catalog, entry.model) || !model.caps.contains(plan.needs) {
            return None;
        }
        if !model.serves() || !entry.enabled || entry.slots.is_empty() {
            return None;
        }
        why.no_keys = false;
        let need = plan.demand.total();
        // An embedding model's window holds one input, not the whole batch (the caller checks
        // each input); its token limits still see the batch.
        let window = match plan.task {
            Task::Embedding { .. } | Task::Transcription { .. } => u64::MAX,
            _ => model.context_window.map(u64::from).unwrap_or(u64::MAX),
        };
        if window < need.max(progress.min_context) {
            why.too_small += 1;
            return None;
        }
        if progress.platform_failures(model.platform) >= PLATFORM_FAILURES_TO_SKIP
            || progress.bad_request_platforms.contains(&model.platform)
        {
            why.tried += entry.slots.len() as u32;
            return None;
        }
        let n = entry.slots.len();
        let start = entry.state.cursor.load(Ordering::Relaxed);
        for j in 0..n {
            let i = (start + j) % n;
            let ks = &entry.slots[i];
            let paused = ks
                .key
                .state
                .paused_until
                .load(Ordering::Relaxed)
                .saturating_sub(now_ms);
            if progress.tried.contains(&(e, i)) || progress.paused_keys.contains(&ks.key.id) {
                why.tried += 1;
                // Its cooldown still tells the client when to come back.
                let cooling = ks
                    .cell
                    .get()
                    .map_or(0, |s| s.cooldown_remaining(now_ms))
                    .max(paused);
                if cooling > 0 {
                    why.note_wait(cooling);
                }
                continue;
            }
            if paused > 0 {
                why.cooling += 1;
                why.note_wait(paused);
                continue;
            }
            let unlimited = ks.key.unlimited;
            let verdict = slot_admits(&ks.cell, &model.limits, unlimited, now_ms, need).and_then(
                |()| match (&ks.pool, model.pool) {
                    (Some(pool), Some(i)) => {
                        let limits = &snap.catalog.platforms[model.platform].pools[i].limits;
                        slot_admits(pool, limits, unlimited, now_ms, need)
                    }
                    _ => Ok(()),
                },
            );
            match verdict {
                Ok(()) => {
                    entry.state.cursor.store(i + 1, Ordering::Relaxed);
                    return Some(Candidate { entry: e, slot: i });
                }
                Err(Blocked::Cooling { ms }) => {
                    why.cooling += 1;
                    why.note_wait(ms);
                }
                Err(Blocked::Limited { ms }) => {
                    why.limited += 1;
                    why.note_wait(ms);
                }
                Err(Blocked::TooLarge) => {
                    why.too_small += 1;
                    return None;
                }
            }
        }
        None
    }

    /// Counts the request against its slot; call just before it is sent.
    pub fn record_sent(&self, snap: &Snapshot, c: Candidate, now_ms: u64) {
        let ks = &snap.entries[c.entry].slots[c.slot];
        ks.cell.get_or_init().record_request(now_ms);
        if let Some(pool) = &ks.pool {
            pool.get_or_init().record_request(now_ms);
        }
    }

    /// Counts tokens once they are known (usage from upstream, else the estimate).
    pub fn record_tokens(&self, snap: &Snapshot, c: Candidate, tokens: u64, now_ms: u64) {
        let ks = &snap.entries[c.entry].slots[c.slot];
        ks.cell.get_or_init().record_tokens(now_ms, tokens);
        if let Some(pool) = &ks.pool {
            pool.get_or_init().record_tokens(now_ms, tokens);
        }
    }

    /// Applies what an attempt's outcome means for the slot, the model, the key and the request.
    /// Returns (key id, until) when a 429 newly marks the key rate-limited, for the store.
    pub fn report(
        &self,
        snap: &Snapshot,
        c: Candidate,
        verdict: Verdict,
        progress: &mut Progress,
        now_ms: u64,
    ) -> Option<(u64, u64)> {
        let mut marked = None;
        let entry = &snap.entries[c.entry];
        let ks = &entry.slots[c.slot];
        let platform = snap.catalog.models[entry.model].platform;
        if verdict != Verdict::Success {
            progress.tried.push((c.entry, c.slot));
        }
        match verdict {
            Verdict::Success => {
                entry.state.penalty.success(now_ms);
                if let Some(slot) = ks.cell.get() {
                    slot.clear_strikes();
                }
                ks.key.state.auth_failures.store(0, Ordering::Relaxed);
            }
            Verdict::RateLimited {
                retry_after_ms,
                daily,
            } => {
                let slot = ks.cell.get_or_init();
                // A daily quota, or a wait of an hour or more, is an account quota: it cools the
                // model's pool too. A short Retry-After (a per-minute limit) does not escalate.
                let quota_until = match retry_after_ms {
                    _ if daily => Some(next_utc_midnight(now_ms)),
                    Some(ms) if ms >= QUOTA_WAIT_MS => Some(now_ms + ms.min(crate::time::DAY_MS)),
                    _ => None,
                };
                let until = match (quota_until, retry_after_ms) {
                    (Some(until), _) => {
                        if let Some(pool) = &ks.pool {
                            pool.get_or_init().cool_until(until);
                        }
                        until
                    }
                    (None, Some(ms)) => now_ms + ms,
                    (None, None) => now_ms + slot.cool_escalating(now_ms),
                };
                slot.cool_until(until);
                let before = ks
                    .key
                    .state
                    .rate_limited_until
                    .fetch_max(until, Ordering::AcqRel);
                if until > before + 1_000 {
                    marked = Some((ks.key.id, until));
                }
                entry.state.penalty.failure(now_ms);
            }
            Verdict::Unavailable => {
                ks.cell
                    .get_or_init()
                    .cool_until(now_ms + UNAVAILABLE_COOLDOWN_MS);
                entry.state.penalty.failure(now_ms);
                match progress
                    .platform_failures
                    .iter_mut()
                    .find(|(p, _)| *p == platform)
                {
                    Some((_, n)) => *n += 1,
                    None => progress.platform_failures.push((platform, 1)),
                }
            }
            Verdict::Auth => {
                progress.paused_keys.push(ks.key.id);
                ks.key.state.auth_failures.fetch_add(1, Ordering::Relaxed);
                ks.key
                    .state
                    .paused_until
                    .fetch_max(now_ms + AUTH_PAUSE_MS, Ordering::AcqRel);
            }
            // A gone model is retired through the store (the next snapshot drops it); the
            // cooldown covers the time until then. A data-policy refusal is this key's.
            Verdict::ModelGone | Verdict::DataPolicy => ks
                .cell
                .get_or_init()
                .cool_until(now_ms + MODEL_GONE_COOLDOWN_MS),
            Verdict::ContextTooLong => {
                let window = snap.catalog.models[entry.model]
                    .context_window
                    .map(u64::from)
                    .unwrap_or(0);
                progress.min_context = progress.min_context.max(window + 1);
            }
            Verdict::BadRequest => progress.bad_request_platforms.push(platform),
            Verdict::Empty => entry.state.penalty.failure(now_ms),
            Verdict::Cancelled => {}
        }
        marked
    }

    /// Ends the cooldowns (429s, outages, auth pauses, shared-pool cooldowns) and penalties of
    /// the (model, key) pairs matching every given filter; usage windows stay (the limits are
    /// real). Returns how many pairs were cooling.
    pub fn clear_cooldowns(
        &self,
        snap: &Snapshot,
        platform: Option<&str>,
        model: Option<&str>,
        key_id: Option<u64>,
        now_ms: u64,
    ) -> usize {
        let mut cleared = 0;
        for entry in &snap.entries {
            let m = &snap.catalog.models[entry.model];
            if platform.is_some_and(|p| snap.catalog.platforms[m.platform].id != p)
                || model.is_some_and(|id| m.model_id != id)
            {
                continue;
            }
            let mut any = false;
            for ks in entry
                .slots
                .iter()
                .filter(|ks| key_id.is_none_or(|k| ks.key.id == k))
            {
                let cooling =
                    ks.cell
                        .get()
                        .is_some_and(|s| s.cooldown_remaining(now_ms) > 0)
                        || ks.pool.as_ref().is_some_and(|p| {
                            p.get().is_some_and(|s| s.cooldown_remaining(now_ms) > 0)
                        })
                        || ks.key.state.paused_until.load(Ordering::Relaxed) > now_ms;
                cleared += usize::from(cooling);
                if let Some(slot) = ks.cell.get() {
                    slot.clear_cooldown();
                }
                // A pool spans the platform's models: cleared unless one model was named.
                if let (Some(pool), None) = (&ks.pool, model)
                    && let Some(slot) = pool.get()
                {
                    slot.clear_cooldown();
                }
                ks.key.state.paused_until.store(0, Ordering::Release);
                ks.key.state.rate_limited_until.store(0, Ordering::Release);
                ks.key.state.auth_failures.store(0, Ordering::Relaxed);
                any = true;
            }
            if any && key_id.is_none() {
                entry.state.penalty.clear();
            }
        }
        cleared
    }

    /// Tightens the local view with what the provider's rate-limit headers report.
    pub fn observe_hints(&self, snap: &Snapshot, c: Candidate, hints: &RateHints, now_ms: u64) {
        let slot = snap.entries[c.entry].slots[c.slot].cell.get_or_init();
        if hints.remaining_requests == Some(0) {
            slot.cool_until(now_ms + hints.reset_requests_ms.unwrap_or(UNAVAILABLE_COOLDOWN_MS));
        }
        if hints.remaining_tokens == Some(0) {
            slot.cool_until(now_ms + hints.reset_tokens_ms.unwrap_or(UNAVAILABLE_COOLDOWN_MS));
        }
    }

    /// The serialized ledger (windows, cooldowns, penalties) for persistence.
    pub fn persist(&self) -> Vec<u8> {
        self.registry.persist()
    }

    /// Whether an upstream recently rate-limited this key (its status reads `rate_limited`).
    pub fn key_rate_limited(&self, key_id: u64, now_ms: u64) -> bool {
        self.registry
            .key_state(key_id)
            .is_some_and(|s| s.rate_limited_until.load(Ordering::Relaxed) > now_ms)
    }

    /// Whether at least one enabled model has a key free to serve a small request now.
    pub fn usable_now(&self, snap: &Snapshot, now_ms: u64) -> bool {
        let plan = Plan {
            demand: Demand {
                input_tokens: 1,
                output_reserve: 1,
            },
            ..Plan::default()
        };
        self.select(snap, &plan, &Progress::default(), now_ms)
            .is_ok()
    }

    /// Whether one entry could take a small request now (for `?available=true`).
    pub fn entry_available(&self, snap: &Snapshot, entry: usize, now_ms: u64) -> bool {
        let model = snap.entries[entry].model;
        let task = match snap.catalog.models[model].kind {
            Kind::Chat => Task::Chat,
            Kind::Embedding => Task::Embedding { like: model },
            Kind::Transcription => Task::Transcription { like: model },
        };
        let plan = Plan {
            first: Some(entry),
            strict: true,
            demand: Demand {
                input_tokens: 1,
                output_reserve: 1,
            },
            task,
            order: Order::Chain,
            needs: Caps::NONE,
        };
        self.select(snap, &plan, &Progress::default(), now_ms)
            .is_ok()
    }
}

/// Cooldown and limits of one slot (a model's or a pool's). A paid (`unlimited`) key only
/// observes cooldowns; a never-used slot still refuses a request larger than its token limits.
fn slot_admits(
    cell: &chain::SlotCell,
    limits: &Limits,
    unlimited: bool,
    now_ms: u64,
    need: u64,
) -> Result<(), Blocked> {
    match cell.get() {
        Some(slot) if unlimited => match slot.cooldown_remaining(now_ms) {
            0 => Ok(()),
            ms => Err(Blocked::Cooling { ms }),
        },
        Some(slot) => slot.admits(limits, now_ms, need),
        None if unlimited => Ok(()),
        None if limits.tpm.is_some_and(|t| need > t) || limits.tpd.is_some_and(|t| need > t) => {
            Err(Blocked::TooLarge)
        }
        None => Ok(()),
    }
}

/// Entry indexes by position + penalty, stable for ties, where the position is the chain's or
/// the rank order's. Without penalties and in chain order, no allocation.
fn effective_order(
    snap: &Snapshot,
    order: Order,
    now_ms: u64,
) -> Box<dyn Iterator<Item = usize> + '_> {
    let penalties: Vec<u64> = snap
        .entries
        .iter()
        .map(|e| e.state.penalty.value(now_ms))
        .collect();
    if order == Order::Chain && penalties.iter().all(|p| *p == 0) {
        return Box::new(0..snap.entries.len());
    }
    let mut by_rank: Vec<usize> = (0..snap.entries.len()).collect();
    match order {
        Order::Chain => {}
        Order::Intelligence => by_rank.sort_by_key(|&e| snap.model(e).intelligence_rank),
        Order::Speed => by_rank.sort_by_key(|&e| snap.model(e).speed_rank),
    }
    let mut position = vec![0u64; by_rank.len()];
    for (pos, &e) in by_rank.iter().enumerate() {
        position[e] = pos as u64;
    }
    by_rank.sort_by_key(|&e| position[e] + penalties[e]);
    Box::new(by_rank.into_iter())
}

#[cfg(test)]
mod tests;
