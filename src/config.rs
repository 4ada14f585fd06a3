//! Flags and environment turned into one immutable [`Config`], validated once at start.
//!
//! Precedence: command-line flag > environment variable > built-in default. Every
//! error is one line that says what is wrong and how to fix it; `main` prints it and exits 2.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::logging::Filter;

pub mod vars;

pub const DEFAULT_LISTEN: &str = vars::LISTEN.value();
pub const DEFAULT_DATA_DIR: &str = vars::DATA_DIR.value();
/// The largest request body. With the budget below and the per-request cost README states,
/// this keeps the server inside the 64 MiB the shipped unit allows.
pub const DEFAULT_BODY_LIMIT: usize = vars::MAX_BODY_MIB.number() as usize * 1024 * 1024;
pub const DEFAULT_BODY_BUDGET: usize = body_budget(DEFAULT_BODY_LIMIT);

/// The memory all request bodies in flight may hold together: one and a half bodies at the
/// limit. A request costs at most about twice its body at its peak (README, "Memory"), so
/// this bounds what requests hold at once to about three body limits.
pub const fn body_budget(body_limit: usize) -> usize {
    body_limit + body_limit / 2
}
pub const DEFAULT_REQUEST_BUDGET: Duration = Duration::from_secs(vars::REQUEST_BUDGET.number());
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Coroutine workers when `FREELLMAPI_WORKERS` is unset: one per core. A single worker was
/// measured (benches/) as no better at concurrency 1 and clearly worse at 32 and for stream
/// frame delays on 2 cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A configuration error: the whole message is meant for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// Values given on the command line (each optional; env and defaults fill the gaps).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub trust_proxy: Option<String>,
    pub log_level: Option<String>,
}

/// A network prefix whose peers may set `X-Forwarded-For` / `X-Forwarded-Proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("bad prefix length in {s:?}"))?,
            None => max,
        };
        Ok(Cidr { net, bits })
    }

    /// A comma-separated list (empty items skipped); the error names `what` and an example.
    pub fn parse_list(list: &str, what: &str, example: &str) -> Result<Vec<Cidr>, ConfigError> {
        list.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Cidr::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| ConfigError(format!("invalid {what}: {e}; use CIDRs like {example}")))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

/// `::ffff:10.0.0.1` (a v4 peer on a dual-stack socket) compares as `10.0.0.1`.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || (a[full] ^ b[full]) >> (8 - rest) == 0
}

/// Root certificates (DER) to verify providers' TLS with, in place of the built-in Mozilla
/// roots: for a network whose proxy re-signs TLS with its own CA. Empty: the built-in roots.
#[derive(Clone, Default)]
pub struct CaRoots(pub Vec<Vec<u8>>);

/// At most this much PEM is read (a full system bundle is about 250 KiB).
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

impl CaRoots {
    /// The certificates of a PEM file; at least one, or an error that says why.
    pub fn read(path: &Path) -> Result<CaRoots, String> {
        let mut pem = Vec::new();
        fs::File::open(path)
            .and_then(|f| f.take(MAX_CA_FILE + 1).read_to_end(&mut pem))
            .map_err(|e| format!("cannot read it: {e}"))?;
        if pem.len() as u64 > MAX_CA_FILE {
            return Err("larger than 4 MiB; expected PEM certificates".into());
        }
        let mut roots = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => roots.push(c.der().to_vec()),
                Ok(_) => {}
                Err(_) => return Err("not readable as PEM".into()),
            }
        }
        if roots.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        Ok(CaRoots(roots))
    }
}

impl std::fmt::Debug for CaRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} root certificates", self.0.len())
    }
}

/// The validated process configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Raw `FREELLMAPI_ENCRYPTION_KEY`; validated when the master key is loaded.
    pub encryption_key: Option<String>,
    /// Platform id → base URL, from `FREELLMAPI_UPSTREAM_<PLATFORM>`.
    pub upstream_overrides: HashMap<String, String>,
    /// Outbound proxies: `FREELLMAPI_PROXY` (no platform) and `FREELLMAPI_PROXY_<PLATFORM>`.
    /// The URLs may hold credentials: never log them as they are.
    pub proxies: Vec<(Option<String>, String)>,
    /// `FREELLMAPI_CA_FILE`: the roots to trust instead of the built-in Mozilla set.
    pub ca_roots: CaRoots,
    pub trust_proxy: Vec<Cidr>,
    /// `FREELLMAPI_ALLOWED_HOSTS`: names (or addresses) the dashboard answers to besides this
    /// machine's own; `*` for any.
    pub allowed_hosts: Vec<String>,
    pub log_filter: Filter,
    pub body_limit: usize,
    /// The longest a whole request body may take to arrive.
    pub body_timeout: Duration,
    pub request_budget: Duration,
    pub max_connections: usize,
    /// Upstream time to first response byte (default 60 s).
    pub first_byte_timeout: Duration,
    /// Longest silence allowed between upstream body reads (default 90 s).
    pub idle_timeout: Duration,
    /// Interval of `: keep-alive` comments on quiet streams (default 15 s).
    pub sse_keepalive: Duration,
    /// Time between key health passes (default 5 min; the first pass comes after 30 s).
    pub health_interval: Duration,
    /// Coroutine worker threads (`FREELLMAPI_WORKERS`, default one per core).
    pub workers: usize,
    /// How often the server reads the providers' model listings (`FREELLMAPI_SYNC_HOURS`,
    /// default 24; `None`: never on its own).
    pub sync_every: Option<Duration>,
    /// `FREELLMAPI_OLLAMA_LISTEN`: the Ollama API's own address (`None`: not served).
    pub ollama_listen: Option<SocketAddr>,
    /// `FREELLMAPI_OLLAMA_ALLOW`: peers that use the Ollama API without a client key.
    pub ollama_allow: Vec<Cidr>,
    /// Where token vocabularies are looked for, in order (`FREELLMAPI_VOCAB_DIR`, or the
    /// places an install puts them).
    pub vocab_dirs: Vec<PathBuf>,
}

/// Where an install puts the vocabularies: beside the binary (a copied static build), the
/// prefix's share dir (`/usr/bin` → `/usr/share`), and the .deb's and image's place.
fn installed_vocab_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(bin.join("vocab"));
        if let Some(prefix) = bin.parent() {
            dirs.push(prefix.join("share/freellmapi/vocab"));
        }
    }
    let system = PathBuf::from("/usr/share/freellmapi/vocab");
    if !dirs.contains(&system) {
        dirs.push(system);
    }
    dirs
}

impl Config {
    /// Builds the configuration. `env` reads one variable; `platforms` are the catalog's ids,
    /// used to reject a misspelt `FREELLMAPI_UPSTREAM_*`.
    pub fn build(
        flags: &Flags,
        env: &dyn Fn(&str) -> Option<String>,
        env_names: &[String],
        platforms: &[&str],
    ) -> Result<Config, ConfigError> {
        let pick = |flag: &Option<String>, var: &str| {
            flag.clone().or_else(|| env(var).filter(|v| !v.is_empty()))
        };

        let listen_text =
            pick(&flags.listen, vars::LISTEN.name).unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = match listen_text.parse() {
            Ok(a) => a,
            Err(_) => {
                return err(format!(
                    "invalid listen address {listen_text:?}: use IP:PORT, e.g. 127.0.0.1:3001, 0.0.0.0:3001 or [::]:3001"
                ));
            }
        };

        let data_dir = PathBuf::from(
            pick(&flags.data_dir, vars::DATA_DIR.name).unwrap_or_else(|| DEFAULT_DATA_DIR.into()),
        );

        let log_text =
            pick(&flags.log_level, vars::LOG.name).unwrap_or_else(|| vars::LOG.value().into());
        let log_filter =
            Filter::parse(&log_text).map_err(|e| ConfigError(format!("invalid log level: {e}")))?;

        let trust_proxy = match pick(&flags.trust_proxy, vars::TRUST_PROXY.name) {
            None => Vec::new(),
            Some(list) => Cidr::parse_list(&list, "--trust-proxy", "127.0.0.1/32,::1/128")?,
        };

        let allowed_hosts = match env(vars::ALLOWED_HOSTS.name) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|h| {
                    check_host_name(h).map(|()| h.to_string()).map_err(|why| {
                        ConfigError(format!("{}: {h:?} {why}", vars::ALLOWED_HOSTS.name))
                    })
                })
                .collect::<Result<_, _>>()?,
        };

        let encryption_key = env(vars::ENCRYPTION_KEY.name).filter(|v| !v.is_empty());

        let mut proxies = Vec::new();
        for name in env_names {
            let Some(rest) = name.strip_prefix(vars::PROXY.name) else {
                continue;
            };
            let platform = match rest.strip_prefix('_') {
                None if rest.is_empty() => None,
                Some(p) if platforms.contains(&p.to_ascii_lowercase().as_str()) => {
                    Some(p.to_ascii_lowercase())
                }
                _ => {
                    return err(format!(
                        "{name} names an unknown platform; use {} or {} with one of: {}",
                        vars::PROXY.name,
                        vars::PROXY_PLATFORM.name,
                        platforms.join(", ")
                    ));
                }
            };
            let url = env(name).unwrap_or_default();
            // The value may hold a password: the error names the variable only.
            check_proxy_url(&url).map_err(|why| ConfigError(format!("{name}: {why}")))?;
            proxies.push((platform, url.trim().to_string()));
        }

        let ca_roots = match env(vars::CA_FILE.name).filter(|v| !v.trim().is_empty()) {
            None => CaRoots::default(),
            Some(path) => CaRoots::read(Path::new(path.trim()))
                .map_err(|why| ConfigError(format!("{}={path:?}: {why}", vars::CA_FILE.name)))?,
        };

        let upstream_prefix = vars::UPSTREAM.name.trim_end_matches("<PLATFORM>");
        let mut upstream_overrides = HashMap::new();
        for name in env_names {
            let Some(suffix) = name.strip_prefix(upstream_prefix) else {
                continue;
            };
            let platform = suffix.to_ascii_lowercase();
            if !platforms.contains(&platform.as_str()) {
                return err(format!(
                    "{name} names an unknown platform {platform:?}; known platforms: {}",
                    platforms.join(", ")
                ));
            }
            let url = env(name).unwrap_or_default();
            validate_base_url(&url).map_err(|why| ConfigError(format!("{name}: {why}")))?;
            upstream_overrides.insert(platform, url.trim_end_matches('/').to_string());
        }

        let body_limit = match env(vars::MAX_BODY_MIB.name) {
            None => DEFAULT_BODY_LIMIT,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=1024).contains(&n) => n * 1024 * 1024,
                _ => {
                    return err(format!(
                        "{}={v:?}: use a whole number of MiB from 1 to 1024",
                        vars::MAX_BODY_MIB.name
                    ));
                }
            },
        };
        let secs = |var: &vars::Var, max: u64| -> Result<Duration, ConfigError> {
            let name = var.name;
            match env(name) {
                None => Ok(Duration::from_secs(var.number())),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(Duration::from_secs(n)),
                    _ => err(format!("{name}={v:?}: use whole seconds from 1 to {max}")),
                },
            }
        };
        let request_budget = secs(&vars::REQUEST_BUDGET, 3600)?;
        let first_byte_timeout = secs(&vars::FIRST_BYTE_TIMEOUT, 3600)?;
        let idle_timeout = secs(&vars::IDLE_TIMEOUT, 3600)?;
        let sse_keepalive = secs(&vars::SSE_KEEPALIVE, 300)?;
        let body_timeout = secs(&vars::BODY_TIMEOUT, 3600)?;
        let health_interval = secs(&vars::HEALTH_INTERVAL, 86_400)?;
        let ollama_listen = match env(vars::OLLAMA_LISTEN.name).filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(text) => Some(text.trim().parse::<SocketAddr>().map_err(|_| {
                ConfigError(format!(
                    "invalid FREELLMAPI_OLLAMA_LISTEN {text:?}: use IP:PORT, e.g. 0.0.0.0:11434"
                ))
            })?),
        };
        if ollama_listen.is_some_and(|a| a == listen && a.port() != 0) {
            return err(format!(
                "FREELLMAPI_OLLAMA_LISTEN and the listen address are both {listen}; the Ollama API needs its own port (11434 is Ollama's)"
            ));
        }
        let ollama_allow = Cidr::parse_list(
            &env(vars::OLLAMA_ALLOW.name).unwrap_or_else(|| vars::OLLAMA_ALLOW.value().into()),
            vars::OLLAMA_ALLOW.name,
            "192.168.1.0/24,127.0.0.1/32",
        )?;

        let vocab_dirs = match env(vars::VOCAB_DIR.name).filter(|v| !v.trim().is_empty()) {
            Some(dir) => vec![PathBuf::from(dir)],
            None => installed_vocab_dirs(),
        };

        let sync_every = match env(vars::SYNC_HOURS.name) {
            None => Some(Duration::from_secs(vars::SYNC_HOURS.number() * 3600)),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(h) if h <= 8760 => Some(Duration::from_secs(h * 3600)),
                _ => {
                    return err(format!(
                        "{}={v:?}: use whole hours from 0 (never) to 8760",
                        vars::SYNC_HOURS.name
                    ));
                }
            },
        };
        let workers = match env(vars::WORKERS.name) {
            None => default_workers(),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    return err(format!(
                        "{}={v:?}: use a whole number from 1 to 64",
                        vars::WORKERS.name
                    ));
                }
            },
        };

        Ok(Config {
            listen,
            data_dir,
            encryption_key,
            upstream_overrides,
            proxies,
            ca_roots,
            trust_proxy,
            allowed_hosts,
            log_filter,
            body_limit,
            body_timeout,
            request_budget,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            first_byte_timeout,
            idle_timeout,
            sse_keepalive,
            health_interval,
            workers,
            sync_every,
            ollama_listen,
            ollama_allow,
            vocab_dirs,
        })
    }

    /// Creates the data directory (0700) if needed and proves it is writable.
    /// Makes sure the data dir exists (creating it 0700 if needed) and, for `use_` other than
    /// [`DataDirUse::Read`], that it can be written. A full disk is named as such; the server
    /// starts anyway (it can proxy; saving waits for space), a writing command cannot.
    pub fn prepare_data_dir(&self, use_: DataDirUse) -> Result<(), ConfigError> {
        let dir = &self.data_dir;
        let shown = dir.display();
        if !dir.exists() {
            fs::create_dir_all(dir).map_err(|e| {
                ConfigError(format!(
                    "cannot create data dir {shown}: {e}; create it or pass --data-dir"
                ))
            })?;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        } else if !dir.is_dir() {
            return err(format!(
                "data dir {shown} is not a directory; pass --data-dir"
            ));
        }
        // Keys, sessions and the request log live here: nobody else needs to list it.
        if let Ok(meta) = fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
        if use_ == DataDirUse::Read {
            return Ok(());
        }
        let probe = dir.join(".write-test");
        let written = fs::write(&probe, b"ok");
        let _ = fs::remove_file(&probe);
        match written {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && use_ == DataDirUse::Serve => {
                log::warn!(
                    "data dir {shown} is full (no space left on device): proxying works, but keys, settings and the request log cannot be saved until space is freed"
                );
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => err(format!(
                "data dir {shown} is full (no space left on device); free some space and try again"
            )),
            Err(e) if e.raw_os_error() == Some(libc::EROFS) => err(format!(
                "data dir {shown} is on a read-only file system; only `keys list` and `token` work there"
            )),
            Err(e) => err(format!(
                "data dir {shown} is not writable: {e}; fix its owner/mode or pass --data-dir"
            )),
        }
    }
}

/// What a command needs of the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirUse {
    /// Only reads (`keys list`, `token`): works on a full or read-only disk.
    Read,
    /// Saves something: the disk must take a write.
    Write,
    /// The server: starts on a full disk (it can still proxy), not on a read-only one.
    Serve,
}

/// An entry of `FREELLMAPI_ALLOWED_HOSTS`: `*`, an address literal, or a DNS name (no port, no
/// scheme: the dashboard compares the name a browser sends, whatever the port).
fn check_host_name(h: &str) -> Result<(), &'static str> {
    if h == "*"
        || h.trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok()
    {
        return Ok(());
    }
    let name = h.trim_end_matches('.');
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(
            "is not a host name: use names like pi.lan or addresses, comma-separated, no scheme or port",
        )
    }
}

/// Base URLs must be absolute `http`/`https` URLs with a host that is not link-local or a
/// cloud metadata service (see `netguard`).
pub fn validate_base_url(url: &str) -> Result<(), String> {
    crate::netguard::check_base_url(url)
}

/// A proxy URL's shape: `http://`, `socks5://` or `socks5h://`, a host and a port, optional
/// `user:pass@`. The answer never repeats the URL (it may hold a password).
pub fn check_proxy_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(
            "expected a URL such as http://host:3128 or socks5h://user:pass@host:1080".into(),
        );
    };
    if !matches!(scheme, "http" | "socks5" | "socks5h") {
        return Err("the scheme must be http, socks5 or socks5h".into());
    }
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let port_ok = host_port
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        return Err("the proxy needs a host and a port (host:port)".into());
    }
    if rest.len() > authority.len() && rest[authority.len()..] != *"/" {
        return Err("a proxy URL has no path".into());
    }
    let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
    if let Some(why) = crate::netguard::forbidden_host(host) {
        return Err(format!("the proxy's address is refused: {why}"));
    }
    Ok(())
}

/// A proxy URL with its credentials hidden, for logs and for showing on the dashboard.
pub fn redact_proxy_url(url: &str) -> String {
    match url.trim().split_once("://") {
        Some((scheme, rest)) => {
            let authority = rest.split('/').next().unwrap_or(rest);
            match authority.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}"),
                None => format!("{scheme}://{authority}"),
            }
        }
        None => "(unreadable proxy URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(flags: Flags, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let names: Vec<String> = map.keys().cloned().collect();
        Config::build(
            &flags,
            &|k| map.get(k).cloned(),
            &names,
            &["groq", "google", "cloudflare"],
        )
    }

    #[test]
    fn proxies_are_read_per_platform_and_checked_without_echoing_secrets() {
        let c = build(
            Flags::default(),
            &[
                ("FREELLMAPI_PROXY", "http://proxy.lan:3128"),
                ("FREELLMAPI_PROXY_GROQ", "socks5h://u:secret@10.0.0.2:1080"),
            ],
        )
        .unwrap();
        let mut p = c.proxies.clone();
        p.sort();
        assert_eq!(
            p,
            vec![
                (None, "http://proxy.lan:3128".to_string()),
                (
                    Some("groq".into()),
                    "socks5h://u:secret@10.0.0.2:1080".into()
                )
            ]
        );
        for bad in [
            "ftp://x:1",
            "http://nohost",
            "socks5://u:secret@:1080",
            "http://h:1/path",
            "h:1",
        ] {
            let e = build(Flags::default(), &[("FREELLMAPI_PROXY", bad)]).unwrap_err();
            assert!(e.0.starts_with("FREELLMAPI_PROXY: "), "{bad}: {}", e.0);
            assert!(!e.0.contains("secret"));
        }
        let e = build(Flags::default(), &[("FREELLMAPI_PROXY_NOPE", "http://h:1")]).unwrap_err();
        assert!(e.0.contains("unknown platform"), "{}", e.0);
    }

    #[test]
    fn defaults_apply() {
        let c = build(Flags::default(), &[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3001");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.body_limit, 8 * 1024 * 1024);
    }

    #[test]
    fn flag_beats_env() {
        let flags = Flags {
            listen: Some("127.0.0.1:9".into()),
            ..Flags::default()
        };
        let c = build(flags, &[("FREELLMAPI_LISTEN", "0.0.0.0:1")]).unwrap();
        assert_eq!(c.listen.port(), 9);
        let c = build(Flags::default(), &[("FREELLMAPI_LISTEN", "[::]:3001")]).unwrap();
        assert!(c.listen.is_ipv6());
    }

    #[test]
    fn bad_values_are_explained() {
        let e = build(
            Flags {
                listen: Some("localhost".into()),
                ..Flags::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.0.contains("invalid listen address"), "{e}");
        let e = build(
            Flags::default(),
            &[("FREELLMAPI_UPSTREAM_GROK", "http://x")],
        )
        .unwrap_err();
        assert!(e.0.contains("unknown platform \"grok\""), "{e}");
        let e = build(Flags::default(), &[("FREELLMAPI_UPSTREAM_GROQ", "ftp://x")]).unwrap_err();
        assert!(e.0.contains("not an http"), "{e}");
        let e = build(
            Flags {
                log_level: Some("chatty".into()),
                ..Flags::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.0.contains("unknown log level"), "{e}");
        let e = build(
            Flags {
                trust_proxy: Some("1.2.3.4/40".into()),
                ..Flags::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(e.0.contains("prefix length"), "{e}");
        let e = build(
            Flags::default(),
            &[("FREELLMAPI_FIRST_BYTE_TIMEOUT_SECS", "0")],
        )
        .unwrap_err();
        assert!(e.0.contains("whole seconds from 1"), "{e}");
        for workers in ["0", "65", "two"] {
            let e = build(Flags::default(), &[("FREELLMAPI_WORKERS", workers)]).unwrap_err();
            assert!(e.0.contains("FREELLMAPI_WORKERS"), "{e}");
        }
        let c = build(Flags::default(), &[("FREELLMAPI_WORKERS", "3")]).unwrap();
        assert_eq!(c.workers, 3);
        assert_eq!(
            build(Flags::default(), &[]).unwrap().workers,
            default_workers()
        );
    }

    #[test]
    fn overrides_are_normalised() {
        let c = build(
            Flags::default(),
            &[(
                "FREELLMAPI_UPSTREAM_GROQ",
                "http://127.0.0.1:9001/openai/v1/",
            )],
        )
        .unwrap();
        assert_eq!(
            c.upstream_overrides["groq"],
            "http://127.0.0.1:9001/openai/v1"
        );
    }

    #[test]
    fn cidr_matching() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.200.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn proxy_redaction_hides_credentials_only() {
        assert_eq!(redact_proxy_url("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(
            redact_proxy_url("socks5h://user:secret@10.0.0.2:1080"),
            "socks5h://***@10.0.0.2:1080"
        );
        assert!(!redact_proxy_url("http://a:b@c:1/").contains('b'));
    }

    #[test]
    fn a_proxy_on_a_metadata_address_is_refused() {
        for url in ["http://169.254.169.254:80", "socks5://u:p@[fe80::1]:1080"] {
            let why = check_proxy_url(url).unwrap_err();
            assert!(why.contains("refused"), "{url}: {why}");
        }
        assert!(check_proxy_url("http://10.0.0.1:3128").is_ok());
    }
}
