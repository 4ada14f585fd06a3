//! `multipart/form-data` request bodies (RFC 7578), read as they arrive: one file part goes
//! to a sink piece by piece (an upload spooled to disk), the other parts are small text fields
//! kept in memory.
//!
//! Owns the boundary scan and the bounds of a form: the file's size (refused the moment it
//! would cross its limit, before the bytes go anywhere), each field's size, the number of
//! parts and the size of a part's headers. Only one window of the body (64 KiB and a
//! boundary) is held at a time. Never panics on any bytes or any boundary.

use std::io;

use super::request::HttpError;

/// The most of the body held at once.
const WINDOW: usize = 64 * 1024;
/// A part's header block (`Content-Disposition`, `Content-Type`) is small.
const MAX_PART_HEAD: usize = 8 * 1024;
/// What may follow the closing boundary that is still read (and ignored).
const MAX_EPILOGUE: usize = 64 * 1024;
/// RFC 2046: a boundary is 1 to 70 characters.
const MAX_BOUNDARY: usize = 70;

/// How much a form may hold.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of the file part.
    pub file: u64,
    /// Bytes of each text field.
    pub field: usize,
    /// Parts in all.
    pub parts: usize,
}

/// What the form held besides the file's bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Form {
    /// Text fields in the order sent (a name may repeat, as `timestamp_granularities[]` does).
    pub fields: Vec<(String, String)>,
    /// The file part, if one was sent.
    pub file: Option<FileInfo>,
}

impl Form {
    /// The first value of field `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of field `name`, in order.
    pub fn all<'f>(&'f self, name: &'f str) -> impl Iterator<Item = &'f str> + 'f {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The file part as its headers described it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FileInfo {
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: u64,
}

/// Why a form could not be read.
#[derive(Debug)]
pub enum MultipartError {
    /// The body itself failed (too slow, too large, the client gone).
    Body(HttpError),
    /// Not a well-formed form; the words say where.
    Malformed(&'static str),
    FileTooLarge {
        limit: u64,
    },
    FieldTooLarge {
        name: String,
        limit: usize,
    },
    TooManyParts {
        limit: usize,
    },
    /// A field that must be text was not UTF-8.
    NotText {
        name: String,
    },
    /// The file field came twice.
    TwoFiles,
    /// The file's sink failed (a full disk).
    Sink(io::Error),
}

impl std::fmt::Display for MultipartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MultipartError::Body(e) => write!(f, "the request body failed: {e:?}"),
            MultipartError::Malformed(why) => {
                write!(f, "malformed multipart/form-data body: {why}")
            }
            MultipartError::FileTooLarge { limit } => write!(
                f,
                "the file is larger than the limit of {} MiB",
                limit / (1024 * 1024)
            ),
            MultipartError::FieldTooLarge { name, limit } => {
                write!(f, "{name}: longer than the limit of {} KiB", limit / 1024)
            }
            MultipartError::TooManyParts { limit } => {
                write!(f, "the form has more than {limit} parts")
            }
            MultipartError::NotText { name } => write!(f, "{name}: not UTF-8 text"),
            MultipartError::TwoFiles => f.write_str("file: sent more than once"),
            MultipartError::Sink(e) => write!(f, "the upload could not be stored: {e}"),
        }
    }
}

/// The boundary a `Content-Type` header names, if it is `multipart/form-data` with a valid
/// one; the error says what is wrong.
pub fn boundary(content_type: Option<&str>) -> Result<&str, &'static str> {
    let ct = content_type.ok_or("Content-Type must be multipart/form-data; it is missing")?;
    let mut params = ct.split(';');
    let media = params.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err("Content-Type must be multipart/form-data");
    }
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let v = v.trim();
        let v = match v.strip_prefix('"') {
            Some(q) => q
                .strip_suffix('"')
                .ok_or("the multipart boundary has no closing quote")?,
            None => v,
        };
        // RFC 2046's bchars: no control characters, nothing that needs escaping in a header.
        let fits = (1..=MAX_BOUNDARY).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&b))
            && !v.ends_with(' ');
        return if fits {
            Ok(v)
        } else {
            Err("the multipart boundary must be 1 to 70 plain characters")
        };
    }
    Err("Content-Type multipart/form-data has no boundary")
}

/// Reads a form from `read` (which returns 0 at the body's end): the part named `file_field`
/// goes to `file` piece by piece, every other part is a text field.
pub fn read_form(
    boundary: &str,
    file_field: &str,
    limits: Limits,
    read: impl FnMut(&mut [u8]) -> Result<usize, HttpError>,
    mut file: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<Form, MultipartError> {
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return Err(MultipartError::Malformed("bad boundary"));
    }
    let mut delim = b"\r\n--".to_vec();
    delim.extend_from_slice(boundary.as_bytes());
    let mut scan = Scan::new(read, delim.len());
    // The first boundary needs no CRLF before it: scan as if the body began with one.
    scan.buf.extend_from_slice(b"\r\n");
    // The preamble (usually empty) is skipped.
    if !scan.skip_to(&delim)? {
        return Err(MultipartError::Malformed(
            "the body has no boundary from its Content-Type",
        ));
    }
    let mut form = Form::default();
    let mut parts = 0;
    loop {
        // After a boundary: `--` ends the form, else optional spaces and CRLF start a part.
        scan.need(2)?;
        if scan.data().starts_with(b"--") {
            scan.drain_epilogue()?;
            return Ok(form);
        }
        scan.skip_line_padding()?;
        parts += 1;
        if parts > limits.parts {
            return Err(MultipartError::TooManyParts {
                limit: limits.parts,
            });
        }
        let head = scan.part_head()?;
        let name = head.name.ok_or(MultipartError::Malformed(
            "a part has no Content-Disposition name",
        ))?;
        if name == file_field {
            if form.file.is_some() {
                return Err(MultipartError::TwoFiles);
            }
            let mut size = 0u64;
            scan.part_body(&delim, |piece| {
                size += piece.len() as u64;
                if size > limits.file {
                    return Err(MultipartError::FileTooLarge { limit: limits.file });
                }
                file(piece).map_err(MultipartError::Sink)
            })?;
            form.file = Some(FileInfo {
                filename: head.filename,
                content_type: head.content_type,
                size,
            });
        } else {
            let mut value = Vec::new();
            scan.part_body(&delim, |piece| {
                if value.len() + piece.len() > limits.field {
                    return Err(MultipartError::FieldTooLarge {
                        name: name.clone(),
                        limit: limits.field,
                    });
                }
                value.extend_from_slice(piece);
                Ok(())
            })?;
            let value = String::from_utf8(value)
                .map_err(|_| MultipartError::NotText { name: name.clone() })?;
            form.fields.push((name, value));
        }
    }
}

/// A part's headers, as far as a form needs them.
#[derive(Debug, Default)]
struct PartHead {
    name: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
}

/// The window over the body: `buf[start..]` is read and not yet consumed.
struct Scan<R> {
    read: R,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
}

impl<R: FnMut(&mut [u8]) -> Result<usize, HttpError>> Scan<R> {
    fn new(read: R, delim: usize) -> Scan<R> {
        Scan {
            read,
            buf: Vec::with_capacity(WINDOW + delim),
            start: 0,
            eof: false,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Reads more into the window (moving what is left to its front first). False at the end.
    fn fill(&mut self) -> Result<bool, MultipartError> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let len = self.buf.len();
        let room = self.buf.capacity().max(WINDOW) - len;
        if room == 0 {
            return Err(MultipartError::Malformed("a line longer than the window"));
        }
        self.buf.resize(len + room, 0);
        let got = (self.read)(&mut self.buf[len..]);
        let n = *got.as_ref().unwrap_or(&0);
        self.buf.truncate(len + n);
        match got {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(e) => Err(MultipartError::Body(e)),
        }
    }

    /// At least `n` bytes in the window, or the body ended too soon.
    fn need(&mut self, n: usize) -> Result<(), MultipartError> {
        while self.data().len() < n {
            if !self.fill()? {
                return Err(MultipartError::Malformed(
                    "the body ended before its closing boundary",
                ));
            }
        }
        Ok(())
    }

    /// Consumes everything up to and including `delim`; false when the body ends first.
    fn skip_to(&mut self, delim: &[u8]) -> Result<bool, MultipartError> {
        loop {
            if let Some(i) = find(self.data(), delim) {
                self.consume(i + delim.len());
                return Ok(true);
            }
            let keep = delim.len() - 1;
            let drop = self.data().len().saturating_sub(keep);
            self.consume(drop);
            if !self.fill()? {
                return Ok(false);
            }
        }
    }

    /// Transport padding (spaces, tabs) and the CRLF that end a boundary line.
    fn skip_line_padding(&mut self) -> Result<(), MultipartError> {
        loop {
            self.need(1)?;
            match self.data()[0] {
                b' ' | b'\t' => self.consume(1),
                b'\r' => {
                    self.need(2)?;
                    if self.data()[1] != b'\n' {
                        return Err(MultipartError::Malformed(
                            "a boundary line ends without CRLF",
                        ));
                    }
                    self.consume(2);
                    return Ok(());
                }
                _ => {
                    return Err(MultipartError::Malformed(
                        "a boundary is followed by other text",
                    ));
                }
            }
        }
    }

    /// One line of a part's head, without its CRLF.
    fn line(&mut self, budget: &mut usize) -> Result<Vec<u8>, MultipartError> {
        loop {
            if let Some(i) = find(self.data(), b"\r\n") {
                if i > *budget {
                    break;
                }
                *budget -= i + 2;
                let line = self.data()[..i].to_vec();
                self.consume(i + 2);
                return Ok(line);
            }
            if self.data().len() > *budget {
                break;
            }
            if !self.fill()? {
                return Err(MultipartError::Malformed(
                    "the body ended inside a part's headers",
                ));
            }
        }
        Err(MultipartError::Malformed(
            "a part's headers are larger than 8 KiB",
        ))
    }

    fn part_head(&mut self) -> Result<PartHead, MultipartError> {
        let mut head = PartHead::default();
        let mut budget = MAX_PART_HEAD;
        loop {
            let line = self.line(&mut budget)?;
            if line.is_empty() {
                return Ok(head);
            }
            let line = String::from_utf8_lossy(&line);
            let Some((name, value)) = line.split_once(':') else {
                return Err(MultipartError::Malformed("a part header without a colon"));
            };
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-disposition") {
                let mut params = value.split(';');
                if !params
                    .next()
                    .is_some_and(|d| d.trim().eq_ignore_ascii_case("form-data"))
                {
                    return Err(MultipartError::Malformed(
                        "a part's Content-Disposition is not form-data",
                    ));
                }
                for (k, v) in disposition_params(value) {
                    if k.eq_ignore_ascii_case("name") {
                        head.name = Some(v);
                    } else if k.eq_ignore_ascii_case("filename") {
                        head.filename = Some(v);
                    }
                }
            } else if name.eq_ignore_ascii_case("content-type") {
                head.content_type = Some(value.to_string());
            }
        }
    }

    /// Hands the part's bytes to `sink` up to the next `delim` (consumed).
    fn part_body(
        &mut self,
        delim: &[u8],
        mut sink: impl FnMut(&[u8]) -> Result<(), MultipartError>,
    ) -> Result<(), MultipartError> {
        loop {
            if let Some(i) = find(self.data(), delim) {
                if i > 0 {
                    sink(&self.buf[self.start..self.start + i])?;
                }
                self.consume(i + delim.len());
                return Ok(());
            }
            // Everything but a tail that could be the start of the delimiter is the part's.
            let safe = self.data().len().saturating_sub(delim.len() - 1);
            if safe > 0 {
                sink(&self.buf[self.start..self.start + safe])?;
                self.consume(safe);
            }
            if !self.fill()? {
                return Err(MultipartError::Malformed(
                    "the body ended before its closing boundary",
                ));
            }
        }
    }

    /// Reads what follows the closing boundary (a CRLF, usually) so the body is read to its
    /// end; a long epilogue is left unread.
    fn drain_epilogue(&mut self) -> Result<(), MultipartError> {
        let mut seen = self.data().len();
        self.consume(self.data().len());
        while seen <= MAX_EPILOGUE && self.fill()? {
            seen += self.data().len();
            self.consume(self.data().len());
        }
        Ok(())
    }
}

/// The `key=value` parameters after `form-data` (values quoted or not; a quoted value may hold
/// `;` and backslash-escaped quotes).
fn disposition_params(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let mut i = match value.find(';') {
        Some(i) => i + 1,
        None => return out,
    };
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t' || bytes[i] == b';') {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b';' {
            i += 1;
        }
        let key = value[key_start..i].trim().to_string();
        if i >= bytes.len() || bytes[i] == b';' {
            continue;
        }
        i += 1; // '='
        let mut v = String::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut chars = value[i..].char_indices();
            let mut end = value.len();
            while let Some((j, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            v.push(next);
                        }
                    }
                    '"' => {
                        end = i + j + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            i = end;
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b';' {
                i += 1;
            }
            v = value[start..i].trim().to_string();
        }
        out.push((key, v));
    }
    out
}

/// Where `needle` first occurs in `hay`. Scans for its first byte (CR for a delimiter), which
/// compiles to a vectorised search.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let i = from
            + hay[from..=hay.len() - needle.len()]
                .iter()
                .position(|&b| b == first)?;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        file: 1024,
        field: 64,
        parts: 8,
    };

    fn form(boundary: &str, fields: &[(&str, &str)], file: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in fields {
            out.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some(f) = file {
            out.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a;b \\\"c\\\".wav\"\r\nContent-Type: audio/wav\r\n\r\n"
                )
                .as_bytes(),
            );
            out.extend_from_slice(f);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    /// Parses `body` fed in reads of `step` bytes.
    fn parse(
        boundary: &str,
        body: &[u8],
        step: usize,
        limits: Limits,
    ) -> (Result<Form, MultipartError>, Vec<u8>) {
        let mut rest = body;
        let mut file = Vec::new();
        let got = read_form(
            boundary,
            "file",
            limits,
            |buf| {
                let n = rest.len().min(buf.len()).min(step);
                buf[..n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                Ok(n)
            },
            |piece| {
                file.extend_from_slice(piece);
                Ok(())
            },
        );
        (got, file)
    }

    #[test]
    fn fields_and_the_file_come_out_whole_in_any_pieces() {
        // Audio full of CRs, dashes and near-boundaries.
        let mut audio: Vec<u8> = (0..700u32).map(|i| (i * 7 % 256) as u8).collect();
        audio.extend_from_slice(b"\r\n--boun\r\n-bound\r\r\n-");
        let body = form(
            "bound",
            &[
                ("model", "whisper-1"),
                ("timestamp_granularities[]", "word"),
                ("timestamp_granularities[]", "segment"),
            ],
            Some(&audio),
        );
        for step in [1, 2, 7, 100, 1 << 20] {
            let (got, file) = parse("bound", &body, step, LIMITS);
            let form = got.unwrap();
            assert_eq!(file, audio, "step {step}");
            assert_eq!(form.field("model"), Some("whisper-1"));
            assert_eq!(
                form.all("timestamp_granularities[]").collect::<Vec<_>>(),
                ["word", "segment"]
            );
            let info = form.file.unwrap();
            assert_eq!(info.filename.as_deref(), Some("a;b \"c\".wav"));
            assert_eq!(info.content_type.as_deref(), Some("audio/wav"));
            assert_eq!(info.size, audio.len() as u64);
        }
        // A preamble, padding after a boundary, an empty file, no file.
        let mut body = b"preamble\r\n".to_vec();
        body.extend_from_slice(&form("b", &[("a", "")], Some(b"")));
        let body = String::from_utf8(body)
            .unwrap()
            .replacen("--b\r\n", "--b \t\r\n", 1);
        let (got, file) = parse("b", body.as_bytes(), 3, LIMITS);
        let form1 = got.unwrap();
        assert_eq!(form1.field("a"), Some(""));
        assert_eq!(form1.file.unwrap().size, 0);
        assert!(file.is_empty());
        let (got, _) = parse("b", &form("b", &[("x", "y")], None), 5, LIMITS);
        assert_eq!(got.unwrap().file, None);
    }

    #[test]
    fn limits_stop_the_form_before_the_bytes_go_anywhere() {
        let big = vec![b'a'; 1025];
        let (got, file) = parse("b", &form("b", &[], Some(&big)), 100, LIMITS);
        assert!(matches!(
            got,
            Err(MultipartError::FileTooLarge { limit: 1024 })
        ));
        assert!(
            file.len() <= 1024,
            "only bytes within the limit reach the sink"
        );
        let (got, _) = parse(
            "b",
            &form("b", &[("prompt", &"x".repeat(65))], None),
            100,
            LIMITS,
        );
        assert!(
            matches!(got, Err(MultipartError::FieldTooLarge { ref name, .. }) if name == "prompt")
        );
        let many: Vec<(&str, &str)> = (0..9).map(|_| ("a", "b")).collect();
        let (got, _) = parse("b", &form("b", &many, None), 100, LIMITS);
        assert!(matches!(
            got,
            Err(MultipartError::TooManyParts { limit: 8 })
        ));
        let mut two = form("b", &[], Some(b"x"));
        two.truncate(two.len() - "--b--\r\n".len());
        two.extend_from_slice(&form("b", &[], Some(b"y")));
        let (got, _) = parse("b", &two, 100, LIMITS);
        assert!(matches!(got, Err(MultipartError::TwoFiles)));
    }

    #[test]
    fn malformed_forms_are_errors() {
        let bad: &[&[u8]] = &[
            b"",
            b"no boundary here",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue without end",
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
            b"--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--",
            b"--b\r\nNo colon\r\n\r\nx\r\n--b--",
            b"--bX\r\n",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--b--",
        ];
        for body in bad {
            let (got, _) = parse("b", body, 3, LIMITS);
            assert!(got.is_err(), "{:?}", String::from_utf8_lossy(body));
        }
        let mut huge_head = b"--b\r\nX: ".to_vec();
        huge_head.extend_from_slice(&[b'h'; 9000]);
        let (got, _) = parse("b", &huge_head, 4096, LIMITS);
        assert!(matches!(got, Err(MultipartError::Malformed(m)) if m.contains("8 KiB")));
    }

    #[test]
    fn boundaries_come_from_the_content_type() {
        assert_eq!(
            boundary(Some("multipart/form-data; boundary=abc")),
            Ok("abc")
        );
        assert_eq!(
            boundary(Some(
                "Multipart/Form-Data;charset=utf-8; BOUNDARY=\"a b:c\""
            )),
            Ok("a b:c")
        );
        for bad in [
            None,
            Some("application/json"),
            Some("multipart/form-data"),
            Some("multipart/form-data; boundary="),
            Some("multipart/form-data; boundary=\"abc"),
            Some("multipart/form-data; boundary=a\u{1}b"),
        ] {
            assert!(boundary(bad).is_err(), "{bad:?}");
        }
        let long = format!("multipart/form-data; boundary={}", "a".repeat(71));
        assert!(boundary(Some(&long)).is_err());
    }
}
