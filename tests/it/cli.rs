//! The command line: start-up errors are one clear line with exit code 2; key management reads
//! secrets from stdin and never echoes them.

use crate::support;

use std::process::{Command, Output};

use support::{BIN, cli, temp_dir};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn one_line_exit_2(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_start_input_is_one_clear_line_and_exit_2() {
    let dir = temp_dir("cli");
    let d = dir.to_str().unwrap();
    one_line_exit_2(
        &run(&["--listen", "localhost", "--data-dir", d], &[]),
        "invalid listen address",
    );
    one_line_exit_2(
        &run(&["--listen", "1.2.3.4:99999", "--data-dir", d], &[]),
        "invalid listen address",
    );
    one_line_exit_2(
        &run(&["--data-dir", d], &[("FREELLMAPI_ENCRYPTION_KEY", "abc")]),
        "expected 64 hex characters",
    );
    one_line_exit_2(
        &run(
            &["--data-dir", d],
            &[("FREELLMAPI_ENCRYPTION_KEY", &"zz".repeat(32))],
        ),
        "expected 64 hex characters",
    );
    one_line_exit_2(
        &run(&["--data-dir", d], &[("FREELLMAPI_LOG", "loud")]),
        "unknown log level",
    );
    one_line_exit_2(
        &run(
            &["--data-dir", d],
            &[("FREELLMAPI_UPSTREAM_GROK", "http://x")],
        ),
        "unknown platform \"grok\"",
    );
    one_line_exit_2(
        &run(
            &["--data-dir", d],
            &[("FREELLMAPI_UPSTREAM_GROQ", "file:///etc")],
        ),
        "not an http",
    );
    one_line_exit_2(
        &run(&["--trust-proxy", "nonsense", "--data-dir", d], &[]),
        "--trust-proxy",
    );
    one_line_exit_2(&run(&["--bogus"], &[]), "unknown option --bogus");
    one_line_exit_2(&run(&["frobnicate"], &[]), "unknown command");
    one_line_exit_2(
        &run(&["token", "--label", "x", "--data-dir", d], &[]),
        "does not apply",
    );

    // A data dir that cannot be created, and one that is a file.
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    one_line_exit_2(
        &run(&["--data-dir", file.to_str().unwrap()], &[]),
        "is not a directory",
    );
    let under_file = file.join("sub");
    one_line_exit_2(
        &run(&["--data-dir", under_file.to_str().unwrap()], &[]),
        "cannot create data dir",
    );

    // An address already in use.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    one_line_exit_2(
        &run(&["--listen", &addr, "--data-dir", d], &[]),
        "cannot listen on",
    );
}

#[test]
fn version_and_help() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("freellmapi {}", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&["--help"], &[]);
    let help = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "token [--rotate]",
        "keys add",
        "keys import",
        "FREELLMAPI_UPSTREAM_<PLATFORM>",
        "--trust-proxy",
    ] {
        assert!(help.contains(word), "{word}");
    }
}

#[test]
fn keys_add_list_rm_with_the_key_on_stdin() {
    let dir = temp_dir("keys");
    let env = vec![];
    let out = cli(
        &dir,
        &env,
        &["keys", "add", "groq", "--label", "main"],
        "gsk_abcdefghijklmnop\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert_eq!(said.trim(), "added key 1 for groq (gsk_...mnop)");

    let out = cli(
        &dir,
        &env,
        &["keys", "add", "cloudflare"],
        "not-an-account-pair\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("account_id:api_token"));
    let out = cli(
        &dir,
        &env,
        &["keys", "add", "cloudflare", "--unlimited"],
        "0123456789abcdef0123456789abcdef:cf_token_value\n",
    );
    assert!(out.status.success());
    let out = cli(&dir, &env, &["keys", "add", "nosuch"], "k\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown platform"));
    let out = cli(&dir, &env, &["keys", "add", "groq"], "\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the key is empty"));

    let list = String::from_utf8(cli(&dir, &env, &["keys", "list"], "").stdout).unwrap();
    assert!(
        list.contains("groq")
            && list.contains("main")
            && list.contains("gsk_...mnop")
            && list.contains("unknown"),
        "{list}"
    );
    assert!(
        !list.contains("abcdefghij") && !list.contains("cf_token_value"),
        "{list}"
    );

    let out = cli(&dir, &env, &["keys", "rm", "1"], "");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "removed key 1"
    );
    let out = cli(&dir, &env, &["keys", "rm", "1"], "");
    assert_eq!(out.status.code(), Some(1));
    let out = cli(&dir, &env, &["keys", "rm", "one"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn keys_import_reads_env_files() {
    let dir = temp_dir("import");
    let file = dir.join("keys.env");
    std::fs::write(
        &file,
        "# my keys\nGROQ_API_KEY=gsk_imported_0001\nexport OPENROUTER_API_KEY=\"sk-or-v1-imported\"\n\
         CLOUDFLARE_ACCOUNT_ID=0123456789abcdef0123456789abcdef\nCLOUDFLARE_API_TOKEN=cf_tok_1\n\
         SOMETHING_ELSE=zzz\nGEMINI_API_KEY=\n",
    )
    .unwrap();
    let data = dir.join("data");
    let out = cli(&data, &[], &["keys", "import", file.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("imported 3 keys, skipped 0"), "{said}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ignored SOMETHING_ELSE"));
    let again =
        String::from_utf8(cli(&data, &[], &["keys", "import", file.to_str().unwrap()], "").stdout)
            .unwrap();
    assert!(again.contains("imported 0 keys, skipped 3"), "{again}");
    let list = String::from_utf8(cli(&data, &[], &["keys", "list"], "").stdout).unwrap();
    assert!(
        list.contains("cloudflare") && list.contains("openrouter") && list.contains("groq"),
        "{list}"
    );
}

#[test]
fn token_prints_the_same_key_until_rotated() {
    let dir = temp_dir("token");
    let a = String::from_utf8(cli(&dir, &[], &["token"], "").stdout).unwrap();
    let b = String::from_utf8(cli(&dir, &[], &["token"], "").stdout).unwrap();
    assert_eq!(a, b);
    assert!(a.trim().starts_with("freellmapi-") && a.trim().len() == 59);
    let c = String::from_utf8(cli(&dir, &[], &["token", "--rotate"], "").stdout).unwrap();
    assert_ne!(a, c);
}

#[test]
fn healthcheck_exits_zero_only_while_the_server_answers() {
    // The container image's HEALTHCHECK: no curl in the image, the binary asks itself.
    let m = support::mock::Mock::start(|_| support::mock::Reply::completion("hi"));
    let p = support::Proxy::builder()
        .upstream("groq", &m.base())
        .key("groq", "gsk_health_check")
        .start();
    let addr = p.addr.to_string();
    let up = p.cli(&["healthcheck", "--listen", &addr], "");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    // Tries a port nobody listens on: exit 1 and one line naming the address.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = p.cli(&["healthcheck", "--listen", &free.to_string()], "");
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains(&free.to_string()));
}
