//! A one-pass byte scan of a streamed OpenAI chunk, so that the relay parses only the frames it
//! must. Most frames of a stream carry a few characters of text and nothing the relay acts on;
//! the scan checks the frame's JSON structure (balanced brackets, closed strings, literals and
//! numbers where values go, a colon after every key, nothing after the end) and counts the
//! characters of its text fields, without building anything. A frame that names `error` or
//! `usage`, has a `finish_reason` other than `null`, spans lines, or that the scan cannot vouch
//! for is left to [`super::openai::inspect_chunk`].
//!
//! Owns nothing; allocates nothing.

use crate::json::MAX_DEPTH;

/// What the scan saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glance {
    /// A well-formed chunk with nothing to act on but its text.
    Plain { output_chars: usize },
    /// Parse it: it may be an error, a finish, usage, or malformed.
    Inspect,
}

/// Where a container sits in a chunk: the path to the fields the parser counts as output
/// (`choices[].delta.{content,reasoning_content,reasoning}` and
/// `choices[].delta.tool_calls[].function.arguments`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    Choices,
    Choice,
    Delta,
    ToolCalls,
    ToolCall,
    Function,
    Other,
}

/// How deep places are tracked: `function` sits at depth 7; anything deeper is `Other`.
const TRACKED: usize = 8;

/// What a key means to the relay.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Other,
    /// Its string value is output text (counted for the estimate when usage never comes).
    Text,
    /// Only `null` lets the frame pass unparsed.
    FinishReason,
    /// Its value, if a container of the right kind, is this place.
    Leads(Place),
}

impl Key {
    /// The key `name` in an object at `place`, with its bit for the duplicate check (a
    /// repeated key is left to the parser, which keeps only one of them).
    fn of(place: Place, name: &[u8]) -> Option<(Key, u8)> {
        Some(match (place, name) {
            (_, b"error" | b"usage") => return None,
            (_, b"finish_reason") => (Key::FinishReason, 0),
            (Place::Root, b"choices") => (Key::Leads(Place::Choices), 1),
            (Place::Choice, b"delta") => (Key::Leads(Place::Delta), 1),
            (Place::Delta, b"content") => (Key::Text, 1),
            (Place::Delta, b"reasoning_content") => (Key::Text, 2),
            (Place::Delta, b"reasoning") => (Key::Text, 4),
            (Place::Delta, b"tool_calls") => (Key::Leads(Place::ToolCalls), 8),
            (Place::ToolCall, b"function") => (Key::Leads(Place::Function), 1),
            (Place::Function, b"arguments") => (Key::Text, 1),
            _ => (Key::Other, 0),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (after `:`, `,` in an array, or at the start).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// A key or `}` (just after `{`).
    KeyOrClose,
    /// A key (after `,` in an object).
    Key,
    Colon,
    CommaOrClose,
    End,
}

/// Scans one chunk's data (the JSON text of one `data:` event).
pub fn glance(data: &[u8]) -> Glance {
    match scan(data) {
        Some(output_chars) => Glance::Plain { output_chars },
        None => Glance::Inspect,
    }
}

fn scan(data: &[u8]) -> Option<usize> {
    // A chunk is an object.
    if data.iter().find(|b| !matches!(b, b' ' | b'\t')) != Some(&b'{') {
        return None;
    }
    // Bit d set: the container at depth d is an object (clear: an array).
    let mut objects: u128 = 0;
    let mut depth = 0usize;
    // The place of the container at each tracked depth, and the special keys it has had.
    let mut places = [Place::Other; TRACKED];
    let mut seen = [0u8; TRACKED];
    let place_at = |places: &[Place; TRACKED], depth: usize| match depth {
        0 => Place::Root,
        d if d <= TRACKED => places[d - 1],
        _ => Place::Other,
    };
    let mut expect = Expect::Value;
    let mut key = Key::Other;
    let mut chars = 0usize;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b' ' || b == b'\t' {
            i += 1;
            continue;
        }
        let in_object = depth > 0 && objects & (1 << (depth - 1)) != 0;
        match expect {
            Expect::Value | Expect::ValueOrClose => {
                let value_key = std::mem::replace(&mut key, Key::Other);
                match b {
                    b'{' | b'[' => {
                        if value_key == Key::FinishReason || depth == MAX_DEPTH {
                            return None;
                        }
                        let object = b == b'{';
                        let parent = place_at(&places, depth);
                        let place = match (value_key, parent, object) {
                            (_, Place::Root, true) if depth == 0 => Place::Root,
                            (Key::Leads(p @ (Place::Choices | Place::ToolCalls)), _, false) => p,
                            (Key::Leads(p @ (Place::Delta | Place::Function)), _, true) => p,
                            (_, Place::Choices, true) if !in_object => Place::Choice,
                            (_, Place::ToolCalls, true) if !in_object => Place::ToolCall,
                            _ => Place::Other,
                        };
                        if depth < TRACKED {
                            places[depth] = place;
                            seen[depth] = 0;
                        }
                        objects = (objects & !(1 << depth)) | (u128::from(object) << depth);
                        depth += 1;
                        expect = if object {
                            Expect::KeyOrClose
                        } else {
                            Expect::ValueOrClose
                        };
                        i += 1;
                        continue;
                    }
                    b']' if expect == Expect::ValueOrClose => {
                        depth -= 1;
                        i += 1;
                    }
                    b'"' => {
                        if value_key == Key::FinishReason {
                            return None;
                        }
                        let (end, n) = string(data, i + 1)?;
                        if value_key == Key::Text {
                            chars += n;
                        }
                        i = end;
                    }
                    b'n' if data[i..].starts_with(b"null") => i += 4,
                    _ if value_key == Key::FinishReason => return None,
                    b't' if data[i..].starts_with(b"true") => i += 4,
                    b'f' if data[i..].starts_with(b"false") => i += 5,
                    b'-' | b'0'..=b'9' => i = number(data, i)?,
                    _ => return None,
                }
                expect = after_value(depth);
            }
            Expect::KeyOrClose | Expect::Key => match b {
                b'}' if expect == Expect::KeyOrClose => {
                    depth -= 1;
                    i += 1;
                    expect = after_value(depth);
                }
                b'"' => {
                    let start = i + 1;
                    let (end, _) = string(data, start)?;
                    let name = &data[start..end - 1];
                    // An escaped key could spell `error` without these bytes: parse it.
                    if name.contains(&b'\\') {
                        return None;
                    }
                    let (k, bit) = Key::of(place_at(&places, depth), name)?;
                    if bit != 0 && depth <= TRACKED {
                        if seen[depth - 1] & bit != 0 {
                            return None;
                        }
                        seen[depth - 1] |= bit;
                    }
                    key = k;
                    i = end;
                    expect = Expect::Colon;
                }
                _ => return None,
            },
            Expect::Colon if b == b':' => {
                i += 1;
                expect = Expect::Value;
            }
            Expect::CommaOrClose => {
                match b {
                    b',' => {
                        expect = if in_object {
                            Expect::Key
                        } else {
                            Expect::Value
                        };
                        i += 1;
                        continue;
                    }
                    b'}' if in_object => {}
                    b']' if !in_object => {}
                    _ => return None,
                }
                depth -= 1;
                i += 1;
                expect = after_value(depth);
            }
            // Anything else: a stray byte, a line break, or text after the end.
            _ => return None,
        }
    }
    (expect == Expect::End).then_some(chars)
}

/// The index after the JSON number at `at`: `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`.
/// Numbers longer than [`MAX_NUMBER`] characters or with an exponent of three or more digits
/// are left to the parser, which refuses some of them (integers past 64 bits, overflowing
/// exponents); no chunk field needs them.
fn number(data: &[u8], at: usize) -> Option<usize> {
    let digits = |from: usize| {
        let n = data[from.min(data.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        (n > 0).then_some(from + n)
    };
    let mut i = at + usize::from(data[at] == b'-');
    i = match data.get(i)? {
        b'0' => i + 1,
        _ => digits(i)?,
    };
    if data.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(data.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(data.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let from = i;
        i = digits(i)?;
        if i - from > 2 {
            return None;
        }
    }
    (i - at <= MAX_NUMBER).then_some(i)
}

/// The longest number the scan vouches for (a millisecond timestamp and a 17-digit float fit).
const MAX_NUMBER: usize = 17;

/// The UTF-16 unit of the `\\uXXXX` escape at `at`.
fn unit(data: &[u8], at: usize) -> Option<u16> {
    let esc = data.get(at..at + 6)?;
    if &esc[..2] != b"\\u" {
        return None;
    }
    let hex = std::str::from_utf8(&esc[2..]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

fn after_value(depth: usize) -> Expect {
    if depth == 0 {
        Expect::End
    } else {
        Expect::CommaOrClose
    }
}

/// Scans a string whose opening quote is just before `from`: the index after its closing
/// quote and its length in characters (as decoded: an escape is one, a surrogate pair one).
/// `None` when it never closes, holds a control byte, or has a malformed escape.
fn string(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut chars = 0;
    let mut i = from;
    let mut ascii = true;
    while i < data.len() {
        match data[i] {
            b'"' => {
                // JSON text is UTF-8; the parser refuses anything else.
                if !ascii && std::str::from_utf8(&data[from..i]).is_err() {
                    return None;
                }
                return Some((i + 1, chars));
            }
            b'\\' => {
                match *data.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' => {
                        // A surrogate pair is one character; half of one is malformed.
                        i += match unit(data, i)? {
                            0xd800..=0xdbff
                                if matches!(unit(data, i + 6), Some(0xdc00..=0xdfff)) =>
                            {
                                12
                            }
                            0xd800..=0xdfff => return None,
                            _ => 6,
                        };
                    }
                    _ => return None,
                }
                chars += 1;
            }
            0..=0x1f => return None,
            b => {
                ascii &= b < 0x80;
                // UTF-8 continuation bytes are not characters of their own.
                chars += usize::from(b & 0xc0 != 0x80);
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::openai::inspect_chunk;

    /// Frames the scan must pass, each with the characters inspect_chunk counts.
    const PLAIN: &[&str] = &[
        r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"created":1,"x":[1,-2.5e3,0,-0.5,1E+2,3e-7,true,false,null,{}]}"#,
        r#"{"choices":[{"delta":{"content":"caf\u00e9 \ud83d\ude00 \"q\" \\ \n\t/ é 😀"}}]}"#,
        r#"{"choices":[{"delta":{"reasoning_content":"think"}}]}"#,
        r#"{"choices":[{"delta":{"reasoning":"hmm","tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]}}]}"#,
        r#" { "choices" : [ { "delta" : { "content" : "spaced" } , "finish_reason" : null } ] } "#,
        r#"{"choices":[]}"#,
        r#"{"choices":[{"delta":{"content":null}}],"system_fingerprint":"fp"}"#,
    ];

    /// Frames the scan must leave to the parser.
    const INSPECT: &[&str] = &[
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
        r#"{"error":{"message":"overloaded"}}"#,
        r#"{"\u0065rror":{"message":"spelled with an escape"}}"#,
        r#"{"choices":[{"finish_reason":{"odd":1}}]}"#,
        r#"{"choices":[{"finish_reason":1}]}"#,
        "{\"choices\":\n[]}",
        "{broken",
        r#"{"a":1"#,
        r#"{"a":1}}"#,
        r#"{"a":1} x"#,
        r#"{"a":tru}"#,
        r#"{"a":00}"#,
        r#"{"a":-}"#,
        r#"{"a":1.}"#,
        r#"{"a":1e}"#,
        r#"{"a":.5}"#,
        r#"{"a":1-2}"#,
        r#"{"a":1111111111111111111111111111111111111111111111111111}"#,
        r#"{"a":1e999}"#,
        r#"{"a" 1}"#,
        r#"{"a":1,}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[1}"#,
        r#"{"a":"unterminated}"#,
        r#"{"a":"bad \x escape"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":"\ude00 lone low half"}"#,
        r#"{"a":"\ud83d lone high half"}"#,
        r#"{"a":"\ud83d\u0041 high then not low"}"#,
        "{\"a\":\"raw \u{1} control\"}",
        r#"[1,2]"#,
        r#""text""#,
        "",
    ];

    #[test]
    fn plain_frames_pass_with_the_characters_the_parser_counts() {
        let mut scratch = crate::json::ChunkScratch::default();
        for frame in PLAIN {
            let facts = inspect_chunk(frame.as_bytes(), &mut scratch).unwrap();
            assert_eq!(
                glance(frame.as_bytes()),
                Glance::Plain {
                    output_chars: facts.output_chars
                },
                "{frame}"
            );
        }
    }

    #[test]
    fn errors_finishes_usage_and_malformed_frames_are_parsed() {
        for frame in INSPECT {
            assert_eq!(glance(frame.as_bytes()), Glance::Inspect, "{frame}");
        }
        // Not UTF-8 inside a string.
        assert_eq!(glance(b"{\"a\":\"\xff\xfe\"}"), Glance::Inspect);
    }

    #[test]
    fn nesting_past_the_parsers_limit_is_parsed_not_scanned() {
        let nested =
            |arrays: usize| format!("{{\"a\":{}1{}}}", "[".repeat(arrays), "]".repeat(arrays));
        assert_eq!(glance(nested(MAX_DEPTH).as_bytes()), Glance::Inspect);
        assert_eq!(
            glance(nested(MAX_DEPTH - 1).as_bytes()),
            Glance::Plain { output_chars: 0 }
        );
    }

    #[test]
    fn every_prefix_of_a_frame_is_parsed_not_passed() {
        let frame = PLAIN[2].as_bytes();
        for cut in 0..frame.len() {
            assert_eq!(glance(&frame[..cut]), Glance::Inspect, "cut at {cut}");
        }
    }
}
