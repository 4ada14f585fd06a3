//! The names the dashboard answers to, against DNS rebinding: a page on `attacker.example`
//! whose name is made to resolve to this machine could otherwise call `/api` as a same-origin
//! page (and guess passwords, or lock the owner out). Browsers always send the name they
//! resolved as `Host`, so the dashboard and its API answer only to this machine's own names:
//! `localhost`, loopback and this machine's interface addresses, its hostname and
//! `hostname.local`, and what `FREELLMAPI_ALLOWED_HOSTS` adds. Other names get a 421.
//!
//! Owns the list and the parsing of `Host`. Interface addresses are read at start and again
//! when an address literal is not among them (at most every 10 s: DHCP may have moved us).
//! Must not apply to the client API, whose callers carry a key a rebinding page cannot have.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::AdminError;

/// The least time between two reads of the interface addresses.
const REREAD_EVERY: Duration = Duration::from_secs(10);
/// At most this many interface addresses are kept.
const MAX_ADDRS: usize = 256;

pub struct AllowedHosts {
    /// Lowercase names without a trailing dot.
    names: Vec<String>,
    /// Address literals named in the configuration.
    configured_addrs: Vec<IpAddr>,
    /// `FREELLMAPI_ALLOWED_HOSTS=*`: no check at all.
    any: bool,
    interfaces: Mutex<Interfaces>,
}

struct Interfaces {
    addrs: Vec<IpAddr>,
    read_at: Option<Instant>,
}

impl AllowedHosts {
    /// This machine's names plus `configured` (names or address literals; `*` allows any).
    pub fn new(configured: &[String]) -> AllowedHosts {
        let mut names = vec!["localhost".to_string()];
        if let Some(host) = hostname() {
            names.push(format!("{host}.local"));
            names.push(host);
        }
        let mut configured_addrs = Vec::new();
        let mut any = false;
        for entry in configured {
            let entry = entry.trim();
            if entry == "*" {
                any = true;
            } else if let Some(ip) = literal(entry) {
                configured_addrs.push(ip);
            } else {
                names.push(normal_name(entry));
            }
        }
        let hosts = AllowedHosts {
            names,
            configured_addrs,
            any,
            interfaces: Mutex::new(Interfaces {
                addrs: Vec::new(),
                read_at: None,
            }),
        };
        hosts.reread_interfaces();
        hosts
    }

    /// Passes a request whose `Host` is one of ours. A request without `Host` (HTTP/1.0
    /// scripts) passes: every browser sends one, and only a browser can be rebound.
    pub fn check(&self, host: Option<&str>) -> Result<(), AdminError> {
        let Some(host) = host.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(());
        };
        if self.any || self.allows(host) {
            return Ok(());
        }
        Err(AdminError::MisdirectedHost { host: shown(host) })
    }

    fn allows(&self, host: &str) -> bool {
        let Some(name) = strip_port(host) else {
            return false;
        };
        if let Some(ip) = literal(name) {
            return ip.is_loopback()
                || ip.is_unspecified()
                || self.configured_addrs.contains(&ip)
                || self.is_interface(ip);
        }
        let name = normal_name(name);
        self.names.contains(&name)
    }

    fn is_interface(&self, ip: IpAddr) -> bool {
        let stale = {
            let ifs = self.interfaces.lock();
            if ifs.addrs.contains(&ip) {
                return true;
            }
            ifs.read_at.is_none_or(|t| t.elapsed() >= REREAD_EVERY)
        };
        stale && self.reread_interfaces().contains(&ip)
    }

    /// Reads the interface addresses again (outside the lock) and keeps them.
    fn reread_interfaces(&self) -> Vec<IpAddr> {
        let addrs = interface_addrs();
        let mut ifs = self.interfaces.lock();
        ifs.addrs = addrs.clone();
        ifs.read_at = Some(Instant::now());
        addrs
    }
}

/// `name`, `name:port`, `1.2.3.4:port`, `[v6]` or `[v6]:port` → the name or address part.
fn strip_port(host: &str) -> Option<&str> {
    if let Some(rest) = host.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        return (after.is_empty() || port_ok(after.strip_prefix(':')?)).then_some(inner);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => port_ok(port).then_some(name),
        Some(_) => None,
        None => Some(host),
    }
}

fn port_ok(port: &str) -> bool {
    !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
}

/// An address literal (`[...]` brackets already removed), canonical for v4-mapped ones.
fn literal(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(crate::config::canonical_ip)
}

fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The `Host` as the error repeats it: printable ASCII only, and not too long.
fn shown(host: &str) -> String {
    host.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(100)
        .collect()
}

/// This machine's hostname, lowercase, if it has a usable one.
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..len]).ok()?;
    let name = normal_name(name);
    (!name.is_empty() && name != "localhost").then_some(name)
}

/// The addresses of this machine's interfaces (empty if they cannot be read).
fn interface_addrs() -> Vec<IpAddr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() && out.len() < MAX_ADDRS {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let node = unsafe { &*cursor };
        if !node.ifa_addr.is_null() {
            // SAFETY: a non-null ifa_addr points at a sockaddr whose family says its type.
            let family = i32::from(unsafe { (*node.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: AF_INET: the sockaddr is a sockaddr_in.
                let sin = unsafe { &*node.ifa_addr.cast::<libc::sockaddr_in>() };
                out.push(IpAddr::from(
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                ));
            } else if family == libc::AF_INET6 {
                // SAFETY: AF_INET6: the sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*node.ifa_addr.cast::<libc::sockaddr_in6>() };
                out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
            }
        }
        cursor = node.ifa_next;
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(configured: &[&str]) -> AllowedHosts {
        AllowedHosts::new(&configured.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn own_names_and_addresses_pass_others_get_421() {
        let h = hosts(&["pi.lan", "192.0.2.50"]);
        for ok in [
            "localhost",
            "LOCALHOST:3001",
            "localhost.",
            "127.0.0.1:3001",
            "127.9.9.9",
            "[::1]:3001",
            "[::1]",
            "pi.lan",
            "Pi.Lan:80",
            "192.0.2.50:3001",
        ] {
            assert!(h.check(Some(ok)).is_ok(), "{ok}");
        }
        assert!(h.check(None).is_ok(), "no Host: not a browser");
        for refused in [
            "attacker.example",
            "attacker.example:3001",
            "localhost.attacker.example",
            "pi.lan.attacker.example",
            "198.51.100.9",
            "[2001:db8::1]:80",
            "localhost:99999999",
            "localhost:",
            "::1",
            "[::1]x",
        ] {
            match h.check(Some(refused)) {
                Err(AdminError::MisdirectedHost { host }) => assert_eq!(host, refused),
                other => panic!("{refused}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_machines_own_name_and_interfaces_pass() {
        let h = hosts(&[]);
        if let Some(name) = hostname() {
            assert!(h.check(Some(&name)).is_ok());
            assert!(h.check(Some(&format!("{name}.local:3001"))).is_ok());
        }
        for ip in interface_addrs() {
            let host = match ip {
                IpAddr::V4(v4) => format!("{v4}:3001"),
                IpAddr::V6(v6) => format!("[{v6}]:3001"),
            };
            assert!(h.check(Some(&host)).is_ok(), "{host}");
        }
    }

    #[test]
    fn a_star_allows_any_name() {
        assert!(hosts(&["*"]).check(Some("anything.example")).is_ok());
    }
}
