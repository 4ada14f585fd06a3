//! Entry points for the fuzz targets in `tests/fuzz` (compiled only under `cfg(fuzzing)`,
//! which cargo-fuzz sets): the request reader driven from a byte slice instead of a socket.

use std::io;
use std::time::{Duration, Instant};

use super::request::{BodyBudget, BodyClock, BodyShare, Input, Source};

/// A client whose bytes are all already buffered; reads after them see the end.
struct Ended;

impl Source for Ended {
    fn receive(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }

    fn send(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn set_wait(&self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

/// Reads every request in `bytes` (heads, bodies, pipelining) as a connection would, until the
/// bytes end or one is refused. Must never panic, and never buffer more body than the limit.
pub fn requests(bytes: &[u8]) {
    const LIMIT: usize = 64 * 1024;
    let budget = BodyBudget::new(LIMIT);
    let mut input = Input::new();
    input.pending.extend_from_slice(bytes);
    let mut source = Ended;
    for _ in 0..64 {
        let head =
            match input.read_head(&mut source, Duration::from_secs(1), Duration::from_secs(1)) {
                Ok(Some(head)) => head,
                Ok(None) | Err(_) => return,
            };
        let mut share = BodyShare::new(&budget);
        let clock = BodyClock {
            per_read: Duration::from_secs(1),
            deadline: Instant::now() + Duration::from_secs(1),
        };
        if input
            .read_body(&mut source, &head, LIMIT, &mut share, clock)
            .is_err()
        {
            return;
        }
        assert!(
            input.body.len() <= LIMIT,
            "a body over its limit was buffered"
        );
    }
}
