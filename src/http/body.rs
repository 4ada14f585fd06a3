//! A request body the handler reads itself, as it arrives, instead of one buffered whole before
//! the handler runs: for a route whose body is bulk data that goes to disk (an audio upload),
//! admitted with [`super::BodyLimit::Streamed`].
//!
//! Owns the decoding of such a body (by Content-Length or chunked) and its bounds: the route's
//! limit on the decoded bytes (a declared length over it is refused on the head, a chunked body
//! as soon as a chunk would cross it), the same per-read wait and whole-body deadline as a
//! buffered body, and `Expect: 100-continue` answered when the first byte is asked for. Only
//! the caller's buffer and the connection's small read buffer ever hold body bytes, so such a
//! body takes no share of the in-flight body budget. The connection closes after the response:
//! a handler that stops reading early leaves the rest unread.

use std::time::Duration;

use may::net::TcpStream;

use super::read::{
    BodyClock, Framing, HttpError, Source, is_timeout, parse_hex, read_line, set_timeout, trim,
    write_continue,
};

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Left {
    /// This many bytes of a Content-Length body.
    Length(u64),
    /// A chunk-size line is next.
    ChunkHead,
    /// This many bytes of the current chunk, then its CRLF.
    ChunkData(u64),
    /// The body has ended.
    Done,
}

/// The state of one streamed body, kept by the connection while the handler reads it.
#[derive(Debug)]
pub(crate) struct Streamed {
    left: Left,
    limit: usize,
    /// Decoded bytes handed out so far.
    taken: u64,
    clock: BodyClock,
    continue_owed: bool,
    /// The error that ended the body; later reads return it again.
    failed: Option<HttpError>,
}

impl Streamed {
    /// A body of `head` decoded up to `limit` bytes; a declared length over it is refused now,
    /// before any of it is read.
    pub(crate) fn begin(
        framing: Framing,
        expect_continue: bool,
        limit: usize,
        clock: BodyClock,
    ) -> Result<Streamed, HttpError> {
        let left = match framing {
            Framing::None => Left::Done,
            Framing::Length(n) if n > limit as u64 => {
                return Err(HttpError::BodyTooLarge { limit });
            }
            Framing::Length(0) => Left::Done,
            Framing::Length(n) => Left::Length(n),
            Framing::Chunked => Left::ChunkHead,
        };
        Ok(Streamed {
            left,
            limit,
            taken: 0,
            clock,
            continue_owed: expect_continue && left != Left::Done,
            failed: None,
        })
    }

    /// Whether the whole body was read (the connection is at the next request's first byte).
    pub(crate) fn finished(&self) -> bool {
        self.left == Left::Done
    }

    /// Whether the connection broke or timed out under a read: nothing more can be read or
    /// drained from it.
    pub(crate) fn broken(&self) -> bool {
        matches!(self.failed, Some(HttpError::Closed | HttpError::Timeout))
    }
}

/// Decodes the next bytes of the body into `buf`: from what the connection already buffered,
/// else from one socket read. `Ok(0)` is the end of the body (or an empty `buf`).
pub(crate) fn read<S: Source>(
    pending: &mut Vec<u8>,
    cached: &mut Option<Duration>,
    state: &mut Streamed,
    stream: &mut S,
    buf: &mut [u8],
) -> Result<usize, HttpError> {
    if let Some(e) = state.failed {
        return Err(e);
    }
    let got = decode(pending, cached, state, stream, buf);
    if let Err(e) = got {
        state.failed = Some(e);
    }
    got
}

fn decode<S: Source>(
    pending: &mut Vec<u8>,
    cached: &mut Option<Duration>,
    state: &mut Streamed,
    stream: &mut S,
    buf: &mut [u8],
) -> Result<usize, HttpError> {
    if buf.is_empty() {
        return Ok(0);
    }
    if state.continue_owed {
        state.continue_owed = false;
        if pending.is_empty() {
            write_continue(stream)?;
        }
    }
    loop {
        match state.left {
            Left::Done => return Ok(0),
            Left::Length(n) => {
                let want = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                let got = receive(pending, cached, state.clock, stream, &mut buf[..want])?;
                state.left = match n - got as u64 {
                    0 => Left::Done,
                    rest => Left::Length(rest),
                };
                state.taken += got as u64;
                return Ok(got);
            }
            Left::ChunkHead => {
                let line = read_line(pending, cached, stream, state.clock)?;
                let size_text = line.split(|&b| b == b';').next().map(trim).unwrap_or(b"");
                let size =
                    parse_hex(size_text).ok_or(HttpError::BadRequest("invalid chunk size"))?;
                if size == 0 {
                    // Trailer fields until an empty line; their content is ignored.
                    while !read_line(pending, cached, stream, state.clock)?.is_empty() {}
                    state.left = Left::Done;
                    return Ok(0);
                }
                if state.taken.saturating_add(size) > state.limit as u64 {
                    return Err(HttpError::BodyTooLarge { limit: state.limit });
                }
                state.left = Left::ChunkData(size);
            }
            Left::ChunkData(0) => {
                if !read_line(pending, cached, stream, state.clock)?.is_empty() {
                    return Err(HttpError::BadRequest("chunk data longer than its size"));
                }
                state.left = Left::ChunkHead;
            }
            Left::ChunkData(n) => {
                let want = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                let got = receive(pending, cached, state.clock, stream, &mut buf[..want])?;
                state.left = Left::ChunkData(n - got as u64);
                state.taken += got as u64;
                return Ok(got);
            }
        }
    }
}

/// Some bytes for `buf` (never more than it holds): buffered ones first, else one read from
/// the socket straight into `buf`.
fn receive<S: Source>(
    pending: &mut Vec<u8>,
    cached: &mut Option<Duration>,
    clock: BodyClock,
    stream: &mut S,
    buf: &mut [u8],
) -> Result<usize, HttpError> {
    if !pending.is_empty() {
        let n = buf.len().min(pending.len());
        buf[..n].copy_from_slice(&pending[..n]);
        pending.drain(..n);
        return Ok(n);
    }
    set_timeout(cached, stream, clock.wait()?)?;
    match stream.receive(buf) {
        Ok(0) => Err(HttpError::Closed),
        Ok(n) => Ok(n),
        Err(e) if is_timeout(&e) => Err(HttpError::Timeout),
        Err(_) => Err(HttpError::Closed),
    }
}

/// A streamed body's part of a [`super::Request`]: the connection's buffered bytes, its read
/// timeout and the body's state (the socket comes from the `Responder`).
pub(crate) struct StreamedBody<'a> {
    pub(crate) pending: &'a mut Vec<u8>,
    pub(crate) cached: &'a mut Option<Duration>,
    pub(crate) state: &'a mut Streamed,
}

/// Reads a streamed request body from the connection (`Request::body_reader`). While it lives
/// the response cannot be started, so a handler reads what it needs, drops it, then answers.
pub struct BodyReader<'r> {
    pending: &'r mut Vec<u8>,
    cached: &'r mut Option<Duration>,
    state: &'r mut Streamed,
    stream: &'r mut TcpStream,
}

impl<'r> BodyReader<'r> {
    pub(crate) fn new(body: &'r mut StreamedBody<'_>, stream: &'r mut TcpStream) -> BodyReader<'r> {
        BodyReader {
            pending: &mut *body.pending,
            cached: &mut *body.cached,
            state: &mut *body.state,
            stream,
        }
    }

    /// The next bytes of the body into `buf`; `Ok(0)` at its end. Errors are those of a
    /// buffered body (too large, too slow, malformed chunking, the client gone), and repeat.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, HttpError> {
        read(self.pending, self.cached, self.state, self.stream, buf)
    }

    /// The most decoded bytes this body may have.
    pub fn limit(&self) -> usize {
        self.state.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::Head;
    use std::io;
    use std::time::Instant;

    /// A client that sends `bytes` in reads of at most `step` bytes, then closes.
    struct Client {
        bytes: Vec<u8>,
        step: usize,
        sent: Vec<u8>,
    }

    impl Source for Client {
        fn receive(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.bytes.len().min(buf.len()).min(self.step);
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes.drain(..n);
            Ok(n)
        }

        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.sent.extend_from_slice(bytes);
            Ok(())
        }

        fn set_wait(&self, _: Duration) -> io::Result<()> {
            Ok(())
        }
    }

    fn head_of(bytes: &[u8]) -> (Head, Vec<u8>) {
        let mut input = super::super::request::Input::new();
        input.pending.extend_from_slice(bytes);
        let head = input.parse_for_tests().expect("a head");
        (head, std::mem::take(&mut input.pending))
    }

    fn clock() -> BodyClock {
        BodyClock {
            per_read: Duration::from_secs(1),
            deadline: Instant::now() + Duration::from_secs(5),
        }
    }

    /// Reads the whole body with `step`-byte socket reads into a `chunk`-byte buffer.
    fn drain(
        request: &[u8],
        rest: &[u8],
        limit: usize,
        step: usize,
        chunk: usize,
    ) -> (Result<Vec<u8>, HttpError>, Vec<u8>) {
        let (head, mut pending) = head_of(request);
        let mut client = Client {
            bytes: rest.to_vec(),
            step,
            sent: Vec::new(),
        };
        let mut state = match Streamed::begin(head.framing, head.expect_continue, limit, clock()) {
            Ok(s) => s,
            Err(e) => return (Err(e), client.sent),
        };
        let mut cached = None;
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match read(&mut pending, &mut cached, &mut state, &mut client, &mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => {
                    // An error repeats.
                    assert_eq!(
                        read(&mut pending, &mut cached, &mut state, &mut client, &mut buf),
                        Err(e)
                    );
                    return (Err(e), client.sent);
                }
            }
        }
        assert!(state.finished());
        (Ok(out), client.sent)
    }

    #[test]
    fn sized_and_chunked_bodies_decode_in_any_pieces() {
        let sized = b"POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello";
        let chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel";
        for step in [1, 3, 4096] {
            for chunk in [1, 2, 64 * 1024] {
                let (got, _) = drain(sized, b" world", 100, step, chunk);
                assert_eq!(got.unwrap(), b"hello world");
                let (got, _) = drain(
                    chunked,
                    b"lo\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
                    100,
                    step,
                    chunk,
                );
                assert_eq!(got.unwrap(), b"hello world");
            }
        }
        let (got, _) = drain(b"POST /x HTTP/1.1\r\n\r\n", b"", 100, 1, 8);
        assert_eq!(got.unwrap(), b"");
    }

    #[test]
    fn limits_are_kept_before_the_bytes_are_read() {
        // A declared length over the limit is refused before a read.
        let (got, _) = drain(
            b"POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\n",
            b"hello world",
            10,
            4,
            4,
        );
        assert_eq!(got, Err(HttpError::BodyTooLarge { limit: 10 }));
        // A chunk that would cross it, as soon as its size line arrives.
        let (got, _) = drain(
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"8\r\n12345678\r\n8\r\n",
            10,
            64,
            64,
        );
        assert_eq!(got, Err(HttpError::BodyTooLarge { limit: 10 }));
        // A client that stops early is a closed connection, not a short body.
        let (got, _) = drain(
            b"POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\n",
            b"hello",
            100,
            4,
            4,
        );
        assert_eq!(got, Err(HttpError::Closed));
        for bad in [&b"zz\r\n"[..], b"2\r\nabc\r\n"] {
            let (got, _) = drain(
                b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                bad,
                100,
                64,
                64,
            );
            assert!(matches!(got, Err(HttpError::BadRequest(_))), "{got:?}");
        }
    }

    #[test]
    fn continue_is_sent_when_the_body_is_first_asked_for() {
        let (got, sent) = drain(
            b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            b"ok",
            10,
            64,
            64,
        );
        assert_eq!(got.unwrap(), b"ok");
        assert_eq!(sent, b"HTTP/1.1 100 Continue\r\n\r\n");
        // Refused on the head: no 100.
        let (_, sent) = drain(
            b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 20\r\n\r\n",
            b"",
            10,
            64,
            64,
        );
        assert!(sent.is_empty());
    }
}
