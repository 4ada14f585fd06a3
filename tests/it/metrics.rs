//! `/metrics` over real sockets: behind the client key, every line valid in the Prometheus text
//! format (checked against the format's grammar here, and by the official Python parser in CI),
//! and counters that move with traffic on every surface, streamed and not.

use crate::support;

use std::collections::{BTreeMap, HashMap};

use simd_json::prelude::*;
use support::mock::{self, Mock, Reply};
use support::{Proxy, request};

type Labels = BTreeMap<String, String>;
/// One sample: metric name, labels, value.
type Sample = (String, Labels, f64);

/// Parses an exposition by the text format's grammar (version 0.0.4): `# HELP name text`,
/// `# TYPE name type` before a family's samples, at most once each; sample lines
/// `name{label="value",...} value` with escaped label values; names and label names from the
/// allowed alphabets; histogram buckets cumulative and ending in `+Inf` equal to `_count`.
/// Panics, naming the line, on anything else.
fn parse(text: &str) -> Vec<Sample> {
    fn is_name(s: &str, colon: bool) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':'))
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    }
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashMap<String, ()> = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, tail) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
            assert!(is_name(name, true), "bad family name in {line:?}");
            match kw {
                "HELP" => assert!(
                    helped.insert(name.into(), ()).is_none(),
                    "second HELP: {line}"
                ),
                "TYPE" => {
                    let t = tail.unwrap_or("");
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&t),
                        "bad type in {line:?}"
                    );
                    assert!(
                        types.insert(name.into(), t.into()).is_none(),
                        "second TYPE: {line}"
                    );
                }
                _ => {}
            }
            continue;
        }
        assert!(!line.is_empty(), "empty line in the exposition");
        let (name_labels, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match name_labels.split_once('{') {
            None => (name_labels, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line}"));
                let mut labels = BTreeMap::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert!(is_name(&key, false), "bad label name {key:?} in {line:?}");
                    assert_eq!(chars.next(), Some('"'), "label value unquoted in {line:?}");
                    let mut v = String::new();
                    loop {
                        match chars
                            .next()
                            .unwrap_or_else(|| panic!("unterminated value: {line}"))
                        {
                            '"' => break,
                            '\\' => match chars.next() {
                                Some('\\') => v.push('\\'),
                                Some('"') => v.push('"'),
                                Some('n') => v.push('\n'),
                                other => panic!("bad escape {other:?} in {line:?}"),
                            },
                            c => v.push(c),
                        }
                    }
                    assert!(
                        labels.insert(key, v).is_none(),
                        "repeated label in {line:?}"
                    );
                    match chars.next() {
                        None => break,
                        Some(',') => {}
                        other => panic!("expected , or }} not {other:?} in {line:?}"),
                    }
                }
                (name, labels)
            }
        };
        assert!(is_name(name, true), "bad metric name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        samples.push((name.to_string(), labels, value));
    }
    // Histograms: cumulative buckets ending in +Inf, which equals _count.
    let mut series: BTreeMap<(String, Labels), Vec<(f64, f64)>> = BTreeMap::new();
    for (name, labels, value) in &samples {
        if let Some(family) = name.strip_suffix("_bucket") {
            let mut rest = labels.clone();
            let le = rest.remove("le").expect("a bucket has le");
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            series
                .entry((family.to_string(), rest))
                .or_default()
                .push((le, *value));
        }
    }
    for ((family, labels), buckets) in &series {
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{family} {labels:?}"
        );
        assert_eq!(buckets.last().unwrap().0, f64::INFINITY);
        let count = value(&samples, &format!("{family}_count"), labels).unwrap();
        assert_eq!(buckets.last().unwrap().1, count, "{family} +Inf != _count");
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|s| s.2)
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn scrape(p: &Proxy) -> Vec<Sample> {
    let r = p.get("/metrics");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    parse(&r.text())
}

#[test]
fn metrics_need_the_client_key_and_parse_by_the_format_grammar() {
    let m = Mock::start(|_| Reply::completion("hi"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_m")
        .start();
    // Tries: no key, and a wrong key.
    assert_eq!(request(p.addr, "GET", "/metrics", &[], b"").status, 401);
    let wrong = request(
        p.addr,
        "GET",
        "/metrics",
        &[("Authorization", "Bearer nope")],
        b"",
    );
    assert_eq!(wrong.status, 401);
    let s = scrape(&p);
    let keys = value(
        &s,
        "freellmapi_provider_keys",
        &labels(&[("status", "unknown")]),
    )
    .unwrap()
        + value(
            &s,
            "freellmapi_provider_keys",
            &labels(&[("status", "healthy")]),
        )
        .unwrap();
    assert_eq!(keys, 1.0);
    assert!(value(&s, "freellmapi_resident_memory_bytes", &labels(&[])).unwrap() > 1e6);
    assert_eq!(
        value(&s, "freellmapi_requests_in_flight", &labels(&[])),
        Some(0.0)
    );
}

#[test]
fn counters_move_with_traffic_on_every_surface() {
    let m = Mock::start(|r| {
        if r.json().get_bool("stream") == Some(true) {
            Reply::stream(
                &[
                    &mock::chunk(r#"{"content":"he"}"#, None),
                    &mock::chunk(r#"{"content":"llo"}"#, Some("stop")),
                ],
                std::time::Duration::ZERO,
            )
        } else {
            Reply::completion("hello")
        }
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_m")
        .start();
    let model = "openai/gpt-oss-20b";
    let chat = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    let stream = chat.replacen('{', r#"{"stream":true,"#, 1);
    let messages = format!(
        r#"{{"model":"{model}","max_tokens":50,"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    let before = scrape(&p);
    assert_eq!(p.chat(&chat).status, 200);
    assert_eq!(p.chat(&chat).status, 200);
    assert_eq!(p.chat(&stream).status, 200);
    assert_eq!(p.post("/v1/messages", &messages, &[]).status, 200);
    // Tries an unknown model: counted as rejected, before any platform.
    assert_eq!(
        p.chat(r#"{"model":"no-such-model","messages":[{"role":"user","content":"x"}]}"#)
            .status,
        400
    );
    // A request is counted as it is logged, just after its answer went out: a scrape right
    // behind it may be a moment early, so wait (bounded) until all five show.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let total = |s: &[Sample]| {
        s.iter()
            .filter(|(n, _, _)| n == "freellmapi_requests_total")
            .map(|x| x.2)
            .sum::<f64>()
    };
    let mut after = scrape(&p);
    while total(&after) < total(&before) + 5.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        after = scrape(&p);
    }

    let requests = |s: &[Sample], surface: &str, platform: &str, model: &str, outcome: &str| {
        value(
            s,
            "freellmapi_requests_total",
            &labels(&[
                ("surface", surface),
                ("platform", platform),
                ("model", model),
                ("outcome", outcome),
            ]),
        )
        .unwrap_or(0.0)
    };
    let moved = |surface, platform, model, outcome| {
        requests(&after, surface, platform, model, outcome)
            - requests(&before, surface, platform, model, outcome)
    };
    assert_eq!(moved("chat", "groq", model, "success"), 3.0);
    assert_eq!(moved("messages", "groq", model, "success"), 1.0);
    assert_eq!(moved("chat", "none", "none", "rejected"), 1.0);
    let ok = labels(&[("class", "ok")]);
    assert_eq!(
        value(&after, "freellmapi_attempts_total", &ok).unwrap()
            - value(&before, "freellmapi_attempts_total", &ok).unwrap(),
        4.0
    );
    let served = labels(&[("platform", "groq"), ("model", model)]);
    assert!(value(&after, "freellmapi_output_tokens_total", &served).unwrap() > 0.0);
    assert_eq!(
        value(&after, "freellmapi_upstream_latency_seconds_count", &served),
        Some(4.0)
    );
    assert_eq!(
        value(
            &after,
            "freellmapi_time_to_first_byte_seconds_count",
            &served
        ),
        Some(4.0)
    );
    assert_eq!(
        value(&after, "freellmapi_streams_in_flight", &labels(&[])),
        Some(0.0)
    );
}
