//! Socket I/O shared by the HTTP layer and the upstream transport: reads and writes that
//! survive `may`'s stray results, the shortest wait `may` can honour, and a small send on a
//! socket borrowed by its descriptor.
//!
//! may 0.3.51 sometimes hands a coroutine's socket operation an error that does not belong to
//! it: seen as `EINPROGRESS` from a read on an established keep-alive connection, about one
//! request in a few thousand under load (the benchmark's c=32 rounds), which closed the client's
//! connection mid-session. The operation did not take place, so it is tried again; a real error
//! repeats and is returned. Every socket read and write of the HTTP layer and the upstream
//! transport goes through here.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::RawFd;

/// The shortest socket timeout to hand `may`: it treats a sub-millisecond one as none at all
/// (seen: a 14 µs wait blocked for 9 s), so a wait with less left than this counts as over.
pub const MIN_WAIT: std::time::Duration = std::time::Duration::from_millis(2);

/// The longest a socket wait that usually ends early may arm its timer for. may keeps a
/// socket's timeout timer in a list of timers of the same duration, and cannot take out the
/// newest one: a wait that ends before its timer (the usual case) leaves that timer queued
/// until it expires, an allocation each. With 30 s timers on the client socket, a connection
/// serving requests back to back left one per request: ~50 000 timers (~3 MiB) held at
/// 20 000 requests/s. Waits that are usually cut short are served in slices of this length;
/// the client's next request and the upstream watch share it, so they share may's list too.
pub const SHORT_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Consecutive stray results tolerated before the error is believed.
const ATTEMPTS: usize = 4;

/// An error that says nothing about the socket: retry.
pub fn spurious(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted || e.raw_os_error() == Some(libc::EINPROGRESS)
}

pub fn read(s: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut tries = 0;
    loop {
        match s.read(buf) {
            Err(e) if spurious(&e) && tries < ATTEMPTS => tries += 1,
            other => return other,
        }
    }
}

pub fn write_all(s: &mut impl Write, mut buf: &[u8]) -> io::Result<()> {
    let mut tries = 0;
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                tries = 0;
            }
            Err(e) if spurious(&e) && tries < ATTEMPTS => tries += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub fn write_all_vectored(s: &mut impl Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    let mut tries = 0;
    while !slices.is_empty() {
        match s.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                IoSlice::advance_slices(&mut slices, n);
                tries = 0;
            }
            Err(e) if spurious(&e) && tries < ATTEMPTS => tries += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends a few bytes on a socket that another handle of this coroutine owns (a keep-alive
/// comment on a client connection while its handler waits on an upstream), without a second
/// handle: no `dup`, no second event-loop registration. Never waits for room: with the send
/// buffer full nothing is sent and `Ok(false)` comes back (the peer has unread data queued, so
/// it needs no keep-alive yet). A send cut short — never seen for a few bytes, but possible —
/// is finished in short naps, within `patience`, so the peer never sees half a frame.
pub fn send_small(fd: RawFd, mut bytes: &[u8], patience: std::time::Duration) -> io::Result<bool> {
    let deadline = std::time::Instant::now() + patience;
    let mut started = false;
    while !bytes.is_empty() {
        // SAFETY: `fd` is an open socket owned by the calling coroutine's connection for the
        // duration of the call; `bytes` is a live slice. MSG_DONTWAIT keeps the call from
        // blocking the worker thread; MSG_NOSIGNAL turns a closed peer into EPIPE, not a signal.
        let n = unsafe {
            libc::send(
                fd,
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            bytes = &bytes[n as usize..];
            started = true;
            continue;
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock if !started => return Ok(false),
            io::ErrorKind::WouldBlock if std::time::Instant::now() < deadline => {
                may::coroutine::sleep(MIN_WAIT)
            }
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Err(io::ErrorKind::TimedOut.into()),
            _ => return Err(err),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails with `kind` for the first `fail` calls, then reads or writes normally.
    struct Flaky {
        fail: usize,
        errno: i32,
        written: Vec<u8>,
    }

    impl Read for Flaky {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail > 0 {
                self.fail -= 1;
                return Err(io::Error::from_raw_os_error(self.errno));
            }
            buf[0] = b'x';
            Ok(1)
        }
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.fail > 0 {
                self.fail -= 1;
                return Err(io::Error::from_raw_os_error(self.errno));
            }
            let n = buf.len().min(3);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn flaky(fail: usize, errno: i32) -> Flaky {
        Flaky {
            fail,
            errno,
            written: Vec::new(),
        }
    }

    #[test]
    fn stray_in_progress_is_retried_and_real_errors_are_not() {
        let mut buf = [0u8; 4];
        assert_eq!(read(&mut flaky(2, libc::EINPROGRESS), &mut buf).unwrap(), 1);
        assert!(read(&mut flaky(ATTEMPTS + 1, libc::EINPROGRESS), &mut buf).is_err());
        let e = read(&mut flaky(1, libc::ECONNRESET), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);

        let mut w = flaky(1, libc::EINPROGRESS);
        write_all(&mut w, b"hello world").unwrap();
        assert_eq!(w.written, b"hello world");
        let mut w = flaky(1, libc::EPIPE);
        assert!(write_all(&mut w, b"x").is_err());
        let mut w = flaky(2, libc::EINTR);
        write_all_vectored(&mut w, &mut [IoSlice::new(b"ab"), IoSlice::new(b"cdef")]).unwrap();
        assert_eq!(w.written, b"abcdef");
    }

    #[test]
    fn a_small_send_goes_whole_or_not_at_all() {
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let fd = client.as_raw_fd();
        let patience = std::time::Duration::from_millis(50);
        assert!(send_small(fd, b": keep-alive\n\n", patience).unwrap());
        let mut got = [0u8; 14];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b": keep-alive\n\n");
        // A peer that reads nothing: once the buffers are full a send is skipped (or, cut
        // short and not finished within its patience, an error); it never blocks.
        let frame = [b'x'; 100];
        let started = std::time::Instant::now();
        let mut sent = 0usize;
        let last = loop {
            match send_small(fd, &frame, patience) {
                Ok(true) => sent += 1,
                other => break other,
            }
        };
        assert!(sent > 0);
        assert!(
            matches!(&last, Ok(false))
                || matches!(&last, Err(e) if e.kind() == io::ErrorKind::TimedOut),
            "{last:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }
}
