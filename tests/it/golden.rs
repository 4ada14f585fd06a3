//! Golden-file tests of the wire formats, in both directions. Each case folder under
//! `tests/golden/<platform>/` holds an OpenAI `request.json` and the exact `upstream.json` the
//! platform must receive; optionally an upstream `response.json` with the `openai.json` the
//! client must get, an upstream `stream.sse` with the `stream.expected` chunks (one JSON per
//! line), or an `error.txt` when the request cannot be expressed for the platform.
//!
//! Front translators (the client APIs besides chat) have cases under
//! `tests/golden/fronts/<surface>/<case>/`: the client's `client.json` and the `internal.json`
//! chat request it must become (or an `error.txt` naming the refused field); optionally a
//! normalised `completion.json` with the `client_response.json` the client must get, and an
//! OpenAI `stream.sse` with the `events.expected` the client must get (one event per line:
//! `<event name> <json>`, or `data <json>` for unnamed events; `line <json>` for the Ollama
//! API's NDJSON), fed whole and byte by byte.
//!
//! A Gemini case also has a `route.txt` (`model:method`, the path's end).
//!
//! In expected files `"<id>"` matches any string (generated ids), `"<n>"` any number, and a
//! `"created": 0` any timestamp. Objects are compared by keys, not key order.

use std::collections::hash_map::DefaultHasher;
use std::path::{Path, PathBuf};

use freellmapi::catalog::Catalog;
use freellmapi::chat::ChatRequest;
use freellmapi::front::{self, Echo, Encoder};
use freellmapi::surface::Surface;
use freellmapi::upstream::sse::SseReader;
use freellmapi::wire::{self, Decoder, Usage, WireError};
use simd_json::OwnedValue;
use simd_json::prelude::*;

fn parse(bytes: &[u8]) -> OwnedValue {
    simd_json::to_owned_value(&mut bytes.to_vec())
        .unwrap_or_else(|e| panic!("bad JSON {e}: {}", String::from_utf8_lossy(bytes)))
}

/// Whether `actual` matches `expected` (with the wildcards above). Returns the path of the
/// first difference.
fn diff(expected: &OwnedValue, actual: &OwnedValue, path: &str) -> Option<String> {
    match expected.as_str() {
        Some("<id>") => {
            return (!actual.is_str()).then(|| format!("{path}: expected a string, got {actual}"));
        }
        Some("<n>") => {
            return actual
                .as_u64()
                .is_none()
                .then(|| format!("{path}: expected a number, got {actual}"));
        }
        _ => {}
    }
    if (path.ends_with(".created") || path.ends_with(".created_at"))
        && expected.as_u64() == Some(0)
        && actual.as_u64().is_some()
    {
        return None;
    }
    match (expected.as_object(), actual.as_object()) {
        (Some(e), Some(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (e.get(k.as_str()), a.get(k.as_str())) {
                    (Some(ev), Some(av)) => {
                        if let Some(d) = diff(ev, av, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                    (Some(_), None) => return Some(format!("{path}.{k}: missing")),
                    (None, Some(av)) => return Some(format!("{path}.{k}: unexpected {av}")),
                    (None, None) => {}
                };
            }
            return None;
        }
        (Some(_), None) | (None, Some(_)) => {
            return Some(format!("{path}: expected {expected}, got {actual}"));
        }
        _ => {}
    }
    if let (Some(e), Some(a)) = (expected.as_array(), actual.as_array()) {
        if e.len() != a.len() {
            return Some(format!(
                "{path}: expected {} items, got {}: {actual}",
                e.len(),
                a.len()
            ));
        }
        for (i, (ev, av)) in e.iter().zip(a.iter()).enumerate() {
            if let Some(d) = diff(ev, av, &format!("{path}[{i}]")) {
                return Some(d);
            }
        }
        return None;
    }
    (expected != actual).then(|| format!("{path}: expected {expected}, got {actual}"))
}

fn assert_matches(case: &Path, what: &str, expected: &OwnedValue, actual: &[u8]) {
    let actual = parse(actual);
    if let Some(d) = diff(expected, &actual, "$") {
        let full = String::from_utf8(freellmapi::json::encode(&actual)).unwrap();
        panic!("{} {what}: {d}\nfull output: {full}", case.display());
    }
}

fn read(case: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(case.join(name)).ok()
}

fn run_case(catalog: &Catalog, case: &Path) {
    let platform_id = case
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let platform = &catalog.platforms[catalog
        .platform_index(platform_id)
        .expect("case folder names a platform")];
    let mut request = read(case, "request.json").expect("request.json");
    let chat = ChatRequest::parse(&mut request, DefaultHasher::new())
        .unwrap_or_else(|e| panic!("{}: {e:?}", case.display()));
    let model_idx = match &chat.model {
        Some(name) => catalog
            .find_model(name)
            .expect("the request's model is in the catalog"),
        None => catalog
            .intelligence_order()
            .into_iter()
            .find(|&m| {
                catalog.models[m].platform == catalog.platform_index(platform_id).unwrap()
                    && catalog.models[m].enabled
            })
            .unwrap(),
    };
    let model = &catalog.models[model_idx];

    if let Some(error) = read(case, "error.txt") {
        match wire::outbound(platform, model, &chat) {
            Err(WireError::Unsupported(why)) => assert_eq!(
                why,
                String::from_utf8(error).unwrap().trim(),
                "{}",
                case.display()
            ),
            Err(e) => panic!("{}: {e:?}", case.display()),
            Ok(_) => panic!("{}: expected a refusal", case.display()),
        }
        return;
    }
    let out = wire::outbound(platform, model, &chat)
        .unwrap_or_else(|e| panic!("{}: {e:?}", case.display()));
    assert_matches(
        case,
        "upstream request",
        &parse(&read(case, "upstream.json").expect("upstream.json")),
        &out.body,
    );

    if let Some(response) = read(case, "response.json") {
        let completion = wire::completion(platform, model, response, &chat)
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.display()));
        assert_matches(
            case,
            "response",
            &parse(&read(case, "openai.json").expect("openai.json")),
            &completion.body,
        );
    }

    if let Some(sse) = read(case, "stream.sse") {
        let expected =
            String::from_utf8(read(case, "stream.expected").expect("stream.expected")).unwrap();
        let expected: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
        for (label, chunks) in [
            ("whole", vec![sse.clone()]),
            ("byte by byte", sse.iter().map(|b| vec![*b]).collect()),
        ] {
            let got = decode_stream(platform, model, &chunks);
            assert_eq!(
                got.len(),
                expected.len(),
                "{} stream ({label}): {got:#?}",
                case.display()
            );
            for (e, g) in expected.iter().zip(&got) {
                assert_matches(
                    case,
                    &format!("stream chunk ({label})"),
                    &parse(e.as_bytes()),
                    g,
                );
            }
        }
    }
}

fn decode_stream(
    platform: &freellmapi::catalog::Platform,
    model: &freellmapi::catalog::Model,
    pieces: &[Vec<u8>],
) -> Vec<Vec<u8>> {
    let mut reader = SseReader::new();
    let mut decoder = Decoder::new(platform, model);
    let mut out = Vec::new();
    for piece in pieces {
        reader.push(piece);
        while let Some(data) = reader.next_event().unwrap() {
            match &mut decoder {
                Decoder::Passthrough => out.push(data.to_vec()),
                Decoder::Gemini(g) => g.decode(data, &mut out).unwrap(),
            }
        }
    }
    out
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out = Vec::new();
    for platform in std::fs::read_dir(root).unwrap() {
        let platform = platform.unwrap().path();
        if platform.ends_with("fronts") {
            continue;
        }
        for case in std::fs::read_dir(&platform).unwrap() {
            out.push(case.unwrap().path());
        }
    }
    out.sort();
    out
}

#[test]
fn every_golden_case_translates_exactly() {
    let catalog = Catalog::builtin();
    let cases = cases();
    assert!(cases.len() >= 14, "{cases:?}");
    for case in &cases {
        run_case(&catalog, case);
    }
}

#[test]
fn gemini_urls_carry_no_key_and_pick_the_stream_endpoint() {
    assert_eq!(
        wire::gemini::url(
            "https://generativelanguage.googleapis.com/v1beta",
            "gemini-3.8-flash",
            false
        ),
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-3.8-flash:generateContent"
    );
    assert_eq!(
        wire::gemini::url("http://m/v1beta", "a b/c", true),
        "http://m/v1beta/models/a%20b%2Fc:streamGenerateContent?alt=sse"
    );
}

fn front_cases() -> Vec<(Surface, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fronts");
    let mut out = Vec::new();
    for (name, surface) in [
        ("messages", Surface::Messages),
        ("responses", Surface::Responses),
        ("completions", Surface::Completions),
        ("ollama_chat", Surface::OllamaChat),
        ("ollama_generate", Surface::OllamaGenerate),
        ("gemini", Surface::Gemini),
    ] {
        for case in std::fs::read_dir(root.join(name)).unwrap() {
            out.push((surface, case.unwrap().path()));
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

/// Runs OpenAI chunks through a surface's encoder, the upstream SSE arriving in `pieces`.
fn encode_stream(surface: Surface, pieces: &[Vec<u8>]) -> Vec<u8> {
    let mut reader = SseReader::new();
    let mut encoder = Encoder::new(surface, "claude-sonnet-4-5", 12);
    let mut out = Vec::new();
    for piece in pieces {
        reader.push(piece);
        while let Some(data) = reader.next_event().unwrap() {
            if data == b"[DONE]" {
                continue;
            }
            encoder.chunk(data, &mut out).unwrap();
        }
    }
    encoder.finish(
        Usage {
            prompt: 12,
            completion: 7,
            total: 19,
        },
        &mut out,
    );
    out
}

/// The events of an SSE body as (event name or "data", data) pairs; of an NDJSON body (the
/// Ollama API's streams) as ("line", line) pairs.
fn events(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8(body.to_vec()).unwrap();
    if text.starts_with('{') {
        assert!(text.ends_with('\n'), "NDJSON ends with a newline");
        return text
            .lines()
            .map(|l| {
                assert!(!l.is_empty(), "an empty NDJSON line");
                ("line".to_string(), l.as_bytes().to_vec())
            })
            .collect();
    }
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = "data".to_string();
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.extend_from_slice(d.as_bytes());
            } else {
                panic!("not an SSE line: {line:?}");
            }
        }
        out.push((name, data));
    }
    out
}

fn run_front_case(surface: Surface, case: &Path) {
    let mut request = read(case, "client.json").expect("client.json");
    let parsed = match read(case, "route.txt") {
        // The Gemini API names the model and the method in the path.
        Some(route) => {
            let route = String::from_utf8(route).unwrap();
            let (model, method) = route.trim().rsplit_once(':').expect("model:method");
            let stream = method == "streamGenerateContent";
            front::gemini::parse(&mut request, model, stream, DefaultHasher::new())
        }
        None => front::parse(surface, &mut request, DefaultHasher::new()),
    };
    if let Some(error) = read(case, "error.txt") {
        match parsed {
            Err(e) => assert_eq!(
                e.message,
                String::from_utf8(error).unwrap().trim(),
                "{}",
                case.display()
            ),
            Ok(_) => panic!("{}: expected a refusal", case.display()),
        }
        return;
    }
    let inbound = parsed.unwrap_or_else(|e| panic!("{}: {e:?}", case.display()));
    assert_matches(
        case,
        "internal request",
        &parse(&read(case, "internal.json").expect("internal.json")),
        &freellmapi::json::encode(&inbound.chat.body),
    );
    if let Some(dropped) = read(case, "dropped.txt") {
        assert_eq!(
            inbound.dropped_tools.join(", "),
            String::from_utf8(dropped).unwrap().trim(),
            "{}",
            case.display()
        );
    }
    if let Some(completion) = read(case, "completion.json") {
        let echo = Echo {
            model: &inbound.echo_model,
            usage: Usage {
                prompt: 12,
                completion: 7,
                total: 19,
            },
            took: std::time::Duration::from_millis(250),
        };
        let body = front::render(surface, completion, &echo)
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.display()));
        assert_matches(
            case,
            "client response",
            &parse(&read(case, "client_response.json").expect("client_response.json")),
            &body,
        );
    }
    if let Some(sse) = read(case, "stream.sse") {
        let expected =
            String::from_utf8(read(case, "events.expected").expect("events.expected")).unwrap();
        let expected: Vec<(&str, &str)> = expected
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split_once(' ').expect("<event> <json>"))
            .collect();
        let whole = encode_stream(surface, std::slice::from_ref(&sse));
        let split = encode_stream(surface, &sse.iter().map(|b| vec![*b]).collect::<Vec<_>>());
        let strip_ids = |b: &[u8]| events(b).into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert_eq!(
            strip_ids(&whole),
            strip_ids(&split),
            "{}: split input",
            case.display()
        );
        let got = events(&whole);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        let want: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, want, "{} event names", case.display());
        for ((name, data), (_, want)) in got.iter().zip(&expected) {
            if *want == "[DONE]" {
                assert_eq!(data, b"[DONE]");
                continue;
            }
            assert_matches(
                case,
                &format!("event {name}"),
                &parse(want.as_bytes()),
                data,
            );
        }
        if matches!(surface, Surface::OllamaChat | Surface::OllamaGenerate) {
            continue_ndjson(case, &whole);
            return;
        }
        // A client reading the encoded stream byte by byte sees the same events.
        let mut client = SseReader::new();
        let mut seen = 0;
        for b in &whole {
            client.push(&[*b]);
            while client.next_event().unwrap().is_some() {
                seen += 1;
            }
        }
        assert_eq!(seen, got.len(), "{}: client-side split", case.display());
    }
}

/// An NDJSON stream: every line one JSON object, the last one `done`.
fn continue_ndjson(case: &Path, whole: &[u8]) {
    let lines: Vec<&[u8]> = whole
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for (i, l) in lines.iter().enumerate() {
        let v = parse(l);
        assert_eq!(
            v.get_bool("done"),
            Some(i + 1 == lines.len()),
            "{}: line {i} done",
            case.display()
        );
    }
}

#[test]
fn every_front_case_translates_exactly() {
    let cases = front_cases();
    assert!(cases.len() >= 10, "{cases:?}");
    for (surface, case) in &cases {
        run_front_case(*surface, case);
    }
}
