//! Reading a request's bytes off a connection: the source (the socket, or a fuzz target's
//! slice), read timeouts, lines, chunk sizes, `100 Continue`, the body's clock, and the errors
//! a connection answers with. Shared by the head and buffered-body reader (`request`) and the
//! streamed-body reader (`body`); knows nothing of requests or routes.

use std::io;
use std::time::{Duration, Instant};

use may::net::TcpStream;

/// Bytes asked of the socket per read.
pub(super) const READ_CHUNK: usize = 4 * 1024;
/// What a 503 for too much body data in flight asks the client to wait.
const BUSY_RETRY_AFTER_S: u64 = 2;
/// Hex digits a chunk size may have: 15 of them already exceed any body limit.
const MAX_CHUNK_SIZE_DIGITS: usize = 15;

/// How long a body may take to arrive: each read waits at most `per_read`, the whole body no
/// longer than until `deadline` (a client sending a byte every few seconds is cut off).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyClock {
    pub per_read: Duration,
    pub deadline: Instant,
}

impl BodyClock {
    pub(crate) fn wait(&self) -> Result<Duration, HttpError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < crate::net::MIN_WAIT {
            return Err(HttpError::Timeout);
        }
        Ok(self.per_read.min(left))
    }
}

/// A request the connection cannot serve, with the status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request line, header or framing: 400.
    BadRequest(&'static str),
    /// Too many headers, or a head too large (`MAX_HEADERS`, `MAX_HEAD_BYTES`): 431.
    HeadTooLarge(&'static str),
    /// Declared or decoded body over the limit: 413.
    BodyTooLarge { limit: usize },
    /// The client was too slow to send a complete request.
    Timeout,
    /// Request bodies in flight already hold the memory the server allows them: 503.
    Busy,
    /// The connection failed or closed mid-request; nothing can be answered.
    Closed,
}

impl HttpError {
    /// The answer to send, or `None` when the client cannot be answered.
    pub fn problem(&self) -> Option<super::Problem> {
        let (status, code, message): (u16, &str, std::borrow::Cow<'static, str>) = match self {
            HttpError::BadRequest(why) => (400, "bad_request", (*why).into()),
            HttpError::HeadTooLarge(why) => (431, "headers_too_large", (*why).into()),
            HttpError::BodyTooLarge { limit } => (
                413,
                "request_too_large",
                format!(
                    "request body exceeds the limit of {} MiB",
                    limit / (1024 * 1024)
                )
                .into(),
            ),
            HttpError::Timeout => (
                408,
                "request_timeout",
                "the request did not arrive in time".into(),
            ),
            HttpError::Busy => {
                return Some(
                    super::Problem::new(
                        503,
                        "server_error",
                        "server_busy",
                        "the server is holding as much request data as it allows; retry shortly",
                    )
                    .retry_after(BUSY_RETRY_AFTER_S),
                );
            }
            HttpError::Closed => return None,
        };
        Some(super::Problem::new(
            status,
            "invalid_request_error",
            code,
            message,
        ))
    }
}

/// Where the body's length comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// Where a request's bytes come from: the client socket, or (for the fuzz targets) a slice.
pub(crate) trait Source {
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn set_wait(&self, wait: Duration) -> io::Result<()>;
}

impl Source for TcpStream {
    fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::net::read(self, buf)
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        crate::net::write_all(self, bytes)
    }

    fn set_wait(&self, wait: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(wait))
    }
}

/// Sets the socket's read timeout unless it already is `t` (`may` makes each change a
/// system call).
pub(crate) fn set_timeout(
    cached: &mut Option<Duration>,
    stream: &impl Source,
    t: Duration,
) -> Result<(), HttpError> {
    if *cached != Some(t) {
        stream.set_wait(t).map_err(|_| HttpError::Closed)?;
        *cached = Some(t);
    }
    Ok(())
}

/// Removes one CRLF-terminated line from `pending` (reading as needed), without the CRLF.
pub(crate) fn read_line(
    pending: &mut Vec<u8>,
    cached: &mut Option<Duration>,
    stream: &mut impl Source,
    clock: BodyClock,
) -> Result<Vec<u8>, HttpError> {
    loop {
        if let Some(pos) = pending.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = pending.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if pending.len() > 4096 {
            return Err(HttpError::BadRequest("chunk header line too long"));
        }
        set_timeout(cached, stream, clock.wait()?)?;
        fill_or_fail(stream, pending)?;
    }
}

pub(crate) fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map(|i| i + 1)
        .unwrap_or(start);
    &v[start..end.max(start)]
}

/// A chunk size: hex digits only (`from_str_radix` alone would take a leading `+`).
pub(crate) fn parse_hex(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > MAX_CHUNK_SIZE_DIGITS || !v.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(v).ok()?, 16).ok()
}

pub(crate) fn write_continue(stream: &mut impl Source) -> Result<(), HttpError> {
    stream
        .send(b"HTTP/1.1 100 Continue\r\n\r\n")
        .map_err(|_| HttpError::Closed)
}

/// Appends what one read returns to `buf`.
pub(crate) fn fill(stream: &mut impl Source, buf: &mut Vec<u8>) -> io::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ_CHUNK, 0);
    let got = stream.receive(&mut buf[start..]);
    buf.truncate(start + *got.as_ref().unwrap_or(&0));
    got
}

pub(crate) fn fill_or_fail(stream: &mut impl Source, buf: &mut Vec<u8>) -> Result<(), HttpError> {
    match fill(stream, buf) {
        Ok(0) => Err(HttpError::Closed),
        Ok(_) => Ok(()),
        Err(e) if is_timeout(&e) => Err(HttpError::Timeout),
        Err(_) => Err(HttpError::Closed),
    }
}

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}
