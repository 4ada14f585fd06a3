//! Failure counting per client address, for everything a stranger can guess at: dashboard
//! passwords and setup codes, and client API keys.
//!
//! Owns which addresses count as one ([`Peer`]: an IPv4 address, or an IPv6 /64, since a host
//! on an IPv6 LAN can pick any of 2^64 addresses by itself), a bounded table of failures per
//! peer in a fixed window ([`Failures`]), and a process-wide failure budget that refills slowly
//! ([`Budget`]). Callers pass the time in, so the rules are tested without a clock. This
//! module must not do I/O or know what is being guessed.

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;

/// Peers tracked at once; beyond this the table drops expired rows, then the oldest.
const MAX_PEERS: usize = 4096;

/// The unit a limit applies to: one IPv4 address, or one IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    V4([u8; 4]),
    V6([u8; 8]),
}

impl Peer {
    pub fn of(ip: IpAddr) -> Peer {
        match ip {
            IpAddr::V4(v4) => Peer::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // A v4 client on a dual-stack socket is that v4 address.
                Some(v4) => Peer::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    Peer::V6(prefix)
                }
            },
        }
    }
}

/// At most `limit` failures per peer in a window of `window_ms` that starts at the peer's
/// first failure.
pub struct Failures {
    limit: u32,
    window_ms: u64,
    peers: Mutex<HashMap<Peer, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    since_ms: u64,
}

impl Failures {
    pub fn new(limit: u32, window_ms: u64) -> Failures {
        Failures {
            limit,
            window_ms,
            peers: Mutex::default(),
        }
    }

    /// `Err(seconds until the window ends)` while `ip`'s peer has used up its failures.
    pub fn check(&self, ip: IpAddr, now_ms: u64) -> Result<(), u64> {
        let peers = self.peers.lock();
        match peers.get(&Peer::of(ip)) {
            Some(w) if self.is_full(w, now_ms) => Err(self.retry_after(w, now_ms)),
            _ => Ok(()),
        }
    }

    /// Counts one failure for `ip`'s peer, unless it has none left: `Err(seconds until the
    /// window ends)` then, and nothing is counted. Taken *before* a guess is judged, so guesses
    /// that arrive together cannot all pass a check that none of them has failed yet.
    pub fn take(&self, ip: IpAddr, now_ms: u64) -> Result<(), u64> {
        let peer = Peer::of(ip);
        let mut peers = self.peers.lock();
        if !peers.contains_key(&peer) {
            self.make_room(&mut peers, now_ms);
        }
        let w = peers.entry(peer).or_insert(Window {
            count: 0,
            since_ms: now_ms,
        });
        if now_ms >= w.since_ms.saturating_add(self.window_ms) {
            *w = Window {
                count: 0,
                since_ms: now_ms,
            };
        }
        if w.count >= self.limit {
            return Err(self.retry_after(w, now_ms));
        }
        w.count += 1;
        Ok(())
    }

    /// Takes back one failure [`Failures::take`] counted (the guess was never judged).
    pub fn give_back(&self, ip: IpAddr) {
        if let Some(w) = self.peers.lock().get_mut(&Peer::of(ip)) {
            w.count = w.count.saturating_sub(1);
        }
    }

    /// A success: the peer's count starts over.
    pub fn forgive(&self, ip: IpAddr) {
        self.peers.lock().remove(&Peer::of(ip));
    }

    fn is_full(&self, w: &Window, now_ms: u64) -> bool {
        w.count >= self.limit && now_ms < w.since_ms.saturating_add(self.window_ms)
    }

    fn retry_after(&self, w: &Window, now_ms: u64) -> u64 {
        (w.since_ms + self.window_ms)
            .saturating_sub(now_ms)
            .div_ceil(1000)
            .max(1)
    }

    fn make_room(&self, peers: &mut HashMap<Peer, Window>, now_ms: u64) {
        if peers.len() < MAX_PEERS {
            return;
        }
        let window = self.window_ms;
        peers.retain(|_, w| now_ms < w.since_ms.saturating_add(window));
        if peers.len() >= MAX_PEERS
            && let Some(oldest) = peers
                .iter()
                .min_by_key(|(_, w)| w.since_ms)
                .map(|(k, _)| *k)
        {
            peers.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.lock().len()
    }
}

/// Failures the whole process allows, whoever makes them: a bucket of `capacity` that refills
/// one failure every `refill_ms`. Guesses from many addresses at once each stay under their
/// own limit; this is what keeps their sum slow. A success gives its token back.
pub struct Budget {
    capacity: u32,
    refill_ms: u64,
    state: Mutex<BudgetState>,
}

#[derive(Debug, Clone, Copy)]
struct BudgetState {
    tokens: u32,
    /// When the next token is due (meaningful while the bucket is not full).
    next_ms: u64,
}

impl Budget {
    pub fn new(capacity: u32, refill_ms: u64) -> Budget {
        Budget {
            capacity,
            refill_ms,
            state: Mutex::new(BudgetState {
                tokens: capacity,
                next_ms: 0,
            }),
        }
    }

    /// Takes one token; `Err(seconds until the next one)` when none is left.
    pub fn take(&self, now_ms: u64) -> Result<(), u64> {
        let mut s = self.state.lock();
        self.refill(&mut s, now_ms);
        if s.tokens == 0 {
            return Err(s.next_ms.saturating_sub(now_ms).div_ceil(1000).max(1));
        }
        if s.tokens == self.capacity {
            s.next_ms = now_ms + self.refill_ms;
        }
        s.tokens -= 1;
        Ok(())
    }

    /// Gives a token back (the attempt it paid for succeeded).
    pub fn refund(&self) {
        let mut s = self.state.lock();
        s.tokens = (s.tokens + 1).min(self.capacity);
    }

    fn refill(&self, s: &mut BudgetState, now_ms: u64) {
        while s.tokens < self.capacity && now_ms >= s.next_ms {
            s.tokens += 1;
            s.next_ms += self.refill_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_ipv6_64_is_one_peer_and_a_mapped_v4_is_its_v4() {
        assert_eq!(
            Peer::of(ip("2001:db8:1:2::1")),
            Peer::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            Peer::of(ip("2001:db8:1:2::1")),
            Peer::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(Peer::of(ip("::ffff:192.0.2.7")), Peer::of(ip("192.0.2.7")));
        assert_ne!(Peer::of(ip("192.0.2.7")), Peer::of(ip("192.0.2.8")));
    }

    #[test]
    fn failures_are_taken_before_they_are_judged_and_end_with_the_window() {
        let f = Failures::new(5, 900_000);
        let a = ip("192.0.2.7");
        for _ in 0..5 {
            assert!(f.take(a, 1_000).is_ok());
        }
        assert_eq!(f.take(a, 1_000), Err(900), "the sixth is refused");
        assert_eq!(f.check(a, 2_000), Err(899));
        assert!(f.check(ip("192.0.2.8"), 2_000).is_ok(), "per peer");
        assert!(f.check(a, 901_000).is_ok(), "the window ends");
        assert!(f.take(a, 901_000).is_ok(), "and the count starts over");
        f.forgive(a);
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn a_neighbour_in_the_same_64_shares_the_count() {
        let f = Failures::new(2, 60_000);
        assert!(f.take(ip("2001:db8::1"), 0).is_ok());
        assert!(f.take(ip("2001:db8::2"), 0).is_ok());
        assert!(f.take(ip("2001:db8::3"), 0).is_err());
        assert!(f.take(ip("2001:db8:0:1::1"), 0).is_ok(), "the next /64");
    }

    #[test]
    fn a_failure_given_back_is_not_counted() {
        let f = Failures::new(1, 60_000);
        let a = ip("192.0.2.1");
        assert!(f.take(a, 0).is_ok());
        f.give_back(a);
        assert!(f.take(a, 0).is_ok());
        assert_eq!(f.take(a, 1_000), Err(59));
    }

    #[test]
    fn the_table_is_bounded() {
        let f = Failures::new(5, 60_000);
        for i in 0..(MAX_PEERS as u32 + 50) {
            let _ = f.take(IpAddr::from(i.to_be_bytes()), u64::from(i));
        }
        assert!(f.len() <= MAX_PEERS);
    }

    #[test]
    fn the_budget_runs_out_refills_slowly_and_takes_refunds() {
        let b = Budget::new(3, 10_000);
        for _ in 0..3 {
            assert!(b.take(0).is_ok());
        }
        assert_eq!(b.take(1_000), Err(9));
        assert!(b.take(10_000).is_ok(), "one token after one period");
        assert!(b.take(10_001).is_err());
        b.refund();
        assert!(b.take(10_002).is_ok(), "a refund is a token");
        for _ in 0..3 {
            assert!(b.take(40_000).is_ok());
        }
        assert!(b.take(40_000).is_err(), "never more than the capacity");
    }
}
