//! Entry points for the fuzz targets in `tests/fuzz` (compiled only under `cfg(fuzzing)`,
//! which cargo-fuzz sets): the request reader driven from a byte slice instead of a socket, and
//! the multipart form reader over any bytes and any boundary.

use std::io;
use std::time::{Duration, Instant};

use super::body::{self, Streamed};
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
/// bytes end or one is refused: buffered, or (when the input's length is odd) streamed to a
/// handler in 1 KiB reads. Must never panic, and never buffer or hand out more body than the
/// limit.
pub fn requests(bytes: &[u8]) {
    const LIMIT: usize = 64 * 1024;
    let budget = BodyBudget::new(LIMIT);
    let mut input = Input::new();
    input.pending.extend_from_slice(bytes);
    let mut source = Ended;
    let streamed = bytes.len() % 2 == 1;
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
        if streamed {
            let Ok(mut state) = Streamed::begin(head.framing, head.expect_continue, LIMIT, clock)
            else {
                return;
            };
            let (mut cached, mut buf, mut total) = (None, [0u8; 1024], 0usize);
            loop {
                match body::read(
                    &mut input.pending,
                    &mut cached,
                    &mut state,
                    &mut source,
                    &mut buf,
                ) {
                    Ok(0) => break,
                    Ok(n) => total += n,
                    Err(_) => return,
                }
                assert!(
                    total <= LIMIT,
                    "a streamed body handed out more than its limit"
                );
            }
            continue;
        }
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

/// Reads a multipart form from `bytes`: the first byte picks the boundary's length, the next
/// ones are the boundary (as text), the byte after them the size of each read, the rest the
/// body. Must never panic, and never hand the sink or keep more than the limits allow.
pub fn multipart(bytes: &[u8]) {
    use super::multipart::{Limits, boundary, read_form};
    let Some((&n, rest)) = bytes.split_first() else {
        return;
    };
    let n = usize::from(n % 80).min(rest.len());
    let (b, rest) = rest.split_at(n);
    let b = String::from_utf8_lossy(b);
    // The Content-Type parser sees the same boundary, quoted and not.
    let _ = boundary(Some(&format!("multipart/form-data; boundary={b}")));
    let _ = boundary(Some(&format!("multipart/form-data; boundary=\"{b}\"")));
    let Some((&step, mut body)) = rest.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let limits = Limits {
        file: 4096,
        field: 256,
        parts: 8,
    };
    let mut filed = 0u64;
    let got = read_form(
        &b,
        "file",
        limits,
        |buf| {
            let k = body.len().min(buf.len()).min(step);
            buf[..k].copy_from_slice(&body[..k]);
            body = &body[k..];
            Ok(k)
        },
        |piece| {
            filed += piece.len() as u64;
            Ok(())
        },
    );
    assert!(
        filed <= limits.file,
        "the sink got more than the file limit"
    );
    if let Ok(form) = got {
        assert!(
            form.fields.len() < limits.parts + 1,
            "more parts than the limit"
        );
        assert!(form.fields.iter().all(|(_, v)| v.len() <= limits.field));
        assert!(form.file.is_none_or(|f| f.size == filed));
    }
}
