//! Speech to text over real sockets: `POST /v1/audio/transcriptions` as OpenAI's clients send
//! it (multipart/form-data), Groq's multipart upload and Cloudflare's base64 and raw-body
//! inputs on mock providers, every response format, failover, OpenAI-shaped errors with
//! nothing sent upstream, uploads spooled to disk with flat memory, and no spool file left
//! behind however a request ends.

use crate::support;

use std::io::Write;
use std::net::Shutdown;
use std::path::Path;
use std::time::Duration;

use simd_json::prelude::*;
use support::mock::{Mock, Recorded, Reply};
use support::{Proxy, Response};

const BOUNDARY: &str = "----test-boundary-7MA4YWxkTrZu0gW";

/// A multipart body with `fields` and, when given, a `file` part (`filename`, content type,
/// bytes), as an HTTP client writes it.
fn form(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in fields {
        out.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some((name, ct, bytes)) = file {
        out.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n")
                .as_bytes(),
        );
        out.extend_from_slice(bytes);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

fn post_form(p: &Proxy, body: &[u8]) -> Response {
    let auth = format!("Bearer {}", p.token);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    support::request(
        p.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[("Authorization", &auth), ("Content-Type", &ct)],
        body,
    )
}

/// Audio-like bytes: every byte value, CRs and dashes, a near-boundary.
fn audio(len: usize) -> Vec<u8> {
    let mut a: Vec<u8> = (0..len).map(|i| (i * 131 % 256) as u8).collect();
    if len > 64 {
        a[10..30].copy_from_slice(b"\r\n------test-bounda\r");
    }
    a
}

/// One part of a multipart body the mock received: name, filename, bytes.
type Part = (String, Option<String>, Vec<u8>);

/// Splits a received multipart body (a parser of the test's own, sharing no code with the
/// server's).
fn parts(r: &Recorded) -> Vec<Part> {
    let ct = r.header("content-type").expect("a content type");
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .expect("a boundary")
        .trim_matches('"');
    let delim = format!("--{boundary}");
    let body = &r.body;
    let find = |from: usize| {
        body[from..]
            .windows(delim.len())
            .position(|w| w == delim.as_bytes())
            .map(|i| i + from)
    };
    let mut out = Vec::new();
    let mut at = find(0).expect("a first boundary") + delim.len();
    while !body[at..].starts_with(b"--") {
        let end = find(at).expect("a closing boundary");
        let part = &body[at + 2..end - 2];
        let split = part
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("part headers");
        let head = String::from_utf8_lossy(&part[..split]).to_string();
        let value = |key: &str| {
            head.split(&format!("{key}=\""))
                .nth(1)
                .map(|v| v.split('"').next().unwrap().to_string())
        };
        out.push((
            value(" name").or_else(|| value(";name")).expect("a name"),
            value("filename"),
            part[split + 4..].to_vec(),
        ));
        at = end + delim.len();
    }
    out
}

fn field(parts: &[Part], name: &str) -> Option<String> {
    parts
        .iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, _, v)| String::from_utf8_lossy(v).to_string())
}

/// Groq's verbose_json answer.
const GROQ_VERBOSE: &str = r#"{"task":"transcribe","language":"English","duration":2.5,"text":" Hello there. General Kenobi.","segments":[{"id":0,"seek":0,"start":0,"end":1.2,"text":" Hello there.","tokens":[50364,2425],"temperature":0,"avg_logprob":-0.25,"compression_ratio":0.9,"no_speech_prob":0.01},{"id":1,"seek":0,"start":1.2,"end":2.5,"text":" General Kenobi.","tokens":[],"temperature":0,"avg_logprob":-0.3,"compression_ratio":0.9,"no_speech_prob":0.02}],"x_groq":{"id":"req_01"}}"#;

/// A Groq mock: answers its transcription endpoint (verbose_json when asked, else json).
fn groq() -> Mock {
    Mock::start(|r| {
        if !r.path.ends_with("/audio/transcriptions") {
            return Reply::json(404, r#"{"error":{"message":"no"}}"#);
        }
        if field(&parts(r), "response_format").as_deref() == Some("verbose_json") {
            Reply::json(200, GROQ_VERBOSE)
        } else {
            Reply::json(
                200,
                r#"{"text":" Hello there. General Kenobi.","x_groq":{"id":"req_02"}}"#,
            )
        }
    })
}

fn cloudflare_base(m: &Mock) -> String {
    format!("http://{}/client/v4/accounts/{{account_id}}/ai/v1", m.addr)
}

/// The spool file goes as its request ends, just after the answer is written.
fn spool_empties(p: &Proxy) {
    p.wait_for("the spool to empty", Duration::from_secs(5), |p| {
        spool_files(p).is_empty()
    });
}

fn spool_files(p: &Proxy) -> Vec<String> {
    std::fs::read_dir(p.dir.join("spool"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn groq_gets_a_multipart_upload_and_every_format_comes_back() {
    let m = groq();
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .unlimited_key("groq", "gsk_stt_key_0000001")
        .start();
    let wav = audio(70_000);
    let fields = [
        ("model", "whisper-large-v3-turbo"),
        ("language", "en"),
        ("prompt", "Kenobi, Grievous"),
        ("temperature", "0.2"),
    ];
    let r = post_form(&p, &form(&fields, Some(("talk.wav", "audio/wav", &wav))));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"text":" Hello there. General Kenobi."}"#);
    assert_eq!(
        r.header("Content-Type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/whisper-large-v3-turbo")
    );
    let sent = m.last();
    assert_eq!(sent.path, "/v1/audio/transcriptions");
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer gsk_stt_key_0000001")
    );
    let got = parts(&sent);
    assert_eq!(
        field(&got, "model").as_deref(),
        Some("whisper-large-v3-turbo")
    );
    assert_eq!(field(&got, "response_format").as_deref(), Some("json"));
    assert_eq!(field(&got, "language").as_deref(), Some("en"));
    assert_eq!(field(&got, "prompt").as_deref(), Some("Kenobi, Grievous"));
    assert_eq!(field(&got, "temperature").as_deref(), Some("0.2"));
    let file = got.iter().find(|(n, _, _)| n == "file").unwrap();
    assert_eq!(file.1.as_deref(), Some("talk.wav"));
    assert_eq!(file.2, wav, "the file arrives byte for byte");
    assert_eq!(
        sent.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        sent.body.len()
    );

    let with = |format: &str| {
        let mut f = fields.to_vec();
        f.push(("response_format", format));
        post_form(&p, &form(&f, Some(("talk.wav", "audio/wav", &wav))))
    };
    let r = with("text");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "Hello there. General Kenobi.\n");
    assert!(r.header("Content-Type").unwrap().starts_with("text/plain"));
    assert_eq!(
        field(&parts(&m.last()), "response_format").as_deref(),
        Some("json")
    );

    let r = with("srt");
    assert_eq!(
        r.text(),
        "1\n00:00:00,000 --> 00:00:01,200\nHello there.\n\n2\n00:00:01,200 --> 00:00:02,500\nGeneral Kenobi.\n\n"
    );
    assert_eq!(
        field(&parts(&m.last()), "response_format").as_deref(),
        Some("verbose_json"),
        "subtitles are made from Groq's segments"
    );
    let r = with("vtt");
    assert_eq!(
        r.text(),
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.200\nHello there.\n\n00:00:01.200 --> 00:00:02.500\nGeneral Kenobi.\n\n"
    );
    assert!(r.header("Content-Type").unwrap().starts_with("text/vtt"));
    let r = with("verbose_json");
    let v = r.json();
    assert_eq!(v["task"], "transcribe");
    assert_eq!(v["language"], "English");
    assert_eq!(v["duration"], 2.5);
    assert_eq!(v["segments"].as_array().unwrap().len(), 2);
    assert_eq!(v["segments"][1]["start"], 1.2);
    assert_eq!(v["segments"][0]["tokens"][1], 2425u64);
    spool_empties(&p);
}

#[test]
fn whisper_1_goes_to_the_family_and_a_groq_429_fails_over_to_cloudflares_base64() {
    let m = groq();
    let cf = Mock::start(|_| {
        Reply::json(
            200,
            r#"{"result":{"transcription_info":{"language":"en","duration":1.5},"text":"Hi from Cloudflare.","word_count":3,"segments":[{"start":0.0,"end":1.5,"text":"Hi from Cloudflare."}],"vtt":"WEBVTT"},"success":true,"errors":[],"messages":[]}"#,
        )
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .upstream("cloudflare", &cloudflare_base(&cf))
        .unlimited_key("groq", "gsk_stt_key_0000002")
        .unlimited_key("cloudflare", "acct42:cf_token_stt")
        .start();
    let mp3 = audio(10_001);
    let body = |model: &str, format: &str| {
        form(
            &[
                ("model", model),
                ("language", "en"),
                ("prompt", "Cloudflare"),
                ("response_format", format),
            ],
            Some(("note.mp3", "audio/mpeg", &mp3)),
        )
    };
    let r = post_form(&p, &body("whisper-1", "json"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("groq/whisper-large-v3-turbo"),
        "whisper-1: the family's first in chain order"
    );

    m.set(|_| {
        Reply::json(
            429,
            r#"{"error":{"message":"Rate limit reached for model whisper-large-v3-turbo: audio seconds per hour (ASH)","type":"tokens","code":"rate_limit_exceeded"}}"#,
        )
        .with_header("retry-after", "30")
    });
    let r = post_form(&p, &body("whisper-1", "verbose_json"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("cloudflare/@cf/openai/whisper-large-v3-turbo")
    );
    assert_eq!(
        r.header("X-Fallback-Attempts").as_deref(),
        Some("2"),
        "both Groq models, then Cloudflare"
    );
    let v = r.json();
    assert_eq!(
        (v["text"].as_str(), v["language"].as_str()),
        (Some("Hi from Cloudflare."), Some("en"))
    );
    assert_eq!(v["segments"][0]["end"], 1.5);
    let sent = cf.last();
    assert_eq!(
        sent.path,
        "/client/v4/accounts/acct42/ai/run/@cf/openai/whisper-large-v3-turbo"
    );
    assert_eq!(sent.header("authorization"), Some("Bearer cf_token_stt"));
    let j = sent.json();
    assert_eq!(j["language"], "en");
    assert_eq!(j["initial_prompt"], "Cloudflare");
    let b64 = j["audio"].as_str().unwrap();
    assert_eq!(
        freellmapi::crypto::base64_decode(b64.as_bytes()).unwrap(),
        mp3,
        "the file arrives whole in base64"
    );

    // Cloudflare's older Whisper takes the file as the body itself.
    cf.set(|_| {
        Reply::json(
            200,
            r#"{"result":{"text":"Raw body.","word_count":2,"words":[{"word":"Raw","start":0,"end":0.4},{"word":"body.","start":0.4,"end":0.9}]},"success":true}"#,
        )
    });
    let r = post_form(&p, &body("@cf/openai/whisper", "srt"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "1\n00:00:00,000 --> 00:00:00,900\nRaw body.\n\n");
    let sent = cf.last();
    assert_eq!(
        sent.path,
        "/client/v4/accounts/acct42/ai/run/@cf/openai/whisper"
    );
    assert_eq!(sent.header("content-type"), Some("audio/mpeg"));
    assert_eq!(sent.body, mp3);

    // The request log names the surface; /metrics counts it.
    let metrics = p.get("/metrics").text();
    assert!(metrics.contains("surface=\"transcriptions\""), "{metrics}");
    spool_empties(&p);
}

#[test]
fn bad_requests_get_openai_errors_naming_the_field_and_nothing_goes_upstream() {
    let m = groq();
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .unlimited_key("groq", "gsk_stt_key_0000003")
        .start();
    let wav = audio(1000);
    let file = Some(("a.wav", "audio/wav", &wav[..]));
    let check = |r: Response, status: u16, code: &str, says: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        assert_eq!(r.error_type(), "invalid_request_error", "{}", r.text());
        assert_eq!(r.error_code(), code, "{}", r.text());
        assert!(r.error_message().contains(says), "{}", r.text());
        assert_eq!(
            r.header("Content-Type").as_deref(),
            Some("application/json")
        );
    };
    check(
        post_form(&p, &form(&[("model", "whisper-1")], None)),
        400,
        "missing_required_parameter",
        "file:",
    );
    check(
        post_form(&p, &form(&[], file)),
        400,
        "missing_required_parameter",
        "model:",
    );
    check(
        post_form(&p, &form(&[("model", "nope-1")], file)),
        400,
        "model_not_found",
        "not a speech-to-text model",
    );
    check(
        post_form(&p, &form(&[("model", "openai/gpt-oss-120b")], file)),
        400,
        "model_not_found",
        "speech-to-text models /v1/audio/transcriptions only",
    );
    check(
        post_form(
            &p,
            &form(&[("model", "whisper-1"), ("response_format", "xml")], file),
        ),
        400,
        "invalid_value",
        "response_format:",
    );
    check(
        post_form(
            &p,
            &form(&[("model", "whisper-1")], Some(("a.wav", "audio/wav", b""))),
        ),
        400,
        "invalid_value",
        "file: empty",
    );
    // Not multipart at all, and a boundary the body does not have.
    check(
        p.post(
            "/v1/audio/transcriptions",
            r#"{"model":"whisper-1","file":"x"}"#,
            &[],
        ),
        400,
        "invalid_content_type",
        "multipart/form-data",
    );
    let auth = format!("Bearer {}", p.token);
    let wrong = support::request(
        p.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "multipart/form-data; boundary=other"),
        ],
        &form(&[("model", "whisper-1")], file),
    );
    check(wrong, 400, "invalid_multipart", "no boundary");
    let none = support::request(
        p.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[
            ("Authorization", &auth),
            ("Content-Type", "multipart/form-data"),
        ],
        b"",
    );
    check(none, 400, "invalid_content_type", "no boundary");
    // Without the client key: 401 on the head, the body never read.
    let r = support::request(
        p.addr,
        "POST",
        "/v1/audio/transcriptions",
        &[(
            "Content-Type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )],
        &form(&[("model", "whisper-1")], file),
    );
    assert_eq!(r.status, 401);
    assert_eq!(m.count(), 0, "nothing reached the provider");
    spool_empties(&p);
    // A 400 about the audio is the client's: relayed, with keys taken out.
    m.set(|_| {
        Reply::json(
            400,
            r#"{"error":{"message":"could not process file - is it a valid media file? (key gsk_stt_key_0000003)","type":"invalid_request_error"}}"#,
        )
    });
    let r = post_form(&p, &form(&[("model", "whisper-large-v3")], file));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code(), "upstream_rejected");
    assert!(
        r.error_message().contains("valid media file"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("gsk_stt_key_0000003"), "{}", r.text());
}

/// Streams `total` bytes of audio in a multipart body over a raw socket, chunked (no length
/// announced, so the server learns the size only by reading), in 64 KiB writes; returns the
/// response, read after the client has sent everything (the server drains what it refused).
fn upload_chunked(p: &Proxy, model: &str, total: usize) -> Response {
    let mut s = support::connect(p.addr);
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n",
        p.token
    );
    s.write_all(head.as_bytes()).unwrap();
    let chunk = |s: &mut std::net::TcpStream, bytes: &[u8]| -> bool {
        let mut framed = format!("{:x}\r\n", bytes.len()).into_bytes();
        framed.extend_from_slice(bytes);
        framed.extend_from_slice(b"\r\n");
        s.write_all(&framed).is_ok()
    };
    let opening = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
    );
    chunk(&mut s, opening.as_bytes());
    let piece = audio(64 * 1024);
    let mut sent = 0;
    let mut open = true;
    while sent < total && open {
        let n = piece.len().min(total - sent);
        open = chunk(&mut s, &piece[..n]);
        sent += n;
    }
    if open {
        chunk(&mut s, format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let _ = s.write_all(b"0\r\n\r\n");
    } else {
        // Refused mid-upload: nothing more will be sent. A client that half-closes a request
        // it still waits on reads as gone (and ends the upstream call), so only this one does.
        let _ = s.shutdown(Shutdown::Write);
    }
    support::read_response(&mut s)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// How far the server's peak RSS rises above its RSS now while `f` runs, in KiB. The peak is
/// reset first (`clear_refs` 5) so an earlier, higher one cannot hide the rise.
fn peak_rise<T>(p: &Proxy, f: impl FnOnce() -> T) -> (T, u64) {
    let _ = std::fs::write(format!("/proc/{}/clear_refs", p.pid()), "5");
    let before = p.memory_kib("VmRSS").max(p.memory_kib("VmHWM"));
    let out = f();
    (out, p.memory_kib("VmHWM").saturating_sub(before))
}

#[test]
fn a_26_mib_upload_is_refused_at_the_limit_and_a_20_mib_one_served_with_flat_memory() {
    let m = Mock::start(|r| {
        let got = parts(r);
        let file = got.iter().find(|(n, _, _)| n == "file").unwrap();
        let want = 20 * 1024 * 1024;
        if file.2.len() == want && file.2[..64 * 1024] == audio(64 * 1024)[..] {
            Reply::json(200, r#"{"text":"twenty"}"#)
        } else {
            Reply::json(
                500,
                r#"{"error":{"message":"the file did not arrive whole"}}"#,
            )
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .unlimited_key("groq", "gsk_stt_key_0000004")
        .start();
    // Warm up: the first request's one-time allocations are not the upload's.
    let r = upload_chunked(&p, "nope", 1024);
    assert_eq!(r.status, 400, "{}", r.text());

    let (r, grew) = peak_rise(&p, || upload_chunked(&p, "whisper-1", 26 * 1024 * 1024));
    println!("26 MiB refused: peak RSS grew {:.2} MiB", mib(grew));
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.error_type(), "invalid_request_error");
    assert_eq!(r.error_code(), "request_too_large");
    assert!(r.error_message().contains("25 MiB"), "{}", r.text());
    assert!(
        grew < 8 * 1024,
        "peak RSS grew {grew} KiB for a 26 MiB upload"
    );
    assert_eq!(m.count(), 0);
    spool_empties(&p);

    // Declared too large: refused on the head, before a byte of the body.
    let auth = format!("Bearer {}", p.token);
    let mut s = support::connect(p.addr);
    let head = format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: test\r\nAuthorization: {auth}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        27 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).unwrap();
    let r = support::read_response(&mut s);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.error_code(), "request_too_large");

    let (r, grew) = peak_rise(&p, || upload_chunked(&p, "whisper-1", 20 * 1024 * 1024));
    println!("20 MiB served: peak RSS grew {:.2} MiB", mib(grew));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"text":"twenty"}"#);
    assert!(
        grew < 8 * 1024,
        "peak RSS grew {grew} KiB for a 20 MiB upload"
    );
    spool_empties(&p);
}

#[test]
fn no_spool_file_outlives_its_request_however_it_ends() {
    let m = Mock::start(|_| Reply::json(200, r#"{"text":"ok"}"#));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .unlimited_key("groq", "gsk_stt_key_0000005")
        .start();
    let wav = audio(300_000);
    let body = form(
        &[("model", "whisper-1")],
        Some(("a.wav", "audio/wav", &wav)),
    );
    // A success.
    let r = post_form(&p, &body);
    assert_eq!(r.status, 200, "{}", r.text());
    spool_empties(&p);

    // An upstream failure: the client hears why, the file is gone.
    m.set(|_| Reply::json(503, r#"{"error":{"message":"overloaded"}}"#));
    let r = post_form(&p, &body);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(m.count() >= 2);
    spool_empties(&p);

    // A client that leaves mid-upload: its file is there while it sends, and then gone.
    let mut s = support::connect(p.addr);
    let head = format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        p.token,
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    p.wait_for("the upload to be spooled", Duration::from_secs(5), |p| {
        spool_files(p).len() == 1
    });
    let name = &spool_files(&p)[0];
    assert!(name.starts_with("upload-"), "{name}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(p.dir.join("spool").join(name))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    drop(s);
    spool_empties(&p);
    p.wait_for("the cancelled record", Duration::from_secs(5), |p| {
        p.log_text().contains("client went away during its upload")
    });

    // Files an earlier process left are removed at start-up.
    std::fs::write(p.dir.join("spool").join("upload-left-over"), b"x").unwrap();
    let p = p.restart();
    assert!(spool_files(&p).is_empty(), "{:?}", spool_files(&p));
    assert!(Path::new(&p.dir.join("spool")).is_dir());
}

#[test]
fn models_lists_speech_to_text_and_chat_never_picks_it() {
    let m = Mock::start(|_| Reply::completion("chat"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .unlimited_key("groq", "gsk_stt_key_0000006")
        .start();
    let list = p.get("/v1/models").json();
    let whisper = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "whisper-large-v3-turbo")
        .cloned()
        .expect("listed");
    assert_eq!(whisper["type"], "transcription");
    assert_eq!(whisper["owned_by"], "groq");
    // Chat with auto, and with a Whisper model named: never a Whisper call.
    let r = p.chat(&support::user("hi"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.header("X-Routed-Via").unwrap().contains("whisper"));
    let r = p.chat(r#"{"model":"whisper-large-v3","messages":[{"role":"user","content":"hi"}]}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code(), "model_not_found");
    assert!(
        m.requests
            .lock()
            .unwrap()
            .iter()
            .all(|r| !r.body.windows(7).any(|w| w == b"whisper"))
    );
}
