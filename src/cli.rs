//! The command line: `serve` (default), `token [--rotate] | add|list|rm`, `keys add|list|rm|import`,
//! `check`, `models list|sync|discover|add|enable|disable`, `providers [keyless]`,
//! `cooldowns clear`, `admin-password`,
//! `backup`, `restore`, `--version`, `--help`. Secrets are read from stdin, never from
//! argv. Exit codes: 0 done, 1 the command failed (e.g. no such key), 2 bad usage or configuration.

use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Read};

use crate::catalog::Catalog;
use crate::config::{Config, ConfigError, DataDirUse, Flags};
use crate::health::{self, Checked, Selection};
use crate::server::{self, Opened, StartError};
use crate::store::StoreError;

mod backups;
mod keys;
mod models;
mod tokens;

const HELP: &str = "\
freellmapi — one OpenAI-compatible endpoint in front of many free LLM tiers

USAGE:
  freellmapi [serve] [OPTIONS]          run the server (default)
  freellmapi token [--rotate]           print (or rotate and print) the unified client key
  freellmapi token add --label L        make a named client key (printed once)
  freellmapi token list                 named client keys (masked), created, last used
  freellmapi token rm <id>              revoke a named client key (refused at once)
  freellmapi keys add <platform> [--label L] [--unlimited] [--proxy URL]
                                        add a provider key, read from stdin; --proxy: this
                                        key's calls go through that proxy (http://, socks5://,
                                        socks5h://, optional user:pass@)
  freellmapi keys list                  list keys (masked)
  freellmapi keys rm <id>               remove a key
  freellmapi keys proxy <id> <URL|none> set or clear one key's own proxy
  freellmapi keys import <file.env>     import GROQ_API_KEY=... style lines
  freellmapi check                      probe every key once and print a table
  freellmapi models list [--platform P]  the catalog in effect: models, switches, capabilities
  freellmapi models sync [platform]     read the providers' listings now: retire what they no
                                        longer list, add what is new (on where it is free)
  freellmapi models discover <platform> what the provider lists that the catalog lacks
  freellmapi providers                  each platform's free tier (status, checked, source),
                                        keys, models in service and last sync
  freellmapi providers keyless <platform> on|off
                                        let a platform that serves without a key route keyless
  freellmapi models add <platform> <model_id> [--context N] [--rpm N] [--rpd N] [--tpm N]
                        [--tpd N] [--vision] [--tools]
                                        add a model (limits not given: the platform's pool
                                        limits still apply)
  freellmapi models enable|disable <platform>/<model_id>
  freellmapi cooldowns clear [--platform P] [--model M] [--key ID]
                                        end cooldowns now (all, or the matching ones);
                                        a running server applies it within 2 s
  freellmapi admin-password             set or reset the dashboard password, read from stdin
                                        (works while the server runs; logs everyone out)
  freellmapi healthcheck                exit 0 when the server on --listen answers /healthz
                                        (for container HEALTHCHECKs: no curl needed)
  freellmapi backup <file>              the store and master key in one file sealed with a
                                        passphrase read from stdin (works while the server runs)
  freellmapi restore <file>             into --data-dir, which must be new or empty
  freellmapi --version | --help

";

/// `--help`: the commands, then the options and variables (from `config::vars`) and the
/// platforms (from the catalog), so neither list can go stale.
fn help() -> String {
    let catalog = Catalog::builtin();
    let platforms: Vec<&str> = catalog
        .platforms
        .iter()
        .filter(|p| p.refuses_keys().is_none())
        .map(|p| p.id.as_str())
        .collect();
    let mut lines = String::new();
    let mut line = String::from(" ");
    for id in platforms {
        if line.len() + 1 + id.len() > 90 {
            lines.push_str(&line);
            lines.push('\n');
            line = String::from(" ");
        }
        line.push(' ');
        line.push_str(id);
    }
    lines.push_str(&line);
    format!(
        "{HELP}\n{}\nPLATFORMS (Cloudflare's key is account_id:api_token):\n{lines}\n",
        crate::config::vars::help()
    )
}

/// Runs the command line; returns the process exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    match dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("freellmapi: {e}");
            2
        }
    }
}

/// Why a command failed; printed as one line, exit code 2.
#[derive(Debug)]
enum CliError {
    /// The command line or its input (stdin, a file) is not acceptable; says what to do.
    Usage(String),
    Config(ConfigError),
    Start(StartError),
    Store(StoreError),
    Backup(crate::backup::BackupError),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) => f.write_str(m),
            CliError::Config(e) => write!(f, "{e}"),
            CliError::Start(e) => write!(f, "{e}"),
            CliError::Store(e) => write!(f, "{e}"),
            CliError::Backup(e) => write!(f, "{e}"),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::Config(e)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Store(e)
    }
}

impl From<StartError> for CliError {
    fn from(e: StartError) -> Self {
        CliError::Start(e)
    }
}

/// `models add`'s options.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ModelLimits {
    pub context: Option<u64>,
    pub rpm: Option<u64>,
    pub rpd: Option<u64>,
    pub tpm: Option<u64>,
    pub tpd: Option<u64>,
    pub vision: bool,
    pub tools: bool,
}

struct Parsed {
    flags: Flags,
    label: Option<String>,
    /// `models add` limits and capabilities.
    limits: ModelLimits,
    /// `cooldowns clear` and `models list` filters.
    platform: Option<String>,
    model: Option<String>,
    key: Option<u64>,
    unlimited: bool,
    rotate: bool,
    /// `keys add --proxy`.
    proxy: Option<String>,
    words: Vec<String>,
}

fn parse(args: Vec<OsString>) -> Result<Option<Parsed>, CliError> {
    let mut p = pico_args::Arguments::from_vec(args);
    if p.contains(["-h", "--help"]) {
        print!("{}", help());
        return Ok(None);
    }
    if p.contains(["-V", "--version"]) {
        println!("freellmapi {}", env!("CARGO_PKG_VERSION"));
        return Ok(None);
    }
    let opt =
        |p: &mut pico_args::Arguments, name: &'static str| -> Result<Option<String>, CliError> {
            p.opt_value_from_str(name)
                .map_err(|e| CliError::Usage(format!("{name}: {e}")))
        };
    let flags = Flags {
        listen: opt(&mut p, "--listen")?,
        data_dir: opt(&mut p, "--data-dir")?,
        trust_proxy: opt(&mut p, "--trust-proxy")?,
        log_level: opt(&mut p, "--log-level")?,
    };
    let label = opt(&mut p, "--label")?;
    let proxy = opt(&mut p, "--proxy")?;
    let number =
        |p: &mut pico_args::Arguments, name: &'static str| -> Result<Option<u64>, CliError> {
            opt(p, name)?
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        CliError::Usage(format!("{name}: expected a whole number, got {v:?}"))
                    })
                })
                .transpose()
        };
    let limits = ModelLimits {
        context: number(&mut p, "--context")?,
        rpm: number(&mut p, "--rpm")?,
        rpd: number(&mut p, "--rpd")?,
        tpm: number(&mut p, "--tpm")?,
        tpd: number(&mut p, "--tpd")?,
        vision: p.contains("--vision"),
        tools: p.contains("--tools"),
    };
    let platform = opt(&mut p, "--platform")?;
    let model = opt(&mut p, "--model")?;
    let key = opt(&mut p, "--key")?
        .map(|k| {
            k.parse::<u64>()
                .map_err(|_| CliError::Usage(format!("--key: expected a key id, got {k:?}")))
        })
        .transpose()?;
    let unlimited = p.contains("--unlimited");
    let rotate = p.contains("--rotate");
    let mut words = Vec::new();
    for arg in p.finish() {
        let arg = arg
            .into_string()
            .map_err(|_| CliError::Usage("arguments must be UTF-8".into()))?;
        if arg.starts_with('-') {
            return Err(CliError::Usage(format!(
                "unknown option {arg}; see `freellmapi --help`"
            )));
        }
        words.push(arg);
    }
    Ok(Some(Parsed {
        flags,
        label,
        limits,
        platform,
        model,
        key,
        unlimited,
        rotate,
        proxy,
        words,
    }))
}

fn dispatch(args: Vec<OsString>) -> Result<i32, CliError> {
    let Some(p) = parse(args)? else { return Ok(0) };
    let catalog = Catalog::builtin();
    let env_names: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .collect();
    let config = Config::build(
        &p.flags,
        &|k| std::env::var(k).ok(),
        &env_names,
        &catalog.platform_ids(),
    )?;
    crate::logging::init(config.log_filter.clone());
    let words: Vec<&str> = p.words.iter().map(String::as_str).collect();
    let only = |allowed: bool, what: &str| {
        if allowed {
            Ok(())
        } else {
            Err(CliError::Usage(format!(
                "{what} does not apply to this command; see `freellmapi --help`"
            )))
        }
    };
    if !matches!(words.as_slice(), ["cooldowns", ..] | ["models", "list"]) {
        only(
            p.platform.is_none() && p.model.is_none() && p.key.is_none(),
            "--platform/--model/--key",
        )?;
    }
    if !matches!(words.as_slice(), ["keys", "add", _]) {
        only(p.proxy.is_none(), "--proxy")?;
    }
    if !matches!(words.as_slice(), ["models", "add", ..]) {
        only(
            p.limits == ModelLimits::default(),
            "--context/--rpm/--rpd/--tpm/--tpd/--vision/--tools",
        )?;
    }
    match words.as_slice() {
        [] | ["serve"] => {
            only(
                p.label.is_none() && !p.unlimited && !p.rotate,
                "--label/--unlimited/--rotate",
            )?;
            server::serve(&config)?;
            Ok(0)
        }
        ["token"] => {
            only(p.label.is_none() && !p.unlimited, "--label/--unlimited")?;
            token(&config, p.rotate)
        }
        ["token", "add"] => {
            only(!p.unlimited && !p.rotate, "--unlimited/--rotate")?;
            tokens::add(&config, p.label.as_deref())
        }
        ["token", "list"] => tokens::list(&config),
        ["token", "rm", id] => tokens::rm(&config, id),
        ["token", ..] => Err(CliError::Usage(
            "usage: freellmapi token [--rotate] | add --label L | list | rm <id>".into(),
        )),
        ["keys", "add", platform] => {
            only(!p.rotate, "--rotate")?;
            keys::add(
                &config,
                &catalog,
                platform,
                p.label.as_deref().unwrap_or(""),
                p.unlimited,
                p.proxy.as_deref(),
            )
        }
        ["keys", "list"] => keys::list(&config),
        ["keys", "rm", id] => keys::rm(&config, id),
        ["keys", "proxy", id, url] => keys::proxy(&config, id, url),
        ["keys", "import", file] => keys::import(&config, &catalog, file),
        ["check"] => check(&config),
        ["models", "list"] => models::list(&config, p.platform.as_deref()),
        ["models", "sync"] => models::sync(&config, None),
        ["models", "sync", platform] => models::sync(&config, Some(platform)),
        ["providers"] | ["providers", "list"] => models::providers(&config),
        ["providers", "keyless", platform, on @ ("on" | "off")] => {
            models::keyless(&config, platform, *on == "on")
        }
        ["providers", ..] => Err(CliError::Usage(
            "usage: freellmapi providers [list] | keyless <platform> on|off".into(),
        )),
        ["models", "discover", platform] => models::discover(&config, platform),
        ["models", "add", platform, model_id] => models::add(&config, platform, model_id, &p.limits),
        ["models", "enable", id] => models::switch(&config, id, true),
        ["models", "disable", id] => models::switch(&config, id, false),
        ["models", ..] => Err(CliError::Usage(
            "usage: freellmapi models list [--platform P] | sync [platform] | discover <platform> | add <platform> <model_id> [...] | enable|disable <platform>/<model_id>".into(),
        )),
        ["cooldowns", "clear"] => cooldowns_clear(&config, &catalog, p.platform, p.model, p.key),
        ["cooldowns", ..] => Err(CliError::Usage(
            "usage: freellmapi cooldowns clear [--platform P] [--model M] [--key ID]".into(),
        )),
        ["admin-password"] => admin_password(&config),
        ["healthcheck"] => healthcheck(&config),
        ["backup", file] => backups::backup(&config, file),
        ["restore", file] => backups::restore(&config, file),
        ["backup" | "restore", ..] => Err(CliError::Usage(
            "usage: freellmapi backup <file> | restore <file> --data-dir NEW_DIR (passphrase on stdin)".into(),
        )),
        ["keys", ..] => Err(CliError::Usage(
            "usage: freellmapi keys add <platform> [--label L] [--unlimited] [--proxy URL] | list | rm <id> | proxy <id> <URL|none> | import <file.env>".into(),
        )),
        other => Err(CliError::Usage(format!(
            "unknown command {:?}; see `freellmapi --help`",
            other.join(" ")
        ))),
    }
}

/// Leaves a request for the running (or next) server to end the matching cooldowns, and ends
/// the matching keys' stored `rate_limited` status now.
fn cooldowns_clear(
    config: &Config,
    catalog: &Catalog,
    platform: Option<String>,
    model: Option<String>,
    key_id: Option<u64>,
) -> Result<i32, CliError> {
    if let Some(p) = &platform
        && catalog.platform_index(p).is_none()
    {
        return Err(CliError::Usage(format!(
            "unknown platform {p:?}; known: {}",
            catalog.platform_ids().join(", ")
        )));
    }
    let Opened { store, .. } = open(config, DataDirUse::Write)?;
    if let Some(k) = key_id
        && store.get_key(k)?.is_none()
    {
        eprintln!("no key {k}");
        return Ok(1);
    }
    let keys = store.clear_rate_limited(platform.as_deref(), key_id)?;
    let what = [
        platform.as_deref().map(|p| format!("platform {p}")),
        model.as_deref().map(|m| format!("model {m}")),
        key_id.map(|k| format!("key {k}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    store.request_cooldown_clear(crate::store::CooldownClear {
        seq: 0,
        platform,
        model,
        key_id,
    })?;
    println!(
        "cooldowns of {} cleared: a running server applies it within 2 s, a stopped one at its next start ({keys} key{} lost a rate-limited status)",
        if what.is_empty() {
            "every model and key".to_string()
        } else {
            what.join(", ")
        },
        if keys == 1 { "" } else { "s" }
    );
    Ok(0)
}

/// The catalog in effect for this data dir: built-in, base-URL overrides from the
/// environment, and the user's edits, custom models and custom platforms.
fn catalog_in_effect(config: &Config, store: &crate::store::Store) -> Result<Catalog, CliError> {
    Ok(Catalog::builtin()
        .with_base_urls(&config.upstream_overrides)
        .merged(&store.overrides()?, &store.lifecycle()?))
}

fn open(config: &Config, use_: DataDirUse) -> Result<Opened, CliError> {
    Ok(server::open_data_dir(config, use_)?)
}

fn token(config: &Config, rotate: bool) -> Result<i32, CliError> {
    let key = if rotate {
        let Opened { store, master } = open(config, DataDirUse::Write)?;
        let key = store.set_unified_key(&master, &crate::crypto::new_unified_key())?;
        eprintln!("rotated; the old key stops working within a few seconds on a running server");
        key
    } else {
        // Showing the key only reads (it works on a read-only or full disk); the first call
        // on a new data dir makes one.
        let Opened { store, master } = open(config, DataDirUse::Read)?;
        match store.existing_unified_key(&master)? {
            Some(key) => key,
            None => {
                drop(store);
                let Opened { store, master } = open(config, DataDirUse::Write)?;
                store.unified_key(&master)?.0
            }
        }
    };
    println!("{}", key.as_str().unwrap_or_default());
    Ok(0)
}

fn read_secret_from_stdin(what: &str) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let mut text = String::new();
    if stdin.is_terminal() {
        eprintln!("Paste the {what} and press Enter:");
        stdin
            .lock()
            .read_line(&mut text)
            .map_err(|e| CliError::Usage(format!("reading stdin: {e}")))?;
    } else {
        stdin
            .lock()
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(|e| CliError::Usage(format!("reading stdin: {e}")))?;
    }
    Ok(text.trim().to_string())
}

/// Sets or resets the dashboard password (the recovery path). A terminal is asked twice.
fn admin_password(config: &Config) -> Result<i32, CliError> {
    let Opened { store, .. } = open(config, DataDirUse::Write)?;
    let password = read_password()?;
    crate::admin::auth::check_new_password(&password)
        .map_err(|m| CliError::Usage(format!("the password {m}")))?;
    store.set_admin_password(&crate::admin::auth::hash_password(&password))?;
    println!("dashboard password set; existing dashboard sessions were logged out");
    Ok(0)
}

/// The password from stdin: one line. On a terminal it is asked twice and must match. Only a
/// trailing newline is removed (the rules reject surrounding whitespace rather than trim it).
fn read_password() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let read_line = |prompt: &str| -> Result<String, CliError> {
        let _quiet = stdin.is_terminal().then(|| {
            eprintln!("{prompt}");
            NoEcho::new()
        });
        let mut line = String::new();
        stdin
            .lock()
            .take(64 * 1024)
            .read_line(&mut line)
            .map_err(|e| CliError::Usage(format!("reading stdin: {e}")))?;
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    };
    let first = read_line("New dashboard password (at least 8 characters):")?;
    if stdin.is_terminal() && read_line("Again:")? != first {
        return Err(CliError::Usage(
            "the two passwords differ; nothing was changed".into(),
        ));
    }
    Ok(first)
}

/// Turns terminal echo off on stdin until dropped.
struct NoEcho(Option<libc::termios>);

impl NoEcho {
    fn new() -> NoEcho {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios that tcgetattr fills in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return NoEcho(None);
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            NoEcho(Some(saved))
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restores the settings read in `new`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
            eprintln!();
        }
    }
}

/// One health pass over every key, printed as a table and saved (a running server sees it).
/// Exit code 1 when some key is confirmed invalid.
fn check(config: &Config) -> Result<i32, CliError> {
    let Opened { store, master } = open(config, DataDirUse::Write)?;
    let catalog = catalog_in_effect(config, &store)?;
    if store.list_keys()?.is_empty() {
        println!("no keys to check; add one with `freellmapi keys add <platform>`");
        return Ok(0);
    }
    server::configure_runtime(config.workers);
    let upstream = crate::app::upstream(config);
    let now = crate::time::now_ms();
    let probed = health::probe(&upstream, &catalog, &master, &store, Selection::Every, now)?;
    let checked = health::save(&store, probed, now)?;
    println!(
        "{:<4} {:<12} {:<16} {:<20} {:<13} {:<13} DETAIL",
        "ID", "PLATFORM", "LABEL", "KEY", "RESULT", "STATUS"
    );
    for Checked {
        record: k, outcome, ..
    } in &checked
    {
        let mut detail = outcome.detail();
        if k.auth_failures > 0 && k.enabled {
            detail.push_str(&format!(
                " ({} of {} before disabling)",
                k.auth_failures,
                health::AUTO_DISABLE_AFTER
            ));
        }
        if !k.enabled {
            detail.push_str(" [disabled]");
        }
        println!(
            "{:<4} {:<12} {:<16} {:<20} {:<13} {:<13} {}",
            k.id,
            k.platform,
            k.label,
            k.masked,
            outcome.label(),
            k.status.as_str(),
            detail
        );
    }
    for note in checked.iter().filter_map(|c| c.note.as_deref()) {
        println!("{note}");
    }
    let invalid = checked
        .iter()
        .any(|c| matches!(c.outcome, health::Outcome::Invalid { .. }));
    Ok(if invalid { 1 } else { 0 })
}

/// `GET /healthz` on the configured listen address (a wildcard address means this host),
/// within two seconds: exit 0 when it answers 200, else 1.
fn healthcheck(config: &Config) -> Result<i32, CliError> {
    use std::io::Write;
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let wait = std::time::Duration::from_secs(2);
    let answer = (|| -> std::io::Result<Vec<u8>> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, wait)?;
        s.set_read_timeout(Some(wait))?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: healthcheck\r\nConnection: close\r\n\r\n")?;
        let mut head = vec![0u8; 12];
        s.read_exact(&mut head)?;
        Ok(head)
    })();
    match answer {
        Ok(head) if head.starts_with(b"HTTP/1.1 200") => Ok(0),
        Ok(head) => {
            eprintln!(
                "freellmapi: {addr} answered {:?}",
                String::from_utf8_lossy(&head)
            );
            Ok(1)
        }
        Err(e) => {
            eprintln!("freellmapi: no answer from {addr}: {e}");
            Ok(1)
        }
    }
}
