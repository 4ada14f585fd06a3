//! ureq's transport over `may::net::TcpStream`, so a waiting upstream call parks only its
//! coroutine, never a worker thread. TLS is ureq's rustls connector chained on top.
//!
//! While a read waits, it wakes twice a second to run the coroutine's [`watch`]: if the client
//! that asked for this call has gone, the read fails at once (and the upstream connection is
//! dropped, not pooled); if a stream is committed and quiet, a keep-alive comment goes out.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use may::net::TcpStream;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
};

use crate::crypto::Secret;
use crate::net::MIN_WAIT;

/// Upstream reads wake this often to check the client and send keep-alives (the short wait
/// of `net`, so the timers of both share one list in may).
const WATCH_TICK: Duration = crate::net::SHORT_WAIT;
/// How long a keep-alive cut short by a full send buffer may take to finish.
const KEEPALIVE_PATIENCE: Duration = Duration::from_secs(10);
/// Buffer sizes per upstream connection. Both are zero-filled on first use, so every open
/// stream pays for them: 8 KiB holds any provider's response head (ureq reads SSE bodies
/// through it in pieces), 4 KiB holds our request head (bodies go out in pieces).
pub const INPUT_BUFFER: usize = 8 * 1024;
pub const OUTPUT_BUFFER: usize = 4 * 1024;

/// Opens plain TCP connections with `may` sockets, unless an earlier link of the chain (a
/// proxy) already made the connection, which it passes on.
#[derive(Debug, Default)]
pub struct MayConnector {
    lane: Option<Lane>,
}

/// The worker a connector's sockets belong to. `may` hands a socket's events to worker
/// `fd % workers`, and a coroutine runs where its event arrived: a request whose upstream
/// socket sits on another worker than its client socket crosses cores twice per request (its
/// stack and data follow it through the caches), and an event for the socket it is not yet
/// waiting on wakes the other worker for nothing. Measured on paced streams (one at a time):
/// the added time to the first frame went from 199–239 µs to 145–196 µs with lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    pub index: usize,
    pub count: usize,
}

impl Lane {
    /// The lane of the coroutine making the call: its client socket's worker (lane 0 for
    /// background calls, which have no client).
    pub fn current(count: usize) -> Lane {
        let index = watch::client_fd().map_or(0, |fd| fd as usize % count.max(1));
        Lane { index, count }
    }

    fn holds(self, fd: RawFd) -> bool {
        self.count <= 1 || fd as usize % self.count == self.index
    }
}

impl MayConnector {
    /// A connector whose sockets belong to `lane`'s worker.
    pub fn on_lane(lane: Lane) -> MayConnector {
        MayConnector { lane: Some(lane) }
    }
}

/// Duplicates tried before a connection stays where it is. The lowest free descriptors come
/// first, so one or two tries usually do; but other threads free descriptors meanwhile, and
/// each freed one with the wrong remainder costs a try: seven tries ran out once while the
/// unit tests ran in parallel.
const MAX_LANE_TRIES: usize = 64;

/// Moves `stream` to a descriptor of `lane`'s worker: duplicates it until one is, then lets the
/// others and the original go. Keeps the original when duplicating fails or takes too many
/// tries (the call still works, on another worker).
fn onto_lane(stream: TcpStream, lane: Lane) -> TcpStream {
    use std::os::fd::AsRawFd;
    if lane.holds(stream.as_raw_fd()) {
        return stream;
    }
    let mut passed_over = Vec::new();
    while passed_over.len() < MAX_LANE_TRIES.max(2 * lane.count + 1) {
        match stream.try_clone() {
            Ok(dup) if lane.holds(dup.as_raw_fd()) => return dup,
            Ok(dup) => passed_over.push(dup),
            Err(_) => break,
        }
    }
    stream
}

impl<In: Transport> Connector<In> for MayConnector {
    type Out = Either<In, MayTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(t) = chained {
            return Ok(Some(Either::A(t)));
        }
        self.connect_on_lane(details).map(|t| Some(Either::B(t)))
    }
}

impl MayConnector {
    /// A TCP connection to one of `details.addrs` (for `details.uri`'s host), within the
    /// connect timeout and the watch's deadline.
    pub fn open(details: &ConnectionDetails) -> Result<MayTransport, ureq::Error> {
        MayConnector::default().connect_on_lane(details)
    }

    fn connect_on_lane(&self, details: &ConnectionDetails) -> Result<MayTransport, ureq::Error> {
        let total = details
            .timeout
            .not_zero()
            .map(|d| *d)
            .unwrap_or(Duration::from_secs(10));
        // The request's deadline, when the watch has one, comes first.
        let total = watch::time_left().map_or(total, |left| total.min(left));
        let deadline = Instant::now() + total;
        let blocked = |why: &str| {
            log::warn!(
                "refused to connect to {}: {why}",
                details.uri.host().unwrap_or("?")
            );
            ureq::Error::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "blocked address",
            ))
        };
        // Checked again here, not only when a base URL is saved: DNS answers change.
        if let Some(why) = details.uri.host().and_then(crate::netguard::forbidden_host) {
            return Err(blocked(why));
        }
        let mut last_err = None;
        for addr in details.addrs.iter() {
            if let Some(why) = crate::netguard::forbidden_ip(addr.ip()) {
                last_err = Some(blocked(why));
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left < MIN_WAIT {
                break;
            }
            match TcpStream::connect_timeout(addr, left) {
                Ok(stream) => {
                    let stream = match self.lane {
                        Some(lane) => onto_lane(stream, lane),
                        None => stream,
                    };
                    stream.set_nodelay(true)?;
                    let buffers = LazyBuffers::new(INPUT_BUFFER, OUTPUT_BUFFER);
                    return Ok(MayTransport {
                        stream,
                        buffers,
                        read_timeout: None,
                        write_timeout: None,
                        corked: Vec::new(),
                        pooled: false,
                        forward: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    last_err = Some(ureq::Error::Timeout(details.timeout.reason))
                }
                Err(e) => last_err = Some(ureq::Error::Io(e)),
            }
        }
        Err(last_err.unwrap_or(ureq::Error::Timeout(details.timeout.reason)))
    }
}

pub struct MayTransport {
    stream: TcpStream,
    buffers: LazyBuffers,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// Request bytes held back until the first read (see `transmit_output`). Empty, and
    /// unallocated, between requests; it holds the auth header, so it is wiped when freed.
    corked: Vec<u8>,
    /// Set when ureq first asks `is_open` after the connection was used (see there).
    pooled: bool,
    /// Set on a connection to an HTTP proxy that forwards plain-HTTP requests.
    forward: Option<Box<Forward>>,
}

/// How requests to a plain-HTTP target go through an `http://` proxy: in absolute form
/// (`POST http://host:port/path HTTP/1.1`) with the proxy's credentials, as forward proxies
/// expect (many allow `CONNECT` only to port 443).
struct Forward {
    /// `http://host:port` of the target.
    origin: Box<str>,
    /// `Proxy-Authorization: Basic …\r\n`, or nothing.
    auth: Secret,
    /// The next output begins a request (a response was awaited since the last one).
    request_start: bool,
}

impl Forward {
    /// Appends `out` to `corked`, the request line's target made absolute and the proxy's
    /// credentials after it. ureq hands a request's head over whole, so its first output
    /// holds the request line; anything else goes out as it is (and the proxy refuses it).
    fn rewrite_into(&self, corked: &mut Vec<u8>, out: &[u8]) {
        let line_end = out.windows(2).position(|w| w == b"\r\n");
        let target = out.iter().position(|&b| b == b' ').map(|sp| sp + 1);
        match (target, line_end) {
            (Some(t), Some(end)) if t < end && out[t] == b'/' => {
                corked.extend_from_slice(&out[..t]);
                corked.extend_from_slice(self.origin.as_bytes());
                corked.extend_from_slice(&out[t..end + 2]);
                corked.extend_from_slice(self.auth.as_bytes());
                corked.extend_from_slice(&out[end + 2..]);
            }
            _ => corked.extend_from_slice(out),
        }
    }
}

impl Drop for MayTransport {
    fn drop(&mut self) {
        // A call that failed before its response was awaited leaves output held back.
        crate::crypto::wipe(&mut self.corked);
    }
}

impl std::fmt::Debug for MayTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MayTransport")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// Sets a socket timeout only when it changed. `may`'s setter is also a `setsockopt` syscall,
/// and a budget-derived wait differs on every call, so waits are first rounded *down* (never
/// past the budget; a read that times out early just waits again): to 100 ms above a second,
/// to 1 ms below, never under [`MIN_WAIT`].
fn set_timeout(
    cache: &mut Option<Duration>,
    want: Duration,
    apply: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    let grain = if want >= Duration::from_secs(1) {
        100
    } else {
        1
    };
    let want = Duration::from_millis(want.as_millis() as u64 / grain * grain).max(MIN_WAIT);
    if *cache != Some(want) {
        apply(Some(want))?;
        *cache = Some(want);
    }
    Ok(())
}

impl Transport for MayTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    /// ureq hands the request head and the body over in separate calls, and a socket write for
    /// each would send them in separate segments (`TCP_NODELAY`): twice the system calls, and an
    /// upstream that wakes for a head without its body. So output is held back up to
    /// [`OUTPUT_BUFFER`] bytes and leaves in one write, at the latest when ureq waits for the
    /// response (every request ends in `await_input`; so does a TLS handshake step).
    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.pooled = false;
        if self.corked.capacity() == 0 {
            // Room for the most it holds before a flush, so it never moves (a move would
            // free a copy of the auth header unwiped).
            let forwarding = self
                .forward
                .as_ref()
                .map_or(0, |f| f.origin.len() + f.auth.as_bytes().len());
            self.corked.reserve_exact(2 * OUTPUT_BUFFER + forwarding);
        }
        let out = &self.buffers.output()[..amount];
        match &mut self.forward {
            Some(f) if f.request_start && amount > 0 => {
                f.request_start = false;
                f.rewrite_into(&mut self.corked, out);
            }
            _ => self.corked.extend_from_slice(out),
        }
        if self.corked.len() > OUTPUT_BUFFER {
            return self.flush(timeout);
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.pooled = false;
        if !self.corked.is_empty() {
            self.flush(timeout)?;
        }
        if let Some(f) = &mut self.forward {
            f.request_start = true;
        }
        let timeout = timeout.for_read();
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        if watch::is_buffered_only() {
            return self.take_arrived(timeout.reason);
        }
        let budget = timeout.not_zero().map(|d| *d);
        let started = Instant::now();
        loop {
            let left = budget.map(|b| b.saturating_sub(started.elapsed()));
            let Some(mut wait) = read_wait(left, watch::active()) else {
                return Err(ureq::Error::Timeout(timeout.reason));
            };
            if let Some(left) = watch::time_left() {
                if left < MIN_WAIT {
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                wait = wait.min(left);
            }
            let stream = &self.stream;
            set_timeout(&mut self.read_timeout, wait, |d| stream.set_read_timeout(d))?;
            let input = self.buffers.input_append_buf();
            match crate::net::read(&mut self.stream, input) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    if watch::tick().is_err() {
                        // Not ConnectionAborted/Reset: ureq reads those as a clean end of body.
                        return Err(ureq::Error::Io(io::Error::other("client disconnected")));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
    }

    /// ureq asks twice per reuse: as the connection goes back to the pool right after a
    /// response, and as it is taken out for the next request. Only the second answer matters
    /// (the peek then sees any EOF or stray bytes the first would have seen, and everything
    /// since), so the first is answered without a system call.
    fn is_open(&mut self) -> bool {
        if !self.pooled {
            self.pooled = true;
            return true;
        }
        // A pooled connection is reusable when reading would block: no EOF, no stray bytes.
        let mut byte = [0u8; 1];
        matches!(self.stream.inner().peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl MayTransport {
    /// Makes this connection to an HTTP proxy carry requests for the plain-HTTP `origin`
    /// (`http://host:port`) in absolute form, with `auth` (a whole `Proxy-Authorization`
    /// header line, or empty) on each.
    pub fn forward_to(mut self, origin: String, auth: Secret) -> MayTransport {
        self.forward = Some(Box::new(Forward {
            origin: origin.into_boxed_str(),
            auth,
            request_start: true,
        }));
        self
    }

    /// Takes what has already arrived on the socket, without waiting: with nothing there (or
    /// the end of the stream, left for a waiting read to find), a timeout.
    fn take_arrived(&mut self, reason: ureq::Timeout) -> Result<bool, ureq::Error> {
        let input = self.buffers.input_append_buf();
        // The socket is non-blocking underneath may: a read with nothing queued returns at once.
        match io::Read::read(&mut self.stream.inner(), input) {
            Ok(n) if n > 0 => {
                self.buffers.input_appended(n);
                Ok(true)
            }
            _ => Err(ureq::Error::Timeout(reason)),
        }
    }

    /// Writes the held-back output, then wipes and frees its buffer.
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let mut out = std::mem::take(&mut self.corked);
        let result = self.write_out(&out, timeout);
        crate::crypto::wipe(&mut out);
        result
    }

    fn write_out(&mut self, out: &[u8], timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        if timeout.after.is_zero() {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let mut wait = timeout
            .not_zero()
            .map(|d| *d)
            .unwrap_or(Duration::from_secs(600));
        if let Some(left) = watch::time_left() {
            wait = wait.min(left);
        }
        if wait < MIN_WAIT {
            return Err(ureq::Error::Timeout(timeout.reason));
        }
        let stream = &self.stream;
        set_timeout(&mut self.write_timeout, wait, |d| {
            stream.set_write_timeout(d)
        })?;
        match crate::net::write_all(&mut self.stream, out) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                Err(ureq::Error::Timeout(timeout.reason))
            }
            Err(e) => Err(ureq::Error::Io(e)),
        }
    }
}

/// How long one socket read may wait, given the budget left and whether a watch needs ticks;
/// `None` when the budget is spent (less than [`MIN_WAIT`] left counts as spent).
fn read_wait(left: Option<Duration>, watching: bool) -> Option<Duration> {
    if left.is_some_and(|l| l < MIN_WAIT) {
        return None;
    }
    Some(match (left, watching) {
        (Some(l), true) => l.min(WATCH_TICK),
        (Some(l), false) => l,
        (None, true) => WATCH_TICK,
        (None, false) => Duration::from_secs(600),
    })
}

/// What the coroutine making an upstream call wants checked while it waits.
pub mod watch {
    use super::*;

    struct Watch {
        client_fd: RawFd,
        gone: bool,
        heartbeat: Option<Heartbeat>,
        /// Connects and reads wait no later than this: the request's deadline until the client
        /// has its first byte (a stream may then run as long as it flows), and a short drain
        /// once the client's response is complete and only the upstream body's end is read.
        until: Option<Instant>,
        /// Reads take only what has already arrived (see [`buffered_only`]).
        buffered_only: bool,
    }

    struct Heartbeat {
        frame: Vec<u8>,
        every: Duration,
        last: Instant,
    }

    may::coroutine_local!(static WATCH: RefCell<Option<Watch>> = RefCell::new(None));

    /// Clears the watch when the call is over.
    pub struct Guard(());

    impl Drop for Guard {
        fn drop(&mut self) {
            WATCH.with(|w| *w.borrow_mut() = None);
        }
    }

    /// Watches `client_fd` for the rest of this coroutine's upstream calls (until the guard
    /// drops); no connect or read of theirs waits past `deadline`.
    pub fn client(client_fd: RawFd, deadline: Instant) -> Guard {
        WATCH.with(|w| {
            *w.borrow_mut() = Some(Watch {
                client_fd,
                gone: false,
                heartbeat: None,
                until: Some(deadline),
                buffered_only: false,
            })
        });
        Guard(())
    }

    /// Once a stream is committed: write `frame` (already framed for the client's connection)
    /// after `every` of silence.
    pub fn heartbeat(frame: Vec<u8>, every: Duration) {
        WATCH.with(|w| {
            if let Some(w) = w.borrow_mut().as_mut() {
                w.heartbeat = Some(Heartbeat {
                    frame,
                    every,
                    last: Instant::now(),
                });
            }
        });
    }

    /// The relay wrote to the client; the keep-alive clock restarts.
    pub fn wrote() {
        WATCH.with(|w| {
            if let Some(hb) = w.borrow_mut().as_mut().and_then(|w| w.heartbeat.as_mut()) {
                hb.last = Instant::now();
            }
        });
    }

    /// The client's response is complete: upstream reads from now on wait at most `d` in all,
    /// and nothing more is written to the client (a keep-alive comment would land after the
    /// response's end).
    pub fn drain_for(d: Duration) {
        WATCH.with(|w| {
            if let Some(w) = w.borrow_mut().as_mut() {
                w.heartbeat = None;
                let drained_by = Instant::now() + d;
                w.until = Some(w.until.map_or(drained_by, |u| u.min(drained_by)));
            }
        });
    }

    /// While on, upstream reads take only what has already arrived and never wait: with nothing
    /// there, a read fails as a timeout at once (ureq's body reader can be read again after
    /// one). The relay uses it to learn whether a body's end came with `[DONE]`.
    pub fn buffered_only(on: bool) {
        WATCH.with(|w| {
            if let Some(w) = w.borrow_mut().as_mut() {
                w.buffered_only = on;
            }
        });
    }

    pub(super) fn is_buffered_only() -> bool {
        WATCH.with(|w| w.borrow().as_ref().is_some_and(|w| w.buffered_only))
    }

    /// Until the guard drops, connects and reads wait no later than `at` either (an attempt's
    /// share of the request's budget); then the earlier limit applies again.
    pub fn narrow(at: Instant) -> Narrowed {
        let before = WATCH.with(|w| {
            let mut w = w.borrow_mut();
            let w = w.as_mut()?;
            let before = w.until;
            w.until = Some(before.map_or(at, |u| u.min(at)));
            Some(before)
        });
        Narrowed { before }
    }

    /// Restores the limit [`narrow`] replaced.
    pub struct Narrowed {
        /// `None`: there was no watch to narrow.
        before: Option<Option<Instant>>,
    }

    impl Drop for Narrowed {
        fn drop(&mut self) {
            if let Some(before) = self.before {
                WATCH.with(|w| {
                    if let Some(w) = w.borrow_mut().as_mut() {
                        w.until = before;
                    }
                });
            }
        }
    }

    /// The client has the response's first byte: the request's deadline no longer applies
    /// (a stream runs as long as it flows; its idle limits still do).
    pub fn committed() {
        WATCH.with(|w| {
            if let Some(w) = w.borrow_mut().as_mut() {
                w.until = None;
            }
        });
    }

    /// How much longer a connect or read may wait; `None` when nothing limits it.
    pub(in crate::upstream) fn time_left() -> Option<Duration> {
        WATCH.with(|w| {
            w.borrow()
                .as_ref()
                .and_then(|w| w.until)
                .map(|until| until.saturating_duration_since(Instant::now()))
        })
    }

    pub fn active() -> bool {
        WATCH.with(|w| w.borrow().is_some())
    }

    /// The watched client's socket, if this coroutine has a watch.
    pub(super) fn client_fd() -> Option<RawFd> {
        WATCH.with(|w| w.borrow().as_ref().map(|w| w.client_fd))
    }

    /// True once a tick has seen the client go away.
    pub fn client_gone() -> bool {
        WATCH.with(|w| w.borrow().as_ref().is_some_and(|w| w.gone))
    }

    /// Runs the checks; `Err` means the client is gone and the call should end.
    pub(super) fn tick() -> Result<(), ()> {
        WATCH.with(|w| {
            let mut w = w.borrow_mut();
            let Some(w) = w.as_mut() else { return Ok(()) };
            if w.gone || !peer_alive(w.client_fd) {
                w.gone = true;
                return Err(());
            }
            if let Some(hb) = w.heartbeat.as_mut()
                && hb.last.elapsed() >= hb.every
            {
                // The connection's own socket, by descriptor: its owner (the relay, further
                // up this coroutine's stack) is not writing while this read waits.
                match crate::net::send_small(w.client_fd, &hb.frame, KEEPALIVE_PATIENCE) {
                    Ok(true) => hb.last = Instant::now(),
                    // The client has unread bytes queued: it is not idle; try again later.
                    Ok(false) => {}
                    Err(_) => {
                        w.gone = true;
                        return Err(());
                    }
                }
            }
            Ok(())
        })
    }

    /// A non-blocking peek: EOF or an error means the peer is gone; pending bytes or
    /// would-block mean it is still there.
    fn peer_alive(fd: RawFd) -> bool {
        let mut byte = 0u8;
        // SAFETY: `fd` is the client socket owned by the connection coroutine that set this
        // watch and is still inside the handler; MSG_PEEK|MSG_DONTWAIT neither consumes nor blocks.
        let n = unsafe {
            libc::recv(
                fd,
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            return true;
        }
        if n == 0 {
            return false;
        }
        let err = io::Error::last_os_error();
        matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_waits_are_never_below_the_floor() {
        assert_eq!(read_wait(Some(Duration::from_micros(14)), true), None);
        assert_eq!(read_wait(Some(Duration::from_millis(1)), false), None);
        assert_eq!(
            read_wait(Some(Duration::from_millis(2)), false),
            Some(Duration::from_millis(2))
        );
        assert_eq!(
            read_wait(Some(Duration::from_secs(5)), true),
            Some(WATCH_TICK)
        );
        assert_eq!(read_wait(None, true), Some(WATCH_TICK));
        assert_eq!(
            read_wait(Some(Duration::from_secs(5)), false),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn timeouts_are_rounded_down_so_a_shrinking_budget_rarely_costs_a_syscall() {
        let mut cache = None;
        let mut applied = Vec::new();
        for want in [
            299_987_654u64,
            299_951_000,
            299_900_001,
            950_700,
            1_400,
            100,
        ] {
            set_timeout(&mut cache, Duration::from_micros(want), |d| {
                applied.push(d.unwrap());
                Ok(())
            })
            .unwrap();
        }
        let ms = |n| Duration::from_millis(n);
        // 299.98 s and 299.95 s share one 100 ms step; nothing rounds up past the budget.
        assert_eq!(applied, vec![ms(299_900), ms(950), ms(2)]);
    }

    /// Tries: a head and a body handed over separately must reach the upstream as one write,
    /// and only once the response is awaited; a connection the upstream closed while pooled
    /// must not be handed out again.
    #[test]
    fn head_and_body_leave_together_and_a_closed_pooled_connection_is_not_reused() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = may::go!(move || TcpStream::connect(addr).unwrap())
            .join()
            .unwrap();
        let (mut upstream, _) = listener.accept().unwrap();
        let mut t = MayTransport {
            stream,
            buffers: LazyBuffers::new(INPUT_BUFFER, OUTPUT_BUFFER),
            read_timeout: None,
            write_timeout: None,
            corked: Vec::new(),
            pooled: false,
            forward: None,
        };
        let hand_over = |t: &mut MayTransport, bytes: &[u8]| {
            t.buffers.output()[..bytes.len()].copy_from_slice(bytes);
            t.transmit_output(bytes.len(), NextTimeout::default())
                .unwrap();
        };
        hand_over(
            &mut t,
            b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n",
        );
        hand_over(&mut t, b"{}");
        upstream.set_nonblocking(true).unwrap();
        let mut got = [0u8; 256];
        assert_eq!(
            upstream.read(&mut got).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing is sent before the response is awaited"
        );
        upstream.set_nonblocking(false).unwrap();
        upstream.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        let mut t = may::go!(move || {
            assert!(t.await_input(NextTimeout::default()).unwrap());
            t
        })
        .join()
        .unwrap();
        let n = upstream.read(&mut got).unwrap();
        assert_eq!(
            &got[..n],
            b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
        );
        assert!(t.corked.capacity() == 0, "the hold-back buffer is freed");

        // Back to the pool (answered without a syscall), the upstream closes, out of the pool.
        assert!(t.is_open());
        drop(upstream);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !t.is_open(),
            "a connection closed by the upstream is not reused"
        );
    }

    /// Tries: a connection made for each lane of three ends on a descriptor of that lane's
    /// worker, still carries bytes both ways, and leaves no descriptor behind.
    #[test]
    fn a_lane_connection_gets_a_descriptor_of_its_worker() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for index in [0, 1, 2, 1, 0] {
            let lane = Lane { index, count: 3 };
            let stream = may::go!(move || onto_lane(TcpStream::connect(addr).unwrap(), lane))
                .join()
                .unwrap();
            assert_eq!(stream.as_raw_fd() as usize % 3, index);
            let (mut peer, _) = listener.accept().unwrap();
            peer.write_all(b"ping").unwrap();
            let mut stream = may::go!(move || {
                let mut stream = stream;
                let mut got = [0u8; 4];
                stream.read_exact(&mut got).unwrap();
                assert_eq!(&got, b"ping");
                stream.write_all(b"pong").unwrap();
                stream
            })
            .join()
            .unwrap();
            let mut got = [0u8; 4];
            peer.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"pong");
            stream.flush().unwrap();
        }
        // Other tests open descriptors meanwhile; a leak of one per connection stands out.
        let before = open_fds();
        for round in 0..120 {
            let lane = Lane {
                index: round % 2,
                count: 2,
            };
            let stream = may::go!(move || onto_lane(TcpStream::connect(addr).unwrap(), lane))
                .join()
                .unwrap();
            drop((stream, listener.accept().unwrap()));
        }
        let grown = open_fds().saturating_sub(before);
        assert!(grown < 40, "{grown} more descriptors after 120 connections");
        assert_eq!(
            Lane::current(4).index,
            0,
            "a call without a client is on lane 0"
        );
    }

    #[test]
    fn a_forwarded_request_line_becomes_absolute_and_carries_the_proxy_credentials() {
        let f = Forward {
            origin: "http://10.0.0.7:8080".into(),
            auth: Secret::new(b"Proxy-Authorization: Basic dTpw\r\n".to_vec()),
            request_start: true,
        };
        let mut out = Vec::new();
        f.rewrite_into(
            &mut out,
            b"POST /v1/chat?x=1 HTTP/1.1\r\nhost: 10.0.0.7:8080\r\n\r\n{}",
        );
        assert_eq!(
            out,
            b"POST http://10.0.0.7:8080/v1/chat?x=1 HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\nhost: 10.0.0.7:8080\r\n\r\n{}"
        );
        // Not a request line (no origin-form target, or no line end yet): left as it is.
        for odd in [
            &b"{\"body\":1}"[..],
            b"POST /v1 HTTP/1.1",
            b"CONNECT h:1 HTTP/1.1\r\n",
        ] {
            let mut out = Vec::new();
            f.rewrite_into(&mut out, odd);
            assert_eq!(out, odd);
        }
    }
}
