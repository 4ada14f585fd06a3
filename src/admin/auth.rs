//! Dashboard authentication: password hashing (PBKDF2-HMAC-SHA256, ring), session tokens and
//! cookies, the one-time setup code, the per-peer lockout, the client address behind a trusted
//! proxy, and the same-origin check on mutating routes.
//!
//! Owns the lockout table and the setup code (memory only). Sessions and the password hash are
//! stored by `store::admin`; this module never logs a password, a token or a code.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;

use parking_lot::Mutex;
use ring::{digest, pbkdf2};

use super::AdminError;
use crate::config::Cidr;
use crate::crypto::{ct_eq, fill_random, to_hex};
use crate::http::Request;

pub const COOKIE: &str = "fla_session";
pub const SESSION_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// OWASP's 2023 floor for PBKDF2-HMAC-SHA256 is 600 000; a Pi 4 core does that in about a
/// second, which is too slow for a login. This count takes ~0.3 s there and is stored with the
/// hash, so it can be raised without invalidating old hashes.
const ITERATIONS: u32 = 210_000;
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 1024;

const LOCKOUT_FAILURES: u32 = 5;
const LOCKOUT_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Peers tracked at once; the table is cleared of stale rows, then of the oldest, beyond this.
const LOCKOUT_MAX_PEERS: usize = 4096;

/// `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(ITERATIONS).expect("non-zero"),
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${ITERATIONS}${}${}",
        to_hex(&salt),
        to_hex(&out)
    )
}

/// Checks `password` against an encoded hash in constant time; a malformed hash never matches.
pub fn verify_password(password: &str, encoded: &str) -> bool {
    let mut parts = encoded.split('$');
    let (Some("pbkdf2-sha256"), Some(iter), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(iter), Some(salt), Some(hash)) = (
        iter.parse().ok().and_then(NonZeroU32::new),
        crate::crypto::from_hex(salt),
        crate::crypto::from_hex(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iter,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// The rules a new password must meet; the message says which one failed.
pub fn check_new_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("must be at least {MIN_PASSWORD} characters"));
    }
    if password.len() > MAX_PASSWORD {
        return Err(format!("must be at most {MAX_PASSWORD} bytes"));
    }
    if password.trim() != password {
        return Err("must not start or end with whitespace".into());
    }
    Ok(())
}

/// A fresh session token (cookie value) and the hash under which it is stored.
pub fn new_session() -> (String, [u8; 32]) {
    let mut raw = [0u8; 32];
    fill_random(&mut raw);
    let token = to_hex(&raw);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The session token from the `Cookie` header, if it has the right shape.
pub fn session_cookie(req: &Request<'_>) -> Option<String> {
    let header = req.header("cookie")?;
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Set-Cookie` for a new session. `Secure` when the request came over TLS (per a trusted
/// proxy's `X-Forwarded-Proto`): a plain-HTTP LAN setup must still be able to log in.
pub fn set_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether the direct peer is a proxy whose forwarding headers we believe.
fn trusted(req: &Request<'_>, trust: &[Cidr]) -> bool {
    trust.iter().any(|c| c.contains(req.peer.ip()))
}

/// The client's address: the peer, or behind a trusted proxy the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy (the left ones are client-made).
pub fn client_ip(req: &Request<'_>, trust: &[Cidr]) -> IpAddr {
    let peer = req.peer.ip();
    if !trusted(req, trust) {
        return peer;
    }
    req.header("x-forwarded-for")
        .and_then(|xff| {
            xff.rsplit(',')
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .find(|ip| !trust.iter().any(|c| c.contains(*ip)))
        })
        .unwrap_or(peer)
}

/// Whether the client reached us over TLS (only a trusted proxy can say so).
pub fn is_tls(req: &Request<'_>, trust: &[Cidr]) -> bool {
    trusted(req, trust)
        && req
            .header("x-forwarded-proto")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// CSRF defence for mutating routes, beside `SameSite=Strict`: a browser request must come
/// from our own origin. Browsers send `Sec-Fetch-Site` (and `Origin` on every non-GET fetch);
/// a script with neither header (curl with the cookie) is not a browser being tricked.
pub fn same_origin(req: &Request<'_>) -> Result<(), AdminError> {
    if let Some(site) = req.header("sec-fetch-site") {
        return match site.trim() {
            "same-origin" | "none" => Ok(()),
            _ => Err(AdminError::CrossOrigin),
        };
    }
    let Some(origin) = req.header("origin") else {
        return Ok(());
    };
    let host = req.header("host").unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match origin_host {
        Some(h) if !host.is_empty() && h.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(AdminError::CrossOrigin),
    }
}

/// Failed password or code attempts per client address.
#[derive(Default)]
pub struct Lockout {
    peers: Mutex<HashMap<IpAddr, (u32, u64)>>,
}

impl Lockout {
    /// `Err(seconds until the window ends)` while this address is locked out.
    pub fn check(&self, ip: IpAddr, now_ms: u64) -> Result<(), u64> {
        let peers = self.peers.lock();
        match peers.get(&ip) {
            Some(&(n, since)) if n >= LOCKOUT_FAILURES && now_ms < since + LOCKOUT_WINDOW_MS => {
                Err((since + LOCKOUT_WINDOW_MS - now_ms).div_ceil(1000))
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&self, ip: IpAddr, now_ms: u64) {
        let mut peers = self.peers.lock();
        if peers.len() >= LOCKOUT_MAX_PEERS && !peers.contains_key(&ip) {
            peers.retain(|_, (_, since)| now_ms < *since + LOCKOUT_WINDOW_MS);
            if peers.len() >= LOCKOUT_MAX_PEERS {
                let oldest = peers.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k);
                if let Some(k) = oldest {
                    peers.remove(&k);
                }
            }
        }
        let entry = peers.entry(ip).or_insert((0, now_ms));
        if now_ms >= entry.1 + LOCKOUT_WINDOW_MS {
            *entry = (0, now_ms);
        }
        entry.0 += 1;
    }

    pub fn succeed(&self, ip: IpAddr) {
        self.peers.lock().remove(&ip);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.lock().len()
    }
}

/// The one-time code that lets the first visitor set the password. Held in memory only and
/// printed to the log at start; it stops working once a password exists.
#[derive(Default)]
pub struct SetupCode(Mutex<Option<String>>);

/// Letters and digits that cannot be confused when read off a terminal.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

impl SetupCode {
    /// Creates a code (`XXXX-XXXX-XXXX`) and returns it for the log.
    pub fn issue(&self) -> String {
        let mut raw = [0u8; 12];
        fill_random(&mut raw);
        let chars: Vec<char> = raw
            .iter()
            .map(|b| CODE_ALPHABET[*b as usize % CODE_ALPHABET.len()] as char)
            .collect();
        let code = chars
            .chunks(4)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("-");
        *self.0.lock() = Some(normalize(&code));
        code
    }

    /// Whether `presented` is the current code (case and dashes ignored), in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let code = self.0.lock();
        code.as_deref()
            .is_some_and(|c| ct_eq(c.as_bytes(), normalize(presented).as_bytes()))
    }

    pub fn clear(&self) {
        *self.0.lock() = None;
    }
}

fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_hashes_are_salted() {
        let a = hash_password("correct horse");
        let b = hash_password("correct horse");
        assert_ne!(a, b, "a fresh salt per hash");
        assert!(a.starts_with("pbkdf2-sha256$210000$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct horsE", &a));
        assert!(!verify_password("correct horse", "pbkdf2-sha256$0$00$00"));
        assert!(!verify_password("x", "garbage"));
        assert!(!verify_password("x", "pbkdf2-sha256$1$zz$00"));
        assert!(!verify_password("x", "pbkdf2-sha256$1$00$00$extra"));
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password(" padded password").is_err());
        assert!(check_new_password(&"x".repeat(1025)).is_err());
        assert!(check_new_password("long enough").is_ok());
        assert!(check_new_password("ünïcödé!").is_ok(), "counts characters");
    }

    #[test]
    fn lockout_after_five_failures_for_fifteen_minutes() {
        let l = Lockout::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for i in 0..4 {
            l.fail(ip, 1_000 + i);
            assert!(l.check(ip, 1_000 + i).is_ok());
        }
        l.fail(ip, 2_000);
        assert_eq!(l.check(ip, 2_000), Err(899));
        assert!(l.check(other, 2_000).is_ok(), "per peer");
        assert!(
            l.check(ip, 1_000 + LOCKOUT_WINDOW_MS).is_ok(),
            "window ends"
        );
        l.fail(ip, 1_000 + LOCKOUT_WINDOW_MS);
        assert!(
            l.check(ip, 1_000 + LOCKOUT_WINDOW_MS).is_ok(),
            "count restarts"
        );
        l.succeed(ip);
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn lockout_table_is_bounded() {
        let l = Lockout::default();
        for i in 0..(LOCKOUT_MAX_PEERS as u32 + 50) {
            l.fail(IpAddr::from(i.to_be_bytes()), u64::from(i));
        }
        assert!(l.len() <= LOCKOUT_MAX_PEERS);
    }

    #[test]
    fn setup_code_is_forgiving_about_case_and_dashes_only() {
        let s = SetupCode::default();
        assert!(!s.matches(""));
        let code = s.issue();
        assert_eq!(code.len(), 14);
        assert!(s.matches(&code));
        assert!(s.matches(&code.to_lowercase().replace('-', " ")));
        assert!(!s.matches(&code[..9]));
        s.clear();
        assert!(!s.matches(&code));
    }

    #[test]
    fn session_tokens_hash_deterministically() {
        let (t, h) = new_session();
        assert_eq!(t.len(), 64);
        assert_eq!(token_hash(&t), h);
        assert!(set_cookie(&t, true).ends_with("; Secure"));
        assert!(set_cookie(&t, false).contains("HttpOnly; SameSite=Strict"));
    }
}
