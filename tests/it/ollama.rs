//! The Ollama API on its own listener, end to end against mock providers: listings, chat and
//! generate (NDJSON streams and whole answers, tools, images, FIM), embeddings, the load
//! request, the address allow-list and the client key, and Ollama's error shape.

use crate::support;

use simd_json::prelude::*;
use support::mock::{Mock, Recorded, Reply};
use support::{Proxy, Response, request};

fn ndjson(r: &Response) -> Vec<simd_json::OwnedValue> {
    r.text()
        .lines()
        .map(|l| simd_json::to_owned_value(&mut l.as_bytes().to_vec()).expect("a JSON line"))
        .collect()
}

/// Groq (chat, tools) and Mistral (FIM, embeddings) behind mocks, the Ollama API on.
fn start(allow: Option<&str>) -> (Mock, Mock, Proxy) {
    let groq = Mock::start(|r: &Recorded| {
        let body = r.json();
        let stream = body.get_bool("stream") == Some(true);
        if body.get("tools").is_some() {
            let call = r#"{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}"#;
            return Reply::json(
                200,
                &format!(
                    r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","content":null,"tool_calls":[{call}]}},"finish_reason":"tool_calls"}}],"usage":{{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}}}"#
                ),
            );
        }
        if stream {
            Reply::stream(&["Hello", " from", " Groq"], std::time::Duration::ZERO)
        } else {
            Reply::completion("Hello from Groq")
        }
    });
    let mistral = Mock::start(|r: &Recorded| {
        if r.path.ends_with("/embeddings") {
            let n = r.json().get_array("input").map_or(1, |a| a.len());
            let data: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"index":{i},"embedding":[0.5,{i}]}}"#))
                .collect();
            return Reply::json(200, &format!(r#"{{"data":[{}]}}"#, data.join(",")));
        }
        Reply::completion("    return a + b")
    });
    let mut b = Proxy::builder()
        .upstream("groq", &groq.base())
        .upstream("mistral", &mistral.base())
        .first("groq", "openai/gpt-oss-20b")
        .key("groq", "gsk_ollama_api_test_1")
        .key("mistral", "mistral_ollama_api_test")
        .env("FREELLMAPI_OLLAMA_LISTEN", "127.0.0.1:0");
    if let Some(a) = allow {
        b = b.env("FREELLMAPI_OLLAMA_ALLOW", a);
    }
    (groq, mistral, b.start())
}

fn post(p: &Proxy, path: &str, body: &str) -> Response {
    request(
        p.ollama_addr(),
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn get(p: &Proxy, path: &str) -> Response {
    request(p.ollama_addr(), "GET", path, &[], b"")
}

#[test]
fn chat_streams_ndjson_by_default_and_answers_whole_on_request() {
    let (groq, _m, p) = start(None);
    // No `stream`: Ollama streams.
    let r = post(
        &p,
        "/api/chat",
        r#"{"model":"auto:latest","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/x-ndjson")
    );
    let lines = ndjson(&r);
    let text: String = lines
        .iter()
        .filter_map(|l| l.get("message")?.get_str("content").map(str::to_string))
        .collect();
    assert_eq!(text, "Hello from Groq");
    let last = lines.last().unwrap();
    assert_eq!(last.get_bool("done"), Some(true));
    assert_eq!(last.get_str("done_reason"), Some("stop"));
    assert_eq!(last.get_str("model"), Some("auto:latest"));
    assert!(last.get_u64("eval_duration").unwrap() > 0);
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l.get_bool("done") == Some(false))
    );
    assert_eq!(groq.last().json().get_bool("stream"), Some(true));

    // stream:false with tools: one object, arguments as an object.
    let r = post(
        &p,
        "/api/chat",
        r#"{"model":"openai/gpt-oss-20b","stream":false,"messages":[{"role":"user","content":"weather?"}],
            "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let call = &v.get("message").unwrap().get_array("tool_calls").unwrap()[0];
    assert_eq!(
        call.get("function")
            .unwrap()
            .get("arguments")
            .unwrap()
            .get_str("city"),
        Some("Paris")
    );
    assert_eq!(
        (v.get_u64("prompt_eval_count"), v.get_u64("eval_count")),
        (Some(9), Some(5))
    );
    let metrics = p.get("/metrics").text();
    assert!(
        metrics.contains(r#"surface="ollama_chat""#),
        "counted as its own surface"
    );
}

#[test]
fn generate_fills_in_the_middle_and_loads_without_a_call() {
    let (_g, mistral, p) = start(None);
    let r = post(
        &p,
        "/api/generate",
        r#"{"model":"codestral-latest:latest","prompt":"def add(a, b):\n","suffix":"\nprint(add(1, 2))","stream":false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().get_str("response"), Some("    return a + b"));
    assert!(
        mistral.last().path.ends_with("/fim/completions"),
        "{}",
        mistral.last().path
    );

    // How Ollama clients load a model: no prompt. Answered here, nothing sent upstream.
    let before = mistral.count();
    let r = post(&p, "/api/generate", r#"{"model":"codestral-latest"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().get_str("done_reason"), Some("load"));
    let r = post(&p, "/api/chat", r#"{"model":"auto","messages":[]}"#);
    assert_eq!(r.json().get_str("done_reason"), Some("load"));
    assert_eq!(mistral.count(), before);
}

#[test]
fn listings_name_models_as_ollama_does() {
    let (_g, _m, p) = start(None);
    let r = get(&p, "/");
    assert_eq!((r.status, r.text().as_str()), (200, "Ollama is running"));
    assert!(get(&p, "/api/version").json().get_str("version").is_some());
    assert_eq!(
        get(&p, "/api/ps")
            .json()
            .get_array("models")
            .map(|m| m.len()),
        Some(0)
    );
    let tags = get(&p, "/api/tags").json();
    let names: Vec<&str> = tags
        .get_array("models")
        .unwrap()
        .iter()
        .map(|m| m.get_str("name").unwrap())
        .collect();
    assert_eq!(names[0], "auto:latest");
    assert!(names.contains(&"openai/gpt-oss-20b:latest"), "{names:?}");
    assert!(names.contains(&"mistral-embed:latest"), "{names:?}");
    let r = post(&p, "/api/show", r#"{"model":"codestral-latest:latest"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(
        v.get("model_info")
            .unwrap()
            .get_u64("freellmapi.context_length")
            .unwrap()
            > 0
    );
    let caps: Vec<&str> = v
        .get_array("capabilities")
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        caps.contains(&"completion") && caps.contains(&"insert"),
        "{caps:?}"
    );
    let embed = post(&p, "/api/show", r#"{"name":"mistral-embed"}"#).json();
    assert_eq!(
        embed.get_array("capabilities").unwrap()[0].as_str(),
        Some("embedding")
    );
}

#[test]
fn embeddings_in_both_shapes() {
    let (_g, mistral, p) = start(None);
    let r = post(
        &p,
        "/api/embed",
        r#"{"model":"mistral-embed:latest","input":["a","b"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let e = v.get_array("embeddings").unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1].as_array().unwrap()[1].cast_f64(), Some(1.0));
    assert_eq!(
        mistral.last().json().get_str("model"),
        Some("mistral-embed")
    );
    let r = post(
        &p,
        "/api/embeddings",
        r#"{"model":"mistral-embed","prompt":"a"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().get_array("embedding").unwrap().len(), 2);
}

#[test]
fn errors_come_in_ollamas_shape() {
    let (groq, _m, p) = start(None);
    let before = groq.count();
    // Tries: an unknown model, no model, a bad body, the OpenAI API on this port, a pull,
    // the wrong method.
    for (method, path, body, status, says) in [
        (
            "POST",
            "/api/chat",
            r#"{"model":"llama9:latest","messages":[{"role":"user","content":"x"}]}"#,
            404,
            "llama9",
        ),
        ("POST", "/api/show", r#"{"model":"llama9"}"#, 404, "llama9"),
        (
            "POST",
            "/api/chat",
            r#"{"messages":[{"role":"user","content":"x"}]}"#,
            400,
            "model is required",
        ),
        ("POST", "/api/generate", "{nope", 400, ""),
        ("POST", "/v1/chat/completions", "{}", 404, "Ollama API"),
        (
            "POST",
            "/api/pull",
            r#"{"model":"llama3"}"#,
            404,
            "nothing is pulled",
        ),
        ("GET", "/api/chat", "", 405, "POST"),
    ] {
        let r = request(p.ollama_addr(), method, path, &[], body.as_bytes());
        assert_eq!(r.status, status, "{path} {body}: {}", r.text());
        let v = r.json();
        let error = v
            .get_str("error")
            .unwrap_or_else(|| panic!("{path}: {}", r.text()));
        assert!(error.contains(says), "{path}: {error}");
    }
    assert_eq!(groq.count(), before, "nothing reached a provider");
}

#[test]
fn outside_the_allow_list_a_client_key_is_needed() {
    // Loopback is not in this list: the test client counts as a LAN peer.
    let (groq, _m, p) = start(Some("10.0.0.0/8"));
    let body = r#"{"model":"auto","stream":false,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = post(&p, "/api/chat", body);
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.json().get_str("error").is_some());
    assert_eq!(get(&p, "/api/tags").status, 401);
    assert_eq!(get(&p, "/").status, 200, "the liveness check stays open");
    let auth = format!("Bearer {}", p.token);
    let r = request(
        p.ollama_addr(),
        "POST",
        "/api/chat",
        &[("Authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(groq.count(), 1);
}
