//! The SSE relay. Upstream events are re-emitted the moment they arrive: as `data: <json>\n\n`
//! for chat clients, or through the surface's encoder (Anthropic or Responses events). The
//! response head is sent only with the first event that carries output, so a failure or an
//! empty stream before that fails over invisibly; after it, a failure ends the stream in the
//! surface's way (an error frame and `[DONE]` for chat). Quiet streams get keep-alives (`ping`
//! events for Anthropic clients), and a client that disconnects ends the upstream read at once
//! (see `upstream::watch`).
//!
//! The fast path: everything one upstream read produced leaves in one write (one chunk, one
//! wake-up of the client), events are read out of the read buffer without a copy, and only the
//! frames a byte scan flags (an error, a finish, usage, anything it cannot vouch for, and
//! before the first output any frame it counts no output in) are parsed (`wire::glance`).
//! Nothing is allocated per event.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use super::trail::Trail;
use crate::chat::ChatRequest;
use crate::front::Encoder;
use crate::http::{Responder, StreamWriter};
use crate::outcome::Verdict;
use crate::upstream::sse::SseReader;
use crate::upstream::{Reply, watch};
use crate::wire::glance::{Glance, glance};
use crate::wire::openai::inspect_chunk;
use crate::wire::{Decoder, Usage, rescue};

/// Events held back while waiting for the first one with output (role-only preambles).
const MAX_PENDING_EVENTS: usize = 32;
const MAX_PENDING_BYTES: usize = 64 * 1024;
/// Output is written once it reaches this much, even within one read's events.
const FLUSH_AT: usize = 64 * 1024;
/// The output buffer's capacity kept between writes; a rare huge event's is given back.
const KEEP_CAPACITY: usize = 16 * 1024;
/// How long, and how much, the relay reads past `[DONE]` to reach a body end the framing
/// promises. The terminator normally arrives with `[DONE]` or right after it; the wait is long
/// enough for a loaded machine (where a 20 ms window was seen to lose the race) and short
/// enough that a provider holding the body open costs only this one pooled connection.
const DRAIN_WAIT: Duration = Duration::from_secs(1);
const DRAIN_BYTES: usize = 16 * 1024;
const INTERRUPTED: &str = "upstream stream interrupted";

pub struct Head<'a> {
    pub routed: &'a str,
    /// The failed attempts before this one (`X-Fallback-*` headers).
    pub before: &'a Trail,
    /// `X-Freellmapi-Dropped-Tools`.
    pub dropped_tools: Option<&'a str>,
    pub keepalive: Duration,
    /// The longest the upstream may go without a complete event. Comments and bytes that
    /// never form an event are not progress: a provider trickling them fails like a silent one.
    pub event_idle: Duration,
}

pub enum RelayEnd {
    Completed {
        usage: Usage,
        estimated: bool,
        ttfb_ms: Option<u64>,
        /// A tool call written as text went out as a real one.
        rescued: Option<rescue::Dialect>,
    },
    /// Failed after the head was sent; the client got an error frame and `[DONE]`.
    Interrupted {
        usage: Usage,
        ttfb_ms: Option<u64>,
    },
    /// Failed before anything was sent; the caller fails over.
    NotCommitted(Verdict),
    ClientGone,
}

enum Stop {
    Upstream,
    ClientGone,
}

struct Relay<'r, 'a> {
    res: Option<&'r mut Responder<'a>>,
    writer: Option<StreamWriter<'r, 'a>>,
    routed: &'r str,
    before: &'r Trail,
    dropped_tools: Option<&'r str>,
    keepalive: Duration,
    encoder: Encoder,
    /// Client-ready output not yet written: what the events of the current read produced
    /// (before the head is sent, everything held back).
    out: Vec<u8>,
    /// Events in `out` before the head is sent.
    held: usize,
    /// The chunks a translating decoder made of one event.
    decoded: Vec<Vec<u8>>,
    output_chars: usize,
    has_output: bool,
    finished: bool,
    usage: Option<Usage>,
    /// Holds back text that opens like a tool call (requests with tools only).
    rescue: Option<rescue::StreamRescue>,
    /// The chunks the rescue filter passes on for one upstream chunk.
    rescued_chunks: Vec<Vec<u8>>,
    /// The client did not ask for the usage chunk.
    hide_usage: bool,
    sent_at: Instant,
    ttfb_ms: Option<u64>,
}

impl<'r, 'a> Relay<'r, 'a> {
    fn new(
        res: &'r mut Responder<'a>,
        head: &Head<'r>,
        chat: &ChatRequest,
        encoder: Encoder,
        tools: Vec<String>,
        sent_at: Instant,
    ) -> Relay<'r, 'a> {
        Relay {
            res: Some(res),
            writer: None,
            routed: head.routed,
            before: head.before,
            dropped_tools: head.dropped_tools,
            keepalive: head.keepalive,
            encoder,
            out: Vec::new(),
            held: 0,
            decoded: Vec::new(),
            output_chars: 0,
            has_output: false,
            finished: false,
            usage: None,
            rescue: rescue::StreamRescue::new(tools),
            rescued_chunks: Vec::new(),
            hide_usage: !chat.wants_usage(),
            sent_at,
            ttfb_ms: None,
        }
    }
}

/// Relays a whole answer made here (a rescued refusal) as a stream: its chunks, then the end.
pub fn replay(
    res: &mut Responder<'_>,
    head: &Head<'_>,
    chat: &ChatRequest,
    encoder: Encoder,
    chunks: &[Vec<u8>],
    usage: Usage,
    sent_at: Instant,
) -> RelayEnd {
    let mut r = Relay::new(res, head, chat, encoder, Vec::new(), sent_at);
    r.usage = Some(usage);
    for c in chunks {
        if let Err(stop) = r.event(c) {
            return r.end(Some(stop), false, chat, None);
        }
    }
    r.end(None, true, chat, None)
}

/// Relays an upstream stream to the client. `tools`: the request's declared tools, whose
/// calls written as text are rescued.
#[allow(clippy::too_many_arguments)]
pub fn relay(
    res: &mut Responder<'_>,
    reply: Reply,
    head: &Head<'_>,
    chat: &ChatRequest,
    mut decoder: Decoder,
    encoder: Encoder,
    tools: Vec<String>,
    sent_at: Instant,
) -> RelayEnd {
    let end_is_marked = reply.end_is_marked();
    let mut reader = reply.into_reader();
    let mut sse = SseReader::new();
    let mut r = Relay::new(res, head, chat, encoder, tools, sent_at);
    let mut done = false;
    let mut last_event = Instant::now();
    let (mut read_once, mut stack_released) = (false, false);
    let stop: Option<Stop> = 'read: loop {
        let mut events = false;
        loop {
            let data = match sse.next_event() {
                Ok(Some(d)) => d,
                Ok(None) => break,
                Err(_) => break 'read Some(Stop::Upstream),
            };
            events = true;
            if data == b"[DONE]" {
                done = true;
                break 'read None;
            }
            if let Err(stop) = r.upstream_event(&mut decoder, data) {
                break 'read Some(stop);
            }
        }
        if events {
            last_event = Instant::now();
        }
        // Everything this read produced, in one write.
        if let Err(stop) = r.flush() {
            break Some(stop);
        }
        // A stream that did not end with its first read may wait in this shallow loop for
        // minutes while the pages its deep start touched stay resident: give them back once,
        // when enough streams wait for that to matter (the responder decides; asked at every
        // wait until it has). A fast provider's whole answer arrives in the first read and
        // never pays for the `madvise` and the other cores' TLB flush.
        if read_once && !stack_released {
            stack_released = match (&r.writer, &r.res) {
                (Some(writer), _) => writer.release_idle_stack(),
                (None, Some(res)) => res.release_idle_stack(),
                (None, None) => true,
            };
        }
        read_once = true;
        if last_event.elapsed() > head.event_idle {
            break Some(Stop::Upstream);
        }
        match sse.fill_from(&mut reader) {
            Ok(0) if watch::client_gone() => break Some(Stop::ClientGone),
            Ok(0) => {
                if let Some(data) = sse.finish() {
                    if data == b"[DONE]" {
                        done = true;
                    } else if let Err(stop) = r.upstream_event(&mut decoder, data) {
                        break Some(stop);
                    }
                }
                break None;
            }
            Ok(_) => {}
            Err(_) if watch::client_gone() => break Some(Stop::ClientGone),
            Err(_) => break Some(Stop::Upstream),
        }
    };
    // Text the rescue filter still holds goes out before the end (as calls, or as it was).
    let stop = match stop {
        Some(Stop::ClientGone) => stop,
        _ => r.finish_rescue().err().or(stop),
    };
    let clean = done && stop.is_none();
    let complete = done || r.finished || decoder.finished();
    // Only a body read to its end lets ureq pool the connection (it goes back to the pool as
    // the end is read): without this, every stream would cost the next one a new TCP and TLS
    // handshake. It happens before the client's response ends, so a client that waits for the
    // end cannot start its next request before the connection is back in the pool (on a loaded
    // machine too). A close-delimited body cannot be pooled, so it is not waited for.
    let to_drain = (clean && end_is_marked).then_some(&mut reader as &mut dyn std::io::Read);
    r.end(stop, complete, chat, to_drain)
}

/// What reading to the end of a body came to.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// The end was read: the connection is back in the pool.
    Ended,
    /// Not ended with what has arrived (only when not waiting).
    Pending,
    /// Given up on: the wait or [`DRAIN_BYTES`] ran out, or the body broke off.
    GaveUp,
}

/// Reads what follows `[DONE]` to the end of the body, within `left` bytes (what is read is
/// taken from it, so a look and the wait after it share one [`DRAIN_BYTES`]): only what has
/// already arrived with `wait` `None`, else for up to `wait`. An upstream that keeps the body
/// open past the wait is given up on (its connection is closed).
fn drain(reader: &mut dyn std::io::Read, wait: Option<Duration>, left: &mut usize) -> Drained {
    match wait {
        Some(wait) => watch::drain_for(wait),
        None => watch::buffered_only(true),
    }
    let mut sink = [0u8; 256];
    let drained = loop {
        match reader.read(&mut sink) {
            Ok(0) => break Drained::Ended,
            // Nothing more yet, as a timeout; a body that broke off says so again, waited for.
            Err(_) if wait.is_none() => break Drained::Pending,
            Ok(n) if n < *left => *left -= n,
            Ok(_) | Err(_) => break Drained::GaveUp,
        }
    };
    watch::buffered_only(false);
    drained
}

impl Relay<'_, '_> {
    /// One OpenAI chunk from upstream: through the rescue filter when there is one.
    fn chunk(&mut self, data: &[u8]) -> Result<(), Stop> {
        let Some(rescue) = self.rescue.as_mut() else {
            return self.event(data);
        };
        let mut frames = std::mem::take(&mut self.rescued_chunks);
        frames.clear();
        rescue.chunk(data, &mut frames);
        let result = frames.iter().try_for_each(|f| self.event(f));
        self.rescued_chunks = frames;
        result
    }

    /// The end of the upstream stream for the rescue filter.
    fn finish_rescue(&mut self) -> Result<(), Stop> {
        let Some(rescue) = self.rescue.as_mut() else {
            return Ok(());
        };
        let mut frames = Vec::new();
        rescue.finish(&mut frames);
        frames.iter().try_for_each(|f| self.event(f))
    }

    /// One upstream event: passed through, or translated into zero or more chunks first.
    fn upstream_event(&mut self, decoder: &mut Decoder, data: &[u8]) -> Result<(), Stop> {
        match decoder {
            Decoder::Passthrough => self.chunk(data),
            Decoder::Gemini(g) => {
                let mut chunks = std::mem::take(&mut self.decoded);
                chunks.clear();
                let result = g
                    .decode(data, &mut chunks)
                    .map_err(|_| Stop::Upstream)
                    .and_then(|()| chunks.iter().try_for_each(|c| self.chunk(c)));
                self.decoded = chunks;
                result
            }
        }
    }

    /// One OpenAI chunk: accounted for, then encoded into `out`.
    fn event(&mut self, data: &[u8]) -> Result<(), Stop> {
        // Most chunks are a few characters of text: a scan vouches for them without a parse.
        // Before the first output, only one whose scan counts output may skip it: a tool call's
        // first delta can carry no arguments yet, and only the parse sees the call.
        if let Glance::Plain { output_chars } = glance(data)
            && (self.has_output || output_chars > 0)
        {
            self.output_chars += output_chars;
            self.has_output = true;
            return self.emit(data);
        }
        let facts = crate::json::with_scratch(|scratch| inspect_chunk(data, scratch))
            .map_err(|_| Stop::Upstream)?;
        if facts.error {
            return Err(Stop::Upstream);
        }
        self.output_chars += facts.output_chars;
        self.has_output |= facts.has_output();
        self.finished |= facts.finished;
        if facts.usage.is_some() {
            self.usage = facts.usage;
        }
        // Asked for on the client's behalf (for real token counts): not the client's to see.
        if facts.usage_only && self.hide_usage {
            return Ok(());
        }
        // SSE data must be one line on our side; re-encode the rare multi-line payload.
        let frame: Cow<[u8]> = if data.contains(&b'\n') || data.contains(&b'\r') {
            let mut copy = data.to_vec();
            match crate::json::parse_value(&mut copy) {
                Ok(v) => Cow::Owned(crate::json::encode(&v)),
                Err(_) => return Err(Stop::Upstream),
            }
        } else {
            Cow::Borrowed(data)
        };
        self.emit(&frame)
    }

    /// Encodes one chunk for the client into `out`.
    fn emit(&mut self, frame: &[u8]) -> Result<(), Stop> {
        self.encoder
            .chunk(frame, &mut self.out)
            .map_err(|_| Stop::Upstream)?;
        if self.writer.is_none() {
            self.held += 1;
        }
        if self.out.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes `out` as one chunk. Before the head is sent, output stays held back until an
    /// event with output (or the hold's bounds) sends the head with it.
    fn flush(&mut self) -> Result<(), Stop> {
        if self.writer.is_none() {
            if !(self.has_output
                || self.held >= MAX_PENDING_EVENTS
                || self.out.len() >= MAX_PENDING_BYTES)
            {
                return Ok(());
            }
            self.commit()?;
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let writer = self.writer.as_mut().ok_or(Stop::ClientGone)?;
        writer.write(&self.out).map_err(|_| Stop::ClientGone)?;
        watch::wrote();
        self.out.clear();
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Sends the head (it leaves with the first write).
    fn commit(&mut self) -> Result<(), Stop> {
        let Some(res) = self.res.take() else {
            return Ok(());
        };
        let mut head = res
            .head(200)
            .header("X-Routed-Via", self.routed)
            .header("Cache-Control", "no-cache")
            .header("X-Accel-Buffering", "no");
        head = self.before.headers(head);
        if let Some(dropped) = self.dropped_tools {
            head = head.header("X-Freellmapi-Dropped-Tools", dropped);
        }
        let writer = head
            .stream(self.encoder.content_type())
            .map_err(|_| Stop::ClientGone)?;
        // An empty frame would be the chunked body's terminator: a format without a
        // keep-alive frame gets none.
        let keepalive =
            (!self.encoder.keepalive().is_empty()).then(|| writer.framed(self.encoder.keepalive()));
        self.writer = Some(writer);
        watch::committed();
        self.ttfb_ms = Some(self.sent_at.elapsed().as_millis() as u64);
        // Keep-alive comments may only follow the head, which leaves with the next write
        // (before the read that could time out for one).
        if let Some(keepalive) = keepalive {
            watch::heartbeat(keepalive, self.keepalive);
        }
        Ok(())
    }

    fn usage(&self, chat: &ChatRequest) -> (Usage, bool) {
        match self.usage {
            Some(u) => (u, false),
            None => {
                let completion = (self.output_chars as u64).div_ceil(4);
                (
                    Usage {
                        prompt: chat.input_tokens,
                        completion,
                        total: chat.input_tokens + completion,
                    },
                    true,
                )
            }
        }
    }

    /// Ends the client's response; `to_drain` is read to its end after a complete stream's
    /// `[DONE]` is written and before the response's end.
    fn end(
        mut self,
        stop: Option<Stop>,
        complete: bool,
        chat: &ChatRequest,
        mut to_drain: Option<&mut dyn std::io::Read>,
    ) -> RelayEnd {
        let (usage, estimated) = self.usage(chat);
        if let Some(Stop::ClientGone) = stop {
            return RelayEnd::ClientGone;
        }
        // Otherwise: complete, or malformed, an error frame, or ended without finishing.
        let clean = stop.is_none() && complete;
        // Output still held back is sent even when the stream then failed: the client gets
        // what came, then the error (a stream without output fails over instead).
        if self.writer.is_none() {
            if !self.has_output {
                return RelayEnd::NotCommitted(if clean {
                    Verdict::Empty
                } else {
                    Verdict::Unavailable
                });
            }
            if self.commit().is_err() {
                return RelayEnd::ClientGone;
            }
        }
        let Some(mut writer) = self.writer.take() else {
            return RelayEnd::ClientGone;
        };
        if !clean {
            self.encoder.fail(INTERRUPTED, &mut self.out);
            let _ = writer.finish_with(&self.out);
            return RelayEnd::Interrupted {
                usage,
                ttfb_ms: self.ttfb_ms,
            };
        }
        // The last events, `[DONE]` and the response's end leave in one write when the
        // upstream body's end came with `[DONE]` (as it usually does). When it is still on its
        // way, the client gets `[DONE]` at once and the response's end after the drain.
        self.encoder.finish(usage, &mut self.out);
        let mut left = DRAIN_BYTES;
        let pending = match to_drain.as_deref_mut() {
            Some(reader) => drain(reader, None, &mut left) == Drained::Pending,
            None => false,
        };
        let written = if !pending {
            writer.finish_with(&self.out)
        } else {
            writer.write(&self.out).and_then(|()| {
                if let Some(reader) = to_drain {
                    drain(reader, Some(DRAIN_WAIT), &mut left);
                }
                writer.finish()
            })
        };
        if written.is_err() {
            return RelayEnd::ClientGone;
        }
        RelayEnd::Completed {
            usage,
            estimated,
            ttfb_ms: self.ttfb_ms,
            rescued: self.rescue.and_then(|r| r.rescued),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{self, Read};

    /// Hands out `pieces` one read at a time, then ends the body (`None`) or fails as a read
    /// with nothing arrived does (`Some(kind)`).
    struct Body {
        pieces: Vec<usize>,
        then: Option<io::ErrorKind>,
    }

    impl Read for Body {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pieces.is_empty() {
                return match self.then {
                    None => Ok(0),
                    Some(kind) => Err(kind.into()),
                };
            }
            let n = self.pieces.remove(0).min(buf.len());
            Ok(n)
        }
    }

    #[test]
    fn a_drain_tells_an_end_that_came_from_one_still_on_its_way() {
        let mut ended = Body {
            pieces: vec![5],
            then: None,
        };
        assert_eq!(
            drain(&mut ended, None, &mut DRAIN_BYTES.clone()),
            Drained::Ended
        );
        // Nothing more has arrived: only a look, so it is pending, not given up on.
        let mut pending = Body {
            pieces: vec![],
            then: Some(io::ErrorKind::Other),
        };
        let mut left = DRAIN_BYTES;
        assert_eq!(drain(&mut pending, None, &mut left), Drained::Pending);
        assert_eq!(
            drain(&mut pending, Some(Duration::ZERO), &mut left),
            Drained::GaveUp
        );
        // A provider that keeps talking after [DONE] is given up on past DRAIN_BYTES.
        let mut chatty = Body {
            pieces: vec![256; DRAIN_BYTES / 256 + 1],
            then: None,
        };
        assert_eq!(
            drain(&mut chatty, None, &mut DRAIN_BYTES.clone()),
            Drained::GaveUp
        );
        // The look and the wait after it share that budget: what the look read counts.
        let mut split = Body {
            pieces: vec![256; DRAIN_BYTES / 256 - 1],
            then: Some(io::ErrorKind::Other),
        };
        let mut left = DRAIN_BYTES;
        assert_eq!(drain(&mut split, None, &mut left), Drained::Pending);
        assert_eq!(left, 256);
        let mut more = Body {
            pieces: vec![256],
            then: None,
        };
        assert_eq!(
            drain(&mut more, Some(Duration::ZERO), &mut left),
            Drained::GaveUp
        );
    }
}
