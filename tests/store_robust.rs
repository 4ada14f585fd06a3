//! A writer killed inside its LMDB write transaction never blocks the next one. LMDB's writer
//! lock is a process-shared mutex in `lock.mdb`; built with robust mutexes, the next locker
//! gets `EOWNERDEAD`, repairs the lock and carries on. Without them, a `keys add` killed at
//! the wrong moment (a Ctrl-C on a Pi) would hang every later `keys add` and stop the
//! server's request log until a restart.
//!
//! CI runs this file on the glibc build and again on the static musl build the packages ship
//! (`cargo test --target x86_64-unknown-linux-musl --test store_robust`).

// Only part of the support module serves this binary; the rest is the other tests'.
#[allow(dead_code)]
mod support;

use support::mock::{Mock, Reply};
use support::{Proxy, user};

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HOLD_DIR: &str = "FREELLMAPI_TEST_HOLD_WRITE_IN";

/// The writer to kill: this test binary again, run as `hold_the_writer_lock` with the data
/// dir in the environment. It opens the store's environment, begins a write transaction,
/// says so, and sleeps inside it. (Run on its own without that variable it does nothing.)
#[test]
fn hold_the_writer_lock() {
    let Ok(dir) = std::env::var(HOLD_DIR) else {
        return;
    };
    let mut options = heed::EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(1 << 30).max_dbs(8);
    // SAFETY: this process opens the environment once.
    let env = unsafe { options.open(&dir) }.expect("opening the environment");
    let _txn = env.write_txn().expect("beginning a write transaction");
    println!("holding the writer lock");
    std::thread::sleep(Duration::from_secs(120));
}

/// Runs the CLI with a deadline; `None` when it did not finish in time (it is killed).
fn cli_within(
    p: &Proxy,
    args: &[&str],
    stdin: &str,
    limit: Duration,
) -> Option<std::process::Output> {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_freellmapi"));
    cmd.args(args)
        .arg("--data-dir")
        .arg(&p.dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &p.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("running the CLI");
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Tries: while the server has the store open, a process is killed with SIGKILL inside the
/// store's write transaction (as a `keys add` killed mid-write would be). Then `keys add`
/// runs twice and finishes each time, the server picks the keys up, serves and records a
/// request, and stops cleanly (its log writer was not stuck behind the dead lock).
#[test]
fn a_writer_killed_inside_its_transaction_does_not_block_the_next() {
    let m = Mock::start(|_| Reply::completion("still serving"));
    let mut p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_before_the_kill")
        .start();

    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_the_writer_lock",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_DIR, &p.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the writer to kill");
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    let holding = lines.any(|l| l.is_ok_and(|l| l.contains("holding the writer lock")));
    assert!(holding, "the writer began its transaction");
    holder.kill().expect("SIGKILL to the writer");
    holder.wait().unwrap();

    for label in ["after-1", "after-2"] {
        let out = cli_within(
            &p,
            &["keys", "add", "cerebras", "--label", label],
            &format!("csk-{label}-key"),
            Duration::from_secs(20),
        )
        .expect("keys add after a killed writer finished instead of waiting on a dead lock");
        assert!(out.status.success(), "{out:?}");
    }
    let list =
        cli_within(&p, &["keys", "list"], "", Duration::from_secs(20)).expect("keys list finished");
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("after-1") && text.contains("after-2"),
        "{text}"
    );
    p.wait_for(
        "the server to pick up the keys",
        Duration::from_secs(10),
        |p| p.log_text().contains("3 usable keys"),
    );
    let r = p.chat(&user("hi"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        p.stop(),
        Some(0),
        "the server stopped cleanly: {}",
        p.log_text()
    );
}
