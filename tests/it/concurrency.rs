//! Upstream I/O parks coroutines, not worker threads: 200 requests to an upstream that takes
//! 200 ms each complete together, not 200 ms per worker thread at a time.

use crate::support;

use std::time::{Duration, Instant};

use support::mock::{Mock, Reply};
use support::{Proxy, user};

#[test]
fn two_hundred_slow_requests_complete_together() {
    let m = Mock::start(|_| {
        Reply::After(
            Duration::from_millis(200),
            Box::new(Reply::completion("slow but fine")),
        )
    });
    // An --unlimited key: the free-tier RPM of one model would otherwise cap the test.
    let p = Proxy::builder().upstream("groq", &m.base()).start();
    let out = p.cli(
        &["keys", "add", "groq", "--unlimited"],
        "gsk_unlimited_paid_key",
    );
    assert!(out.status.success());
    p.wait_for("the key", Duration::from_secs(10), |p| {
        support::request(p.addr, "GET", "/readyz", &[], b"").status == 200
    });

    let started = Instant::now();
    let threads: Vec<_> = (0..200)
        .map(|i| {
            let (addr, token) = (p.addr, p.token.clone());
            std::thread::spawn(move || {
                let auth = format!("Bearer {token}");
                support::request(
                    addr,
                    "POST",
                    "/v1/chat/completions",
                    &[("Authorization", &auth)],
                    user(&format!("n{i}")).as_bytes(),
                )
                .status
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let took = started.elapsed();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The new key also had Groq's model listing read once (a sync): only chat calls count.
    let calls = m
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(calls, 200);
    // Serialised per worker thread this would take 200 × 200 ms / 2 workers = 20 s; together
    // they take well under a second on an idle machine, a few seconds on a loaded one.
    assert!(took < Duration::from_secs(10), "200 requests took {took:?}");
}
