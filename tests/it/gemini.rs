//! The Gemini API ingress end to end against mock providers: generateContent on `/v1beta` and
//! `/v1`, streams as SSE and as one JSON array, `gemini-*` names by alias, countTokens, both
//! embedding calls, the model list in Google's shape, and Google's error shape.

use crate::support;

use simd_json::prelude::*;
use support::mock::{Mock, Recorded, Reply};
use support::{Proxy, Response, request};

fn start() -> (Mock, Mock, Proxy) {
    let groq = Mock::start(|r: &Recorded| {
        if r.json().get_bool("stream") == Some(true) {
            Reply::stream(&["Hello", " from", " Groq"], std::time::Duration::ZERO)
        } else {
            Reply::completion("Hello from Groq")
        }
    });
    let mistral = Mock::start(|r: &Recorded| {
        let n = r.json().get_array("input").map_or(1, |a| a.len());
        let data: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"index":{i},"embedding":[0.5,{i}]}}"#))
            .collect();
        Reply::json(200, &format!(r#"{{"data":[{}]}}"#, data.join(",")))
    });
    let p = Proxy::builder()
        .upstream("groq", &groq.base())
        .upstream("mistral", &mistral.base())
        .key("groq", "gsk_gemini_ingress_test1")
        .key("mistral", "mistral_gemini_ingress_1")
        .start();
    (groq, mistral, p)
}

fn google(p: &Proxy, method: &str, path: &str, body: &str) -> Response {
    request(
        p.addr,
        method,
        path,
        &[
            ("x-goog-api-key", &p.token),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

const HI: &str = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;

#[test]
fn generate_content_on_both_versions_echoes_the_model_asked_for() {
    let (groq, _m, p) = start();
    for version in ["v1beta", "v1"] {
        let r = google(
            &p,
            "POST",
            &format!("/{version}/models/openai/gpt-oss-20b:generateContent"),
            HI,
        );
        assert_eq!(r.status, 200, "{version}: {}", r.text());
        let v = r.json();
        let c = &v.get_array("candidates").unwrap()[0];
        assert_eq!(
            c.get("content").unwrap().get_array("parts").unwrap()[0].get_str("text"),
            Some("Hello from Groq")
        );
        assert_eq!(c.get_str("finishReason"), Some("STOP"));
        assert_eq!(v.get_str("modelVersion"), Some("openai/gpt-oss-20b"));
        assert!(
            v.get("usageMetadata")
                .unwrap()
                .get_u64("totalTokenCount")
                .is_some()
        );
    }
    assert_eq!(
        groq.last().json().get_str("model"),
        Some("openai/gpt-oss-20b")
    );
    // A name Google's own clients pick by themselves, which this catalog lacks: by alias.
    let r = google(
        &p,
        "POST",
        "/v1beta/models/gemini-9-pro:generateContent",
        HI,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().get_str("modelVersion"), Some("gemini-9-pro"));
    assert!(r.header("X-Routed-Via").unwrap().starts_with("groq/"));
    // One the catalog holds but has off (paid only): Gemini CLI asks for it by itself, so it
    // too goes by alias here (an OpenAI client naming it is told it is off).
    let r = google(
        &p,
        "POST",
        "/v1beta/models/gemini-3.1-pro-preview:generateContent",
        HI,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json().get_str("modelVersion"),
        Some("gemini-3.1-pro-preview")
    );
    let metrics = p.get("/metrics").text();
    assert!(
        metrics.contains(r#"surface="gemini""#),
        "counted as its own surface"
    );
}

#[test]
fn streams_come_as_sse_or_as_one_json_array() {
    let (_g, _m, p) = start();
    let path = "/v1beta/models/openai/gpt-oss-20b:streamGenerateContent";
    let r = google(&p, "POST", &format!("{path}?alt=sse"), HI);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = r.sse_data();
    let text: String = events
        .iter()
        .map(|d| simd_json::to_owned_value(&mut d.as_bytes().to_vec()).unwrap())
        .filter_map(|v| {
            let c = &v.get_array("candidates")?[0];
            c.get("content")?.get_array("parts")?[0]
                .get_str("text")
                .map(str::to_string)
        })
        .collect();
    assert_eq!(text, "Hello from Groq");
    assert!(events.last().unwrap().contains("\"finishReason\":\"STOP\""));
    assert!(!r.text().contains(": keep-alive"));

    let r = google(&p, "POST", path, HI);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let whole = r.json();
    let items = whole.as_array().expect("one JSON array");
    assert!(items.len() >= 2);
    assert!(items.last().unwrap().get("usageMetadata").is_some());
}

#[test]
fn count_tokens_embeddings_and_the_model_list() {
    let (groq, mistral, p) = start();
    let before = groq.count();
    let r = google(
        &p,
        "POST",
        "/v1beta/models/openai/gpt-oss-20b:countTokens",
        HI,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json().get_u64("totalTokens").unwrap() > 0);
    assert_eq!(groq.count(), before, "counted here, not upstream");

    let r = google(
        &p,
        "POST",
        "/v1beta/models/mistral-embed:embedContent",
        r#"{"content":{"parts":[{"text":"one"}]}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()
            .get("embedding")
            .unwrap()
            .get_array("values")
            .unwrap()
            .len(),
        2
    );
    let r = google(
        &p,
        "POST",
        "/v1beta/models/mistral-embed:batchEmbedContents",
        r#"{"requests":[{"model":"models/mistral-embed","content":{"parts":[{"text":"one"}]}},{"content":{"parts":[{"text":"two"}]}}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().get_array("embeddings").unwrap().len(), 2);
    assert_eq!(mistral.last().json().get_array("input").unwrap().len(), 2);

    let list = google(&p, "GET", "/v1beta/models", "").json();
    let names: Vec<&str> = list
        .get_array("models")
        .unwrap()
        .iter()
        .map(|m| m.get_str("name").unwrap())
        .collect();
    assert_eq!(names[0], "models/auto");
    assert!(names.contains(&"models/mistral-embed"), "{names:?}");
    // Google's SDK lists at /v1/models with its key header; OpenAI clients get their list.
    let v1 = google(&p, "GET", "/v1/models", "").json();
    assert!(v1.get_array("models").is_some());
    assert!(p.get("/v1/models").json().get_array("data").is_some());
    let one = google(&p, "GET", "/v1beta/models/openai/gpt-oss-20b", "").json();
    assert_eq!(one.get_str("name"), Some("models/openai/gpt-oss-20b"));
}

#[test]
fn errors_come_in_googles_shape() {
    let (groq, _m, p) = start();
    let before = groq.count();
    // Tries: no key, a wrong key, an unknown method, no contents, a file reference.
    let r = request(
        p.addr,
        "POST",
        "/v1beta/models/openai/gpt-oss-20b:generateContent",
        &[],
        HI.as_bytes(),
    );
    assert_eq!(r.status, 401);
    let e = r.json();
    let e = e.get("error").unwrap();
    assert_eq!(
        (e.get_u64("code"), e.get_str("status")),
        (Some(401), Some("UNAUTHENTICATED"))
    );
    let r = request(
        p.addr,
        "POST",
        "/v1beta/models/openai/gpt-oss-20b:generateContent",
        &[("x-goog-api-key", "AIza-not-the-key")],
        HI.as_bytes(),
    );
    assert_eq!(r.status, 401);
    for (path, body, status, says) in [
        (
            "/v1beta/models/openai/gpt-oss-20b:tuneModel",
            HI,
            404,
            "no such method",
        ),
        (
            "/v1beta/models/openai/gpt-oss-20b:generateContent",
            "{}",
            400,
            "contents: required",
        ),
        (
            "/v1beta/models/openai/gpt-oss-20b:generateContent",
            r#"{"contents":[{"parts":[{"fileData":{"fileUri":"x"}}]}]}"#,
            400,
            "fileData",
        ),
    ] {
        let r = google(&p, "POST", path, body);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        let v = r.json();
        let e = v.get("error").unwrap_or_else(|| panic!("{}", r.text()));
        assert_eq!(e.get_u64("code"), Some(u64::from(status)));
        assert!(e.get_str("message").unwrap().contains(says), "{}", r.text());
    }
    assert_eq!(groq.count(), before);
}
