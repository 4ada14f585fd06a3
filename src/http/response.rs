//! Writing responses: a head builder with owned header values, fixed-length bodies, and
//! streamed bodies (chunked on HTTP/1.1, close-delimited on HTTP/1.0) for SSE.
//!
//! Owns the per-connection output buffer and the response state of the current request. Every
//! response carries `X-Request-Id`. Error bodies are written by `problem`.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};

use may::net::TcpStream;

use super::stack::StackMark;

/// The state of the current request's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Pending,
    /// A complete response was written; the connection may be reused.
    Done,
    /// A streamed response is in progress or ended without its terminator.
    Streaming,
    /// A write failed or the framing cannot be continued; the connection must close.
    Broken,
}

/// How a response is framed, from what the request head said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseMode {
    /// HTTP/1.1 (chunked streams, keep-alive by default) rather than 1.0.
    pub http11: bool,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
    /// A `HEAD` request: headers only.
    pub head_only: bool,
}

impl ResponseMode {
    /// For answers the layer sends before or instead of a handler: HTTP/1.1, then close.
    pub const CLOSING: ResponseMode = ResponseMode {
        http11: true,
        keep_alive: false,
        head_only: false,
    };
}

/// Requests in flight above which a waiting stream gives its deep stack pages back. Below it the
/// pages at stake are small (each stream keeps 20–40 KiB of them; the 16 pooled coroutines keep
/// theirs anyway), and giving them back would cost the connection's next request the page
/// faults of its deep start again: five or so, 50–150 µs on a VM, measured as most of a quiet
/// stream's added time to first frame. With a thousand open streams the pages are most of the
/// process's memory, and there they go back.
pub const STACK_RELEASE_ABOVE: usize = 16;

pub struct Responder<'a> {
    stream: &'a mut TcpStream,
    out: &'a mut Vec<u8>,
    http11: bool,
    keep_alive: bool,
    head_only: bool,
    request_id: &'a str,
    pub(crate) state: State,
    stack_mark: Option<(StackMark, &'a super::Shared)>,
}

impl<'a> Responder<'a> {
    pub(crate) fn new(
        stream: &'a mut TcpStream,
        out: &'a mut Vec<u8>,
        mode: ResponseMode,
        request_id: &'a str,
    ) -> Responder<'a> {
        Responder {
            stream,
            out,
            http11: mode.http11,
            keep_alive: mode.keep_alive,
            head_only: mode.head_only,
            request_id,
            stack_mark: None,
            state: State::Pending,
        }
    }

    /// Lets a stream give back the stack pages of its deep start (see `release_idle_stack`);
    /// `shared` tells how many requests are in flight.
    pub(crate) fn with_stack_mark(mut self, mark: StackMark, shared: &'a super::Shared) -> Self {
        self.stack_mark = Some((mark, shared));
        self
    }

    /// For a handler about to wait in a shallow loop (a stream) after a deep start: returns the
    /// coroutine-stack pages below the caller's frame to the OS when more than
    /// [`STACK_RELEASE_ABOVE`] requests are in flight. Returns whether that question is settled
    /// (released, or nothing to release); `false` asks the caller to try again at its next wait,
    /// as the count may have grown.
    pub fn release_idle_stack(&self) -> bool {
        match &self.stack_mark {
            Some((mark, shared)) if shared.in_flight() > STACK_RELEASE_ABOVE => {
                mark.release_below();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Whether anything has been sent for this request.
    pub fn is_sent(&self) -> bool {
        self.state != State::Pending
    }

    /// Whether the connection stays open after this response.
    pub(crate) fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Gives up on answering (the client is gone): nothing is written and the connection closes.
    pub fn abandon(&mut self) {
        self.keep_alive = false;
        if self.state == State::Pending {
            self.state = State::Broken;
        }
    }

    /// Ask for the connection to close after this response (shutdown, errors).
    pub fn close_after(&mut self) {
        self.keep_alive = false;
    }

    /// Starts a response: writes the status line and the headers every response carries.
    pub fn head(&mut self, status: u16) -> HeadBuilder<'_, 'a> {
        self.out.clear();
        self.out.extend_from_slice(if self.http11 {
            b"HTTP/1.1 "
        } else {
            b"HTTP/1.0 "
        });
        push_u64(self.out, u64::from(status));
        self.out.push(b' ');
        self.out.extend_from_slice(reason(status).as_bytes());
        self.out.extend_from_slice(b"\r\nX-Request-Id: ");
        self.out.extend_from_slice(self.request_id.as_bytes());
        self.out
            .extend_from_slice(b"\r\nX-Content-Type-Options: nosniff\r\n");
        HeadBuilder { r: self }
    }

    /// The client socket, for reading a streamed request body before the response starts.
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        self.stream
    }

    /// The client socket, for peeking at liveness while waiting on an upstream.
    pub fn client_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

pub struct HeadBuilder<'r, 'a> {
    r: &'r mut Responder<'a>,
}

impl<'r, 'a> HeadBuilder<'r, 'a> {
    /// Adds a header. Control characters in the value are dropped so no value can split the
    /// head; callers percent-encode values that must survive intact.
    pub fn header(self, name: &str, value: &str) -> Self {
        let out = &mut *self.r.out;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend(
            value
                .bytes()
                .filter(|b| *b == b'\t' || (*b >= 0x20 && *b != 0x7f)),
        );
        out.extend_from_slice(b"\r\n");
        self
    }

    pub fn header_u64(self, name: &str, value: u64) -> Self {
        let out = &mut *self.r.out;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        push_u64(out, value);
        out.extend_from_slice(b"\r\n");
        self
    }

    fn finish_head(&mut self) {
        if !self.r.keep_alive {
            self.r.out.extend_from_slice(b"Connection: close\r\n");
        } else if !self.r.http11 {
            self.r.out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        self.r.out.extend_from_slice(b"\r\n");
    }

    /// Sends a complete response with a Content-Length.
    pub fn body(mut self, content_type: &str, body: &[u8]) -> io::Result<()> {
        let out = &mut *self.r.out;
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\nContent-Length: ");
        push_u64(out, body.len() as u64);
        out.extend_from_slice(b"\r\n");
        self.finish_head();
        let body = if self.r.head_only { &[][..] } else { body };
        let result = if body.len() <= 16 * 1024 {
            self.r.out.extend_from_slice(body);
            crate::net::write_all(self.r.stream, self.r.out)
        } else {
            crate::net::write_all_vectored(
                self.r.stream,
                &mut [IoSlice::new(self.r.out), IoSlice::new(body)],
            )
        };
        self.r.state = if result.is_ok() {
            State::Done
        } else {
            State::Broken
        };
        result
    }

    /// Sends a response that has no body by definition of its status (304 Not Modified).
    pub fn no_body(mut self) -> io::Result<()> {
        self.finish_head();
        let result = crate::net::write_all(self.r.stream, self.r.out);
        self.r.state = if result.is_ok() {
            State::Done
        } else {
            State::Broken
        };
        result
    }

    /// Sends the head of a streamed response; the body follows through [`StreamWriter`].
    pub fn stream(mut self, content_type: &str) -> io::Result<StreamWriter<'r, 'a>> {
        let chunked = self.r.http11;
        if !chunked {
            // HTTP/1.0 has no chunked framing: the body ends when the connection closes.
            self.r.keep_alive = false;
        }
        let out = &mut *self.r.out;
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
        if chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        self.finish_head();
        self.r.state = State::Streaming;
        Ok(StreamWriter {
            r: self.r,
            chunked,
            head_pending: true,
        })
    }
}

/// The body of a streamed response. Each `write` is flushed to the socket at once; the head
/// leaves with the first one (one write, one segment: the client wakes once for both).
pub struct StreamWriter<'r, 'a> {
    r: &'r mut Responder<'a>,
    chunked: bool,
    /// The head is still in the responder's buffer, unsent.
    head_pending: bool,
}

impl StreamWriter<'_, '_> {
    /// Writes the concatenation of `parts` (at most 6) as one chunk, in one vectored write.
    pub fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        self.put(parts, false)
    }

    /// One vectored write: the head if still pending, `parts` as one chunk (none when they are
    /// empty), and with `end` the body's end.
    fn put(&mut self, parts: &[&[u8]], end: bool) -> io::Result<()> {
        assert!(parts.len() <= 6, "write_parts takes at most 6 parts");
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 && !end {
            return Ok(());
        }
        let mut size = [0u8; 18];
        let size = chunk_size_line(len, &mut size);
        let mut slices = [IoSlice::new(&[]); 10];
        let mut n = 0;
        if self.head_pending {
            slices[n] = IoSlice::new(self.r.out);
            n += 1;
        }
        if len > 0 {
            if self.chunked {
                slices[n] = IoSlice::new(size);
                n += 1;
            }
            for p in parts {
                slices[n] = IoSlice::new(p);
                n += 1;
            }
            if self.chunked {
                slices[n] = IoSlice::new(b"\r\n");
                n += 1;
            }
        }
        if end && self.chunked {
            slices[n] = IoSlice::new(b"0\r\n\r\n");
            n += 1;
        }
        let result = crate::net::write_all_vectored(self.r.stream, &mut slices[..n]);
        self.head_pending = false;
        self.r.state = match (&result, end) {
            (Err(_), _) => State::Broken,
            (Ok(()), true) => State::Done,
            (Ok(()), false) => self.r.state,
        };
        result
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_parts(&[data])
    }

    /// See [`Responder::release_idle_stack`].
    pub fn release_idle_stack(&self) -> bool {
        self.r.release_idle_stack()
    }

    /// The exact bytes that carry `data` as one unit of this stream's framing.
    pub fn framed(&self, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(data.len() + 12);
        if self.chunked {
            let mut size = [0u8; 18];
            v.extend_from_slice(chunk_size_line(data.len(), &mut size));
        }
        v.extend_from_slice(data);
        if self.chunked {
            v.extend_from_slice(b"\r\n");
        }
        v
    }

    /// Ends the body. A chunked stream may then carry the next request on the same connection.
    pub fn finish(self) -> io::Result<()> {
        self.finish_with(&[])
    }

    /// Writes `last` as the body's last chunk and ends the body, in one write: the client
    /// wakes once for both.
    pub fn finish_with(mut self, last: &[u8]) -> io::Result<()> {
        if !self.chunked {
            self.r.keep_alive = false;
        }
        self.put(&[last], true)
    }
}

/// `{len:x}\r\n` in `buf`, without allocating.
fn chunk_size_line(len: usize, buf: &mut [u8; 18]) -> &[u8] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut i = 16;
    let mut n = len;
    loop {
        i -= 1;
        buf[i] = HEX[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    &buf[i..]
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_chunk_sizes() {
        let mut v = Vec::new();
        push_u64(&mut v, 0);
        v.push(b' ');
        push_u64(&mut v, u64::MAX);
        assert_eq!(v, b"0 18446744073709551615");
        let mut b = [0u8; 18];
        assert_eq!(chunk_size_line(255, &mut b), b"ff\r\n");
        assert_eq!(chunk_size_line(0, &mut b), b"0\r\n");
        assert_eq!(chunk_size_line(0x1234abcd, &mut b), b"1234abcd\r\n");
    }
}
