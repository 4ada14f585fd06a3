//! Where the proxy may connect. Loopback and private LAN addresses are allowed (a local Ollama
//! is the point of custom platforms); link-local and cloud-metadata addresses are not, in any
//! spelling: IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms are unwrapped first. Base URLs
//! are checked when saved and every resolved address again at connect time, because DNS can
//! change between the two.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Host names that resolve to instance metadata services.
const METADATA_HOSTS: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// The IPv4 address an IPv6 address embeds, for the forms that reach IPv4 hosts.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // NAT64 well-known prefix 64:ff9b::/96.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    // Deprecated IPv4-compatible ::a.b.c.d (but not :: or ::1).
    if s[..6] == [0; 6] && u32::from(tail) > 1 {
        return Some(tail);
    }
    // 6to4 2002:AABB:CCDD::/48 carries A.B.C.D.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Why connecting to `ip` is refused, if it is.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => embedded_v4(v6),
    };
    if let Some(v4) = v4 {
        let o = v4.octets();
        return match o {
            [169, 254, ..] => Some("link-local / cloud metadata address"),
            [100, 100, 100, 200] => Some("cloud metadata address (Alibaba)"),
            [168, 63, 129, 16] => Some("cloud platform address (Azure)"),
            [0, ..] => Some("unspecified address"),
            [224..=239, ..] | [255, 255, 255, 255] => Some("multicast or broadcast address"),
            _ => None,
        };
    }
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    if s[0] & 0xffc0 == 0xfe80 {
        return Some("IPv6 link-local address");
    }
    if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("cloud metadata address (AWS IPv6)");
    }
    if v6.is_unspecified() {
        return Some("unspecified address");
    }
    if v6.is_multicast() {
        return Some("multicast address");
    }
    None
}

/// The C library's `inet_aton` reads `2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376` and
/// `169.254.43518` as IPv4 addresses, so a resolver would too; read them the same way here.
fn legacy_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let num = |p: &str| -> Option<u64> {
        if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16).ok()
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()
        } else {
            p.parse().ok()
        }
    };
    let nums: Vec<u64> = parts.iter().map(|p| num(p)).collect::<Option<_>>()?;
    let (head, last) = nums.split_at(nums.len() - 1);
    if head.iter().any(|n| *n > 255) || last[0] >= 1u64 << (8 * (4 - head.len())) {
        return None;
    }
    let value = head
        .iter()
        .enumerate()
        .fold(last[0], |acc, (i, n)| acc | n << (8 * (3 - i)));
    Some(Ipv4Addr::from(value as u32))
}

/// Why connecting to host name `host` is refused, if it is (IP literals included).
pub fn forbidden_host(host: &str) -> Option<&'static str> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return forbidden_ip(ip);
    }
    if let Some(v4) = legacy_ipv4(bare) {
        return forbidden_ip(IpAddr::V4(v4));
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    METADATA_HOSTS
        .contains(&name.as_str())
        .then_some("cloud metadata host name")
}

/// Checks a base URL a user saves: `http`/`https`, a host, and no forbidden host.
pub fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty()
        || authority.contains('@')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "{url:?} is not a usable base URL (need scheme://host[:port]/path, no credentials)"
        ));
    }
    let host = if authority.starts_with('[') {
        authority
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|| authority.to_string())
    };
    match forbidden_host(&host) {
        Some(why) => Err(format!("{url:?} points at a {why}; that is refused")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_are_refused_in_every_spelling() {
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://169.254.0.1:8080/v1",
            "http://100.100.100.200/v1",
            "http://[fd00:ec2::254]/v1",
            "http://[fe80::1]/v1",
            "http://[::ffff:169.254.169.254]/v1",
            "http://[::ffff:a9fe:a9fe]/v1",
            "http://[64:ff9b::a9fe:a9fe]/v1",
            "http://[::169.254.169.254]/v1",
            "http://[2002:a9fe:a9fe::1]/v1",
            "http://metadata.google.internal/computeMetadata/v1",
            "http://METADATA.GOOGLE.INTERNAL./x",
            "http://0.0.0.0:11434/v1",
            "http://2852039166/v1",
            "http://0xa9fea9fe/v1",
            "http://0251.0376.0251.0376/v1",
            "http://169.254.43518/v1",
        ] {
            assert!(check_base_url(url).is_err(), "{url} must be refused");
        }
    }

    #[test]
    fn local_and_lan_servers_are_allowed() {
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://localhost:1234/v1",
            "http://192.168.1.20:8000/v1",
            "http://10.0.0.5/v1",
            "http://[::1]:8080/v1",
            "https://api.example.com/v1",
        ] {
            assert!(check_base_url(url).is_ok(), "{url} must be allowed");
        }
    }

    #[test]
    fn malformed_urls_are_explained() {
        assert!(
            check_base_url("ftp://x/v1")
                .unwrap_err()
                .contains("not an http")
        );
        assert!(
            check_base_url("http:///v1")
                .unwrap_err()
                .contains("not a usable base URL")
        );
        assert!(
            check_base_url("http://user:pw@host/v1")
                .unwrap_err()
                .contains("no credentials")
        );
        assert!(check_base_url("http://host /v1").is_err());
    }

    #[test]
    fn legacy_ipv4_forms_read_like_inet_aton() {
        assert_eq!(
            legacy_ipv4("2852039166"),
            Some(Ipv4Addr::new(169, 254, 169, 254))
        );
        assert_eq!(legacy_ipv4("0x7f000001"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(legacy_ipv4("127.1"), Some(Ipv4Addr::LOCALHOST));
        assert_eq!(legacy_ipv4("api.groq.com"), None);
        assert_eq!(legacy_ipv4("1.2.3.4.5"), None);
        assert_eq!(legacy_ipv4("256.1.1.1"), None);
    }

    #[test]
    fn connect_time_addresses() {
        assert!(forbidden_ip("169.254.169.254".parse().unwrap()).is_some());
        assert!(forbidden_ip("::ffff:169.254.1.1".parse().unwrap()).is_some());
        assert!(forbidden_ip("127.0.0.1".parse().unwrap()).is_none());
        assert!(forbidden_ip("::1".parse().unwrap()).is_none());
        assert!(forbidden_ip("2606:4700::1111".parse().unwrap()).is_none());
    }
}
