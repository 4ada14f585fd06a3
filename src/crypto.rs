//! Secrets at rest and in comparison: the master key, sealing provider keys with AES-256-GCM,
//! generating the unified client key, constant-time compares and key masking.
//!
//! Owns the master key. It is loaded from `FREELLMAPI_ENCRYPTION_KEY` or `DATA_DIR/master.key`
//! (mode 0600) and never written into LMDB. A sealed value is `1 || nonce(12) || ciphertext+tag`
//! with the platform id as associated data, so a row moved to another platform fails to open.
//! Nothing here logs; callers decide what an error means.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

const SEAL_VERSION: u8 = 1;
const MASTER_KEY_FILE: &str = "master.key";

/// A plaintext secret (a provider key or the unified key). Wiped on drop; never printed.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as text; provider keys are stored from UTF-8 input, so this only fails on a
    /// corrupted row, which callers treat like a failed open.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Zeroes `buf` (before it is freed): for buffers that held a secret in passing.
pub fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // Volatile so the wipe is not optimised away as a dead store.
        // SAFETY: `b` is a valid, aligned, exclusive reference to one byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Why the master key could not be loaded. Each message says how to fix it.
#[derive(Debug)]
pub enum MasterKeyError {
    BadHex { source: &'static str, len: usize },
    Io { path: String, why: String },
}

impl fmt::Display for MasterKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeyError::BadHex { source, len } => write!(
                f,
                "{source}: expected 64 hex characters (32 bytes), got {len} characters; \
                 generate one with: head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'"
            ),
            MasterKeyError::Io { path, why } => {
                write!(f, "cannot use master key file {path}: {why}")
            }
        }
    }
}

/// The AES-256-GCM key that seals provider keys and the unified key.
pub struct MasterKey {
    key: LessSafeKey,
}

/// Opening a sealed value failed: wrong master key, tampered bytes or a different platform.
#[derive(Debug, PartialEq, Eq)]
pub struct OpenError;

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> MasterKey {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("AES-256 keys are 32 bytes");
        MasterKey {
            key: LessSafeKey::new(unbound),
        }
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str, source: &'static str) -> Result<MasterKey, MasterKeyError> {
        let text = text.trim();
        let bad = || MasterKeyError::BadHex {
            source,
            len: text.chars().count(),
        };
        if text.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let hi = hex_val(pair[0]).ok_or_else(bad)?;
            let lo = hex_val(pair[1]).ok_or_else(bad)?;
            bytes[i] = hi << 4 | lo;
        }
        let key = MasterKey::from_bytes(&bytes);
        bytes.fill(0);
        Ok(key)
    }

    /// The key from `env_value` when set, else from `DATA_DIR/master.key`, created on first use.
    pub fn load_or_create(
        env_value: Option<&str>,
        data_dir: &Path,
    ) -> Result<MasterKey, MasterKeyError> {
        if let Some(v) = env_value {
            return MasterKey::from_hex(v, "FREELLMAPI_ENCRYPTION_KEY");
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        let io_err = |why: String| MasterKeyError::Io {
            path: path.display().to_string(),
            why,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let meta = fs::metadata(&path).map_err(|e| io_err(e.to_string()))?;
                if meta.permissions().mode() & 0o077 != 0 {
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(|e| {
                        io_err(format!(
                            "it is readable by others and chmod 600 failed: {e}"
                        ))
                    })?;
                }
                MasterKey::from_hex(&text, "master.key")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let hex = random_hex(32);
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| io_err(e.to_string()))?;
                file.write_all(format!("{hex}\n").as_bytes())
                    .and_then(|_| file.sync_all())
                    .map_err(|e| io_err(e.to_string()))?;
                MasterKey::from_hex(&hex, "master.key")
            }
            Err(e) => Err(io_err(e.to_string())),
        }
    }

    /// Seals `plaintext` bound to `aad` (the platform id for provider keys).
    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce);
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(1 + NONCE_LEN);
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut body,
            )
            .expect("sealing fails only for inputs larger than GCM's 64 GiB limit");
        out.append(&mut body);
        out
    }

    /// Opens a value sealed by [`MasterKey::seal`] with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<Secret, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return Err(OpenError);
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().map_err(|_| OpenError)?;
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut body,
            )
            .map_err(|_| OpenError)?
            .len();
        body.truncate(len);
        Ok(Secret(body))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Fills `buf` from the OS random source.
pub fn fill_random(buf: &mut [u8]) {
    SystemRandom::new()
        .fill(buf)
        .expect("the OS random source is available on Linux");
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes);
    to_hex(&bytes)
}

/// The bytes of a hex string (either case); `None` for an odd length or a non-hex digit.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| Some(hex_val(pair[0])? << 4 | hex_val(pair[1])?))
        .collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Appends the base64 (standard alphabet, padded) of `bytes` to `out`.
pub fn base64_into(out: &mut Vec<u8>, bytes: &[u8]) {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.reserve(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let word = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= n {
                out.push(B64[((word >> (18 - 6 * k)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
}

/// The bytes of standard, padded base64 (`base64_into`'s output); `None` for anything else.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (i, quad) in text.chunks(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != quads) {
            return None;
        }
        let mut word = 0u32;
        for &c in &quad[..4 - pad] {
            word = (word << 6) | value(c)?;
        }
        word <<= 6 * pad as u32;
        let bytes = word.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

/// A new unified client key: `freellmapi-` + 48 lowercase hex (24 random bytes).
pub fn new_unified_key() -> String {
    format!("freellmapi-{}", random_hex(24))
}

/// SHA-256 of `bytes`: how a named client key is stored and found (the key itself is random
/// and long, so a plain digest is enough; it is never shown again).
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    // Fold over the longer input so a length mismatch costs the same as a content mismatch.
    let len = a.len().max(b.len());
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// The masked form shown in lists: `gsk_...cdef`, or `****` + last 4 for short keys.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    if chars.len() <= 8 {
        format!("****{tail}")
    } else {
        let head: String = chars[..4].iter().collect();
        format!("{head}...{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_hex(&"ab".repeat(32), "test").unwrap()
    }

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        for (plain, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            base64_into(&mut out, plain.as_bytes());
            assert_eq!(out, want.as_bytes(), "{plain}");
        }
    }

    #[test]
    fn base64_decodes_what_it_encodes_and_refuses_the_rest() {
        for text in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let mut enc = Vec::new();
            base64_into(&mut enc, text.as_bytes());
            assert_eq!(
                base64_decode(&enc).as_deref(),
                Some(text.as_bytes()),
                "{text}"
            );
        }
        // Tries: a bad length, a foreign character, padding mid-way, three pads.
        for bad in ["Zm9", "Zm9v!A==", "Zg==Zm9v", "Z==="] {
            assert_eq!(base64_decode(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn seal_round_trips_and_binds_platform() {
        let k = key();
        let sealed = k.seal(b"gsk_secret", "groq");
        assert_eq!(sealed[0], 1);
        assert_eq!(sealed.len(), 1 + 12 + 10 + 16);
        assert_eq!(k.open(&sealed, "groq").unwrap().as_bytes(), b"gsk_secret");
        assert_eq!(k.open(&sealed, "cerebras").unwrap_err(), OpenError);
    }

    #[test]
    fn tampered_tag_or_wrong_key_fails() {
        let k = key();
        let mut sealed = k.seal(b"secret", "groq");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(k.open(&sealed, "groq").is_err());
        let sealed = k.seal(b"secret", "groq");
        let other = MasterKey::from_hex(&"cd".repeat(32), "test").unwrap();
        assert!(other.open(&sealed, "groq").is_err());
        assert!(k.open(&sealed[..10], "groq").is_err());
    }

    #[test]
    fn nonces_differ_between_seals() {
        let k = key();
        assert_ne!(k.seal(b"x", "a")[1..13], k.seal(b"x", "a")[1..13]);
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_hex() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(from_hex("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(from_hex(""), Some(vec![]));
        for bad in ["abc", "zz", "+f", "0x", " 1"] {
            assert_eq!(from_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_validation_reports_length() {
        let err = MasterKey::from_hex("abc", "FREELLMAPI_ENCRYPTION_KEY")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("got 3 characters"), "{err}");
        assert!(MasterKey::from_hex(&"zz".repeat(32), "x").is_err());
        assert!(MasterKey::from_hex(&"AB".repeat(32), "x").is_ok());
    }

    #[test]
    fn master_key_file_is_created_0600_and_reused() {
        let dir = std::env::temp_dir().join(format!("fla-mk-{}", random_hex(6)));
        fs::create_dir_all(&dir).unwrap();
        let a = MasterKey::load_or_create(None, &dir).unwrap();
        let mode = fs::metadata(dir.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = MasterKey::load_or_create(None, &dir).unwrap();
        let sealed = a.seal(b"k", "p");
        assert_eq!(b.open(&sealed, "p").unwrap().as_bytes(), b"k");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unified_key_shape() {
        let k = new_unified_key();
        assert_eq!(k.len(), 11 + 48);
        assert!(k.starts_with("freellmapi-"));
        assert!(
            k[11..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(!ct_eq(b"", b"a"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn masking() {
        assert_eq!(mask("gsk_test1234567890abcdef"), "gsk_...cdef");
        assert_eq!(mask("abcd"), "****abcd");
        assert_eq!(mask("x"), "****x");
    }
}
