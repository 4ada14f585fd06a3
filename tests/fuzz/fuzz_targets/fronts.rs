//! Any body on any translated surface (Anthropic Messages, Responses, completions, Ollama's
//! chat and generate, Gemini, embeddings), and any chunk through each surface's stream encoder. The
//! first byte picks the surface. No panic; an accepted request becomes an internal chat body
//! that is valid JSON; every encoder's output is well-formed SSE whose data lines parse as
//! JSON, NDJSON whose lines do, or one JSON array.
#![no_main]

use std::collections::hash_map::DefaultHasher;

use freellmapi::front::{self, Encoder};
use freellmapi::surface::Surface;
use freellmapi::wire::Usage;

const SURFACES: [Surface; 6] = [
    Surface::Messages,
    Surface::Responses,
    Surface::Completions,
    Surface::OllamaChat,
    Surface::OllamaGenerate,
    Surface::Gemini,
];

/// Ollama's streams are NDJSON: every line one JSON object.
fn check_ndjson(out: &[u8]) {
    assert!(out.is_empty() || out.ends_with(b"\n"), "NDJSON ends with a newline");
    for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut bytes = line.to_vec();
        assert!(freellmapi::json::parse_value(&mut bytes).is_ok(), "bad NDJSON line");
    }
}

fn check_sse(out: &[u8]) {
    let text = std::str::from_utf8(out).expect("encoders write UTF-8");
    if text.starts_with('{') {
        return check_ndjson(out);
    }
    // A Gemini stream without `alt=sse`: one JSON array.
    if text.starts_with('[') {
        let mut bytes = out.to_vec();
        assert!(freellmapi::json::parse_value(&mut bytes).is_ok(), "bad JSON array stream");
        return;
    }
    for block in text.split("\n\n").filter(|b| !b.is_empty()) {
        for line in block.lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                if data != "[DONE]" {
                    let mut bytes = data.as_bytes().to_vec();
                    assert!(freellmapi::json::parse_value(&mut bytes).is_ok(), "bad data line {data:?}");
                }
            } else {
                assert!(line.starts_with("event: "), "not an SSE line: {line:?}");
            }
        }
    }
}

/// A four-token vocabulary, so token-id inputs are decoded too.
static VOCABS: std::sync::LazyLock<freellmapi::vocab::Vocabularies> =
    std::sync::LazyLock::new(|| {
        let dir = std::env::temp_dir().join(format!("fuzz-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("cl100k_base.tiktoken"),
            "aGVsbG8= 0\nIHdvcmxk 1\nww== 2\nqQ== 3\n",
        )
        .unwrap();
        freellmapi::vocab::Vocabularies::new(vec![dir])
    });

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    if pick == 0xff {
        let _ = front::embeddings::parse(&mut body.to_vec(), &VOCABS);
        return;
    }
    if pick == 0xfe {
        let _ = front::embeddings::parse_ollama(&mut body.to_vec(), body.len() % 2 == 0);
        return;
    }
    if pick == 0xfd {
        let _ = front::embeddings::parse_gemini(&mut body.to_vec(), "m", body.len() % 2 == 0);
        return;
    }
    let surface = SURFACES[pick as usize % SURFACES.len()];
    let parsed = if surface == Surface::Gemini {
        // The model and the method come from the path.
        front::gemini::parse(&mut body.to_vec(), "gemini-x", pick & 0x80 != 0, DefaultHasher::new())
    } else {
        front::parse(surface, &mut body.to_vec(), DefaultHasher::new())
    };
    if let Ok(inbound) = parsed {
        let mut out = freellmapi::json::encode(&inbound.chat.body);
        assert!(freellmapi::json::parse_value(&mut out).is_ok());
    }
    if surface == Surface::Messages {
        let _ = front::anthropic::count_tokens(&mut body.to_vec(), DefaultHasher::new());
    }
    // The same bytes as a stream of chunks (split on newlines), then a clean end; and again,
    // broken off instead (a relay ends a stream one way or the other, never both).
    for broken in [false, true] {
        let mut encoder = Encoder::new(surface, "m", 1);
        if pick & 0x40 != 0 {
            encoder = encoder.json_array();
        }
        let mut out = Vec::new();
        for piece in body.split(|b| *b == b'\n') {
            if encoder.chunk(piece, &mut out).is_err() {
                break;
            }
        }
        if broken {
            encoder.fail("broken \"quote\"\n", &mut out);
        } else {
            encoder.finish(Usage::default(), &mut out);
        }
        check_sse(&out);
    }
});
