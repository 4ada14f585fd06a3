//! Clearing cooldowns by hand. The server clears its own in-memory state directly (dashboard);
//! another process (the CLI) leaves a request here that the server applies on its next reload
//! and then drops. Either way the matching keys lose their stored `rate_limited` status.

use serde::{Deserialize, Serialize};

use super::{Result, Store, setting};
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
        let ids: Vec<u64> = self
            .list_keys()?
            .into_iter()
            .filter(|r| {
                platform.is_none_or(|p| r.platform == p)
                    && key_id.is_none_or(|k| r.id == k)
                    && r.rate_limited_until.is_some()
            })
            .map(|r| r.id)
            .collect();
        let mut wtxn = self.write_txn()?;
        let mut cleared = 0;
        // Each row is read again inside the write: a health result saved meanwhile stays.
        for id in ids {
            let Some(mut record) = self.key_row(&wtxn, id)? else {
                continue;
            };
            cleared += usize::from(record.rate_limited_until.is_some_and(|t| t > now));
            record.rate_limited_until = None;
            self.put_key_row(&mut wtxn, &record)?;
        }
        wtxn.commit()?;
        Ok(cleared)
    }

    /// Leaves a clear request for the running (or next) server; returns its sequence number.
    pub fn request_cooldown_clear(&self, mut request: CooldownClear) -> Result<u64> {
        self.update_json_setting(
            setting::COOLDOWN_CLEARS,
            WHAT,
            true,
            |q: &mut ClearQueue| {
                // Increasing across drops too: the server remembers the last one it applied.
                request.seq = now_ms().max(q.last + 1);
                q.last = request.seq;
                q.pending.push(request);
                let excess = q.pending.len().saturating_sub(MAX_PENDING);
                q.pending.drain(..excess);
                q.last
            },
        )
    }

    /// The requests not yet applied by a server, oldest first.
    pub fn cooldown_clears(&self) -> Result<Vec<CooldownClear>> {
        let rtxn = self.read_txn()?;
        let q: Option<ClearQueue> = self.json_setting(&rtxn, setting::COOLDOWN_CLEARS, WHAT)?;
        Ok(q.unwrap_or_default().pending)
    }

    /// Drops the requests up to `seq` (applied by the server).
    pub fn drop_cooldown_clears(&self, seq: u64) -> Result<()> {
        self.update_json_setting(
            setting::COOLDOWN_CLEARS,
            WHAT,
            false,
            |q: &mut ClearQueue| q.pending.retain(|r| r.seq > seq),
        )
    }
}

const WHAT: &str = "cooldown clear requests";

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
