//! An incremental Server-Sent Events reader for every upstream format. Accepts LF, CRLF and CR
//! line ends, `data:` with or without a space, multi-line data, comments and events split at
//! any byte boundary. Memory is bounded: a line over 1 MiB or an event over 4 MiB is an error.
//! The usual event, one `data:` line and a blank line, is handed out from the read buffer
//! without a copy.

use std::io::{self, Read};

pub const MAX_LINE: usize = 1024 * 1024;
pub const MAX_EVENT: usize = 4 * 1024 * 1024;
/// Bytes asked for per read while a stream trickles: SSE frames are mostly well under 1 KiB,
/// and every open stream keeps this much (zero-filled) buffer.
const READ_SIZE: usize = 2 * 1024;
/// Bytes asked for by the first read, and the most asked for while reads keep coming back
/// full: a fast provider's whole answer often arrives at once, and reading it in one piece
/// lets it leave in one write. (8 KiB is what the upstream client may already hold.)
const BURST_READ: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    LineTooLong,
    EventTooLarge,
}

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SseError::LineTooLong => write!(f, "an SSE line exceeded {} bytes", MAX_LINE),
            SseError::EventTooLarge => write!(f, "an SSE event exceeded {} bytes", MAX_EVENT),
        }
    }
}

pub struct SseReader {
    buf: Vec<u8>,
    pos: usize,
    /// Bytes the next read asks for: [`BURST_READ`] first and after a full read, else
    /// [`READ_SIZE`].
    read_size: usize,
    data: Vec<u8>,
    has_data: bool,
    /// The previous line ended with CR at the end of the input; a leading LF belongs to it.
    skip_lf: bool,
    /// The last returned event's data is still in `data`; clear it before the next one.
    dispatched: bool,
}

impl Default for SseReader {
    fn default() -> SseReader {
        SseReader {
            buf: Vec::new(),
            pos: 0,
            read_size: BURST_READ,
            data: Vec::new(),
            has_data: false,
            skip_lf: false,
            dispatched: false,
        }
    }
}

impl SseReader {
    pub fn new() -> SseReader {
        SseReader::default()
    }

    /// Appends raw bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Reads once from `r` into the buffer. Returns the byte count (0 at EOF).
    pub fn fill_from(&mut self, r: &mut impl Read) -> io::Result<usize> {
        self.compact();
        let start = self.buf.len();
        let asked = self.read_size;
        self.buf.resize(start + asked, 0);
        let got = r.read(&mut self.buf[start..]);
        let n = *got.as_ref().unwrap_or(&0);
        self.buf.truncate(start + n);
        self.read_size = if n == asked { BURST_READ } else { READ_SIZE };
        got
    }

    fn compact(&mut self) {
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= READ_SIZE) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        // A trickling stream gives back the room a burst needed (an open stream would keep it).
        if self.buf.is_empty() && self.read_size == READ_SIZE && self.buf.capacity() > READ_SIZE {
            self.buf = Vec::new();
        }
    }

    /// The next complete event's data (lines joined by `\n`), if one is buffered.
    pub fn next_event(&mut self) -> Result<Option<&[u8]>, SseError> {
        if self.dispatched {
            self.data.clear();
            self.has_data = false;
            self.dispatched = false;
        }
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
                self.skip_lf = false;
            }
            let rest = &self.buf[self.pos..];
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if rest.len() > MAX_LINE {
                    return Err(SseError::LineTooLong);
                }
                return Ok(None);
            };
            if end > MAX_LINE {
                return Err(SseError::LineTooLong);
            }
            let (line_start, line_end) = (self.pos, self.pos + end);
            let mut next = line_end + 1;
            if self.buf[line_end] == b'\r' {
                if next < self.buf.len() {
                    if self.buf[next] == b'\n' {
                        next += 1;
                    }
                } else {
                    self.skip_lf = true;
                }
            }
            // The common shape, `data: <payload>` and a blank line, is returned from the read
            // buffer itself: no copy.
            if !self.has_data
                && self.buf[line_end] == b'\n'
                && self.buf.get(next) == Some(&b'\n')
                && let Some(value) = self.buf[line_start..line_end].strip_prefix(b"data:")
            {
                self.pos = next + 1;
                let skip = usize::from(value.first() == Some(&b' '));
                return Ok(Some(&self.buf[line_end - value.len() + skip..line_end]));
            }
            self.pos = next;
            if line_start == line_end {
                if self.has_data {
                    self.dispatched = true;
                    self.data.pop(); // the newline after the last data line
                    return Ok(Some(&self.data));
                }
                continue;
            }
            self.field(line_start, line_end)?;
        }
    }

    fn field(&mut self, start: usize, end: usize) -> Result<(), SseError> {
        let line = &self.buf[start..end];
        if line[0] == b':' {
            return Ok(()); // comment
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if name == b"data" {
            if self.data.len() + value.len() + 1 > MAX_EVENT {
                return Err(SseError::EventTooLarge);
            }
            self.data.extend_from_slice(value);
            self.data.push(b'\n');
            self.has_data = true;
        }
        Ok(())
    }

    /// At end of input: an event whose blank line never came, if any. (Some servers end the
    /// body right after the last `data:` line; losing that event would drop `[DONE]`.)
    pub fn finish(&mut self) -> Option<&[u8]> {
        if self.dispatched {
            self.data.clear();
            self.has_data = false;
            self.dispatched = false;
        }
        if self.pos < self.buf.len() {
            let (start, end) = (self.pos, self.buf.len());
            self.pos = end;
            if self.field(start, end).is_err() {
                return None;
            }
        }
        if !self.has_data {
            return None;
        }
        self.dispatched = true;
        self.data.pop();
        Some(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_events(reader: &mut SseReader) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(e) = reader.next_event().unwrap() {
            out.push(String::from_utf8(e.to_vec()).unwrap());
        }
        out
    }

    const SAMPLE: &str = ": OPENROUTER PROCESSING\r\n\r\ndata: {\"a\":1}\r\n\r\ndata:{\"b\":2}\n\nevent: x\nid: 7\ndata: line1\ndata: line2\n\ndata: cr\r\rdata\n\ndata: [DONE]\n\n";

    #[test]
    fn parses_every_line_form() {
        let mut r = SseReader::new();
        r.push(SAMPLE.as_bytes());
        assert_eq!(
            all_events(&mut r),
            vec!["{\"a\":1}", "{\"b\":2}", "line1\nline2", "cr", "", "[DONE]"]
        );
    }

    #[test]
    fn byte_by_byte_equals_one_piece() {
        let mut whole = SseReader::new();
        whole.push(SAMPLE.as_bytes());
        let expected = all_events(&mut whole);
        let mut r = SseReader::new();
        let mut got = Vec::new();
        for b in SAMPLE.as_bytes() {
            r.push(std::slice::from_ref(b));
            got.extend(all_events(&mut r));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn every_split_point_yields_the_same_events() {
        let mut whole = SseReader::new();
        whole.push(SAMPLE.as_bytes());
        let expected = all_events(&mut whole);
        for cut in 0..SAMPLE.len() {
            let mut r = SseReader::new();
            r.push(&SAMPLE.as_bytes()[..cut]);
            let mut got = all_events(&mut r);
            r.push(&SAMPLE.as_bytes()[cut..]);
            got.extend(all_events(&mut r));
            assert_eq!(got, expected, "split at {cut}");
        }
    }

    #[test]
    fn unterminated_last_event_is_delivered_at_eof() {
        let mut r = SseReader::new();
        r.push(b"data: {\"x\":1}\n\ndata: [DONE]");
        assert_eq!(all_events(&mut r), vec!["{\"x\":1}"]);
        assert_eq!(r.finish(), Some(&b"[DONE]"[..]));
        assert_eq!(r.finish(), None);
    }

    #[test]
    fn a_huge_line_is_an_error_not_unbounded_memory() {
        let mut r = SseReader::new();
        r.push(b"data: ");
        let chunk = vec![b'x'; 64 * 1024];
        let mut err = None;
        for _ in 0..20 {
            r.push(&chunk);
            if let Err(e) = r.next_event() {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SseError::LineTooLong));
        assert!(r.buf.len() < MAX_LINE + 2 * 64 * 1024);
    }

    #[test]
    fn many_data_lines_are_bounded_too() {
        let mut r = SseReader::new();
        let line = format!("data: {}\n", "y".repeat(1000));
        let mut err = None;
        for _ in 0..5000 {
            r.push(line.as_bytes());
            if let Err(e) = r.next_event() {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SseError::EventTooLarge));
    }
}
