//! What a LAN stranger, a web page the owner visits, or a client with a key can do at the
//! front door, each bounded: password guesses (counted before they are checked, at most two
//! hashed at once, per address or IPv6 /64, and a budget for everyone), foreign `Host` names
//! (DNS rebinding), and failed client keys.

use crate::support;

use std::io::Write;
use std::sync::{Arc, Barrier};

use support::admin::{Admin, PASSWORD, call};
use support::{Proxy, Response, connect, read_response};

fn login(p: &Proxy, password: &str, headers: &[(&str, &str)]) -> Response {
    let mut all = vec![("Origin", "http://test")];
    all.extend_from_slice(headers);
    call(
        p,
        "POST",
        "/api/login",
        &format!(r#"{{"password":"{password}"}}"#),
        &all,
    )
}

#[test]
fn thirty_guesses_at_once_get_no_more_checks_than_the_lockout_allows() {
    let p = Proxy::builder().start();
    Admin::setup(&p);
    // Tries: 29 wrong passwords and the right one, all sent at the same moment from one
    // address. Before: every guess was hashed before any was counted (29 × 401 and a 200).
    let addr = p.addr;
    let gate = Arc::new(Barrier::new(30));
    let guesses: Vec<_> = (0..30)
        .map(|i| {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let password = if i == 17 { PASSWORD } else { "wrong guess" };
                let body = format!(r#"{{"password":"{password}"}}"#);
                let mut s = connect(addr);
                let head = format!(
                    "POST /api/login HTTP/1.1\r\nHost: test\r\nOrigin: http://test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                gate.wait();
                s.write_all(head.as_bytes()).unwrap();
                s.write_all(body.as_bytes()).unwrap();
                read_response(&mut s).status
            })
        })
        .collect();
    let statuses: Vec<u16> = guesses.into_iter().map(|g| g.join().unwrap()).collect();
    let checked = statuses.iter().filter(|s| matches!(s, 200 | 401)).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    assert_eq!(checked + refused, 30, "{statuses:?}");
    // The address is locked now, the right password included.
    let r = login(&p, PASSWORD, &[]);
    if !statuses.contains(&200) {
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(r.header("retry-after").is_some());
    }
}

#[test]
fn an_ipv6_neighbour_shares_the_lockout_of_its_64() {
    let p = Proxy::builder()
        .env("FREELLMAPI_TRUST_PROXY", "127.0.0.1/32")
        .start();
    Admin::setup(&p);
    // Tries: five wrong passwords, each from a new address of one IPv6 /64 (a host picks any).
    for i in 1..=5 {
        let from = format!("2001:db8:1:2::{i:x}");
        let r = login(&p, "wrong guess", &[("X-Forwarded-For", &from)]);
        assert_eq!(r.status, 401, "{from}: {}", r.text());
    }
    let r = login(
        &p,
        PASSWORD,
        &[("X-Forwarded-For", "2001:db8:1:2:abcd::99")],
    );
    assert_eq!(r.status, 429, "a neighbour in the /64: {}", r.text());
    assert_eq!(r.error_code(), "too_many_attempts");
    let r = login(&p, PASSWORD, &[("X-Forwarded-For", "2001:db8:1:3::1")]);
    assert_eq!(r.status, 200, "the next /64 is another peer: {}", r.text());
    let r = login(&p, PASSWORD, &[("X-Forwarded-For", "192.0.2.1")]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn many_addresses_together_spend_a_budget_that_slows_everyone() {
    let p = Proxy::builder()
        .env("FREELLMAPI_TRUST_PROXY", "127.0.0.1/32")
        .start();
    Admin::setup(&p);
    // Tries: one wrong guess each from 20 addresses, none of them near its own limit.
    for i in 1..=20 {
        let from = format!("198.51.100.{i}");
        let r = login(&p, "wrong guess", &[("X-Forwarded-For", &from)]);
        assert_eq!(r.status, 401, "{from}: {}", r.text());
    }
    let r = login(&p, PASSWORD, &[("X-Forwarded-For", "203.0.113.5")]);
    assert_eq!(r.status, 429, "a fresh address waits too: {}", r.text());
    assert!(r.error_message().contains("everyone"), "{}", r.text());
    assert!(r.header("retry-after").is_some());
}

#[test]
fn the_dashboard_answers_only_to_its_own_names() {
    let p = Proxy::builder()
        .env("FREELLMAPI_ALLOWED_HOSTS", "test,pi.lan")
        .start();
    let admin = Admin::setup(&p);
    // Tries: a DNS-rebound page: its own name as Host, and an Origin that matches it.
    let foreign = [
        ("Host", "attacker.example:3001"),
        ("Origin", "http://attacker.example:3001"),
    ];
    let r = call(
        &p,
        "POST",
        "/api/login",
        &format!(r#"{{"password":"{PASSWORD}"}}"#),
        &foreign,
    );
    assert_eq!(r.status, 421, "{}", r.text());
    assert!(r.header("set-cookie").is_none());
    assert!(
        r.error_message().contains("FREELLMAPI_ALLOWED_HOSTS"),
        "{}",
        r.text()
    );
    for path in ["/", "/assets/app.js", "/api/session"] {
        let r = call(&p, "GET", path, "", &foreign);
        assert_eq!(r.status, 421, "{path}: {}", r.text());
    }
    // A session cookie does not help a foreign name either.
    let r = call(
        &p,
        "GET",
        "/api/keys",
        "",
        &[("Host", "attacker.example"), ("Cookie", &admin.cookie)],
    );
    assert_eq!(r.status, 421, "{}", r.text());
    // The machine's own names, loopback and configured names pass.
    for host in [
        "localhost:3001",
        "127.0.0.1:3001",
        "[::1]:3001",
        "pi.lan",
        "PI.LAN.",
    ] {
        let r = call(&p, "GET", "/api/session", "", &[("Host", host)]);
        assert_eq!(r.status, 200, "{host}: {}", r.text());
    }
    // The client API is not the dashboard's: a client key is what guards it.
    let auth = format!("Bearer {}", p.token);
    let r = call(
        &p,
        "GET",
        "/v1/models",
        "",
        &[("Host", "attacker.example"), ("Authorization", &auth)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Tries: a backup written by the code of November 2026 (format 1, 310 000 rounds, the
/// 8-character passphrase `passw0rd`) whose store holds a password hashed at 210 000 rounds.
/// It restores; the old hash logs in, and is replaced by one at 600 000 rounds.
#[test]
fn old_backups_and_old_password_hashes_are_still_accepted() {
    let dir = support::temp_dir("old-backup");
    let target = dir.join("data");
    let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/backup-v1.bak");
    let out = support::cli(&target, &[], &["restore", golden], "passw0rd\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = |dir: &std::path::Path| {
        freellmapi::store::Store::open_read_only(dir)
            .unwrap()
            .admin_password()
            .unwrap()
            .unwrap()
    };
    assert!(hash(&target).starts_with("pbkdf2-sha256$210000$"));
    let env = vec![("FREELLMAPI_ALLOWED_HOSTS".to_string(), "test".to_string())];
    let mut p = Proxy::spawn(target.clone(), env.clone());
    assert_eq!(
        p.token,
        "freellmapi-c831f2da53b0242dcb09ad005f6de3d4da50c4321bd65c2e"
    );
    let r = login(&p, "correct horse battery", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(p.stop(), Some(0));
    let upgraded = hash(&target);
    assert!(upgraded.starts_with("pbkdf2-sha256$600000$"), "{upgraded}");
    let p = Proxy::spawn(target, env);
    assert_eq!(login(&p, "correct horse battery", &[]).status, 200);
    assert_eq!(login(&p, "correct horse batterY", &[]).status, 401);
}

/// Tries: a first start with stdout piped (systemd's journal, a log file). The new client key
/// is not written there; the line says how to print it. Before, the key itself was printed.
#[test]
fn a_new_key_is_printed_to_a_terminal_only() {
    let p = Proxy::builder().start();
    let out = p.stdout.lock().unwrap().join("\n");
    assert!(out.contains("not written to this log"), "{out}");
    assert!(out.contains("token"), "{out}");
    assert!(
        !out.contains(&p.token) && !p.log_text().contains(&p.token[11..]),
        "{out}"
    );

    // The same first start on a terminal (a pty from `script`) shows the key.
    let dir = support::temp_dir("tty-key");
    let cmd = format!(
        "{} --listen 127.0.0.1:0 --data-dir {}",
        support::BIN,
        dir.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) runs the server on a pty");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut shown = None;
    for line in lines.by_ref().map_while(Result::ok) {
        let line = line.trim();
        if line.starts_with("freellmapi-") && line.len() == "freellmapi-".len() + 48 {
            shown = Some(line.to_string());
        }
        if line.contains("listening on") {
            break;
        }
    }
    // The pty closes with `script`, and the server with it (SIGHUP).
    let _ = child.kill();
    let _ = child.wait();
    let token = support::cli(&dir, &[], &["token"], "");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    assert_eq!(shown.as_deref(), Some(token.as_str()));
}

/// Tries: `FREELLMAPI_LOG` asking for trace from the HTTP client's crates, whose trace dumps
/// the request bytes 16 to a line, the provider key's `Authorization` header among them (cut
/// across lines, past what redaction can recognise). They log at debug at most now.
#[test]
fn wire_logs_stay_at_debug_so_no_key_reaches_them() {
    const KEY: &str = "gsk_WireTraceSecret0123456789abcdefXYZ";
    let m = support::mock::Mock::start(|_| support::mock::Reply::completion("ok"));
    let p = Proxy::builder()
        .env("FREELLMAPI_LOG", "trace,ureq=trace,ureq_proto=trace")
        .upstream("groq", &m.base())
        .key("groq", KEY)
        .start();
    assert_eq!(p.chat(&support::user("hi")).status, 200);
    let log = p.log_text();
    assert!(log.contains("log at debug at most"), "the refusal is said");
    let body = &KEY["gsk_".len()..];
    for window in body.as_bytes().windows(8) {
        let piece = std::str::from_utf8(window).unwrap();
        assert!(!log.contains(piece), "{piece:?} of the key is in the log");
    }
}

/// Tries: a provider whose 400 echoes the key it was sent, a key with no known prefix (so
/// pattern redaction cannot see it). The client gets the provider's message with the key
/// removed; before, it got the key.
#[test]
fn an_echoed_key_is_removed_whatever_its_shape() {
    const KEY: &str = "Zq7pLx2Vb9Nm4Kd8Rt6Yw3Hs1Jc5Fg";
    let m = support::mock::Mock::start(|r| {
        let auth = r.header("authorization").unwrap_or("").to_string();
        support::mock::Reply::json(
            400,
            &format!(r#"{{"error":{{"message":"bad request for key {auth} (is it right?)"}}}}"#),
        )
    });
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", KEY)
        .start();
    let r = p.chat(&support::user("hi"));
    assert_eq!(r.status, 400, "{}", r.text());
    let message = r.error_message();
    assert!(
        message.contains("bad request for key Bearer [redacted]"),
        "{message}"
    );
    assert!(!r.text().contains(&KEY[..12]) && !p.log_text().contains(&KEY[..12]));
}

/// Tries: a client with the key sends model names of 2 000 000 bytes to every surface. Each is
/// a 400 now, and the store does not grow; before, three such requests grew `data.mdb` from
/// 77 KB to 6.1 MB (the log kept the name), and about 130 filled the map.
#[test]
fn huge_client_strings_cannot_fill_the_store() {
    let p = Proxy::builder().start();
    let admin = Admin::setup(&p);
    let size = || std::fs::metadata(p.dir.join("data.mdb")).unwrap().len();
    let before = size();
    let huge = "M".repeat(2_000_000);
    let bodies = [
        (
            "/v1/chat/completions",
            format!(r#"{{"model":"{huge}","messages":[{{"role":"user","content":"hi"}}]}}"#),
        ),
        (
            "/v1/messages",
            format!(
                r#"{{"model":"{huge}","max_tokens":5,"messages":[{{"role":"user","content":"hi"}}]}}"#
            ),
        ),
        (
            "/v1/responses",
            format!(r#"{{"model":"{huge}","input":"hi"}}"#),
        ),
        (
            "/v1/completions",
            format!(r#"{{"model":"{huge}","prompt":"hi"}}"#),
        ),
        (
            "/v1/embeddings",
            format!(r#"{{"model":"{huge}","input":"hi"}}"#),
        ),
    ];
    for round in 0..3 {
        for (path, body) in &bodies {
            let r = p.post(path, body, &[]);
            assert_eq!(r.status, 400, "{path}");
            assert!(
                r.error_message().contains("at most 256"),
                "{path}: {}",
                r.error_message()
            );
            assert!(
                r.body.len() < 1024,
                "{path} round {round}: the name is not echoed"
            );
        }
    }
    p.wait_for("the records", std::time::Duration::from_secs(10), |_| {
        admin.get("/api/analytics/summary?range=24h").json()["rejected"] == 15u64
    });
    let grown = size().saturating_sub(before);
    assert!(grown < 1024 * 1024, "data.mdb grew by {grown} bytes");
    assert_eq!(
        login(&p, PASSWORD, &[]).status,
        200,
        "the dashboard still works"
    );
}

/// Tries: 25 requests with a wrong client key from one address, then the right key. The 21st
/// wrong one on gets 429 with Retry-After; the right key still passes; another address is not
/// affected.
#[test]
fn wrong_client_keys_are_limited_per_address() {
    let m = support::mock::Mock::start(|_| support::mock::Reply::completion("ok"));
    let p = Proxy::builder()
        .env("FREELLMAPI_TRUST_PROXY", "127.0.0.1/32")
        .upstream("groq", &m.base())
        .key("groq", "gsk_limitKey000000000000001")
        .start();
    let wrong = "Bearer freellmapi-000000000000000000000000000000000000000000000000";
    let from = |ip: &'static str, key: &str| {
        call(
            &p,
            "GET",
            "/v1/models",
            "",
            &[("Authorization", key), ("X-Forwarded-For", ip)],
        )
    };
    let statuses: Vec<u16> = (0..25).map(|_| from("192.0.2.9", wrong).status).collect();
    assert_eq!(statuses[..20], [401; 20]);
    assert_eq!(statuses[20..], [429; 5]);
    let r = from("192.0.2.9", wrong);
    assert_eq!(r.error_code(), "too_many_key_failures");
    assert!(r.header("retry-after").is_some());
    let right = format!("Bearer {}", p.token);
    assert_eq!(from("192.0.2.9", &right).status, 200, "a right key passes");
    assert_eq!(from("192.0.2.10", wrong).status, 401, "per address");
}
