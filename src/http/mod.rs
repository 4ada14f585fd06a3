//! The HTTP/1.1 server layer on `may`: one coroutine per connection, keep-alive and
//! pipelining, bounded heads and bodies, streamed responses, graceful stop.
//!
//! Owns connections and their buffers, request ids, the connection cap and the in-flight
//! count used by graceful shutdown. It knows nothing about routes: a [`Handler`] gets each
//! request and a [`Responder`]. Errors the layer detects itself (malformed heads, oversized
//! bodies) are answered here with the shared JSON error shape; a handler panic becomes a 500.

mod body;
#[cfg(fuzzing)]
pub mod fuzz;
pub mod multipart;
mod problem;
mod read;
mod request;
mod response;
mod stack;
mod text;

use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use may::net::{TcpListener, TcpStream};

pub use body::BodyReader;
pub use problem::{Dialect, Problem};
pub use request::{BodyBudget, HttpError, MAX_HEAD_BYTES, MAX_HEADERS, Method, Methods, Request};
pub use response::{HeadBuilder, Responder, StreamWriter, reason};
pub use text::{header_safe, percent_decode};

use body::Streamed;
use request::{BodyClock, BodyShare, Input};
use response::{ResponseMode, State};

/// The accept queue asked of the kernel (which caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: libc::c_int = 1024;

/// What the application decides on a request's head, before any of its body is read.
#[derive(Debug)]
pub struct Admission {
    /// The error shape the client reads: for a refusal here and for body errors later.
    pub dialect: Dialect,
    /// `Err` is answered at once and the body is never read; `Ok` says how the body is read
    /// and how large it may be.
    pub verdict: Result<BodyLimit, Problem>,
}

/// How an admitted request's body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimit {
    /// Whole, into `Request::body`, before the handler runs: at most this many bytes (and the
    /// server's own limit), with its size taken from the in-flight body budget.
    Buffered(usize),
    /// By the handler, as it arrives (`Request::body_reader`): at most this many bytes, a
    /// declared length over it refused on the head. Nothing is buffered for it, so the server's
    /// body limit and budget (memory) do not apply; the handler bounds what it keeps. The
    /// connection closes after the response.
    Streamed(usize),
}

/// What the server asks of the application, once per request.
pub trait Handler: Send + Sync + 'static {
    /// Judges a request by its head (its `body` is empty).
    fn admit(&self, req: &Request<'_>) -> Admission {
        let _ = req;
        Admission {
            dialect: Dialect::OpenAi,
            verdict: Ok(BodyLimit::Buffered(usize::MAX)),
        }
    }

    /// Serves one admitted request. Must send exactly one response through `res`.
    fn handle(&self, req: &mut Request<'_>, res: &mut Responder<'_>);
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub body_limit: usize,
    pub max_connections: usize,
    /// How long an idle keep-alive connection is kept.
    pub idle_timeout: Duration,
    /// The longest wait for one read while a request is arriving, and for a whole head.
    pub read_timeout: Duration,
    /// The longest a whole body may take to arrive.
    pub body_timeout: Duration,
    /// The memory all request bodies in flight may hold together; over it, 503.
    pub body_budget: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            body_limit: crate::config::DEFAULT_BODY_LIMIT,
            max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Duration::from_secs(75),
            read_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(120),
            body_budget: crate::config::DEFAULT_BODY_BUDGET,
        }
    }
}

/// Counters shared between the accept loop, connections and the shutdown path.
pub struct Shared {
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    connections: AtomicUsize,
    bodies: BodyBudget,
}

impl Shared {
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    listener_fd: i32,
    local_addr: SocketAddr,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting connections; connections finish their current request and close.
    pub fn stop_accepting(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        // Shutting a listening socket down wakes the coroutine blocked in accept().
        // SAFETY: the fd belongs to the listener owned by the accept coroutine; shutdown() does
        // not close it, so the fd cannot be reused underneath that coroutine.
        unsafe { libc::shutdown(self.listener_fd, libc::SHUT_RDWR) };
    }

    /// Waits until no request is in flight, up to `timeout`. True when drained.
    pub fn drain(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.shared.in_flight() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

/// Binds `addr` and serves it with `handler` on coroutines.
pub fn serve<H: Handler>(
    addr: SocketAddr,
    handler: Arc<H>,
    settings: Settings,
) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(addr)?;
    let local_addr = listener.local_addr()?;
    let listener_fd = listener.as_raw_fd();
    // std binds with a backlog of 128: a burst of new connections (a LAN client opening many
    // streams at once) would see dropped SYNs and one-second retries. Listening again on the
    // same socket only raises the queue (the kernel caps it at net.core.somaxconn).
    // SAFETY: listen(2) on the listener's own descriptor.
    unsafe { libc::listen(listener_fd, LISTEN_BACKLOG) };
    let shared = Arc::new(Shared {
        shutting_down: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        connections: AtomicUsize::new(0),
        bodies: BodyBudget::new(settings.body_budget),
    });
    let accept_shared = shared.clone();
    let settings = Arc::new(settings);
    may::go!(move || accept_loop(listener, handler, accept_shared, settings));
    Ok(ServerHandle {
        shared,
        listener_fd,
        local_addr,
    })
}

fn accept_loop<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    shared: Arc<Shared>,
    settings: Arc<Settings>,
) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if shared.is_shutting_down() {
                    break;
                }
                if shared.connections.fetch_add(1, Ordering::AcqRel) >= settings.max_connections {
                    shared.connections.fetch_sub(1, Ordering::AcqRel);
                    may::go!(move || refuse_over_capacity(stream));
                    continue;
                }
                let (h, s, st) = (handler.clone(), shared.clone(), settings.clone());
                may::go!(move || {
                    let _conn = ConnGuard(&s);
                    serve_connection(stream, peer, &*h, &s, &st);
                });
            }
            Err(e) => {
                if shared.is_shutting_down() {
                    break;
                }
                // Out of file descriptors and similar: log at most once a second, back off.
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    log::warn!("accept failed: {e}");
                    last_error_log = Some(Instant::now());
                }
                may::coroutine::sleep(Duration::from_millis(50));
            }
        }
    }
}

struct ConnGuard<'a>(&'a Shared);

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> InFlight<'a> {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn refuse_over_capacity(mut stream: TcpStream) {
    let mut out = Vec::new();
    let id = RequestId::generate();
    let mut res = Responder::new(&mut stream, &mut out, ResponseMode::CLOSING, id.as_str());
    Problem::new(
        503,
        "server_error",
        "too_many_connections",
        "the server is at its connection limit; retry shortly",
    )
    .write_openai(&mut res);
}

fn serve_connection<H: Handler>(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: &H,
    shared: &Shared,
    settings: &Settings,
) {
    let stack_mark = stack::StackMark::here();
    let _ = stream.set_nodelay(true);
    let mut input = Input::new();
    let mut out = Vec::with_capacity(512);
    loop {
        if shared.is_shutting_down() && input.pending.is_empty() {
            return;
        }
        let head = match input.read_head(&mut stream, settings.idle_timeout, settings.read_timeout)
        {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                answer_layer_error(
                    &mut stream,
                    &mut out,
                    &e,
                    RequestId::generate().as_str(),
                    Dialect::OpenAi,
                );
                return;
            }
        };
        let _flight = InFlight::enter(shared);
        let id = RequestId::from_header(input.header_of_head("x-request-id"));
        let fd = stream.as_raw_fd();
        // The previous request's body must not show through the view `admit` gets.
        input.body.clear();
        let Admission { dialect, verdict } =
            handler.admit(&input.request(&head, peer, fd, id.as_str()));
        input.streamed = None;
        let limit = match verdict {
            Ok(limit) => limit,
            Err(problem) => {
                // Refused on its head: the body is never read. The connection carries on only
                // when that body has already arrived whole and can be skipped.
                let reuse = head.keep_alive
                    && !shared.is_shutting_down()
                    && input.skip_buffered_body(&head);
                let mode = ResponseMode {
                    http11: head.http11,
                    keep_alive: reuse,
                    head_only: head.method == Method::Head,
                };
                let mut res = Responder::new(&mut stream, &mut out, mode, id.as_str());
                problem.write(&mut res, dialect);
                if res.state == State::Done && reuse {
                    continue;
                }
                if res.state == State::Done && head.announces_body() {
                    linger(&mut stream);
                }
                return;
            }
        };
        let mut share = BodyShare::new(&shared.bodies);
        let clock = BodyClock {
            per_read: settings.read_timeout,
            deadline: Instant::now() + settings.body_timeout,
        };
        let read = match limit {
            BodyLimit::Buffered(limit) => {
                let limit = limit.min(settings.body_limit);
                input.read_body(&mut stream, &head, limit, &mut share, clock)
            }
            BodyLimit::Streamed(limit) => {
                Streamed::begin(head.framing, head.expect_continue, limit, clock)
                    .map(|s| input.streamed = Some(s))
            }
        };
        if let Err(e) = read {
            answer_layer_error(&mut stream, &mut out, &e, id.as_str(), dialect);
            return;
        }
        input.release_idle();
        let streamed = input.streamed.is_some();
        let keep_alive = head.keep_alive && !shared.is_shutting_down() && !streamed;
        let mode = ResponseMode {
            http11: head.http11,
            keep_alive,
            head_only: head.method == Method::Head,
        };
        let mut res = Responder::new(&mut stream, &mut out, mode, id.as_str())
            .with_stack_mark(stack_mark, shared);
        let mut req = input.request(&head, peer, fd, id.as_str());
        let outcome = catch_unwind(AssertUnwindSafe(|| handler.handle(&mut req, &mut res)));
        if outcome.is_err() {
            // The panic itself was logged by the panic hook; answer if nothing was sent yet.
            res.close_after();
            if !res.is_sent() {
                Problem::internal("internal error").write_openai(&mut res);
            } else {
                res.state = State::Broken;
            }
        } else if !res.is_sent() {
            log::error!("handler for {} sent no response", req.path);
            Problem::internal("internal error").write_openai(&mut res);
        }
        let reuse = res.state == State::Done && res.keep_alive();
        let answered = res.state == State::Done;
        if let Some(body) = input.streamed.take() {
            // The handler may have answered without reading its whole body (a refusal): the
            // client is still sending, and closing on unread data would reset the connection
            // before it reads the answer.
            if answered && !body.finished() && !body.broken() {
                linger(&mut stream);
            }
            return;
        }
        input.shrink();
        if !reuse {
            return;
        }
    }
}

/// Answers an error the layer found before a handler ran, then closes the connection.
fn answer_layer_error(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    e: &HttpError,
    id: &str,
    dialect: Dialect,
) {
    let Some(problem) = e.problem() else {
        return;
    };
    let mut res = Responder::new(stream, out, ResponseMode::CLOSING, id);
    problem.write(&mut res, dialect);
    if res.state == State::Broken {
        return;
    }
    linger(stream);
}

/// After an early error the client may still be sending its body. Closing with unread data
/// would reset the connection and could destroy the response before the client reads it, so
/// drain (bounded in time and bytes) after half-closing.
fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut scratch = vec![0u8; 16 * 1024];
    let mut total = 0usize;
    while Instant::now() < deadline && total < 64 * 1024 * 1024 {
        match crate::net::read(stream, &mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// `X-Request-Id`: the client's, when it is short and plain, else `req_` + 16 hex digits.
struct RequestId {
    buf: [u8; 64],
    len: usize,
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);
static REQUEST_PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

impl RequestId {
    fn generate() -> RequestId {
        let prefix = *REQUEST_PREFIX.get_or_init(|| {
            let mut b = [0u8; 4];
            crate::crypto::fill_random(&mut b);
            u32::from_le_bytes(b)
        });
        let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
        let value = (u64::from(prefix) << 32) ^ n;
        let mut id = RequestId {
            buf: [0; 64],
            len: 20,
        };
        id.buf[..4].copy_from_slice(b"req_");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for i in 0..16 {
            id.buf[4 + i] = HEX[((value >> (60 - 4 * i)) & 15) as usize];
        }
        id
    }

    fn from_header(v: Option<&[u8]>) -> RequestId {
        match v {
            Some(v)
                if (1..=64).contains(&v.len())
                    && v.iter()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
            {
                let mut id = RequestId {
                    buf: [0; 64],
                    len: v.len(),
                };
                id.buf[..v.len()].copy_from_slice(v);
                id
            }
            _ => RequestId::generate(),
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("req")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a.as_str(), b.as_str());
        assert!(a.as_str().starts_with("req_") && a.as_str().len() == 20);
        assert_eq!(RequestId::from_header(Some(b"abc-123")).as_str(), "abc-123");
        assert!(
            RequestId::from_header(Some(b"bad id\r\n"))
                .as_str()
                .starts_with("req_")
        );
        assert!(
            RequestId::from_header(Some(&[b'a'; 65]))
                .as_str()
                .starts_with("req_")
        );
    }
}
