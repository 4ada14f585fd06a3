//! Small text helpers for what crosses the HTTP boundary: decoding a path segment, and making
//! a value safe to place in a header.

/// `%XX` decoding for path segments (model ids may contain `/`, `:` and `@`).
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `X-Routed-Via` value: bytes outside visible ASCII (and `%`) are percent-encoded, so no
/// model id can break or inject a header.
pub fn header_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_cannot_break_headers() {
        assert_eq!(
            header_safe("groq/openai/gpt-oss-120b"),
            "groq/openai/gpt-oss-120b"
        );
        assert_eq!(
            header_safe("x/evil\r\nSet-Cookie: a"),
            "x/evil%0D%0ASet-Cookie:%20a"
        );
        assert_eq!(header_safe("m/é%"), "m/%C3%A9%25");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%40cf%2Fmeta").as_deref(), Some("@cf/meta"));
        assert_eq!(
            percent_decode("qwen/qwen3:free").as_deref(),
            Some("qwen/qwen3:free")
        );
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%C3"), None);
    }
}
