//! Reading one request from a connection: the head (httparse, up to 64 headers in up to
//! 64 KiB), framing checks, `Expect: 100-continue`, and the body by Content-Length or chunked
//! encoding, bounded by the body limit before anything is buffered.
//!
//! Owns the per-connection input buffers. Never panics on client bytes: every malformed input
//! maps to an [`HttpError`] that the connection loop answers with the JSON error shape.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::Responder;
use super::body::{BodyReader, Streamed, StreamedBody};
pub use super::read::HttpError;
pub(crate) use super::read::{BodyClock, Framing, Source};
use super::read::{
    READ_CHUNK, fill, fill_or_fail, is_timeout, parse_hex, read_line, set_timeout, trim,
    write_continue,
};
use crate::config::Cidr;

pub const MAX_HEADERS: usize = 64;
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a body waits for room in the budget before its 503: a client's next request can
/// arrive while the server is still finishing its previous one, whose share is not back yet.
const BUSY_WAIT: Duration = Duration::from_secs(1);

/// The memory all request bodies in flight may hold together. A body's declared length (or,
/// chunked, each chunk as it comes) is taken from it before the bytes are buffered, and given
/// back when its request is over.
pub struct BodyBudget {
    held: std::sync::atomic::AtomicUsize,
    cap: usize,
}

impl BodyBudget {
    pub fn new(cap: usize) -> BodyBudget {
        BodyBudget {
            held: std::sync::atomic::AtomicUsize::new(0),
            cap,
        }
    }

    /// Bytes held by bodies in flight now.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn take(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        let before = self.held.fetch_add(n, Ordering::AcqRel);
        if before.saturating_add(n) > self.cap {
            self.held.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        true
    }

    fn give(&self, n: usize) {
        self.held.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// One request's share of the [`BodyBudget`], given back when dropped.
pub(crate) struct BodyShare<'b> {
    budget: &'b BodyBudget,
    held: usize,
}

impl<'b> BodyShare<'b> {
    pub(crate) fn new(budget: &'b BodyBudget) -> BodyShare<'b> {
        BodyShare { budget, held: 0 }
    }

    fn take(&mut self, n: usize) -> Result<(), HttpError> {
        let deadline = Instant::now() + BUSY_WAIT;
        while !self.budget.take(n) {
            if Instant::now() >= deadline {
                return Err(HttpError::Busy);
            }
            may::coroutine::sleep(Duration::from_millis(5));
        }
        self.held += n;
        Ok(())
    }
}

impl Drop for BodyShare<'_> {
    fn drop(&mut self) {
        self.budget.give(self.held);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Other,
}

impl Method {
    fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

impl Method {
    const NAMES: [(Method, &'static str); 6] = [
        (Method::Get, "GET"),
        (Method::Head, "HEAD"),
        (Method::Post, "POST"),
        (Method::Put, "PUT"),
        (Method::Patch, "PATCH"),
        (Method::Delete, "DELETE"),
    ];

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of methods, written as an `Allow` header lists them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Methods(u8);

impl Methods {
    pub fn with(self, m: Method) -> Methods {
        Methods(self.0 | m.bit())
    }

    pub fn contains(self, m: Method) -> bool {
        self.0 & m.bit() != 0
    }
}

impl std::fmt::Display for Methods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names = Method::NAMES.iter().filter(|(m, _)| self.contains(*m));
        if let Some((_, first)) = names.next() {
            f.write_str(first)?;
        }
        for (_, name) in names {
            write!(f, ", {name}")?;
        }
        Ok(())
    }
}

/// Per-connection buffers, reused across requests.
pub(crate) struct Input {
    /// Bytes read from the socket and not yet consumed (pipelined requests stay here).
    pub(crate) pending: Vec<u8>,
    /// A copy of the current request head; header ranges point into it.
    head: Vec<u8>,
    headers: Vec<(Range<usize>, Range<usize>)>,
    pub(crate) body: Vec<u8>,
    read_timeout: Option<Duration>,
    /// The current request's body when its handler reads it itself.
    pub(crate) streamed: Option<Streamed>,
}

impl Head {
    /// Whether a body follows the head.
    pub(crate) fn announces_body(&self) -> bool {
        !matches!(self.framing, Framing::None | Framing::Length(0))
    }
}

/// The parsed head of the current request.
pub(crate) struct Head {
    pub method: Method,
    target: Range<usize>,
    pub http11: bool,
    pub keep_alive: bool,
    pub(super) framing: Framing,
    pub(super) expect_continue: bool,
}

impl Input {
    pub(crate) fn new() -> Input {
        Input {
            pending: Vec::with_capacity(READ_CHUNK),
            head: Vec::with_capacity(1024),
            headers: Vec::with_capacity(24),
            body: Vec::new(),
            read_timeout: None,
            streamed: None,
        }
    }

    fn set_timeout(&mut self, stream: &impl Source, t: Duration) -> Result<(), HttpError> {
        set_timeout(&mut self.read_timeout, stream, t)
    }

    /// Reads until a complete head is buffered. `Ok(None)` is a clean close between requests.
    pub(crate) fn read_head(
        &mut self,
        stream: &mut impl Source,
        idle: Duration,
        per_read: Duration,
    ) -> Result<Option<Head>, HttpError> {
        // The slow-drip deadline starts with the first byte, not with the idle wait before it.
        let mut started = (!self.pending.is_empty()).then(Instant::now);
        let idle_until = Instant::now() + idle;
        // The first wait for the next request is short: on a busy connection it ends long
        // before its timer, which may then keeps until it expires (`net::SHORT_WAIT`).
        let mut slice = crate::net::SHORT_WAIT.min(per_read);
        loop {
            if !self.pending.is_empty() {
                let started = *started.get_or_insert_with(Instant::now);
                if let Some(head) = self.try_parse()? {
                    return Ok(Some(head));
                }
                if self.pending.len() >= MAX_HEAD_BYTES {
                    return Err(HttpError::HeadTooLarge("request head larger than 64 KiB"));
                }
                // A slow-drip client may not hold a connection open forever.
                if started.elapsed() > per_read {
                    return Err(HttpError::Timeout);
                }
            }
            let waiting_for_first_byte = self.pending.is_empty();
            // `may` makes every timeout change a system call, so a busy connection keeps the
            // short first slice as its timeout and pays none; a connection that stays idle
            // past it waits on in `per_read` slices (one change), the last one shorter.
            let wait = if waiting_for_first_byte {
                let left = idle_until.saturating_duration_since(Instant::now());
                if left < crate::net::MIN_WAIT {
                    return Ok(None);
                }
                let wait = slice.min(left);
                slice = per_read;
                wait
            } else {
                per_read
            };
            self.set_timeout(stream, wait)?;
            match fill(stream, &mut self.pending) {
                Ok(0) if waiting_for_first_byte => return Ok(None),
                Ok(0) => return Err(HttpError::Closed),
                Ok(_) => {}
                Err(e) if is_timeout(&e) && waiting_for_first_byte => continue,
                Err(e) if is_timeout(&e) => return Err(HttpError::Timeout),
                Err(_) => return Err(HttpError::Closed),
            }
        }
    }

    #[cfg(test)]
    pub(super) fn parse_for_tests(&mut self) -> Option<Head> {
        self.try_parse().ok().flatten()
    }

    /// Parses the buffered bytes; `Ok(None)` when the head is not complete yet.
    fn try_parse(&mut self) -> Result<Option<Head>, HttpError> {
        let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut raw);
        let len = match req.parse(&self.pending) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HttpError::HeadTooLarge("more than 64 request headers"));
            }
            Err(httparse::Error::Version) => {
                return Err(HttpError::BadRequest("unsupported HTTP version"));
            }
            Err(_) => return Err(HttpError::BadRequest("malformed request head")),
        };
        let base = self.pending.as_ptr() as usize;
        let offset = |s: &[u8]| s.as_ptr() as usize - base;
        let method = Method::parse(req.method.unwrap_or(""));
        let path = req.path.unwrap_or("/");
        let target = offset(path.as_bytes())..offset(path.as_bytes()) + path.len();
        let http11 = req.version == Some(1);

        self.headers.clear();
        let mut framing = Framing::None;
        let mut connection_close = false;
        let mut connection_keep_alive = false;
        let mut expect_continue = false;
        let mut saw_te = false;
        for h in req.headers.iter() {
            let name = offset(h.name.as_bytes())..offset(h.name.as_bytes()) + h.name.len();
            let value = offset(h.value)..offset(h.value) + h.value.len();
            self.headers.push((name, value));
            let v = trim(h.value);
            if h.name.eq_ignore_ascii_case("content-length") {
                let n = parse_content_length(v)
                    .ok_or(HttpError::BadRequest("invalid Content-Length"))?;
                match framing {
                    Framing::Length(prev) if prev != n => {
                        return Err(HttpError::BadRequest("conflicting Content-Length headers"));
                    }
                    _ => framing = Framing::Length(n),
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                if !v.eq_ignore_ascii_case(b"chunked") || saw_te {
                    return Err(HttpError::BadRequest(
                        "unsupported Transfer-Encoding (only chunked)",
                    ));
                }
                saw_te = true;
            } else if h.name.eq_ignore_ascii_case("connection") {
                for token in v.split(|&b| b == b',').map(trim) {
                    connection_close |= token.eq_ignore_ascii_case(b"close");
                    connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            } else if h.name.eq_ignore_ascii_case("expect") {
                if !v.eq_ignore_ascii_case(b"100-continue") {
                    return Err(HttpError::BadRequest("unsupported Expect header"));
                }
                expect_continue = true;
            }
        }
        if saw_te {
            // Both framings at once is the classic smuggling shape; refuse it.
            if matches!(framing, Framing::Length(_)) || !http11 {
                return Err(HttpError::BadRequest(
                    "Transfer-Encoding with Content-Length or on HTTP/1.0",
                ));
            }
            framing = Framing::Chunked;
        }

        // Keep the head in its own buffer so the pending buffer can be consumed freely.
        self.head.clear();
        self.head.extend_from_slice(&self.pending[..len]);
        self.pending.drain(..len);
        Ok(Some(Head {
            method,
            target,
            http11,
            keep_alive: if http11 {
                !connection_close
            } else {
                connection_keep_alive && !connection_close
            },
            framing,
            expect_continue,
        }))
    }

    /// Reads the body into `self.body`, refusing anything over `limit` before buffering it and
    /// taking its size from `share` first (`Busy` when the server holds too much already).
    pub(crate) fn read_body(
        &mut self,
        stream: &mut impl Source,
        head: &Head,
        limit: usize,
        share: &mut BodyShare<'_>,
        clock: BodyClock,
    ) -> Result<(), HttpError> {
        self.body.clear();
        match head.framing {
            Framing::None => Ok(()),
            Framing::Length(n) => {
                if n > limit as u64 {
                    return Err(HttpError::BodyTooLarge { limit });
                }
                let n = n as usize;
                share.take(n)?;
                if head.expect_continue && self.pending.len() < n {
                    write_continue(stream)?;
                }
                let from_pending = n.min(self.pending.len());
                self.body.reserve_exact(n);
                self.body.extend_from_slice(&self.pending[..from_pending]);
                self.pending.drain(..from_pending);
                while self.body.len() < n {
                    self.set_timeout(stream, clock.wait()?)?;
                    let want = (n - self.body.len()).min(64 * 1024);
                    let start = self.body.len();
                    self.body.resize(start + want, 0);
                    match stream.receive(&mut self.body[start..]) {
                        Ok(0) => return Err(HttpError::Closed),
                        Ok(got) => self.body.truncate(start + got),
                        Err(e) if is_timeout(&e) => return Err(HttpError::Timeout),
                        Err(_) => return Err(HttpError::Closed),
                    }
                }
                Ok(())
            }
            Framing::Chunked => {
                if head.expect_continue && self.pending.is_empty() {
                    write_continue(stream)?;
                }
                self.read_chunked(stream, limit, share, clock)
            }
        }
    }

    fn read_chunked(
        &mut self,
        stream: &mut impl Source,
        limit: usize,
        share: &mut BodyShare<'_>,
        clock: BodyClock,
    ) -> Result<(), HttpError> {
        loop {
            let line = self.read_line(stream, clock)?;
            let size_text = line.split(|&b| b == b';').next().map(trim).unwrap_or(b"");
            let size = parse_hex(size_text).ok_or(HttpError::BadRequest("invalid chunk size"))?;
            if size == 0 {
                // Trailer fields until an empty line; their content is ignored.
                loop {
                    if self.read_line(stream, clock)?.is_empty() {
                        return Ok(());
                    }
                }
            }
            if self.body.len() as u64 + size > limit as u64 {
                return Err(HttpError::BodyTooLarge { limit });
            }
            share.take(size as usize)?;
            let mut left = size as usize;
            while left > 0 {
                if self.pending.is_empty() {
                    self.set_timeout(stream, clock.wait()?)?;
                    fill_or_fail(stream, &mut self.pending)?;
                }
                let take = left.min(self.pending.len());
                self.body.extend_from_slice(&self.pending[..take]);
                self.pending.drain(..take);
                left -= take;
            }
            if !self.read_line(stream, clock)?.is_empty() {
                return Err(HttpError::BadRequest("chunk data longer than its size"));
            }
        }
    }

    /// Removes one CRLF-terminated line from `pending` (reading as needed), without the CRLF.
    fn read_line(
        &mut self,
        stream: &mut impl Source,
        clock: BodyClock,
    ) -> Result<Vec<u8>, HttpError> {
        read_line(&mut self.pending, &mut self.read_timeout, stream, clock)
    }

    /// Consumes a refused request's body when it has fully arrived with its head, so the
    /// connection can carry the next request. False when it has not (the caller closes).
    pub(crate) fn skip_buffered_body(&mut self, head: &Head) -> bool {
        match head.framing {
            Framing::None => true,
            Framing::Length(n) if n as usize <= self.pending.len() => {
                self.pending.drain(..n as usize);
                true
            }
            _ => false,
        }
    }

    /// The view handed to handlers; valid until the next request is read.
    pub(crate) fn request<'a>(
        &'a mut self,
        head: &Head,
        peer: SocketAddr,
        fd: RawFd,
        id: &'a str,
    ) -> Request<'a> {
        let target = std::str::from_utf8(&self.head[head.target.clone()]).unwrap_or("/");
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        // Absolute-form targets (`http://host/path`) are reduced to their path.
        let path = match path
            .strip_prefix("http://")
            .or_else(|| path.strip_prefix("https://"))
        {
            Some(rest) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
            None => path,
        };
        let streamed = self.streamed.as_mut().map(|state| StreamedBody {
            pending: &mut self.pending,
            cached: &mut self.read_timeout,
            state,
        });
        Request {
            method: head.method,
            path,
            query,
            http11: head.http11,
            head: &self.head,
            headers: &self.headers,
            body: &mut self.body,
            streamed,
            peer,
            fd,
            id,
        }
    }

    /// A header of the current head (case-insensitive name), before the request view exists.
    pub(crate) fn header_of_head(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.head, &self.headers, name)
    }

    /// Frees the read buffer while a request is being handled when nothing is pipelined behind
    /// it: a stream can hold its connection for minutes, and the next read allocates again.
    pub(crate) fn release_idle(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
    }

    /// Returns oversized buffers to the allocator after an unusually large request.
    pub(crate) fn shrink(&mut self) {
        if self.body.capacity() > 256 * 1024 {
            self.body = Vec::new();
        }
        if self.pending.capacity() > 64 * 1024 && self.pending.len() < READ_CHUNK {
            self.pending.shrink_to(READ_CHUNK);
        }
    }
}

/// One HTTP request as seen by a handler.
pub struct Request<'a> {
    pub method: Method,
    /// The path without the query string, not percent-decoded.
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub http11: bool,
    head: &'a [u8],
    headers: &'a [(Range<usize>, Range<usize>)],
    /// The decoded body; handlers may parse it in place. Empty for a route that reads its
    /// body itself ([`Request::body_reader`]).
    pub body: &'a mut Vec<u8>,
    streamed: Option<StreamedBody<'a>>,
    pub peer: SocketAddr,
    fd: RawFd,
    id: &'a str,
}

impl<'a> Request<'a> {
    /// The first header with this name (case-insensitive), if its value is UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn header_bytes(&self, name: &str) -> Option<&'a [u8]> {
        find_header(self.head, self.headers, name)
    }

    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The value of one query parameter (not percent-decoded).
    pub fn query_param(&self, key: &str) -> Option<&'a str> {
        self.query?
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The body of a route admitted with [`super::BodyLimit::Streamed`], read from the
    /// connection as it arrives; `None` for a buffered body (it is in `body`). The response
    /// can be started once the reader is dropped.
    pub fn body_reader<'r>(&'r mut self, res: &'r mut Responder<'_>) -> Option<BodyReader<'r>> {
        let body = self.streamed.as_mut()?;
        Some(BodyReader::new(body, res.socket()))
    }

    /// This request's id (echoed in `X-Request-Id`).
    pub fn id(&self) -> &str {
        self.id
    }

    /// The client socket, for liveness checks while an upstream call is in flight.
    pub fn client_fd(&self) -> RawFd {
        self.fd
    }

    /// Whether the direct peer is a proxy whose forwarding headers `trust` believes.
    fn via_trusted_proxy(&self, trust: &[Cidr]) -> bool {
        trust.iter().any(|c| c.contains(self.peer.ip()))
    }

    /// The client's address: the peer, or behind a trusted proxy the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (the left ones are
    /// client-made).
    pub fn client_ip(&self, trust: &[Cidr]) -> IpAddr {
        let peer = self.peer.ip();
        if !self.via_trusted_proxy(trust) {
            return peer;
        }
        self.header("x-forwarded-for")
            .and_then(|xff| {
                xff.rsplit(',')
                    .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                    .find(|ip| !trust.iter().any(|c| c.contains(*ip)))
            })
            .unwrap_or(peer)
    }

    /// Whether the client reached us over TLS (only a trusted proxy can say so).
    pub fn is_tls(&self, trust: &[Cidr]) -> bool {
        self.via_trusted_proxy(trust)
            && self
                .header("x-forwarded-proto")
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
    }
}

fn find_header<'h>(
    head: &'h [u8],
    headers: &[(Range<usize>, Range<usize>)],
    name: &str,
) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| head[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| &head[v.clone()])
}

fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn parse(bytes: &[u8]) -> Result<Option<Head>, HttpError> {
        let mut input = Input::new();
        input.pending.extend_from_slice(bytes);
        input.try_parse()
    }

    /// A client that is silent for `silent` reads (each one a timeout), then sends `bytes`;
    /// records every socket timeout it is given.
    struct Scripted {
        silent: usize,
        bytes: Vec<u8>,
        waits: std::cell::RefCell<Vec<Duration>>,
    }

    impl Source for Scripted {
        fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.silent > 0 {
                self.silent -= 1;
                return Err(io::ErrorKind::TimedOut.into());
            }
            let n = self.bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes.drain(..n);
            Ok(n)
        }

        fn send(&mut self, _: &[u8]) -> io::Result<()> {
            Ok(())
        }

        fn set_wait(&self, wait: Duration) -> io::Result<()> {
            self.waits.borrow_mut().push(wait);
            Ok(())
        }
    }

    /// Tries: the wait for a connection's next request. Its first slice is the short one (a
    /// busy connection's wait ends before its timer, which may would keep queued for the
    /// timer's whole length), a connection idle past it waits on in `per_read` slices, and the
    /// last slice ends at the idle limit; back-to-back requests change no timeout at all.
    #[test]
    fn the_wait_for_the_next_request_starts_short_and_then_waits_in_long_slices() {
        let secs = Duration::from_secs;
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        let mut input = Input::new();
        let mut client = Scripted {
            silent: 3,
            bytes: request.clone(),
            waits: Default::default(),
        };
        let head = input.read_head(&mut client, secs(75), secs(30)).unwrap();
        assert!(head.is_some());
        assert_eq!(
            *client.waits.borrow(),
            [crate::net::SHORT_WAIT, secs(30)],
            "short first, then one change to the long slice"
        );
        input.pending.clear();

        // The next request arrives at once: the timeout goes back to the short wait, and a
        // third one after it changes nothing.
        client.waits.borrow_mut().clear();
        for _ in 0..2 {
            client.bytes.extend_from_slice(&request);
            assert!(
                input
                    .read_head(&mut client, secs(75), secs(30))
                    .unwrap()
                    .is_some()
            );
            input.pending.clear();
        }
        assert_eq!(*client.waits.borrow(), [crate::net::SHORT_WAIT]);

        // Idle to the limit: the short slice, then one cut to what is left (a real socket
        // waits its timeout out; this one sleeps it).
        struct Silent(std::cell::RefCell<Vec<Duration>>);
        impl Source for Silent {
            fn receive(&mut self, _: &mut [u8]) -> io::Result<usize> {
                std::thread::sleep(*self.0.borrow().last().unwrap());
                Err(io::ErrorKind::TimedOut.into())
            }
            fn send(&mut self, _: &[u8]) -> io::Result<()> {
                Ok(())
            }
            fn set_wait(&self, wait: Duration) -> io::Result<()> {
                self.0.borrow_mut().push(wait);
                Ok(())
            }
        }
        let mut idle = Silent(Default::default());
        let mut input = Input::new();
        let limit = crate::net::SHORT_WAIT + secs(1);
        assert!(
            input
                .read_head(&mut idle, limit, secs(30))
                .unwrap()
                .is_none()
        );
        let waits = idle.0.borrow();
        assert_eq!(waits.len(), 2, "{waits:?}");
        assert_eq!(waits[0], crate::net::SHORT_WAIT);
        assert!(waits[1] <= secs(1), "{waits:?}");
    }

    #[test]
    fn chunk_sizes_are_hex_digits_only() {
        assert_eq!(parse_hex(b"4a"), Some(0x4a));
        assert_eq!(parse_hex(b"00000000000000A"), Some(10));
        for bad in [
            &b"+4a"[..],
            b"-1",
            b"",
            b"0x10",
            b" 1",
            b"1_0",
            b"0000000000000001",
        ] {
            assert_eq!(parse_hex(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_body_budget_is_shared_and_given_back() {
        let budget = BodyBudget::new(100);
        let mut a = BodyShare::new(&budget);
        a.take(60).unwrap();
        let mut b = BodyShare::new(&budget);
        assert_eq!(b.take(50), Err(HttpError::Busy));
        b.take(40).unwrap();
        assert_eq!(budget.held(), 100);
        drop(a);
        assert_eq!(budget.held(), 40);
        drop(b);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn framing_rules() {
        let h = parse(b"POST /v1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        let h = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = parse(b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
    }

    #[test]
    fn hostile_heads_are_refused_without_panics() {
        let bad: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"\x00\x01\x02 garbage\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        ];
        for b in bad {
            assert!(
                matches!(parse(b), Err(HttpError::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..65 {
            many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(parse(&many), Err(HttpError::HeadTooLarge(_))));
    }

    #[test]
    fn pipelined_bytes_stay_pending_and_headers_are_readable() {
        let mut input = Input::new();
        input.pending.extend_from_slice(
            b"GET /a?x=1&y=2 HTTP/1.1\r\nX-Api-Key: k\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        );
        let head = input.try_parse().unwrap().unwrap();
        assert_eq!(input.pending, b"GET /b HTTP/1.1\r\n\r\n");
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let req = input.request(&head, peer, -1, "id");
        assert_eq!(req.path, "/a");
        assert_eq!(req.query_param("y"), Some("2"));
        assert_eq!(req.header("x-api-key"), Some("k"));
        assert_eq!(req.header_count(), 1);
    }
}
