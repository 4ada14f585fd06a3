//! What frameworks send by default, end to end against mock providers: Anthropic structured
//! output (`output_config.format`, and the beta's `output_format`) and effort, Responses
//! `reasoning.effort`, several prompts per completion, and OpenAI embedding names.

use crate::support;

use simd_json::prelude::*;
use support::mock::{Mock, Recorded, Reply};
use support::{Proxy, request};

/// Groq behind a mock, with its Qwen (no `json_schema`, no `reasoning`) first in the chain.
fn groq_qwen_first() -> (Mock, Proxy) {
    groq_first("qwen/qwen3.8-27b")
}

fn groq_first(model: &str) -> (Mock, Proxy) {
    let m = Mock::start(|r: &Recorded| {
        if r.json().get_bool("stream") == Some(true) {
            Reply::stream(&["{\"city\":", "\"Paris\"}"], std::time::Duration::ZERO)
        } else {
            Reply::completion(r#"{"city":"Paris"}"#)
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .first("groq", model)
        .key("groq", "gsk_structured_output_1")
        .start();
    (m, p)
}

fn messages(p: &Proxy, body: &str) -> support::Response {
    request(
        p.addr,
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", &p.token),
            ("anthropic-version", "2023-06-01"),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
}

const SCHEMA: &str = r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}"#;

fn claude(extra: &str) -> String {
    format!(
        r#"{{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{{"role":"user","content":"Where is the Eiffel Tower?"}}]{extra}}}"#
    )
}

/// The schema the provider was sent, and the model it was sent to.
fn sent(m: &Mock) -> (String, simd_json::OwnedValue) {
    let last = m.last().json();
    let rf = last
        .get("response_format")
        .expect("a response_format")
        .clone();
    (last.get_str("model").unwrap_or("").to_string(), rf)
}

#[test]
fn claude_structured_output_reaches_the_provider_plain_and_streamed() {
    let (m, p) = groq_qwen_first();
    let schema = simd_json::to_owned_value(&mut SCHEMA.as_bytes().to_vec()).unwrap();
    for extra in [
        format!(r#","output_config":{{"format":{{"type":"json_schema","schema":{SCHEMA}}}}}"#),
        format!(r#","output_format":{{"type":"json_schema","schema":{SCHEMA}}}"#),
        format!(
            r#","stream":true,"output_config":{{"format":{{"type":"json_schema","schema":{SCHEMA}}}}}"#
        ),
    ] {
        let r = messages(&p, &claude(&extra));
        assert_eq!(r.status, 200, "{extra}: {}", r.text());
        assert!(r.text().contains("Paris"), "{}", r.text());
        let (model, rf) = sent(&m);
        // Qwen takes no json_schema: the request needs a model that does.
        assert_eq!(model, "openai/gpt-oss-120b", "{extra}");
        assert_eq!(rf.get_str("type"), Some("json_schema"));
        assert_eq!(
            rf.get("json_schema").and_then(|j| j.get("schema")),
            Some(&schema)
        );
    }
    assert!(
        m.requests
            .lock()
            .unwrap()
            .iter()
            .all(|r| r.model() != "qwen/qwen3.8-27b"),
        "the model without json_schema was never tried"
    );
}

#[test]
fn claude_effort_becomes_reasoning_effort_and_bad_formats_are_named() {
    let (m, p) = groq_first("openai/gpt-oss-120b");
    let r = messages(&p, &claude(r#","output_config":{"effort":"max"}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.last().json().get_str("reasoning_effort"), Some("high"));
    assert!(m.last().json().get("response_format").is_none());
    // A model whose provider does not take reasoning_effort is not sent it (what Claude Code
    // sends by default must not earn a 400 from a strict provider).
    let (m, p) = groq_qwen_first();
    let r = messages(&p, &claude(r#","output_config":{"effort":"high"}"#));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.last().model(), "qwen/qwen3.8-27b");
    assert!(m.last().json().get("reasoning_effort").is_none());
    // Tries: a format type Anthropic does not have, a schema that is not an object, an effort
    // level nobody has, an output_config that is not an object.
    for (extra, says) in [
        (
            r#","output_config":{"format":{"type":"xml"}}"#,
            "output_config.format.type",
        ),
        (
            r#","output_config":{"format":{"type":"json_schema","schema":"city"}}"#,
            "output_config.format.schema: required",
        ),
        (
            r#","output_config":{"effort":"extreme"}"#,
            "output_config.effort",
        ),
        (r#","output_config":[1]"#, "output_config"),
    ] {
        let r = messages(&p, &claude(extra));
        assert_eq!(r.status, 400, "{extra}");
        let v = r.json();
        assert_eq!(
            v.get_str("type"),
            Some("error"),
            "Anthropic's shape: {}",
            r.text()
        );
        let msg = v
            .get("error")
            .and_then(|e| e.get_str("message"))
            .unwrap_or("");
        assert!(msg.contains(says), "{extra}: {msg}");
    }
}

#[test]
fn responses_reasoning_effort_is_passed_on() {
    let (m, p) = groq_first("openai/gpt-oss-120b");
    let post = |body: &str| {
        request(
            p.addr,
            "POST",
            "/v1/responses",
            &[
                ("Authorization", &format!("Bearer {}", p.token)),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let r =
        post(r#"{"model":"auto","input":"hi","reasoning":{"effort":"medium","summary":"auto"}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.last().json().get_str("reasoning_effort"), Some("medium"));
    let r = post(r#"{"model":"auto","input":"hi","reasoning":{"effort":"minimal"}}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.last().json().get_str("reasoning_effort"), Some("low"));
    // Tries: an effort that is not a string.
    let r = post(r#"{"model":"auto","input":"hi","reasoning":{"effort":3}}"#);
    assert_eq!(r.status, 400);
    assert!(
        r.error_message().contains("reasoning.effort"),
        "{}",
        r.text()
    );
}

/// The last user message of a chat request.
fn asked(r: &Recorded) -> String {
    let v = r.json();
    let messages = v.get_array("messages").unwrap();
    messages
        .last()
        .unwrap()
        .get_str("content")
        .unwrap_or("")
        .to_string()
}

#[test]
fn several_prompts_get_one_choice_each_in_order() {
    let m = Mock::start(|r: &Recorded| Reply::completion(&format!("echo {}", asked(r))));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_prompt_batch_0001")
        .start();
    let post = |body: &str| p.post("/v1/completions", body, &[]);
    // What LangChain's OpenAI(...).batch([...]) sends.
    let r = post(r#"{"model":"auto","prompt":["one","two","three"],"max_tokens":16}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let choices = v.get_array("choices").unwrap();
    let got: Vec<(u64, &str)> = choices
        .iter()
        .map(|c| (c.get_u64("index").unwrap(), c.get_str("text").unwrap()))
        .collect();
    assert_eq!(got, [(0, "echo one"), (1, "echo two"), (2, "echo three")]);
    assert_eq!(v.get_str("object"), Some("text_completion"));
    let usage = v.get("usage").unwrap();
    assert_eq!(usage.get_u64("total_tokens"), Some(3 * 8), "{usage:?}");
    assert_eq!(m.count(), 3, "one upstream call per prompt");
    assert!(r.header("X-Routed-Via").unwrap().starts_with("groq/"));
    // Tries: several prompts with stream, too many prompts, token ids, a mixed list.
    let many: Vec<String> = (0..17).map(|i| format!("\"p{i}\"")).collect();
    for (body, says) in [
        (
            r#"{"model":"auto","prompt":["a","b"],"stream":true}"#.to_string(),
            "cannot stream",
        ),
        (
            format!(r#"{{"model":"auto","prompt":[{}]}}"#, many.join(",")),
            "at most 16",
        ),
        (
            r#"{"model":"auto","prompt":[[7288,12]]}"#.to_string(),
            "token arrays",
        ),
        (
            r#"{"model":"auto","prompt":["a",3]}"#.to_string(),
            "a string or an array of strings",
        ),
    ] {
        let r = post(&body);
        assert_eq!(r.status, 400, "{body}");
        assert!(r.error_message().contains(says), "{body}: {}", r.text());
    }
    assert_eq!(m.count(), 3, "refused before any upstream call");
}

/// An OpenAI-style embeddings answer with one two-float vector per input.
fn vectors(r: &Recorded) -> Reply {
    let n = r.json().get_array("input").map_or(1, |a| a.len());
    let data: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"object":"embedding","index":{i},"embedding":[0.5,0.25]}}"#))
        .collect();
    Reply::json(
        200,
        &format!(
            r#"{{"object":"list","data":[{}],"model":"x","usage":{{"prompt_tokens":2,"total_tokens":2}}}}"#,
            data.join(",")
        ),
    )
}

#[test]
fn openai_embedding_names_route_to_the_chosen_model() {
    let m = Mock::start(vectors);
    let p = Proxy::builder()
        .upstream("mistral", &m.base())
        .key("mistral", "mistral_embedding_alias_1")
        .start();
    let embed = |body: &str| p.post("/v1/embeddings", body, &[]);
    // LlamaIndex's and LangChain's default names, with none chosen: the first with a key.
    for name in ["text-embedding-ada-002", "text-embedding-3-small"] {
        let r = embed(&format!(r#"{{"model":"{name}","input":["a","b"]}}"#));
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert!(r.header("X-Routed-Via").unwrap().starts_with("mistral/"));
        assert_eq!(r.json().get_str("model"), Some(name), "the name asked for");
    }
    // Tries a name that is no embedding model: the advice fits this route.
    let r = embed(r#"{"model":"text-embedding-4","input":"a"}"#);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "model_not_found")
    );
    let says = r.error_message();
    assert!(says.contains("\"type\": \"embedding\"") && says.contains("text-embedding-3-small"));
    assert!(!says.contains("auto"), "auto does not embed: {says}");

    // The admin chooses Codestral Embed; a shorter vector goes as Mistral's own field.
    let admin = support::admin::Admin::setup(&p);
    let r = admin.req(
        "PUT",
        "/api/embedding-aliases",
        r#"{"default":"codestral-embed"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().get_str("defaultNow"), Some("codestral-embed"));
    let r = embed(r#"{"model":"text-embedding-3-large","input":"a","dimensions":256}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("X-Routed-Via").as_deref(),
        Some("mistral/codestral-embed")
    );
    let sent = m.last().json();
    assert_eq!(sent.get_str("model"), Some("codestral-embed"));
    assert_eq!(sent.get_u64("output_dimension"), Some(256));
    assert!(sent.get("dimensions").is_none(), "{sent:?}");

    // Tries edits that could not route: a chat model, an empty name, a wrong type.
    for (body, field) in [
        (r#"{"default":"mistral-small-latest"}"#, "default"),
        (
            r#"{"aliases":[{"name":" ","route":"default"}]}"#,
            "aliases[0].name",
        ),
        (
            r#"{"aliases":[{"name":"e","route":"codestral-latest"}]}"#,
            "aliases[0].route",
        ),
        (r#"{"aliases":"all"}"#, "aliases"),
    ] {
        let r = admin.req("PUT", "/api/embedding-aliases", body);
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(r.text().contains(field), "{body}: {}", r.text());
    }
    // Back to the shipped set.
    let r = admin.req("PUT", "/api/embedding-aliases", "null");
    assert_eq!(r.status, 200);
    assert!(r.json().get("default").is_none_or(|d| d.is_null()));
}

#[test]
fn an_embedding_alias_without_a_keyed_model_says_what_to_do() {
    let m = Mock::start(|_| Reply::completion("hi"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_no_embedding_models_1")
        .start();
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"text-embedding-3-small","input":"a"}"#,
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.error_message()
            .contains("no enabled embedding model has a usable key")
    );
    assert_eq!(m.count(), 0);
}

#[test]
fn token_id_embeddings_are_decoded_with_the_vocabulary_file() {
    // A four-token stand-in for cl100k_base: "hello", " world", and "é" in two halves.
    let vocab = support::temp_dir("vocab");
    std::fs::write(
        vocab.join("cl100k_base.tiktoken"),
        "aGVsbG8= 0\nIHdvcmxk 1\nww== 2\nqQ== 3\n",
    )
    .unwrap();
    let m = Mock::start(vectors);
    let p = Proxy::builder()
        .upstream("mistral", &m.base())
        .key("mistral", "mistral_token_ids_12345")
        .env("FREELLMAPI_VOCAB_DIR", vocab.to_str().unwrap())
        .start();
    // What LangChain's OpenAIEmbeddings sends by default.
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"text-embedding-ada-002","input":[[0,1],[2,3,100257]],"encoding_format":"base64"}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = m.last().json();
    let inputs: Vec<&str> = sent
        .get_array("input")
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(inputs, ["hello world", "é<|endoftext|>"]);
    // One token-id input on its own.
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"mistral-embed","input":[0]}"#,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        m.last().json().get_array("input").unwrap()[0].as_str(),
        Some("hello")
    );
    // Tries an id the vocabulary lacks.
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"mistral-embed","input":[[0,4]]}"#,
        &[],
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        r.error_message(),
        "input[0]: token id 4 is not in cl100k_base"
    );
}

#[test]
fn token_ids_without_the_vocabulary_file_say_how_to_install_it() {
    let empty = support::temp_dir("no-vocab");
    let m = Mock::start(vectors);
    let p = Proxy::builder()
        .upstream("mistral", &m.base())
        .key("mistral", "mistral_token_ids_67890")
        .env("FREELLMAPI_VOCAB_DIR", empty.to_str().unwrap())
        .start();
    let r = p.post(
        "/v1/embeddings",
        r#"{"model":"text-embedding-3-small","input":[[7288]]}"#,
        &[],
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "vocabulary_missing")
    );
    let says = r.error_message();
    for part in [
        "cl100k_base.tiktoken",
        "FREELLMAPI_VOCAB_DIR",
        "check_embedding_ctx_length=False",
    ] {
        assert!(says.contains(part), "{part}: {says}");
    }
    assert!(
        !says.contains(empty.to_str().unwrap()),
        "no server paths to clients"
    );
    assert!(
        p.log_text().contains(empty.to_str().unwrap()),
        "the log names the places looked"
    );
    assert_eq!(m.count(), 0);
}
