//! Client authentication from every peer, hostile or malformed input, and secrets never
//! reaching a log line or an error body.

use crate::support;

use std::io::{Read, Write};

use support::mock::{Mock, Reply};
use support::{Proxy, request, user};

const PROVIDER_KEY: &str = "gsk_SuperSecretProviderKey0123456789";

fn proxy() -> (Mock, Proxy) {
    // The mock echoes the key it was sent into its error text, like careless providers do.
    let m = Mock::start(|r| {
        let auth = r.header("authorization").unwrap_or("").to_string();
        Reply::json(
            400,
            &format!(r#"{{"error":{{"message":"bad request for {auth}"}}}}"#),
        )
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", PROVIDER_KEY)
        .start();
    (m, p)
}

#[test]
fn client_key_is_required_in_exactly_the_documented_forms() {
    let (m, p) = proxy();
    m.set(|_| Reply::completion("ok"));
    let body = user("hi");
    let token = p.token.clone();
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, u16);
    let cases: Vec<Case> = vec![
        ("no header", vec![], 401),
        (
            "wrong key",
            vec![(
                "Authorization",
                "Bearer freellmapi-000000000000000000000000000000000000000000000000".into(),
            )],
            401,
        ),
        (
            "lowercase bearer",
            vec![("Authorization", format!("bearer {token}"))],
            401,
        ),
        (
            "two spaces",
            vec![("Authorization", format!("Bearer  {token}"))],
            401,
        ),
        ("no scheme", vec![("Authorization", token.clone())], 401),
        (
            "empty bearer",
            vec![("Authorization", "Bearer ".into())],
            401,
        ),
        (
            "prefix of the key",
            vec![("Authorization", format!("Bearer {}", &token[..20]))],
            401,
        ),
        (
            "spoofed loopback",
            vec![
                ("X-Forwarded-For", "127.0.0.1".into()),
                ("X-Real-IP", "127.0.0.1".into()),
            ],
            401,
        ),
        ("x-api-key", vec![("x-api-key", token.clone())], 200),
        (
            "bearer",
            vec![("Authorization", format!("Bearer {token}"))],
            200,
        ),
    ];
    for (what, headers, want) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = request(p.addr, "POST", "/v1/chat/completions", &h, body.as_bytes());
        assert_eq!(r.status, want, "{what}: {}", r.text());
        if want == 401 {
            assert_eq!(
                r.text(),
                r#"{"error":{"message":"Invalid API key","type":"authentication_error","code":"invalid_api_key"}}"#,
                "{what}"
            );
        }
    }
    for path in ["/v1/models", "/v1/models/auto"] {
        assert_eq!(request(p.addr, "GET", path, &[], b"").status, 401, "{path}");
    }
}

#[test]
fn malformed_requests_get_the_right_4xx_and_the_server_keeps_serving() {
    let (m, p) = proxy();
    m.set(|_| Reply::completion("ok"));
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "malformed JSON",
            r#"{"messages":[{"role":"user""#,
            400,
            "invalid_json",
        ),
        ("not an object", r#"["a"]"#, 400, "invalid_type"),
        ("empty body", "", 400, "invalid_json"),
        ("empty messages", r#"{"messages":[]}"#, 400, "invalid_value"),
        (
            "messages wrong type",
            r#"{"messages":{"role":"user"}}"#,
            400,
            "invalid_type",
        ),
        (
            "unknown role",
            r#"{"messages":[{"role":"bot","content":"x"}]}"#,
            400,
            "invalid_value",
        ),
        (
            "content wrong type",
            r#"{"messages":[{"role":"user","content":42}]}"#,
            400,
            "invalid_type",
        ),
        (
            "temperature wrong type",
            r#"{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#,
            400,
            "invalid_type",
        ),
        (
            "n > 1",
            r#"{"messages":[{"role":"user","content":"x"}],"n":2}"#,
            400,
            "invalid_value",
        ),
        (
            "invalid UTF-8",
            "{\"messages\":[{\"role\":\"user\",\"content\":\"\u{fffd}\"}]}",
            200,
            "",
        ),
    ];
    for (what, body, status, code) in cases {
        let r = p.chat(body);
        assert_eq!(r.status, *status, "{what}: {}", r.text());
        if *status == 400 {
            assert_eq!(r.error_type(), "invalid_request_error", "{what}");
            assert_eq!(r.error_code(), *code, "{what}: {}", r.text());
        }
    }
    let r = p.chat(r#"{"messages":[{"role":"user","content":"a"},{"role":"bot","content":"b"}]}"#);
    assert!(
        r.error_message()
            .starts_with("messages[1].role: unknown role \"bot\""),
        "{}",
        r.text()
    );

    // Raw invalid UTF-8 bytes in the body.
    let auth = format!("Bearer {}", p.token);
    let r = request(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &[("Authorization", &auth)],
        b"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}",
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // JSON nested past the limit.
    let deep = format!(
        r#"{{"messages":[{{"role":"user","content":"x"}}],"m":{}{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let r = p.chat(&deep);
    assert_eq!(r.status, 400);
    assert!(r.error_message().contains("nesting"));

    // A 26 MiB body, a bad Content-Length and garbage bytes.
    let mut s = support::connect(p.addr);
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
        26 * 1024 * 1024
    )
    .unwrap();
    let r = support::read_response(&mut s);
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "request_too_large");
    let mut s = support::connect(p.addr);
    s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n")
        .unwrap();
    assert_eq!(support::read_response(&mut s).status, 400);
    let mut s = support::connect(p.addr);
    s.write_all(b"\x00\xff\xfe GARBAGE \x01\x02\r\n\r\n")
        .unwrap();
    let r = support::read_response(&mut s);
    assert_eq!(r.status, 400);
    assert_eq!(r.error_type(), "invalid_request_error");

    // Unknown paths and wrong methods answer JSON, never HTML.
    let r = request(p.addr, "GET", "/v1/images/generations", &[], b"");
    assert_eq!((r.status, r.error_code().as_str()), (404, "not_found"));
    let r = request(p.addr, "GET", "/v1/chat/completions", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow").as_deref(), Some("POST"));
    let r = request(p.addr, "DELETE", "/v1/models", &[], b"");
    assert_eq!(r.status, 405);

    // Still serving normally, and still alive.
    let r = p.chat(&user("still there?"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !p.log_text().contains("internal error"),
        "no panics: {}",
        p.log_text()
    );
}

#[test]
fn no_secret_reaches_a_log_line_or_an_error_body() {
    let (_m, p) = proxy();
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 400);
    let body = r.text();
    // The exact key is removed, prefix and all (the pattern redaction is a second line).
    assert!(
        body.contains("Bearer [redacted]"),
        "upstream echo is redacted: {body}"
    );
    assert!(!body.contains(PROVIDER_KEY));
    assert!(!body.contains(&p.token));

    // Exercise more paths that log: failures, stream, a restart.
    p.chat(r#"{"stream":true,"messages":[{"role":"user","content":"x"}]}"#);
    request(
        p.addr,
        "POST",
        "/v1/chat/completions",
        &[(
            "Authorization",
            "Bearer freellmapi-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        )],
        b"{}",
    );
    let list = p.cli(&["keys", "list"], "");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("gsk_...6789") && !list.contains(PROVIDER_KEY),
        "{list}"
    );
    let first_run = p.log_text();
    let p = p.restart();
    let logs = format!("{first_run}\n{}", p.log_text());
    assert!(logs.contains("request"), "the log is not empty: {logs}");
    for secret in [PROVIDER_KEY, &p.token, "SuperSecret"] {
        assert!(!logs.contains(secret), "log contains a secret: {logs}");
    }
    // The data dir holds nothing in plaintext either.
    for entry in std::fs::read_dir(&p.dir).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains("SuperSecretProviderKey"),
            "{} holds the provider key in plaintext",
            path.display()
        );
        assert!(
            !hay.contains(&p.token[11..]),
            "{} holds the unified key in plaintext",
            path.display()
        );
    }
}

#[test]
fn data_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_m, p) = proxy();
    let dir_mode = std::fs::metadata(&p.dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    for entry in std::fs::read_dir(&p.dir).unwrap() {
        let path = entry.unwrap().path();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
}

#[test]
fn no_cors_grant_and_no_html() {
    let (_m, p) = proxy();
    let r = request(
        p.addr,
        "OPTIONS",
        "/v1/chat/completions",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert!(r.header("Access-Control-Allow-Origin").is_none());
    assert_eq!(r.status, 405);
    let r = p.chat(&user("x"));
    assert!(r.header("Access-Control-Allow-Origin").is_none());
}
