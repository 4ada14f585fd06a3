//! Penalties that demote a model in the chain after retryable failures: +3 per failure,
//! capped at 10, −1 per success, decaying by 1 every 2 minutes. The decay is computed from
//! the stored timestamp on read, so reads never write.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

pub const PER_FAILURE: u64 = 3;
pub const MAX: u64 = 10;
pub const DECAY_MS: u64 = 120_000;
const TS_MASK: u64 = (1 << 56) - 1;

/// Penalty in the top 8 bits, the time it was last set in the low 56.
#[derive(Default)]
pub struct Penalty {
    packed: AtomicU64,
    hits: AtomicU32,
}

fn unpack(v: u64, now_ms: u64) -> u64 {
    let (penalty, at) = (v >> 56, v & TS_MASK);
    penalty.saturating_sub(now_ms.saturating_sub(at) / DECAY_MS)
}

impl Penalty {
    pub fn value(&self, now_ms: u64) -> u64 {
        unpack(self.packed.load(Ordering::Relaxed), now_ms)
    }

    /// Retryable failures seen since start (for display).
    pub fn hits(&self) -> u32 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn failure(&self, now_ms: u64) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        self.update(now_ms, |p| (p + PER_FAILURE).min(MAX));
    }

    pub fn success(&self, now_ms: u64) {
        if self.packed.load(Ordering::Relaxed) >> 56 == 0 {
            return;
        }
        self.update(now_ms, |p| p.saturating_sub(1));
    }

    fn update(&self, now_ms: u64, f: impl Fn(u64) -> u64) {
        let _ = self
            .packed
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| {
                Some(f(unpack(v, now_ms)) << 56 | (now_ms & TS_MASK))
            });
    }

    /// Drops the penalty (the user cleared the model's cooldowns).
    pub fn clear(&self) {
        self.packed.store(0, Ordering::Release);
    }

    pub fn snapshot(&self) -> (u64, u32) {
        (self.packed.load(Ordering::Relaxed), self.hits())
    }

    pub fn restore(&self, packed: u64, hits: u32) {
        self.packed.store(packed, Ordering::Relaxed);
        self.hits.store(hits, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_add_three_up_to_ten_and_decay() {
        let p = Penalty::default();
        let t = 1_000_000;
        p.failure(t);
        assert_eq!(p.value(t), 3);
        p.failure(t);
        p.failure(t);
        p.failure(t);
        assert_eq!(p.value(t), 10);
        assert_eq!(p.value(t + DECAY_MS - 1), 10);
        assert_eq!(p.value(t + DECAY_MS), 9);
        assert_eq!(p.value(t + 10 * DECAY_MS), 0);
        assert_eq!(p.hits(), 4);
    }

    #[test]
    fn success_subtracts_one() {
        let p = Penalty::default();
        p.success(5);
        assert_eq!(p.value(5), 0);
        p.failure(10);
        p.success(11);
        assert_eq!(p.value(11), 2);
    }
}
