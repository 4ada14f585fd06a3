//! JSON helpers shared by every layer: a non-recursive nesting check that runs before any
//! recursive parse, a string escaper for hand-written bodies, and small accessors over
//! simd-json's owned values.
//!
//! Owns nothing. Must not allocate on the paths that only inspect bytes.

use simd_json::OwnedValue;
use simd_json::prelude::*;

/// Documents nested deeper than this are refused before parsing. Coroutine stacks are small and
/// value drop/encode are recursive, so the bound is what keeps a hostile body from overflowing one.
pub const MAX_DEPTH: usize = 128;

/// Why a body could not be read as a JSON object.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonError {
    TooDeep,
    Invalid(String),
    NotObject,
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonError::TooDeep => write!(f, "JSON nesting deeper than {MAX_DEPTH} levels"),
            JsonError::Invalid(why) => write!(f, "body is not valid JSON: {why}"),
            JsonError::NotObject => f.write_str("body must be a JSON object"),
        }
    }
}

/// Returns true when `bytes` opens more than `limit` arrays/objects at once. Scans bytes
/// linearly and tracks string state, so it never recurses and never allocates.
pub fn exceeds_depth(bytes: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses a request or upstream body as a JSON object, in place (simd-json rewrites the buffer).
pub fn parse_object(bytes: &mut [u8]) -> Result<OwnedValue, JsonError> {
    if exceeds_depth(bytes, MAX_DEPTH) {
        return Err(JsonError::TooDeep);
    }
    let value = parse_value(bytes)?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(JsonError::NotObject)
    }
}

/// Parses any JSON value. The caller has already bounded the depth.
pub fn parse_value(bytes: &mut [u8]) -> Result<OwnedValue, JsonError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonError::Invalid("empty body".into()));
    }
    // A large document parses with buffers of its own, dropped before the value is built
    // (the thread's scratch would hold them, twice the document, until the value is done).
    if bytes.len() > SCRATCH_KEEP {
        return simd_json::to_owned_value(bytes).map_err(|e| JsonError::Invalid(describe(&e)));
    }
    with_scratch(|scratch| {
        let (_, buffers) = scratch.lend(bytes.len());
        simd_json::value::owned::to_value_with_buffers(bytes, buffers)
    })
    .map_err(|e| JsonError::Invalid(describe(&e)))
}

/// Parses an object in place into a value that borrows `bytes` (escaped strings are rewritten
/// in the buffer), with parser buffers of its own that are gone before it returns: for a
/// document too large for the thread's scratch.
pub fn parse_in_place(bytes: &mut [u8]) -> Result<simd_json::BorrowedValue<'_>, JsonError> {
    if exceeds_depth(bytes, MAX_DEPTH) {
        return Err(JsonError::TooDeep);
    }
    let mut buffers = simd_json::Buffers::new(bytes.len());
    simd_json::value::borrowed::to_value_with_buffers(bytes, &mut buffers)
        .map_err(|e| JsonError::Invalid(describe(&e)))
}

/// A scratch holding more than this after a parse is dropped rather than kept for the next;
/// larger documents are parsed without it.
pub const SCRATCH_KEEP: usize = 32 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<ChunkScratch> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's scratch: the parser buffers and copy space one-off parses share
/// (a request body, an upstream answer), which spares each parse the allocations of a fresh
/// parser. Parsing never yields, so no other coroutine sees the scratch mid-use; a nested call
/// gets a fresh one. A scratch grown past [`SCRATCH_KEEP`] by a large document is let go, so
/// one large body does not stay resident on every worker.
pub fn with_scratch<R>(f: impl FnOnce(&mut ChunkScratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            let out = f(&mut scratch);
            if scratch.bytes.capacity() > SCRATCH_KEEP || scratch.grown > SCRATCH_KEEP {
                *scratch = ChunkScratch::default();
            }
            out
        }
        Err(_) => f(&mut ChunkScratch::default()),
    })
}

/// Space reused to parse one small document after another (a stream's chunks, an upstream
/// answer): each worker thread has one (see [`with_scratch`]). simd-json parses in place, so
/// each document is copied here first; its parser buffers are kept as well, which spares every
/// parse the four allocations of a fresh parser.
#[derive(Default)]
pub struct ChunkScratch {
    bytes: Vec<u8>,
    buffers: Option<simd_json::Buffers>,
    /// The largest document the buffers were used for: they grow with it and cannot be asked.
    grown: usize,
}

impl ChunkScratch {
    /// Parses `data` (its depth checked first) into a value that borrows this scratch.
    pub fn parse(&mut self, data: &[u8]) -> Result<simd_json::BorrowedValue<'_>, JsonError> {
        if exceeds_depth(data, MAX_DEPTH) {
            return Err(JsonError::TooDeep);
        }
        let (bytes, buffers) = self.lend(data.len());
        bytes.clear();
        bytes.extend_from_slice(data);
        simd_json::value::borrowed::to_value_with_buffers(bytes, buffers)
            .map_err(|e| JsonError::Invalid(describe(&e)))
    }

    /// The copy space and the parser buffers for a document of `len` bytes. Every use of the
    /// buffers goes through here, so `grown` (what [`with_scratch`] decides to keep by) always
    /// counts it.
    fn lend(&mut self, len: usize) -> (&mut Vec<u8>, &mut simd_json::Buffers) {
        self.grown = self.grown.max(len);
        let buffers = self
            .buffers
            .get_or_insert_with(|| simd_json::Buffers::new(len));
        (&mut self.bytes, buffers)
    }
}

/// simd-json's messages name internal states; keep only the class and the offset.
fn describe(e: &simd_json::Error) -> String {
    let text = e.to_string();
    match text.split_once(" at character ") {
        Some((kind, rest)) => format!(
            "{kind} at byte {}",
            rest.split_whitespace().next().unwrap_or("?")
        ),
        None => text,
    }
}

/// Appends `s` as a JSON string literal (quotes included).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Encodes a value (owned or borrowed) compactly into `out`.
pub fn write_value(out: &mut Vec<u8>, v: &impl Writable) {
    // Writing into a Vec cannot fail.
    let _ = v.write(out);
}

/// Encodes a value compactly.
pub fn encode(v: &OwnedValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, v);
    out
}

/// Counts the characters of every string in `v` (object keys excluded), for token estimates.
/// Iterative, so it cannot overflow a stack on hostile input.
pub fn text_chars(v: &OwnedValue) -> usize {
    let mut total = 0;
    let mut stack: Vec<&OwnedValue> = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            OwnedValue::String(s) => total += s.chars().count(),
            OwnedValue::Array(a) => stack.extend(a.iter()),
            OwnedValue::Object(o) => stack.extend(o.values()),
            OwnedValue::Static(_) => {}
        }
    }
    total
}

/// Human name of a value's JSON type, for validation messages.
pub fn type_name(v: &OwnedValue) -> &'static str {
    match v {
        OwnedValue::String(_) => "a string",
        OwnedValue::Array(_) => "an array",
        OwnedValue::Object(_) => "an object",
        OwnedValue::Static(simd_json::StaticNode::Null) => "null",
        OwnedValue::Static(simd_json::StaticNode::Bool(_)) => "a boolean",
        OwnedValue::Static(_) => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_structure_outside_strings() {
        assert!(!exceeds_depth(br#"{"a":"[[[[[[[["}"#, 2));
        assert!(!exceeds_depth(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(exceeds_depth(br#"{"a":[1,{"b":[]}]}"#, 3));
        assert!(!exceeds_depth(br#"{"a":"\"[[[["}"#, 1));
        let deep = "[".repeat(129) + &"]".repeat(129);
        assert!(exceeds_depth(deep.as_bytes(), MAX_DEPTH));
        let ok = "[".repeat(128) + &"]".repeat(128);
        assert!(!exceeds_depth(ok.as_bytes(), MAX_DEPTH));
    }

    #[test]
    fn parse_object_rejects_non_objects_and_garbage() {
        assert_eq!(
            parse_object(&mut b"[1]".to_vec()),
            Err(JsonError::NotObject)
        );
        assert!(matches!(
            parse_object(&mut b"{".to_vec()),
            Err(JsonError::Invalid(_))
        ));
        assert!(matches!(
            parse_object(&mut b"  ".to_vec()),
            Err(JsonError::Invalid(_))
        ));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(
            parse_object(&mut deep.into_bytes()),
            Err(JsonError::TooDeep)
        );
        assert!(parse_object(&mut br#"{"a":1}"#.to_vec()).is_ok());
    }

    #[test]
    fn the_thread_scratch_is_reused_nests_and_lets_a_large_document_go() {
        let small = br#"{"a":[1,2,{"b":"c"}]}"#;
        assert!(parse_object(&mut small.to_vec()).is_ok());
        let kept = SCRATCH.with(|s| s.borrow().buffers.is_some());
        assert!(kept, "the parser buffers stay for the next parse");
        // A parse inside a scratch user gets its own scratch instead of failing.
        let nested = with_scratch(|outer| {
            let v = outer.parse(small).unwrap();
            let inner = parse_object(&mut br#"{"x":1}"#.to_vec()).unwrap();
            (v.get("a").is_some(), inner.get_u64("x"))
        });
        assert_eq!(nested, (true, Some(1)));
        let large = format!(r#"{{"s":"{}"}}"#, "y".repeat(SCRATCH_KEEP + 1)).into_bytes();
        // A large document parses without the scratch (whose buffers would live as long as
        // the value being built), and where it is used, the scratch is not kept.
        assert!(parse_object(&mut large.clone()).is_ok());
        assert!(SCRATCH.with(|s| s.borrow().grown) <= SCRATCH_KEEP);
        assert!(with_scratch(|s| s.parse(&large).is_ok()));
        let released = SCRATCH.with(|s| {
            let s = s.borrow();
            s.buffers.is_none() && s.bytes.capacity() == 0 && s.grown == 0
        });
        assert!(released, "a scratch grown by a large document is not kept");
        assert_eq!(
            parse_object(&mut b"{\"a\":".to_vec())
                .err()
                .map(|e| matches!(e, JsonError::Invalid(_))),
            Some(true),
            "an error still reads as one after the scratch was reset"
        );
    }

    #[test]
    fn strings_escape_controls_quotes_and_keep_unicode() {
        let mut out = Vec::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}é\u{7f}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\"b\\c\nd\u0001é\u007f""#
        );
    }

    #[test]
    fn text_chars_walks_nested_strings() {
        let v = parse_object(&mut r#"{"a":"héllo","b":[{"c":"xy"},3,null]}"#.as_bytes().to_vec())
            .unwrap();
        assert_eq!(text_chars(&v), 7);
    }
}
