//! `freellmapi backup` / `restore` with the real binary: a backup taken while requests stream
//! through a running server restores into a new dir with the same unified key, provider keys,
//! named client keys and settings; a wrong passphrase, a truncated or altered file and a
//! non-empty target are refused with exit 2 and one line, and nothing is written.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use simd_json::prelude::*;
use support::mock::{Mock, Reply};
use support::{Proxy, cli, temp_dir};

const PASS: &str = "a long backup passphrase\n";

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_backup_under_load_restores_the_same_keys_token_and_settings() {
    let m = Mock::start(|_| Reply::completion("hi"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_backup_test_key_1")
        .key("groq", "gsk_backup_test_key_2")
        .start();
    let named = p.cli(&["token", "add", "--label", "phone"], "");
    let named = String::from_utf8(named.stdout).unwrap().trim().to_string();
    // A setting: the chain sorted by speed (stored as the chain order).
    let sorted = p.cli(&["models", "disable", "groq/openai/gpt-oss-20b"], "");
    assert!(sorted.status.success(), "{}", text(&sorted));

    // Load while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, served, addr, token) = (stop.clone(), served.clone(), p.addr, p.token.clone());
        std::thread::spawn(move || {
            let auth = format!("Bearer {token}");
            let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
            while !stop.load(Ordering::Relaxed) {
                let r = support::request(
                    addr,
                    "POST",
                    "/v1/chat/completions",
                    &[("Authorization", &auth)],
                    body,
                );
                if r.status == 200 {
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    p.wait_for(
        "20 requests served",
        std::time::Duration::from_secs(30),
        |_| served.load(Ordering::Relaxed) >= 20,
    );
    let file = temp_dir("backup-file").join("freellmapi.bak");
    let out = p.cli(&["backup", file.to_str().unwrap()], PASS);
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let sealed = std::fs::read(&file).unwrap();
    assert!(sealed.starts_with(b"FLLMBAK2"));
    // Sealed: neither the master key nor the unified key appears in the file.
    let master = std::fs::read_to_string(p.dir.join("master.key")).unwrap();
    for secret in [master.trim(), p.token.as_str()] {
        assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }
    // Tries writing over an existing file.
    let again = p.cli(&["backup", file.to_str().unwrap()], PASS);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));

    let dir = temp_dir("restored");
    let _ = std::fs::remove_dir_all(&dir);
    let r = cli(&dir, &p.env, &["restore", file.to_str().unwrap()], PASS);
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(
        std::fs::read_to_string(dir.join("master.key")).unwrap(),
        master
    );

    let restored = Proxy::spawn(dir.clone(), p.env.clone());
    assert_eq!(restored.token, p.token, "the same unified key");
    let keys = restored.cli(&["keys", "list"], "");
    let keys = text(&keys);
    assert!(
        keys.contains("gsk_...key_1") || keys.matches("groq").count() >= 2,
        "{keys}"
    );
    assert_eq!(keys.matches("groq").count(), 2, "{keys}");
    let models = text(&restored.cli(&["models", "list", "--platform", "groq"], ""));
    let line = models
        .lines()
        .find(|l| l.starts_with("groq/openai/gpt-oss-20b"))
        .unwrap();
    assert!(
        line.contains(" disabled "),
        "the model switch came back: {line}"
    );
    // The named client key works on the restored server; so does routing with the restored keys.
    let auth = format!("Bearer {named}");
    let r = support::request(
        restored.addr,
        "POST",
        "/v1/chat/completions",
        &[("Authorization", &auth)],
        br#"{"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn wrong_passphrases_damaged_files_and_full_targets_are_refused_with_nothing_written() {
    let m = Mock::start(|_| Reply::completion("hi"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_backup_test_key_1")
        .start();
    let file = temp_dir("backup-bad").join("f.bak");
    // Tries short passphrases: eight digits were accepted until December 2026.
    for short in ["short\n", "12345678\n", "eleven char\n"] {
        let out = p.cli(&["backup", file.to_str().unwrap()], short);
        assert_eq!(out.status.code(), Some(2), "{short}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!file.exists());
    }
    assert!(
        p.cli(&["backup", file.to_str().unwrap()], PASS)
            .status
            .success()
    );
    let sealed = std::fs::read(&file).unwrap();

    let target = temp_dir("restore-bad");
    let _ = std::fs::remove_dir_all(&target);
    let parent = target.parent().unwrap().to_path_buf();
    let scratch = format!(
        ".{}.restore.",
        target.file_name().unwrap().to_str().unwrap()
    );
    let scratch_left = || {
        std::fs::read_dir(&parent)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&scratch))
    };
    let attempt = |bytes: &[u8], pass: &str| {
        let f = parent.join("attempt.bak");
        std::fs::write(&f, bytes).unwrap();
        let out = cli(&target, &p.env, &["restore", f.to_str().unwrap()], pass);
        std::fs::remove_file(&f).unwrap();
        out
    };
    let mut flipped = sealed.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    for (what, bytes, pass) in [
        ("a wrong passphrase", sealed.clone(), "not the passphrase\n"),
        (
            "a truncated file",
            sealed[..sealed.len() - 100].to_vec(),
            PASS,
        ),
        ("the header alone", sealed[..36].to_vec(), PASS),
        ("a flipped bit", flipped, PASS),
        ("not a backup", b"hello, world".to_vec(), PASS),
    ] {
        let out = attempt(&bytes, pass);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out));
        assert_eq!(
            text(&out).trim().lines().count(),
            1,
            "{what}: one line: {}",
            text(&out)
        );
        let dir_left = target.exists() && std::fs::read_dir(&target).unwrap().next().is_some();
        assert!(!dir_left, "{what}: something was written into the target");
        assert!(!scratch_left(), "{what}: scratch dir left behind");
    }
    let wrong = attempt(&sealed, "not the passphrase\n");
    assert!(
        text(&wrong).contains("wrong passphrase"),
        "{}",
        text(&wrong)
    );

    // Tries restoring over a data dir in use.
    let out = cli(&p.dir, &p.env, &["restore", file.to_str().unwrap()], PASS);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("not empty"), "{}", text(&out));
}

#[test]
fn the_dashboard_downloads_the_same_backup_after_asking_for_the_password_again() {
    let m = Mock::start(|_| Reply::completion("hi"));
    let p = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_backup_test_key_1")
        .start();
    let admin = support::admin::Admin::setup(&p);
    // Tries: the wrong password, a short passphrase, a missing field, GET.
    let wrong = admin.req(
        "POST",
        "/api/backup",
        r#"{"password":"not it","passphrase":"a long backup passphrase"}"#,
    );
    assert_eq!(wrong.status, 401, "{}", wrong.text());
    let body = |pass: &str| {
        format!(
            r#"{{"password":"{}","passphrase":"{pass}"}}"#,
            support::admin::PASSWORD
        )
    };
    assert_eq!(admin.req("POST", "/api/backup", &body("short")).status, 400);
    assert_eq!(
        admin
            .req("POST", "/api/backup", r#"{"password":"x"}"#)
            .status,
        400
    );
    assert_eq!(admin.get("/api/backup").status, 405);

    let r = admin.req("POST", "/api/backup", &body("a long backup passphrase"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body.starts_with(b"FLLMBAK2"));
    let disposition = r.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.starts_with("attachment; filename=\"freellmapi-"),
        "{disposition}"
    );
    // Nothing is left beside the store.
    let left: Vec<_> = std::fs::read_dir(&p.dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    let file = temp_dir("dashboard-backup").join("f.bak");
    std::fs::write(&file, &r.body).unwrap();
    let dir = temp_dir("dashboard-restored");
    let _ = std::fs::remove_dir_all(&dir);
    let out = cli(&dir, &p.env, &["restore", file.to_str().unwrap()], PASS);
    assert!(out.status.success(), "{}", text(&out));
    let restored = Proxy::spawn(dir, p.env.clone());
    assert_eq!(restored.token, p.token);
}

#[test]
fn provider_keys_move_between_installs_as_env_lines() {
    let m = Mock::start(|_| Reply::completion("hi"));
    let from = Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_env_export_key_1")
        .key("groq", "gsk_env_export_key_2")
        .start();
    let admin = support::admin::Admin::setup(&from);
    // Tries the wrong password: nothing leaves.
    let wrong = admin.req("POST", "/api/keys/export", r#"{"password":"nope"}"#);
    assert_eq!(wrong.status, 401);
    assert!(!wrong.text().contains("gsk_env"));
    let body = format!(r#"{{"password":"{}"}}"#, support::admin::PASSWORD);
    let r = admin.req("POST", "/api/keys/export", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let env = r.text();
    assert!(
        env.contains("GROQ_API_KEY=gsk_env_export_key_1\nGROQ_API_KEY=gsk_env_export_key_2\n"),
        "{env}"
    );
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("freellmapi-keys.env")
    );

    let to = Proxy::builder().upstream("groq", &m.base()).start();
    let admin2 = support::admin::Admin::setup(&to);
    let with_junk = format!("{env}NOT_A_KEY=1\nGROQ_API_KEY=bad key with spaces\n");
    let body = format!(r#"{{"text":{}}}"#, support::mock::quote(&with_junk));
    let r = admin2.req("POST", "/api/keys/import", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v.get_u64("added"), Some(2), "{}", r.text());
    assert_eq!(v.get_u64("skipped"), Some(1), "{}", r.text());
    assert!(r.text().contains("NOT_A_KEY"));
    // Again: both already present.
    let again = admin2.req("POST", "/api/keys/import", &body).json();
    assert_eq!(again.get_u64("added"), Some(0));
    // The imported keys route at once.
    assert_eq!(
        to.chat(r#"{"messages":[{"role":"user","content":"hi"}]}"#)
            .status,
        200
    );
}
