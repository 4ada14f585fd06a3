//! A dashboard client for tests: the one-time setup code from the server's output, the
//! session cookie, and the same-origin headers the dashboard sends.

use std::time::Duration;

use super::{Proxy, Response, request};

pub const PASSWORD: &str = "correct horse battery";

/// An admin client: the session cookie plus same-origin headers, as the dashboard sends them.
pub struct Admin<'p> {
    pub proxy: &'p Proxy,
    pub cookie: String,
}

fn looks_like_code(l: &str) -> bool {
    l.len() == 14
        && l.split('-').count() == 3
        && l.split('-')
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The one-time setup code the server printed at start.
pub fn setup_code(proxy: &Proxy) -> String {
    let find = |p: &Proxy| {
        let lines = p.stdout.lock().unwrap();
        lines
            .iter()
            .map(|l| l.trim().to_string())
            .find(|l| looks_like_code(l))
    };
    proxy.wait_for("the setup code", Duration::from_secs(10), |p| {
        find(p).is_some()
    });
    find(proxy).unwrap()
}

pub fn call(
    proxy: &Proxy,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut all: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    request(proxy.addr, method, path, &all, body.as_bytes())
}

pub fn cookie_of(r: &Response) -> String {
    let set = r.header("set-cookie").expect("a Set-Cookie header");
    set.split(';').next().unwrap().to_string()
}

impl<'p> Admin<'p> {
    /// Sets the password with the setup code and keeps the session.
    pub fn setup(proxy: &'p Proxy) -> Admin<'p> {
        let code = setup_code(proxy);
        let r = call(
            proxy,
            "POST",
            "/api/setup",
            &format!(r#"{{"code":"{code}","password":"{PASSWORD}"}}"#),
            &[("Origin", "http://test")],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        Admin {
            proxy,
            cookie: cookie_of(&r),
        }
    }

    pub fn req(&self, method: &str, path: &str, body: &str) -> Response {
        call(
            self.proxy,
            method,
            path,
            body,
            &[
                ("Cookie", &self.cookie),
                ("Origin", "http://test"),
                ("Sec-Fetch-Site", "same-origin"),
            ],
        )
    }

    pub fn get(&self, path: &str) -> Response {
        self.req("GET", path, "")
    }
}
