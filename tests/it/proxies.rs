//! Outbound proxies over real sockets: a small HTTP proxy (CONNECT and absolute form) and a
//! small SOCKS5 proxy
//! (both here, std threads, each logging what it was asked for) sit between the server and the
//! mock provider. Requests reach the provider through them with credentials; a platform's own
//! proxy beats the global one; the standard variables apply when ours are unset and NO_PROXY
//! bypasses them; a dead proxy fails over like a dead provider; proxy passwords never appear in
//! the log or in an answer.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use support::Proxy;
use support::mock::{Mock, Reply};

const SECRET: &str = "pr0xy-s3cret";
const CHAT: &str = r#"{"model":"openai/gpt-oss-20b","messages":[{"role":"user","content":"hi"}]}"#;

/// What a test proxy was asked for, one line per connection.
type Log = Arc<Mutex<Vec<String>>>;

fn pipe(a: TcpStream, b: TcpStream) {
    let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let (mut a, mut b) = (a, b);
    let t = thread::spawn(move || {
        let _ = std::io::copy(&mut a2, &mut b2);
        let _ = b2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut b, &mut a);
    let _ = a.shutdown(Shutdown::Write);
    let _ = t.join();
}

/// An HTTP proxy; with `auth`, it wants `Proxy-Authorization: Basic <auth>`. `CONNECT host:port`
/// opens a tunnel; a request in absolute form (`POST http://host:port/path`) is forwarded in
/// origin form, one per connection. Logs each first line.
fn http_proxy(auth: Option<&str>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log: Log = Arc::default();
    let (seen, auth) = (log.clone(), auth.map(str::to_string));
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (seen, auth) = (seen.clone(), auth.clone());
            thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                reader.read_line(&mut first).unwrap_or(0);
                let mut authorized = auth.is_none();
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    match line.strip_prefix("Proxy-Authorization: Basic ") {
                        Some(v) => authorized |= auth.as_deref() == Some(v.trim()),
                        None => headers.push(line),
                    }
                }
                let mut conn = conn;
                seen.lock().unwrap().push(first.trim().to_string());
                if !authorized {
                    let _ = conn.write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                    );
                    return;
                }
                let mut words = first.split_whitespace();
                let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                if method == "CONNECT" {
                    let Ok(up) = TcpStream::connect(target) else {
                        let _ = conn
                            .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                        return;
                    };
                    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .unwrap();
                    pipe(conn, up);
                    return;
                }
                // Absolute form: http://host:port/path.
                let rest = target
                    .strip_prefix("http://")
                    .expect("an absolute-form target");
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let mut up = TcpStream::connect(host).unwrap();
                let length = headers
                    .iter()
                    .find_map(|h| {
                        h.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                let head = format!("{method} {path} HTTP/1.1\r\n{}\r\n", headers.concat());
                up.write_all(head.as_bytes()).unwrap();
                up.write_all(&body).unwrap();
                // One request per connection: the provider sees the end, answers and closes.
                up.shutdown(Shutdown::Write).unwrap();
                let _ = std::io::copy(&mut up, &mut conn);
                let _ = conn.shutdown(Shutdown::Both);
            });
        }
    });
    (addr, log)
}

/// A SOCKS5 proxy wanting `user`/`pass`; logs `CONNECT <host>:<port>` with the name as sent.
fn socks_proxy(user: &str, pass: &str) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log: Log = Arc::default();
    let (seen, user, pass) = (log.clone(), user.to_string(), pass.to_string());
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (seen, user, pass) = (seen.clone(), user.clone(), pass.clone());
            thread::spawn(move || {
                let mut c = conn;
                let mut b = [0u8; 2];
                c.read_exact(&mut b).unwrap();
                let mut methods = vec![0u8; b[1] as usize];
                c.read_exact(&mut methods).unwrap();
                if !methods.contains(&2) {
                    c.write_all(&[5, 0xff]).unwrap();
                    return;
                }
                c.write_all(&[5, 2]).unwrap();
                let mut v = [0u8; 2];
                c.read_exact(&mut v).unwrap();
                let mut u = vec![0u8; v[1] as usize];
                c.read_exact(&mut u).unwrap();
                let mut pl = [0u8; 1];
                c.read_exact(&mut pl).unwrap();
                let mut p = vec![0u8; pl[0] as usize];
                c.read_exact(&mut p).unwrap();
                if u != user.as_bytes() || p != pass.as_bytes() {
                    c.write_all(&[1, 1]).unwrap();
                    seen.lock().unwrap().push("refused credentials".into());
                    return;
                }
                c.write_all(&[1, 0]).unwrap();
                let mut head = [0u8; 4];
                c.read_exact(&mut head).unwrap();
                let host = match head[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        c.read_exact(&mut ip).unwrap();
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    3 => {
                        let mut n = [0u8; 1];
                        c.read_exact(&mut n).unwrap();
                        let mut name = vec![0u8; n[0] as usize];
                        c.read_exact(&mut name).unwrap();
                        String::from_utf8(name).unwrap()
                    }
                    _ => panic!("unexpected address type"),
                };
                let mut port = [0u8; 2];
                c.read_exact(&mut port).unwrap();
                let port = u16::from_be_bytes(port);
                seen.lock().unwrap().push(format!("CONNECT {host}:{port}"));
                let up = TcpStream::connect((host.as_str(), port)).unwrap();
                c.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).unwrap();
                pipe(c, up);
            });
        }
    });
    (addr, log)
}

fn port_of(base: &str) -> String {
    base.split("//")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

/// Groq behind `proxy` and Cerebras direct, each with its own mock (groq's first).
fn groq_behind(proxy: &str) -> (Mock, Mock, Proxy) {
    let m = Mock::start(|_| Reply::completion("ok"));
    let backup = Mock::start(|_| Reply::completion("from cerebras"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_proxy_test")
        .upstream("cerebras", &backup.base())
        .first("cerebras", "gpt-oss-120b")
        .key("cerebras", "csk-proxy-test-key")
        .env("FREELLMAPI_PROXY_GROQ", proxy)
        .start();
    (m, backup, p)
}

fn assert_no_secret(p: &Proxy, answers: &[&support::Response]) {
    assert!(
        !p.log_text().contains(SECRET),
        "a proxy password reached the log"
    );
    for r in answers {
        assert!(!r.text().contains(SECRET) && !r.head.contains(SECRET));
    }
}

#[test]
fn plain_http_requests_reach_the_provider_through_an_http_proxy_in_absolute_form() {
    let m = Mock::start(|_| Reply::completion("via proxy"));
    // base64("user:pr0xy-s3cret")
    let (proxy, log) = http_proxy(Some("dXNlcjpwcjB4eS1zM2NyZXQ="));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_proxy_test")
        .env("FREELLMAPI_PROXY", &format!("http://user:{SECRET}@{proxy}"))
        .start();
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    let line = format!(
        "POST http://127.0.0.1:{}/v1/chat/completions HTTP/1.1",
        port_of(&m.base())
    );
    assert_eq!(log.lock().unwrap().clone(), vec![line.clone()]);
    // The provider got the request in origin form, without the proxy's credentials.
    let got = m.last();
    assert_eq!(got.path, "/v1/chat/completions");
    assert!(
        got.headers
            .iter()
            .all(|(k, _)| !k.eq_ignore_ascii_case("proxy-authorization"))
    );
    assert!(
        got.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == "Bearer gsk_proxy_test")
    );
    // The proxy closed that connection; the next request opens another, credentials again.
    let again = p.chat(CHAT);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(log.lock().unwrap().clone(), vec![line.clone(), line]);
    assert!(
        p.log_text()
            .contains("outbound proxy for every platform: http://***@")
    );
    assert_no_secret(&p, &[&r, &again]);
}

#[test]
fn https_requests_go_through_an_http_proxys_connect_tunnel_which_is_pooled() {
    let m = Mock::start(|_| Reply::completion("over tls through the tunnel"));
    let front = support::tls::front(m.addr);
    // base64("user:pr0xy-s3cret")
    let (proxy, log) = http_proxy(Some("dXNlcjpwcjB4eS1zM2NyZXQ="));
    let p = Proxy::builder()
        .upstream("groq", &format!("https://localhost:{}/v1", front.port()))
        .key("groq", "gsk_proxy_test")
        .env("FREELLMAPI_CA_FILE", &support::tls::ca_file())
        .env(
            "FREELLMAPI_PROXY_GROQ",
            &format!("http://user:{SECRET}@{proxy}"),
        )
        .start();
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("over tls through the tunnel"));
    // The proxy is asked for the host by name (it resolves it), with the credentials.
    let tunnel = format!("CONNECT localhost:{} HTTP/1.1", front.port());
    assert_eq!(log.lock().unwrap().clone(), vec![tunnel.clone()]);
    // The next request reuses the pooled tunnel (and its TLS session).
    let again = p.chat(CHAT);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(
        log.lock().unwrap().clone(),
        vec![tunnel],
        "the tunnel was pooled"
    );
    assert_eq!(m.count(), 2);
    assert_no_secret(&p, &[&r, &again]);
}

#[test]
fn a_platforms_socks5h_proxy_beats_the_global_one_and_names_the_host() {
    let m = Mock::start(|_| Reply::completion("via socks"));
    let (socks, socks_log) = socks_proxy("me", SECRET);
    let (global, global_log) = http_proxy(None);
    // The host goes to the proxy by name (socks5h): `localhost`, resolved by the proxy.
    let base = m.base().replace("127.0.0.1", "localhost");
    let p = Proxy::builder()
        .upstream("groq", &base)
        .key("groq", "gsk_proxy_test")
        .env("FREELLMAPI_PROXY", &format!("http://{global}"))
        .env(
            "FREELLMAPI_PROXY_GROQ",
            &format!("socks5h://me:{SECRET}@{socks}"),
        )
        .start();
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        socks_log.lock().unwrap().clone(),
        vec![format!("CONNECT localhost:{}", port_of(&m.base()))]
    );
    assert!(
        global_log.lock().unwrap().is_empty(),
        "the global proxy was used"
    );
    assert_no_secret(&p, &[&r]);
}

#[test]
fn socks5_resolves_here_and_wrong_credentials_fail_over_without_leaking() {
    let (socks, log) = socks_proxy("me", "another-password");
    let (m, _backup, p) = groq_behind(&format!("socks5://me:{SECRET}@{socks}"));
    // The groq model: tried through the proxy first (which refuses), then whatever else serves.
    let r = p.chat(CHAT);
    assert!(
        log.lock()
            .unwrap()
            .contains(&"refused credentials".to_string()),
        "{:?} {:?}",
        log.lock().unwrap(),
        r.header("X-Fallback-Trail")
    );
    assert_eq!(m.count(), 0, "groq was reached around its proxy");
    let trail = r.header("X-Fallback-Trail").unwrap_or_default();
    assert!(trail.starts_with("groq/"), "{trail}");
    assert_no_secret(&p, &[&r]);
}

#[test]
fn a_dead_proxy_fails_over_like_a_dead_provider() {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (m, _backup, p) = groq_behind(&format!("http://u:{SECRET}@{dead}"));
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    let trail = r.header("X-Fallback-Trail").unwrap_or_default();
    assert!(
        trail.starts_with("groq/"),
        "groq (through the dead proxy) was tried first: {trail}"
    );
    assert_ne!(
        r.header("X-Routed-Via").unwrap().split('/').next(),
        Some("groq")
    );
    assert_eq!(m.count(), 0);
    assert_no_secret(&p, &[&r]);
}

#[test]
fn the_standard_variables_apply_when_ours_are_unset_and_no_proxy_bypasses_them() {
    let m = Mock::start(|_| Reply::completion("ok"));
    let (proxy, log) = http_proxy(None);
    let via_env = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_proxy_test")
        .env("HTTPS_PROXY", &format!("http://{proxy}"))
        .start();
    assert_eq!(via_env.chat(CHAT).status, 200);
    assert_eq!(log.lock().unwrap().len(), 1, "HTTPS_PROXY was not used");

    let bypassed = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_proxy_test")
        .env("HTTPS_PROXY", &format!("http://{proxy}"))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .start();
    assert_eq!(bypassed.chat(CHAT).status, 200);
    assert_eq!(log.lock().unwrap().len(), 1, "NO_PROXY was not honoured");
}

#[test]
fn socks5_sends_the_address_it_resolved() {
    let m = Mock::start(|_| Reply::completion("ok"));
    let (socks, log) = socks_proxy("me", SECRET);
    let base = m.base().replace("127.0.0.1", "localhost");
    let p = Proxy::builder()
        .upstream("groq", &base)
        .key("groq", "gsk_proxy_test")
        .env("FREELLMAPI_PROXY", &format!("socks5://me:{SECRET}@{socks}"))
        .start();
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    // `localhost` was resolved here; the proxy got an address, not the name.
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with("CONNECT 127.0.0.1:") || seen[0].starts_with("CONNECT ::1"),
        "{seen:?}"
    );
    assert_no_secret(&p, &[&r]);
}

#[test]
fn a_keys_own_proxy_beats_its_platforms_which_beats_the_global_one() {
    let m = Mock::start(|_| Reply::completion("ok"));
    let (socks, key_log) = socks_proxy("me", SECRET);
    let (platform, platform_log) = http_proxy(None);
    let (global, global_log) = http_proxy(None);
    let dir = support::temp_dir("key-proxy");
    let env = vec![
        ("FREELLMAPI_UPSTREAM_GROQ".to_string(), m.base()),
        ("FREELLMAPI_PROXY".into(), format!("http://{global}")),
        ("FREELLMAPI_PROXY_GROQ".into(), format!("http://{platform}")),
    ];
    let key_proxy = format!("socks5://me:{SECRET}@{socks}");
    let added = support::cli(
        &dir,
        &env,
        &["keys", "add", "groq", "--proxy", &key_proxy],
        "gsk_key_with_its_own_proxy",
    );
    assert!(added.status.success(), "{added:?}");
    let said = String::from_utf8_lossy(&added.stdout);
    assert!(said.contains("through socks5://***@"), "{said}");
    assert!(!said.contains(SECRET), "{said}");
    let listed = support::cli(&dir, &env, &["keys", "list"], "");
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("through socks5://***@127.0.0.1:"),
        "{listed}"
    );
    assert!(!listed.contains(SECRET), "{listed}");

    let mut builder = Proxy::builder().dir(&dir);
    for (k, v) in &env {
        builder = builder.env(k, v);
    }
    let p = builder.start();
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        key_log.lock().unwrap().len(),
        1,
        "the key's own proxy was not used"
    );
    assert!(platform_log.lock().unwrap().is_empty());
    assert!(global_log.lock().unwrap().is_empty());

    // The key's proxy removed while the server runs: the platform's takes over.
    let cleared = support::cli(&dir, &env, &["keys", "proxy", "1", "none"], "");
    assert!(cleared.status.success(), "{cleared:?}");
    // A running server picks store changes up within its store poll.
    p.wait_for(
        "the platform's proxy to take over",
        std::time::Duration::from_secs(10),
        |p| {
            p.chat(CHAT);
            !platform_log.lock().unwrap().is_empty()
        },
    );
    assert!(
        global_log.lock().unwrap().is_empty(),
        "the global proxy was used"
    );
    assert_eq!(key_log.lock().unwrap().len(), 1);

    // A refused proxy URL is not stored, and its password is not repeated.
    let refused = support::cli(
        &dir,
        &env,
        &["keys", "proxy", "1", &format!("ftp://u:{SECRET}@h:1")],
        "",
    );
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("scheme") && !err.contains(SECRET), "{err}");
    // Other refusals, each with the line that names the fault, nothing stored.
    for (args, want) in [
        (
            vec!["keys", "add", "groq", "--proxy", "http://u:pw@nohost"],
            "--proxy: the proxy needs a host and a port (host:port)",
        ),
        (
            vec!["keys", "proxy", "1", "socks5://169.254.169.254:1080"],
            "proxy: the proxy's address is refused",
        ),
        (
            vec!["keys", "proxy", "one", "none"],
            "\"one\" is not a key id",
        ),
        (
            vec!["keys", "list", "--proxy", "http://h:1"],
            "--proxy does not apply",
        ),
    ] {
        let out = support::cli(&dir, &env, &args, "gsk_not_stored_0000000000");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("pw@"), "{err}");
    }
    let listed = support::cli(&dir, &env, &["keys", "list"], "");
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert_eq!(listed.matches("groq").count(), 1, "{listed}");
    assert_no_secret(&p, &[&r]);
}

#[test]
fn a_keys_proxy_also_carries_its_health_probe_and_a_dead_one_is_not_the_keys_fault() {
    let m = Mock::start(|_| Reply::completion("ok"));
    let backup = Mock::start(|_| Reply::completion("from cerebras"));
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = support::temp_dir("key-proxy-dead");
    let env = vec![
        ("FREELLMAPI_UPSTREAM_GROQ".to_string(), m.base()),
        ("FREELLMAPI_UPSTREAM_CEREBRAS".to_string(), backup.base()),
    ];
    for (platform, key, proxy) in [
        (
            "groq",
            "gsk_behind_a_dead_proxy",
            Some(format!("http://u:{SECRET}@{dead}")),
        ),
        ("cerebras", "csk-direct-key-for-failover", None),
    ] {
        let mut args = vec!["keys", "add", platform];
        if let Some(proxy) = &proxy {
            args.extend(["--proxy", proxy.as_str()]);
        }
        let out = support::cli(&dir, &env, &args, key);
        assert!(out.status.success(), "{out:?}");
    }
    // The probe goes through the dead proxy: an error (transport), not an invalid key.
    let checked = support::cli(&dir, &env, &["check"], "");
    let table = String::from_utf8_lossy(&checked.stdout).to_string();
    let groq_line = table
        .lines()
        .find(|l| l.contains("groq"))
        .unwrap_or_default();
    assert!(!groq_line.contains("invalid"), "{table}");
    assert!(
        !groq_line.contains("healthy"),
        "the probe went around the proxy: {table}"
    );
    assert_eq!(m.count(), 0, "the probe went around the proxy");

    let mut builder = Proxy::builder().dir(&dir).first("cerebras", "gpt-oss-120b");
    for (k, v) in &env {
        builder = builder.env(k, v);
    }
    let p = builder.start();
    let r = p.chat(CHAT);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(m.count(), 0, "groq was reached around its key's proxy");
    assert_eq!(
        r.header("X-Routed-Via").unwrap().split('/').next(),
        Some("cerebras")
    );
    assert_no_secret(&p, &[&r]);
    assert!(!table.contains(SECRET));
}
