//! The request log: one record per client request with its upstream attempts, written in
//! batches by one writer thread so that LMDB commits (an fsync each, slow on SD cards) never
//! stall a coroutine worker.
//!
//! Producers call [`LogSink::record`], which never blocks: the channel is bounded and a full
//! channel drops the record and counts it. The writer also persists ledger snapshots and prunes
//! by [`Retention`]. Records hold ids, counts and outcome classes, never upstream text or secrets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Result, Store};
use crate::time::{DAY_MS, now_ms};

const CHANNEL_CAPACITY: usize = 4096;
const MAX_BATCH: usize = 512;
/// The age limit is enforced this often; the count limit with every batch that overshoots it.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Records arriving within this window share one commit (one fsync on the SD card).
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// The writer sleeps between looks at the channel instead of waiting on it: a receiver blocked
/// in `recv` is woken by every send (a futex call on the request's path and a context switch).
/// A look that finds fewer than [`SLICE_FILL`] messages doubles the next sleep, up to the
/// window; one that finds more goes back to this slice. A quiet server's writer so wakes a
/// handful of times per batch (was 40), and a busy one's every 5 ms, which keeps the channel
/// far from full and the records waiting in it few (at 30 000 requests/s, ~150: memory the
/// allocator keeps around afterwards).
const BATCH_SLICE: Duration = Duration::from_millis(5);
const SLICE_FILL: usize = 64;
/// After its last message the writer keeps looking on its own clock this long before it
/// blocks on the channel again: a request now and then is never the one that wakes it.
const LINGER: Duration = Duration::from_secs(1);
/// How often the store's mapped pages are released from our RSS.
const RELEASE_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    Success,
    /// Every candidate failed or none was available.
    Error,
    /// The request was refused before routing (auth, validation, unknown model).
    Rejected,
    /// The client went away; not counted against any provider.
    Cancelled,
}

impl RequestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestOutcome::Success => "success",
            RequestOutcome::Error => "error",
            RequestOutcome::Rejected => "rejected",
            RequestOutcome::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub platform: String,
    pub model: String,
    pub key_id: u64,
    /// Outcome class: `ok`, `rate_limited`, `unavailable`, `auth`, `model_gone`, ...
    pub outcome: String,
    pub status: Option<u16>,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestRecord {
    pub ts_ms: u64,
    pub request_id: String,
    /// The client API the request came through (records from before surfaces read `chat`).
    #[serde(default)]
    pub surface: crate::surface::Surface,
    pub requested_model: Option<String>,
    pub platform: Option<String>,
    pub model: Option<String>,
    pub key_id: Option<u64>,
    pub outcome: RequestOutcome,
    pub status: u16,
    pub stream: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub tokens_estimated: bool,
    pub latency_ms: u64,
    pub ttfb_ms: Option<u64>,
    /// A short reason class (never upstream text).
    pub error: Option<String>,
    pub attempts: Vec<AttemptRecord>,
    /// The named client key that made the request (`None`: the unified key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<u64>,
    /// The dialect a tool call written as text was rescued from (`hermes`, `mistral`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_rescue: Option<String>,
}

impl RequestRecord {
    /// A record of a request that has not been served yet (an error until it is).
    pub fn new(ts_ms: u64, request_id: String, surface: crate::surface::Surface) -> RequestRecord {
        RequestRecord {
            ts_ms,
            request_id,
            surface,
            requested_model: None,
            platform: None,
            model: None,
            key_id: None,
            outcome: RequestOutcome::Error,
            status: 200,
            stream: false,
            input_tokens: 0,
            output_tokens: 0,
            tokens_estimated: false,
            latency_ms: 0,
            ttfb_ms: None,
            error: None,
            attempts: Vec::new(),
            client_key: None,
            tool_rescue: None,
        }
    }

    /// One attempt of this request: who was asked and what it came to.
    pub fn attempt(&mut self, by: Asked<'_>, outcome: &str, status: Option<u16>, latency_ms: u64) {
        self.attempts.push(AttemptRecord {
            platform: by.platform.to_string(),
            model: by.model.to_string(),
            key_id: by.key_id,
            outcome: outcome.to_string(),
            status,
            latency_ms,
        });
    }

    /// Served by `by`, with the tokens it cost. `interrupted`: the stream broke after the
    /// client had its first byte, so the request is an error that still spent its tokens.
    pub fn served(&mut self, by: Asked<'_>, usage: Spent, interrupted: bool) {
        self.outcome = if interrupted {
            RequestOutcome::Error
        } else {
            RequestOutcome::Success
        };
        self.error = interrupted.then(|| "stream_interrupted".to_string());
        self.platform = Some(by.platform.to_string());
        self.model = Some(by.model.to_string());
        self.key_id = Some(by.key_id);
        self.input_tokens = usage.input_tokens;
        self.output_tokens = usage.output_tokens;
        self.tokens_estimated = usage.estimated;
        self.ttfb_ms = usage.ttfb_ms;
        self.tool_rescue = usage.tool_rescue.map(str::to_string);
    }

    /// The client left before an answer: the status nginx uses for that, 499.
    pub fn cancelled(&mut self) {
        self.outcome = RequestOutcome::Cancelled;
        self.status = 499;
    }

    /// Answered with an error (`code`, the class the client saw); `rejected`: refused
    /// before any provider was asked.
    pub fn failed(&mut self, status: u16, code: &str, rejected: bool) {
        self.status = status;
        self.error = Some(code.to_string());
        if rejected {
            self.outcome = RequestOutcome::Rejected;
        }
    }
}

/// Who an attempt asked: platform, model and key.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub platform: &'a str,
    pub model: &'a str,
    pub key_id: u64,
}

/// What serving a request cost and how fast its first byte came.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Counted by us (characters / 4), not by the provider.
    pub estimated: bool,
    pub ttfb_ms: Option<u64>,
    /// A tool call written as text was rescued, from this dialect.
    pub tool_rescue: Option<&'static str>,
}

/// How much of the log is kept: 30 days, 100 000 requests and 64 MiB of pages, whichever is
/// least. A record is a few hundred bytes (every string in it is bounded), so the byte limit
/// only bites if records somehow grow; it is what guarantees the store's map is never filled
/// by the log.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age_ms: u64,
    pub max_records: u64,
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_ms: 30 * DAY_MS,
            max_records: 100_000,
            max_bytes: 64 << 20,
        }
    }
}

/// A log over its byte limit is cut to a tenth under it, so that it is not cut again at
/// every batch.
const OVER_BYTES_DROP: u64 = 10;

/// A store write run on the writer thread, off the coroutine workers.
pub type Job = Box<dyn FnOnce(&Store) + Send>;

enum Msg {
    Record(Box<RequestRecord>),
    Ledger(Vec<u8>),
    Job(Job),
    Flush(mpsc::Sender<()>),
}

/// The producer side; cheap to clone.
#[derive(Clone)]
pub struct LogSink {
    tx: SyncSender<Msg>,
    stats: Arc<QueueStats>,
    /// The writer, unparked for jobs and flushes (records and snapshots wait for its look).
    writer: thread::Thread,
}

/// The request log queue's counters (for `/metrics`).
#[derive(Default)]
pub struct QueueStats {
    /// Records queued and not yet written.
    pub queued: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped: AtomicU64,
}

impl LogSink {
    /// Queues a record without blocking; a full queue drops it (and counts the drop).
    pub fn record(&self, record: RequestRecord) {
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Record(Box::new(record))) {
            self.stats.queued.fetch_sub(1, Ordering::Relaxed);
            let n = self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                log::warn!("request log queue full; {} records dropped so far", n + 1);
            }
        }
    }

    pub fn stats(&self) -> &QueueStats {
        &self.stats
    }

    /// Queues a ledger snapshot for persistence (a newer one supersedes it anyway).
    pub fn ledger(&self, bytes: Vec<u8>) {
        let _ = self.tx.try_send(Msg::Ledger(bytes));
    }

    /// Runs `job` on the writer thread (health results and other server-side writes).
    pub fn run(&self, job: impl FnOnce(&Store) + Send + 'static) {
        if self.tx.try_send(Msg::Job(Box::new(job))).is_err() {
            log::warn!("store writer queue full; a background write was dropped");
        }
        self.writer.unpark();
    }

    /// Runs `job` on the writer thread and waits for what it returns (parking a coroutine, or
    /// blocking a plain thread). `None` when the writer's queue is full or the writer stopped.
    pub fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = may::sync::mpsc::channel();
        let job = move |store: &Store| {
            let _ = tx.send(job(store));
        };
        self.tx.try_send(Msg::Job(Box::new(job))).ok()?;
        self.writer.unpark();
        rx.recv().ok()
    }

    /// Waits until everything queued before this call is committed, up to `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(tx)).is_err() {
            return false;
        }
        self.writer.unpark();
        rx.recv_timeout(timeout).is_ok()
    }
}

/// Starts the writer thread.
pub fn spawn_writer(store: Arc<Store>, retention: Retention) -> LogSink {
    let (tx, rx) = mpsc::sync_channel(CHANNEL_CAPACITY);
    let stats = Arc::new(QueueStats::default());
    let writer_stats = stats.clone();
    let writer = thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || writer_loop(&store, rx, retention, &writer_stats))
        .expect("spawning the store writer thread");
    LogSink {
        tx,
        stats,
        writer: writer.thread().clone(),
    }
}

/// The sleep after a look that found `found` messages, given the one before it.
fn next_slice(slice: Duration, found: usize) -> Duration {
    if found >= SLICE_FILL {
        BATCH_SLICE
    } else {
        (slice * 2).min(BATCH_WINDOW)
    }
}

/// Moves what the channel holds into `batch`, up to [`MAX_BATCH`]; true when every sender is
/// gone.
fn take_queued(rx: &Receiver<Msg>, batch: &mut Vec<Msg>) -> bool {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(m) => batch.push(m),
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => return true,
        }
    }
    false
}

fn writer_loop(store: &Store, rx: Receiver<Msg>, retention: Retention, stats: &QueueStats) {
    let mut seq: u32 = 0;
    let mut last_prune = Instant::now() - PRUNE_EVERY;
    let mut last_release = Instant::now();
    let mut unreleased = false;
    let mut batch: Vec<Msg> = Vec::new();
    // When the batch is committed: a window after its first message arrived.
    let mut due: Option<Instant> = None;
    let mut slice = BATCH_SLICE;
    let mut last_look = Instant::now();
    let mut last_message: Option<Instant> = None;
    loop {
        let lingering = last_message.is_some_and(|t| t.elapsed() < LINGER);
        let mut gone = false;
        if batch.is_empty() && !lingering {
            // Idle: block on the channel, waking for the next release of mapped pages, else
            // for the next prune.
            let wait = if unreleased {
                RELEASE_EVERY.saturating_sub(last_release.elapsed())
            } else {
                PRUNE_EVERY
            };
            match rx.recv_timeout(wait) {
                Ok(m) => {
                    batch.push(m);
                    due = Some(Instant::now() + BATCH_WINDOW);
                    slice = BATCH_SLICE;
                    last_message = Some(Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => gone = true,
            }
        } else {
            let nap = due.map_or(slice, |d| {
                slice.min(d.saturating_duration_since(Instant::now()))
            });
            thread::park_timeout(nap);
        }
        let now = Instant::now();
        let before = batch.len();
        gone |= take_queued(&rx, &mut batch);
        let found = batch.len() - before;
        if found > 0 {
            last_message = Some(now);
            // They may have waited since the previous look.
            due.get_or_insert(last_look + BATCH_WINDOW);
        }
        slice = next_slice(slice, found);
        last_look = now;
        let urgent = batch
            .iter()
            .any(|m| matches!(m, Msg::Flush(_) | Msg::Job(_)));
        let commit = !batch.is_empty()
            && (gone || urgent || batch.len() >= MAX_BATCH || due.is_some_and(|d| now >= d));
        let mut acks = Vec::new();
        if commit {
            due = None;
            unreleased = true;
            let (jobs, mut records): (Vec<Msg>, Vec<Msg>) = std::mem::take(&mut batch)
                .into_iter()
                .partition(|m| matches!(m, Msg::Job(_)));
            let queued = records
                .iter()
                .filter(|m| matches!(m, Msg::Record(_)))
                .count();
            // A batch of jobs alone needs no transaction of its own.
            if !records.is_empty() {
                match write_batch(store, &mut records, &mut seq, &mut acks, retention) {
                    Ok(0) => {}
                    Ok(skipped) => {
                        let before = stats.dropped.fetch_add(skipped, Ordering::Relaxed);
                        if (before + skipped).is_power_of_two() || before == 0 {
                            log::warn!(
                                "the store is nearly full: request log records are not written ({} so far), so keys, sessions and settings can still be saved",
                                before + skipped
                            );
                        }
                    }
                    Err(e) => log::error!("request log write failed: {e}"),
                }
            }
            stats.queued.fetch_sub(queued as u64, Ordering::Relaxed);
            for job in jobs {
                if let Msg::Job(job) = job {
                    job(store);
                }
            }
        }
        if unreleased && last_release.elapsed() >= RELEASE_EVERY {
            last_release = Instant::now();
            unreleased = false;
            store.release_mapped_pages();
        }
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            match store.prune_requests(retention, now_ms()) {
                Ok(0) => {}
                Ok(n) => log::debug!("request log: pruned {n} records"),
                Err(e) => log::error!("request log prune failed: {e}"),
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
        if gone && batch.is_empty() {
            return;
        }
    }
}

/// Writes a batch in one transaction. When the log has grown a hundredth past its record limit,
/// or past its byte limit, the oldest records go in the same transaction: the log (and the
/// file, whose freed pages LMDB reuses) stays near its limit however fast requests arrive, at
/// no extra commit. While the store's map has less than its headroom left, records are not
/// written at all (returned as skipped): the writes that matter must never meet a full map.
fn write_batch(
    store: &Store,
    batch: &mut Vec<Msg>,
    seq: &mut u32,
    acks: &mut Vec<mpsc::Sender<()>>,
    retention: Retention,
) -> Result<u64> {
    let mut wtxn = store.write_txn()?;
    let mut ledger = None;
    let full = store.nearly_full();
    let mut skipped = 0;
    for msg in batch.drain(..) {
        match msg {
            Msg::Record(_) if full => skipped += 1,
            Msg::Record(r) => {
                *seq = seq.wrapping_add(1);
                let bytes = match simd_json::serde::to_vec(&*r) {
                    Ok(b) => b,
                    Err(_) => continue,
                };
                store
                    .requests
                    .put(&mut wtxn, &record_key(r.ts_ms, *seq), &bytes)?;
            }
            Msg::Ledger(b) => ledger = Some(b),
            Msg::Job(_) => {}
            Msg::Flush(ack) => acks.push(ack),
        }
    }
    if let Some(bytes) = ledger {
        store
            .settings
            .put(&mut wtxn, super::setting::LEDGER, &bytes)?;
    }
    let slack = (retention.max_records / 100).max(1);
    let len = store.requests.len(&wtxn)?;
    if len > retention.max_records.saturating_add(slack) {
        store.drop_oldest(&mut wtxn, retention.max_records)?;
    } else {
        // Records are of similar size: keep the share that fits, a tenth under the limit.
        // Pages are freed as leaves empty, so one pass may leave a little over: a second
        // pass, then the next batch, finish the job.
        for _ in 0..2 {
            let (len, bytes) = (store.requests.len(&wtxn)?, store.request_log_bytes(&wtxn)?);
            if bytes <= retention.max_bytes || len == 0 {
                break;
            }
            let fits = u128::from(len) * u128::from(retention.max_bytes) / u128::from(bytes);
            let keep = (fits as u64) - (fits as u64) / OVER_BYTES_DROP;
            store.drop_oldest(&mut wtxn, keep.min(len - 1))?;
        }
    }
    wtxn.commit()?;
    Ok(skipped)
}

/// Records sort by time: milliseconds in the high bits, a sequence number below them, stored
/// big-endian so LMDB's byte order is time order.
fn record_key(ts_ms: u64, seq: u32) -> u128 {
    u128::from(ts_ms) << 32 | u128::from(seq)
}

impl Store {
    /// Deletes records older than the retention age, then the oldest beyond the count cap.
    pub fn prune_requests(&self, retention: Retention, now: u64) -> Result<u64> {
        let cutoff = now.saturating_sub(retention.max_age_ms);
        let mut wtxn = self.write_txn()?;
        let mut removed = 0u64;
        removed += self
            .requests
            .delete_range(&mut wtxn, &(..record_key(cutoff, 0)))? as u64;
        removed += self.drop_oldest(&mut wtxn, retention.max_records)?;
        wtxn.commit()?;
        Ok(removed)
    }

    /// The bytes of the pages the request log takes (its tree and overflow pages).
    fn request_log_bytes(&self, txn: &heed::RoTxn<'_>) -> Result<u64> {
        let st = self.requests.stat(txn)?;
        Ok((st.branch_pages + st.leaf_pages + st.overflow_pages) as u64 * u64::from(st.page_size))
    }

    /// Deletes the oldest records until at most `keep` are left; returns how many went.
    fn drop_oldest(&self, wtxn: &mut heed::RwTxn<'_>, keep: u64) -> Result<u64> {
        let len = self.requests.len(wtxn)?;
        if len <= keep {
            return Ok(0);
        }
        let boundary = {
            let mut iter = self.requests.iter(wtxn)?;
            iter.nth((len - keep) as usize)
                .and_then(|r| r.ok())
                .map(|(k, _)| k)
        };
        Ok(match boundary {
            Some(boundary) => self.requests.delete_range(wtxn, &(..boundary))? as u64,
            None => 0,
        })
    }

    /// Records with `ts_ms >= since`, oldest first (tests and small ranges).
    pub fn requests_since(&self, since: u64) -> Result<Vec<RequestRecord>> {
        self.scan_requests_since(since, |records| records.collect())
    }

    /// Hands `f` the records with `ts_ms >= since`, oldest first, decoded one at a time:
    /// analytics over 100 000 records must not hold them all in memory. Unreadable rows are
    /// skipped.
    pub fn scan_requests_since<T>(
        &self,
        since: u64,
        f: impl FnOnce(&mut dyn Iterator<Item = RequestRecord>) -> T,
    ) -> Result<T> {
        let rtxn = self.read_txn()?;
        let mut bytes = Vec::new();
        let mut records = self
            .requests
            .range(&rtxn, &(record_key(since, 0)..))?
            .filter_map(|item| {
                let (_, v) = item.ok()?;
                bytes.clear();
                bytes.extend_from_slice(v);
                simd_json::serde::from_slice::<RequestRecord>(&mut bytes).ok()
            });
        Ok(f(&mut records))
    }

    /// Input plus output tokens of every request since `since` (the budget bar).
    pub fn tokens_since(&self, since: u64) -> Result<u64> {
        self.scan_requests_since(since, |records| {
            records.fold(0u64, |n, r| {
                n.saturating_add(r.input_tokens + r.output_tokens)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{temp_store, temp_store_sized};
    use super::*;

    fn rec(ts: u64) -> RequestRecord {
        RequestRecord {
            surface: Default::default(),
            ts_ms: ts,
            request_id: format!("r{ts}"),
            requested_model: None,
            platform: Some("groq".into()),
            model: Some("m".into()),
            key_id: Some(1),
            outcome: RequestOutcome::Success,
            status: 200,
            stream: false,
            input_tokens: 1,
            output_tokens: 2,
            tokens_estimated: false,
            latency_ms: 3,
            ttfb_ms: None,
            error: None,
            attempts: vec![],
            client_key: None,
            tool_rescue: None,
        }
    }

    /// A quiet writer's sleeps grow to the batch window (6 looks per batch, not 40); a look
    /// that finds a busy channel brings them back to the slice at once.
    #[test]
    fn the_writer_sleeps_longer_while_little_arrives() {
        let mut slice = BATCH_SLICE;
        let mut naps = Vec::new();
        for _ in 0..7 {
            slice = next_slice(slice, 1);
            naps.push(slice.as_millis());
        }
        assert_eq!(naps, [10, 20, 40, 80, 160, 200, 200]);
        assert_eq!(next_slice(BATCH_WINDOW, SLICE_FILL), BATCH_SLICE);
        assert_eq!(next_slice(BATCH_SLICE, SLICE_FILL - 1), 2 * BATCH_SLICE);
    }

    /// Tries: a job and a flush sent while the writer lingers between batches (asleep, not
    /// blocked on the channel) are still done, and records sent meanwhile are all written.
    #[test]
    fn jobs_and_flushes_reach_a_lingering_writer() {
        let (store, dir) = temp_store();
        let store = Arc::new(store);
        let sink = spawn_writer(store.clone(), Retention::default());
        let now = now_ms();
        sink.record(rec(now - 10));
        assert!(sink.flush(Duration::from_secs(5)));
        // The writer now lingers: it sleeps and looks, it does not wait on the channel.
        for round in 0..3u64 {
            sink.record(rec(now - 5 + round));
            assert_eq!(
                sink.call(|store| store.requests_since(0).unwrap().len()),
                Some(2 + round as usize)
            );
        }
        assert!(sink.flush(Duration::from_secs(5)));
        assert_eq!(store.requests_since(0).unwrap().len(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Writes 20 batches of 100 records made by `make` under `retention`, each flushed, and
    /// returns the most `measure` saw after a batch and the records left. The newest record
    /// is always kept.
    fn fill_in_batches(
        retention: Retention,
        make: fn(u64) -> RequestRecord,
        measure: fn(&Store) -> u64,
    ) -> (u64, Vec<RequestRecord>) {
        let (store, dir) = temp_store();
        let store = Arc::new(store);
        let sink = spawn_writer(store.clone(), retention);
        let now = now_ms();
        let mut most = 0;
        for chunk in 0..20u64 {
            for t in 0..100 {
                sink.record(make(now - 10_000 + chunk * 100 + t));
            }
            assert!(sink.flush(Duration::from_secs(5)));
            most = most.max(sink.call(measure).unwrap());
        }
        let left = store.requests_since(0).unwrap();
        assert_eq!(
            left.last().unwrap().ts_ms,
            now - 10_000 + 1_999,
            "newest kept"
        );
        drop((sink, store));
        std::fs::remove_dir_all(dir).unwrap();
        (most, left)
    }

    /// Tries: far more records than the limit, faster than the age prune runs. The writer
    /// drops the oldest as it goes, so the log never holds much more than its limit.
    #[test]
    fn the_writer_keeps_the_log_near_its_record_limit() {
        let retention = Retention {
            max_age_ms: 30 * DAY_MS,
            max_records: 300,
            max_bytes: u64::MAX,
        };
        let (most, left) = fill_in_batches(retention, rec, |store| {
            store.requests.len(&store.read_txn().unwrap()).unwrap()
        });
        assert!(most <= 303 + 100, "the log grew to {most} records");
        assert!((300..=303).contains(&left.len()), "{} left", left.len());
    }

    /// A record as large as a client can make one: the longest model name, twenty attempts.
    fn large(ts: u64) -> RequestRecord {
        let mut r = rec(ts);
        // The longest model name a client may send (chat refuses longer ones).
        r.requested_model = Some("m".repeat(256));
        r.attempts = (0..20)
            .map(|i| AttemptRecord {
                platform: "openrouter".into(),
                model: format!("some-vendor/a-rather-long-model-name-{i}:free"),
                key_id: i,
                outcome: "rate_limited".into(),
                status: Some(429),
                latency_ms: 1_234,
            })
            .collect();
        r
    }

    /// Tries: records at their largest, far past a byte limit that is below the row limit.
    #[test]
    fn the_writer_keeps_the_log_under_its_byte_limit() {
        let max_bytes = 512 * 1024;
        let retention = Retention {
            max_bytes,
            ..Retention::default()
        };
        let (most, left) = fill_in_batches(retention, large, |store| {
            store.request_log_bytes(&store.read_txn().unwrap()).unwrap()
        });
        // One batch of 100 large records (~300 KiB) can land on a log at its limit.
        assert!(
            most <= max_bytes + 400 * 1024,
            "the log grew to {most} bytes"
        );
        assert!(left.len() < 2_000, "{} left", left.len());
    }

    /// Tries: a store whose map is nearly full. Records stop being written (and are counted
    /// as dropped) while a session, a key-sized setting and the password can still be saved.
    #[test]
    fn a_nearly_full_map_keeps_room_for_the_writes_that_matter() {
        // An eighth of 4 MiB is kept: more than one batch of 50 large records (~150 KiB).
        let (store, dir) = temp_store_sized(4 << 20);
        let store = Arc::new(store);
        let retention = Retention {
            max_records: u64::MAX,
            max_bytes: u64::MAX,
            ..Retention::default()
        };
        let sink = spawn_writer(store.clone(), retention);
        let now = now_ms();
        for chunk in 0..60u64 {
            for t in 0..50 {
                sink.record(large(now - 100_000 + chunk * 50 + t));
            }
            assert!(sink.flush(Duration::from_secs(5)));
        }
        assert!(store.nearly_full());
        assert!(
            sink.stats().dropped.load(Ordering::Relaxed) > 0,
            "records were skipped"
        );
        for i in 0..50u8 {
            store.create_session(&[i; 32], now + 60_000).unwrap();
        }
        store.set_admin_password(&"p".repeat(200)).unwrap();
        store.create_session(&[7; 32], now + 60_000).unwrap();
        assert!(store.session_valid(&[7; 32], now).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn writer_batches_and_flushes() {
        let (store, dir) = temp_store();
        let store = Arc::new(store);
        let sink = spawn_writer(store.clone(), Retention::default());
        let now = now_ms();
        for t in 0..50 {
            sink.record(rec(now - 1_000 + t));
        }
        sink.ledger(b"snap".to_vec());
        assert!(sink.flush(Duration::from_secs(5)));
        assert_eq!(store.requests_since(0).unwrap().len(), 50);
        assert_eq!(
            store.ledger_snapshot().unwrap().as_deref(),
            Some(&b"snap"[..])
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn retention_prunes_by_age_then_by_count() {
        let (store, dir) = temp_store();
        let store = Arc::new(store);
        let sink = spawn_writer(
            store.clone(),
            Retention {
                max_age_ms: u64::MAX,
                max_records: u64::MAX,
                max_bytes: u64::MAX,
            },
        );
        let now = 100 * DAY_MS;
        for t in [
            now - 40 * DAY_MS,
            now - 31 * DAY_MS,
            now - 5,
            now - 4,
            now - 3,
            now - 2,
            now - 1,
        ] {
            sink.record(rec(t));
        }
        assert!(sink.flush(Duration::from_secs(5)));
        let removed = store
            .prune_requests(
                Retention {
                    max_age_ms: 30 * DAY_MS,
                    max_records: 3,
                    max_bytes: u64::MAX,
                },
                now,
            )
            .unwrap();
        assert_eq!(removed, 4);
        let left: Vec<u64> = store
            .requests_since(0)
            .unwrap()
            .iter()
            .map(|r| r.ts_ms)
            .collect();
        assert_eq!(left, vec![now - 3, now - 2, now - 1]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
