//! Dashboard authentication: password hashing (PBKDF2-HMAC-SHA256, ring), session tokens and
//! cookies, the one-time setup code, how guesses are counted and limited ([`Attempts`]), and
//! the same-origin check on mutating routes.
//!
//! Owns the guess counters and the setup code (memory only). Sessions and the password hash are
//! stored by `store::admin`; this module never logs a password, a token or a code.

use std::net::IpAddr;
use std::num::NonZeroU32;

use parking_lot::Mutex;
use ring::{digest, pbkdf2};

use super::AdminError;
use crate::crypto::{ct_eq, fill_random, to_hex};
use crate::http::Request;
use crate::throttle::{Budget, Failures};

pub const COOKIE: &str = "fla_session";
pub const SESSION_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
/// OWASP's floor for PBKDF2-HMAC-SHA256 (2023). A Raspberry Pi 4 core takes most of a second
/// for it, which a login can afford once; guessing cannot (at most two hashes run at once, see
/// [`Attempts`]). The count is stored with each hash, so older hashes (210 000 before
/// December 2026) still verify, and are replaced at their next successful login.
pub const ITERATIONS: u32 = 600_000;
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 1024;

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

/// Whether a hash that verified was made with fewer iterations than today's (or is not ours).
pub fn needs_rehash(encoded: &str) -> bool {
    encoded
        .split('$')
        .nth(1)
        .and_then(|n| n.parse::<u32>().ok())
        .is_none_or(|n| n < ITERATIONS)
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

/// Failed guesses a peer (an IPv4 address or an IPv6 /64) may make in a window.
const PEER_FAILURES: u32 = 5;
const PEER_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Failed guesses the whole process allows at once, and how fast that budget comes back: many
/// addresses each under their own limit still add up to at most this (about 120 an hour).
const GLOBAL_FAILURES: u32 = 20;
const GLOBAL_REFILL_MS: u64 = 30 * 1000;
/// Password hashes computed at once in the whole process: a flood of guesses queues here
/// instead of taking every core (each hash is most of a second on a Raspberry Pi).
const HASHES_AT_ONCE: usize = 2;

/// Every password or setup-code guess (login, setup, and the re-entry a reveal, an export or
/// a backup asks for) goes through here: it is counted before it is checked, so guesses sent
/// together cannot all pass a lockout that none of them has tripped yet.
pub struct Attempts {
    peers: Failures,
    everyone: Budget,
    hashing: may::sync::Semphore,
}

impl Default for Attempts {
    fn default() -> Self {
        Attempts {
            peers: Failures::new(PEER_FAILURES, PEER_WINDOW_MS),
            everyone: Budget::new(GLOBAL_FAILURES, GLOBAL_REFILL_MS),
            hashing: may::sync::Semphore::new(HASHES_AT_ONCE),
        }
    }
}

impl Attempts {
    /// Counts a guess from `ip` as failed until it [`Attempt::succeeded`]; refused (429) when
    /// the address, or everyone, has no guesses left.
    pub fn begin(&self, ip: IpAddr, now_ms: u64) -> Result<Attempt<'_>, AdminError> {
        self.peers
            .take(ip, now_ms)
            .map_err(|retry_after_s| AdminError::TooManyAttempts { retry_after_s })?;
        if let Err(retry_after_s) = self.everyone.take(now_ms) {
            // Not this address's guess: it was never checked.
            self.peers.give_back(ip);
            log::warn!("dashboard sign-in: the global failure budget is spent; guesses wait");
            return Err(AdminError::EveryoneWaits { retry_after_s });
        }
        Ok(Attempt { owner: self, ip })
    }
}

/// A guess being checked; dropped without [`Attempt::succeeded`], it stays a failure.
pub struct Attempt<'a> {
    owner: &'a Attempts,
    ip: IpAddr,
}

impl Attempt<'_> {
    /// Runs `f` (a password hash) on its own thread, at most [`HASHES_AT_ONCE`] in the process.
    pub fn hash<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AdminError> {
        // may's semaphore parks a coroutine (and blocks a thread) while both slots are busy.
        self.owner.hashing.wait();
        let out = super::off_worker(f);
        self.owner.hashing.post();
        out
    }

    /// The guess was right: the address starts over and the global budget gets it back.
    pub fn succeeded(self) {
        self.owner.peers.forgive(self.ip);
        self.owner.everyone.refund();
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
        assert!(a.starts_with("pbkdf2-sha256$600000$"));
        assert!(!needs_rehash(&a));
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
