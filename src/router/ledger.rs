//! Usage windows: requests and tokens per (platform, model, key) over the last 60 s and 24 h,
//! as fixed rings of atomic buckets (60 × 1 s and 144 × 10 min). O(1) memory per key, no
//! timestamp lists, no locks: a bucket packs the index of the period it counts with the count,
//! so a stale bucket is recognised and restarted by compare-and-swap.
//!
//! Also the per-slot cooldown with escalating strikes. Everything here is plain data plus
//! arithmetic on `now_ms`, so tests inject the clock.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::catalog::Limits;

/// Used buckets of a ring as (position, packed value).
pub type SparseBuckets = Vec<(u16, u64)>;

/// One ring of `N` buckets of `width_ms` each.
pub struct Window<const N: usize> {
    width_ms: u64,
    reqs: [AtomicU64; N],
    tokens: [AtomicU64; N],
}

/// A bucket value: period index in the high 32 bits, count in the low 32.
fn pack(period: u64, count: u64) -> u64 {
    (period & 0xffff_ffff) << 32 | count.min(u64::from(u32::MAX))
}

impl<const N: usize> Window<N> {
    pub fn new(width_ms: u64) -> Self {
        Window {
            width_ms,
            reqs: std::array::from_fn(|_| AtomicU64::new(0)),
            tokens: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn add(cells: &[AtomicU64; N], width_ms: u64, now_ms: u64, delta: u64) {
        let period = now_ms / width_ms;
        let cell = &cells[(period % N as u64) as usize];
        let mut cur = cell.load(Ordering::Relaxed);
        loop {
            let next = if cur >> 32 == period & 0xffff_ffff {
                pack(period, (cur & 0xffff_ffff) + delta)
            } else {
                pack(period, delta)
            };
            match cell.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Sum over buckets whose period lies in the window ending at `now_ms`.
    fn sum(cells: &[AtomicU64; N], width_ms: u64, now_ms: u64) -> u64 {
        let period = (now_ms / width_ms) & 0xffff_ffff;
        cells
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .filter(|v| period.wrapping_sub(v >> 32) & 0xffff_ffff < N as u64)
            .map(|v| v & 0xffff_ffff)
            .sum()
    }

    /// Milliseconds until the oldest counted bucket leaves the window (0 when empty).
    fn oldest_expiry(cells: &[AtomicU64; N], width_ms: u64, now_ms: u64) -> u64 {
        let period = (now_ms / width_ms) & 0xffff_ffff;
        cells
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .filter(|v| v & 0xffff_ffff > 0)
            .map(|v| period.wrapping_sub(v >> 32) & 0xffff_ffff)
            .filter(|age| *age < N as u64)
            .max()
            .map(|age| {
                let leaves_at = (now_ms / width_ms + (N as u64 - age)) * width_ms;
                leaves_at.saturating_sub(now_ms)
            })
            .unwrap_or(0)
    }

    pub fn add_request(&self, now_ms: u64) {
        Self::add(&self.reqs, self.width_ms, now_ms, 1);
    }

    pub fn add_tokens(&self, now_ms: u64, n: u64) {
        if n > 0 {
            Self::add(&self.tokens, self.width_ms, now_ms, n);
        }
    }

    pub fn requests(&self, now_ms: u64) -> u64 {
        Self::sum(&self.reqs, self.width_ms, now_ms)
    }

    pub fn tokens(&self, now_ms: u64) -> u64 {
        Self::sum(&self.tokens, self.width_ms, now_ms)
    }

    /// Non-empty buckets as (position, packed value), so snapshots stay small.
    fn raw(&self) -> (SparseBuckets, SparseBuckets) {
        let used = |c: &[AtomicU64; N]| {
            c.iter()
                .enumerate()
                .map(|(i, a)| (i as u16, a.load(Ordering::Relaxed)))
                .filter(|(_, v)| v & 0xffff_ffff != 0)
                .collect::<Vec<_>>()
        };
        (used(&self.reqs), used(&self.tokens))
    }

    fn restore(&self, reqs: &[(u16, u64)], tokens: &[(u16, u64)]) {
        for (cells, saved) in [(&self.reqs, reqs), (&self.tokens, tokens)] {
            for (i, v) in saved {
                if let Some(cell) = cells.get(usize::from(*i)) {
                    cell.store(*v, Ordering::Relaxed);
                }
            }
        }
    }
}

pub const MINUTE_BUCKETS: usize = 60;
pub const DAY_BUCKETS: usize = 144;

/// Why a slot cannot take a request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// Cooling down after an upstream failure, free again in `ms`.
    Cooling { ms: u64 },
    /// A rate window is full, with room again in `ms`.
    Limited { ms: u64 },
    /// The request alone exceeds a token limit of this model; it will never fit.
    TooLarge,
}

/// Usage and cooldown of one (platform, model, key).
pub struct Slot {
    minute: Window<MINUTE_BUCKETS>,
    day: Window<DAY_BUCKETS>,
    cooldown_until: AtomicU64,
    strikes: AtomicU32,
    last_strike_ms: AtomicU64,
}

/// Cooldown ladder for repeated rate limits: 60 s doubling, capped at 15 min.
pub const BASE_COOLDOWN_MS: u64 = 60_000;
pub const MAX_COOLDOWN_MS: u64 = 15 * 60_000;

impl Default for Slot {
    fn default() -> Self {
        Slot {
            minute: Window::new(1_000),
            day: Window::new(600_000),
            cooldown_until: AtomicU64::new(0),
            strikes: AtomicU32::new(0),
            last_strike_ms: AtomicU64::new(0),
        }
    }
}

impl Slot {
    pub fn record_request(&self, now_ms: u64) {
        self.minute.add_request(now_ms);
        self.day.add_request(now_ms);
    }

    pub fn record_tokens(&self, now_ms: u64, n: u64) {
        self.minute.add_tokens(now_ms, n);
        self.day.add_tokens(now_ms, n);
    }

    pub fn cooldown_remaining(&self, now_ms: u64) -> u64 {
        self.cooldown_until
            .load(Ordering::Relaxed)
            .saturating_sub(now_ms)
    }

    /// Cools until `until_ms` unless already cooling longer.
    pub fn cool_until(&self, until_ms: u64) {
        self.cooldown_until.fetch_max(until_ms, Ordering::AcqRel);
    }

    /// A rate limit without a provider hint: 60 s, doubling per repeat within the last cooldown
    /// period, capped at 15 min. Returns the cooldown applied.
    pub fn cool_escalating(&self, now_ms: u64) -> u64 {
        let last = self.last_strike_ms.swap(now_ms, Ordering::AcqRel);
        let strikes = if now_ms.saturating_sub(last) > MAX_COOLDOWN_MS * 2 {
            self.strikes.store(1, Ordering::Relaxed);
            1
        } else {
            self.strikes.fetch_add(1, Ordering::AcqRel) + 1
        };
        let ms = (BASE_COOLDOWN_MS << (strikes - 1).min(8)).min(MAX_COOLDOWN_MS);
        self.cool_until(now_ms + ms);
        ms
    }

    /// A success ends the escalation.
    /// Ends the cooldown and forgets the strikes (the user cleared it by hand).
    pub fn clear_cooldown(&self) {
        self.cooldown_until.store(0, Ordering::Release);
        self.strikes.store(0, Ordering::Relaxed);
    }

    pub fn clear_strikes(&self) {
        if self.strikes.load(Ordering::Relaxed) != 0 {
            self.strikes.store(0, Ordering::Relaxed);
        }
    }

    /// Checks cooldown and limits for a request of `tokens` estimated tokens.
    pub fn admits(&self, limits: &Limits, now_ms: u64, tokens: u64) -> Result<(), Blocked> {
        let cooling = self.cooldown_remaining(now_ms);
        if cooling > 0 {
            return Err(Blocked::Cooling { ms: cooling });
        }
        check_limits(self, limits, now_ms, tokens)
    }

    pub fn usage(&self, now_ms: u64) -> (u64, u64, u64, u64) {
        (
            self.minute.requests(now_ms),
            self.day.requests(now_ms),
            self.minute.tokens(now_ms),
            self.day.tokens(now_ms),
        )
    }

    pub fn snapshot(&self) -> SlotSnapshot {
        let (min_r, min_t) = self.minute.raw();
        let (day_r, day_t) = self.day.raw();
        SlotSnapshot {
            minute_reqs: min_r,
            minute_tokens: min_t,
            day_reqs: day_r,
            day_tokens: day_t,
            cooldown_until: self.cooldown_until.load(Ordering::Relaxed),
            strikes: self.strikes.load(Ordering::Relaxed),
        }
    }

    pub fn restore(&self, s: &SlotSnapshot) {
        self.minute.restore(&s.minute_reqs, &s.minute_tokens);
        self.day.restore(&s.day_reqs, &s.day_tokens);
        self.cooldown_until
            .store(s.cooldown_until, Ordering::Relaxed);
        self.strikes.store(s.strikes, Ordering::Relaxed);
    }
}

fn check_limits(slot: &Slot, limits: &Limits, now_ms: u64, tokens: u64) -> Result<(), Blocked> {
    // A request that can never fit is reported as such, whatever the current usage.
    if limits.tpm.is_some_and(|t| tokens > t) || limits.tpd.is_some_and(|t| tokens > t) {
        return Err(Blocked::TooLarge);
    }
    let limited = |ms: u64| Err(Blocked::Limited { ms: ms.max(1) });
    if limits
        .rpm
        .is_some_and(|rpm| slot.minute.requests(now_ms) >= u64::from(rpm))
    {
        return limited(Window::oldest_expiry(&slot.minute.reqs, 1_000, now_ms));
    }
    if limits
        .rpd
        .is_some_and(|rpd| slot.day.requests(now_ms) >= u64::from(rpd))
    {
        return limited(Window::oldest_expiry(&slot.day.reqs, 600_000, now_ms));
    }
    if limits
        .tpm
        .is_some_and(|tpm| slot.minute.tokens(now_ms) + tokens > tpm)
    {
        return limited(Window::oldest_expiry(&slot.minute.tokens, 1_000, now_ms));
    }
    if limits
        .tpd
        .is_some_and(|tpd| slot.day.tokens(now_ms) + tokens > tpd)
    {
        return limited(Window::oldest_expiry(&slot.day.tokens, 600_000, now_ms));
    }
    Ok(())
}

/// The persisted form of a slot: raw packed buckets (their period indexes are absolute, so
/// they stay correct across a restart) and the cooldown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SlotSnapshot {
    pub minute_reqs: SparseBuckets,
    pub minute_tokens: SparseBuckets,
    pub day_reqs: SparseBuckets,
    pub day_tokens: SparseBuckets,
    pub cooldown_until: u64,
    pub strikes: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_795_500_000_000;

    #[test]
    fn minute_window_slides() {
        let s = Slot::default();
        for i in 0..5 {
            s.record_request(T0 + i * 10_000);
        }
        assert_eq!(s.usage(T0 + 40_000).0, 5);
        assert_eq!(
            s.usage(T0 + 60_000).0,
            4,
            "the first request left the window after 60 s"
        );
        assert_eq!(s.usage(T0 + 101_000).0, 0);
        assert_eq!(
            s.usage(T0 + 40_000).1,
            5,
            "the day window still counts them"
        );
    }

    #[test]
    fn day_window_holds_a_day() {
        let s = Slot::default();
        s.record_request(T0);
        s.record_tokens(T0, 700);
        assert_eq!(s.usage(T0 + 23 * 3_600_000).1, 1);
        assert_eq!(s.usage(T0 + 23 * 3_600_000).3, 700);
        assert_eq!(s.usage(T0 + 25 * 3_600_000).1, 0);
    }

    #[test]
    fn limits_block_with_time_until_free() {
        let s = Slot::default();
        let limits = Limits {
            rpm: Some(2),
            rpd: Some(3),
            tpm: Some(1000),
            tpd: None,
        };
        assert_eq!(s.admits(&limits, T0, 100), Ok(()));
        s.record_request(T0);
        s.record_request(T0 + 500);
        match s.admits(&limits, T0 + 1_000, 100) {
            Err(Blocked::Limited { ms }) => assert!((58_000..=60_000).contains(&ms), "{ms}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.admits(&limits, T0 + 61_000, 100), Ok(()));
        s.record_request(T0 + 61_000);
        assert!(
            matches!(
                s.admits(&limits, T0 + 200_000, 100),
                Err(Blocked::Limited { .. })
            ),
            "rpd 3 reached"
        );
        assert_eq!(s.admits(&limits, T0, 5_000), Err(Blocked::TooLarge));
    }

    #[test]
    fn token_limits_count_recorded_tokens() {
        let s = Slot::default();
        let limits = Limits {
            tpm: Some(1000),
            ..Limits::default()
        };
        s.record_tokens(T0, 900);
        assert!(matches!(
            s.admits(&limits, T0 + 10, 200),
            Err(Blocked::Limited { .. })
        ));
        assert_eq!(s.admits(&limits, T0 + 10, 100), Ok(()));
    }

    #[test]
    fn cooldown_escalates_and_caps() {
        let s = Slot::default();
        assert_eq!(s.cool_escalating(T0), 60_000);
        assert_eq!(s.cool_escalating(T0 + 61_000), 120_000);
        assert_eq!(s.cool_escalating(T0 + 200_000), 240_000);
        for i in 0..10 {
            s.cool_escalating(T0 + 500_000 + i);
        }
        assert_eq!(s.cool_escalating(T0 + 600_000), MAX_COOLDOWN_MS);
        assert!(matches!(
            s.admits(&Limits::default(), T0 + 600_001, 1),
            Err(Blocked::Cooling { .. })
        ));
        // After a long quiet period the ladder starts again.
        assert_eq!(s.cool_escalating(T0 + 10 * 3_600_000), 60_000);
    }

    #[test]
    fn snapshot_restores_counts() {
        let s = Slot::default();
        s.record_request(T0);
        s.record_tokens(T0, 42);
        s.cool_until(T0 + 5_000);
        let snap = s.snapshot();
        let t = Slot::default();
        t.restore(&snap);
        assert_eq!(t.usage(T0 + 1), s.usage(T0 + 1));
        assert_eq!(t.cooldown_remaining(T0), 5_000);
    }

    #[test]
    fn concurrent_adds_are_not_lost() {
        let s = std::sync::Arc::new(Slot::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        s.record_request(T0);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.usage(T0).0, 40_000);
    }
}
