//! Clearing cooldowns by hand. The server clears its own in-memory state directly (dashboard);
//! another process (the CLI) leaves a request here that the server applies on its next reload
//! and then drops. Either way the matching keys lose their stored `rate_limited` status.

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, setting};
use crate::time::now_ms;

/// At most this many requests wait for a server (older ones are dropped first).
const MAX_PENDING: usize = 16;

/// Which (model, key) pairs to clear; every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CooldownClear {
    /// Increasing (the time it was asked, in ms); the server applies each request once.
    #[serde(default)]
    pub seq: u64,
    pub platform: Option<String>,
    pub model: Option<String>,
    pub key_id: Option<u64>,
}

impl Store {
    /// Ends the stored `rate_limited` status of the matching keys; returns how many had one.
    pub fn clear_rate_limited(&self, platform: Option<&str>, key_id: Option<u64>) -> Result<usize> {
        let now = now_ms();
        let records = self.list_keys()?;
        let mut wtxn = self.write_txn()?;
        let mut cleared = 0;
        for record in records {
            if platform.is_some_and(|p| record.platform != p)
                || key_id.is_some_and(|k| record.id != k)
            {
                continue;
            }
            if record.rate_limited_until.is_some_and(|t| t > now) {
                cleared += 1;
            }
            if record.rate_limited_until.is_some() {
                let mut record = record;
                record.rate_limited_until = None;
                self.put_key_row(&mut wtxn, &record)?;
            }
        }
        wtxn.commit()?;
        Ok(cleared)
    }

    /// Leaves a clear request for the running (or next) server; returns its sequence number.
    pub fn request_cooldown_clear(&self, mut request: CooldownClear) -> Result<u64> {
        let mut q = self.clear_queue()?;
        // Increasing across drops too: the server remembers the last one it applied.
        request.seq = now_ms().max(q.last + 1);
        q.last = request.seq;
        q.pending.push(request);
        let excess = q.pending.len().saturating_sub(MAX_PENDING);
        q.pending.drain(..excess);
        self.put_clear_queue(&q, true)?;
        Ok(q.last)
    }

    /// The requests not yet applied by a server, oldest first.
    pub fn cooldown_clears(&self) -> Result<Vec<CooldownClear>> {
        Ok(self.clear_queue()?.pending)
    }

    /// Drops the requests up to `seq` (applied by the server).
    pub fn drop_cooldown_clears(&self, seq: u64) -> Result<()> {
        let mut q = self.clear_queue()?;
        q.pending.retain(|r| r.seq > seq);
        self.put_clear_queue(&q, false)
    }

    fn clear_queue(&self) -> Result<ClearQueue> {
        let rtxn = self.read_txn()?;
        let Some(bytes) = self.settings.get(&rtxn, setting::COOLDOWN_CLEARS)? else {
            return Ok(ClearQueue::default());
        };
        let mut bytes = bytes.to_vec();
        simd_json::serde::from_slice(&mut bytes)
            .map_err(|_| StoreError::Corrupt("cooldown clear requests".into()))
    }

    fn put_clear_queue(&self, q: &ClearQueue, notify: bool) -> Result<()> {
        let bytes = simd_json::serde::to_vec(q)
            .map_err(|_| StoreError::Corrupt("cooldown clear requests".into()))?;
        let mut wtxn = self.write_txn()?;
        self.settings
            .put(&mut wtxn, setting::COOLDOWN_CLEARS, &bytes)?;
        if notify {
            self.bump_generation(&mut wtxn)?;
        }
        wtxn.commit()?;
        Ok(())
    }
}

/// The stored requests, with the highest sequence number ever given out.
#[derive(Default, Serialize, Deserialize)]
struct ClearQueue {
    last: u64,
    pending: Vec<CooldownClear>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_queue_up_and_are_dropped_once_applied() {
        let (store, _dir) = crate::store::tests::temp_store();
        let before = store.generation().unwrap();
        let a = store
            .request_cooldown_clear(CooldownClear {
                platform: Some("groq".into()),
                ..Default::default()
            })
            .unwrap();
        let b = store
            .request_cooldown_clear(CooldownClear::default())
            .unwrap();
        assert!(b > a && a > 0);
        assert!(
            store.generation().unwrap() > before,
            "a running server is told"
        );
        store.drop_cooldown_clears(a).unwrap();
        let left = store.cooldown_clears().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].seq, b);
        store.drop_cooldown_clears(b).unwrap();
        let c = store
            .request_cooldown_clear(CooldownClear::default())
            .unwrap();
        assert!(
            c > b,
            "a request after a drop is still newer than what was applied"
        );
        for _ in 0..40 {
            store
                .request_cooldown_clear(CooldownClear::default())
                .unwrap();
        }
        assert_eq!(store.cooldown_clears().unwrap().len(), MAX_PENDING);
    }
}
