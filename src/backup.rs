//! Backups: one file holding a consistent copy of the store and the master key, sealed with a
//! passphrase, and its restore into an empty data dir.
//!
//! The file: `FLLMBAK2`, the key derivation (one byte: 1 is PBKDF2-HMAC-SHA256), its iteration
//! count (u32, big-endian), a 16-byte salt and an 8-byte nonce prefix (the header), then the
//! sealed stream in segments of up to 1 MiB, each
//! `u32 length ‖ AES-256-GCM(segment)`. Segment `i`'s nonce is the prefix and `i`, with the top
//! bit set on the last one; every segment authenticates the header. So a wrong passphrase, a
//! flipped bit, reordered or dropped segments and a truncated file are all refused, and memory
//! stays bounded however large the store (the STREAM construction). The stream inside names its
//! parts: `master.key`, then `data.mdb`. Files of the first version (`FLLMBAK1`: the same
//! without the derivation byte, written with 310 000 iterations until December 2026) still
//! restore.
//!
//! Owns the format. A restore writes into a scratch dir beside the target and moves it into
//! place only once the copy opens with its key: a failed restore leaves nothing behind.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::crypto::{MasterKey, fill_random};
use crate::store::Store;

const MAGIC_V1: &[u8; 8] = b"FLLMBAK1";
const MAGIC_V2: &[u8; 8] = b"FLLMBAK2";
/// The one key derivation of version 2 so far; a stronger one gets the next number.
const KDF_PBKDF2_SHA256: u8 = 1;
/// Magic, derivation, iterations, salt, nonce prefix.
const HEADER_LEN: usize = 8 + 1 + 4 + 16 + 8;
const SEGMENT: usize = 1024 * 1024;
const TAG: usize = 16;
const LAST: u32 = 1 << 31;
/// PBKDF2-HMAC-SHA256 rounds for new backups: OWASP's floor (2023), about a second on a
/// Raspberry Pi 4. The file holds the master key, so offline guessing must be expensive.
const ITERATIONS: u32 = 600_000;
/// The most a file may ask for (a forged count must not stall a restore for hours).
const MAX_ITERATIONS: u32 = 10_000_000;
/// The shortest passphrase a new backup takes (old backups restore whatever theirs was).
pub const MIN_PASSPHRASE: usize = 12;
const MASTER_PART: &str = "master.key";
const STORE_PART: &str = "data.mdb";

#[derive(Debug)]
pub enum BackupError {
    /// The passphrase is wrong or the file was changed, cut short or is not a backup.
    Unreadable(&'static str),
    /// The target data dir already holds something.
    NotEmpty(PathBuf),
    Io(String),
    Store(String),
}

impl std::fmt::Display for BackupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupError::Unreadable(why) => f.write_str(why),
            BackupError::NotEmpty(dir) => write!(
                f,
                "{} is not empty; restore into a new or empty data dir",
                dir.display()
            ),
            BackupError::Io(why) => f.write_str(why),
            BackupError::Store(why) => f.write_str(why),
        }
    }
}

fn io(what: &str) -> impl Fn(io::Error) -> BackupError + '_ {
    move |e| BackupError::Io(format!("{what}: {e}"))
}

const WRONG: BackupError =
    BackupError::Unreadable("wrong passphrase, or the file is damaged or not a freellmapi backup");

fn key_from(passphrase: &str, salt: &[u8], iterations: u32) -> LessSafeKey {
    let mut key = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(iterations).unwrap_or(std::num::NonZeroU32::MIN),
        salt,
        passphrase.as_bytes(),
        &mut key,
    );
    let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key"));
    key.fill(0);
    sealing
}

fn nonce(prefix: &[u8; 8], index: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(prefix);
    n[8..].copy_from_slice(&(index | if last { LAST } else { 0 }).to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals a stream into segments as it is written.
struct SealWriter<W: Write> {
    out: W,
    key: LessSafeKey,
    header: [u8; HEADER_LEN],
    prefix: [u8; 8],
    buf: Vec<u8>,
    index: u32,
}

impl<W: Write> SealWriter<W> {
    fn new(mut out: W, passphrase: &str) -> io::Result<SealWriter<W>> {
        let mut salt = [0u8; 16];
        let mut prefix = [0u8; 8];
        fill_random(&mut salt);
        fill_random(&mut prefix);
        let mut header = [0u8; HEADER_LEN];
        header[..8].copy_from_slice(MAGIC_V2);
        header[8] = KDF_PBKDF2_SHA256;
        header[9..13].copy_from_slice(&ITERATIONS.to_be_bytes());
        header[13..29].copy_from_slice(&salt);
        header[29..].copy_from_slice(&prefix);
        out.write_all(&header)?;
        Ok(SealWriter {
            out,
            key: key_from(passphrase, &salt, ITERATIONS),
            header,
            prefix,
            buf: Vec::with_capacity(SEGMENT + TAG),
            index: 0,
        })
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.index, last);
        self.key
            .seal_in_place_append_tag(n, Aad::from(&self.header), &mut self.buf)
            .map_err(|_| io::Error::other("sealing failed"))?;
        self.out.write_all(&(self.buf.len() as u32).to_be_bytes())?;
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.seal(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(SEGMENT - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == SEGMENT {
            self.seal(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens a sealed stream segment by segment.
struct OpenReader<R: Read> {
    input: R,
    key: LessSafeKey,
    /// The header as read (a version 1 header is a byte shorter): every segment's AAD.
    header: Vec<u8>,
    prefix: [u8; 8],
    plain: Vec<u8>,
    pos: usize,
    index: u32,
    ended: bool,
}

impl<R: Read> OpenReader<R> {
    fn new(mut input: R, passphrase: &str) -> Result<OpenReader<R>, BackupError> {
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic).map_err(|_| WRONG)?;
        // Version 1 had no derivation byte: PBKDF2-HMAC-SHA256 was implied.
        let kdf_byte = match &magic {
            m if m == MAGIC_V2 => true,
            m if m == MAGIC_V1 => false,
            m if m.starts_with(b"FLLMBAK") => {
                return Err(BackupError::Unreadable(
                    "this backup was written by a newer freellmapi; restore it with that version",
                ));
            }
            _ => return Err(BackupError::Unreadable("not a freellmapi backup file")),
        };
        let mut header = magic.to_vec();
        header.resize(HEADER_LEN - usize::from(!kdf_byte), 0);
        input.read_exact(&mut header[8..]).map_err(|_| WRONG)?;
        let mut rest = &header[8..];
        if kdf_byte {
            if rest[0] != KDF_PBKDF2_SHA256 {
                return Err(BackupError::Unreadable(
                    "this backup uses a key derivation this freellmapi does not know; restore it with a newer version",
                ));
            }
            rest = &rest[1..];
        }
        let iterations = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
        if iterations == 0 || iterations > MAX_ITERATIONS {
            return Err(WRONG);
        }
        let (salt, prefix_bytes) = (&rest[4..20], &rest[20..28]);
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(prefix_bytes);
        Ok(OpenReader {
            key: key_from(passphrase, salt, iterations),
            input,
            header,
            prefix,
            plain: Vec::new(),
            pos: 0,
            index: 0,
            ended: false,
        })
    }

    /// The next segment; `WRONG` for anything that does not authenticate.
    fn next_segment(&mut self) -> Result<(), BackupError> {
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len).map_err(|_| {
            BackupError::Unreadable("the backup file is cut short (its last part is missing)")
        })?;
        let len = u32::from_be_bytes(len) as usize;
        if !(TAG..=SEGMENT + TAG).contains(&len) {
            return Err(WRONG);
        }
        self.plain.resize(len, 0);
        self.input.read_exact(&mut self.plain).map_err(|_| {
            BackupError::Unreadable("the backup file is cut short (its last part is missing)")
        })?;
        // The last segment says so in its nonce. Only a full segment can be a middle one;
        // a full one is tried as that first (a copy kept for the second try).
        let header = &self.header;
        let full = len == SEGMENT + TAG;
        let copy = full.then(|| self.plain.clone());
        let opened = self
            .key
            .open_in_place(
                nonce(&self.prefix, self.index, !full),
                Aad::from(header),
                &mut self.plain,
            )
            .map(|p| p.len());
        let n = match (opened, copy) {
            (Ok(n), _) => {
                self.ended = !full;
                n
            }
            (Err(_), Some(mut copy)) => {
                let n = self
                    .key
                    .open_in_place(
                        nonce(&self.prefix, self.index, true),
                        Aad::from(header),
                        &mut copy,
                    )
                    .map_err(|_| WRONG)?
                    .len();
                self.ended = true;
                self.plain = copy;
                n
            }
            (Err(_), None) => return Err(WRONG),
        };
        self.plain.truncate(n);
        self.pos = 0;
        self.index += 1;
        Ok(())
    }

    /// After the last part: no plaintext and no bytes may follow.
    fn check_end(&mut self) -> Result<(), BackupError> {
        if self.pos < self.plain.len() {
            return Err(WRONG);
        }
        while !self.ended {
            self.next_segment()?;
            if !self.plain.is_empty() {
                return Err(WRONG);
            }
        }
        let mut extra = [0u8; 1];
        match self.input.read(&mut extra) {
            Ok(0) => Ok(()),
            _ => Err(BackupError::Unreadable(
                "the backup file has bytes after its end; it is damaged",
            )),
        }
    }

    fn read_plain(&mut self, out: &mut [u8]) -> Result<usize, BackupError> {
        while self.pos == self.plain.len() {
            if self.ended {
                return Ok(0);
            }
            self.next_segment()?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }

    fn read_exact_plain(&mut self, mut out: &mut [u8]) -> Result<(), BackupError> {
        while !out.is_empty() {
            let n = self.read_plain(out)?;
            if n == 0 {
                return Err(WRONG);
            }
            out = &mut out[n..];
        }
        Ok(())
    }
}

/// The master key's text as the data dir would hold it (from the file, or the environment).
fn master_text(data_dir: &Path, from_env: Option<&str>) -> Result<String, BackupError> {
    match from_env {
        Some(v) => Ok(format!("{}\n", v.trim())),
        None => fs::read_to_string(data_dir.join(MASTER_PART)).map_err(io("reading master.key")),
    }
}

fn write_part(out: &mut impl Write, name: &str, len: u64) -> io::Result<()> {
    out.write_all(&[name.len() as u8])?;
    out.write_all(name.as_bytes())?;
    out.write_all(&len.to_be_bytes())
}

/// Writes a sealed backup of `store` (a consistent copy, taken while a server may be writing)
/// and the master key to `file`. Returns the bytes written.
pub fn backup(
    store: &Store,
    data_dir: &Path,
    master_from_env: Option<&str>,
    file: &Path,
    passphrase: &str,
) -> Result<u64, BackupError> {
    let master = master_text(data_dir, master_from_env)?;
    let tmp_name = |suffix: &str| {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("backup");
        file.with_file_name(format!(".{name}.{suffix}.{}", std::process::id()))
    };
    let (copy_path, out_path) = (tmp_name("copy"), tmp_name("part"));
    let result = (|| {
        let mut copy = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy_path)
            .map_err(io("creating the copy beside the backup file"))?;
        store
            .copy_to(&mut copy)
            .map_err(|e| BackupError::Store(format!("copying the store: {e}")))?;
        let len = copy.metadata().map_err(io("reading the copy"))?.len();
        copy.rewind().map_err(io("reading the copy"))?;
        let out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&out_path)
            .map_err(io("creating the backup file"))?;
        let mut w = SealWriter::new(BufWriter::new(out), passphrase).map_err(io("writing"))?;
        write_part(&mut w, MASTER_PART, master.len() as u64).map_err(io("writing"))?;
        w.write_all(master.as_bytes()).map_err(io("writing"))?;
        write_part(&mut w, STORE_PART, len).map_err(io("writing"))?;
        let copied =
            io::copy(&mut BufReader::new(copy).take(len), &mut w).map_err(io("writing"))?;
        if copied != len {
            return Err(BackupError::Io(
                "the store copy was cut short while it was read".into(),
            ));
        }
        let out = w.finish().map_err(io("writing"))?;
        let file_out = out
            .into_inner()
            .map_err(|e| BackupError::Io(format!("writing: {e}")))?;
        file_out.sync_all().map_err(io("writing"))?;
        fs::rename(&out_path, file).map_err(io("moving the backup into place"))?;
        fs::metadata(file)
            .map(|m| m.len())
            .map_err(io("reading the backup"))
    })();
    let _ = fs::remove_file(&copy_path);
    if result.is_err() {
        let _ = fs::remove_file(&out_path);
    }
    result
}

fn read_part<R: Read>(r: &mut OpenReader<R>, expected: &str) -> Result<u64, BackupError> {
    let mut n = [0u8; 1];
    r.read_exact_plain(&mut n)?;
    let mut name = vec![0u8; n[0] as usize];
    r.read_exact_plain(&mut name)?;
    if name != expected.as_bytes() {
        return Err(WRONG);
    }
    let mut len = [0u8; 8];
    r.read_exact_plain(&mut len)?;
    Ok(u64::from_be_bytes(len))
}

/// Restores `file` into `data_dir`, which must not exist or be empty. The restored store is
/// opened with the restored key before it is moved into place.
pub fn restore(file: &Path, data_dir: &Path, passphrase: &str) -> Result<(), BackupError> {
    if data_dir.exists()
        && fs::read_dir(data_dir)
            .map_err(io("reading the data dir"))?
            .next()
            .is_some()
    {
        return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
    }
    let input = File::open(file).map_err(io("opening the backup file"))?;
    let mut r = OpenReader::new(BufReader::new(input), passphrase)?;
    let name = data_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("data");
    let scratch = data_dir.with_file_name(format!(".{name}.restore.{}", std::process::id()));
    let result = (|| {
        fs::create_dir_all(&scratch).map_err(io("creating a scratch dir beside the data dir"))?;
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o700))
            .map_err(io("setting the scratch dir's mode"))?;
        let master_len = read_part(&mut r, MASTER_PART)?;
        if master_len > 1024 {
            return Err(WRONG);
        }
        let mut master = vec![0u8; master_len as usize];
        r.read_exact_plain(&mut master)?;
        let text = String::from_utf8(master).map_err(|_| WRONG)?;
        let key = MasterKey::from_hex(&text, "the backup's master key").map_err(|_| WRONG)?;
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(scratch.join(MASTER_PART))
            .map_err(io("writing master.key"))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io("writing master.key"))?;
        let store_len = read_part(&mut r, STORE_PART)?;
        let mut data = BufWriter::new(
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(scratch.join(STORE_PART))
                .map_err(io("writing data.mdb"))?,
        );
        let mut left = store_len;
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            let want = buf.len().min(left as usize);
            r.read_exact_plain(&mut buf[..want])?;
            data.write_all(&buf[..want])
                .map_err(io("writing data.mdb"))?;
            left -= want as u64;
        }
        r.check_end()?;
        let data = data
            .into_inner()
            .map_err(|e| BackupError::Io(format!("writing data.mdb: {e}")))?;
        data.sync_all().map_err(io("writing data.mdb"))?;
        drop(data);
        // The copy must open with its key before it takes the data dir's place.
        let store = Store::open(&scratch)
            .map_err(|e| BackupError::Store(format!("the restored store: {e}")))?;
        store
            .verify_master_key(&key)
            .map_err(|e| BackupError::Store(format!("the restored store: {e}")))?;
        drop(store);
        if data_dir.exists() {
            fs::remove_dir(data_dir).map_err(io("replacing the empty data dir"))?;
        }
        fs::rename(&scratch, data_dir).map_err(io("moving the restored data dir into place"))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&scratch);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(plain: &[u8], pass: &str) -> Vec<u8> {
        let mut w = SealWriter::new(Vec::new(), pass).unwrap();
        w.write_all(plain).unwrap();
        w.finish().unwrap()
    }

    fn open(sealed: &[u8], pass: &str) -> Result<Vec<u8>, BackupError> {
        let mut r = OpenReader::new(sealed, pass)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = r.read_plain(&mut buf)?;
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        r.check_end()?;
        Ok(out)
    }

    #[test]
    fn a_sealed_stream_round_trips_across_segments() {
        let plain: Vec<u8> = (0..SEGMENT * 2 + 123).map(|i| (i % 251) as u8).collect();
        let sealed = seal(&plain, "correct horse");
        assert_eq!(open(&sealed, "correct horse").unwrap(), plain);
        assert_eq!(open(&seal(b"", "p4ssphrase"), "p4ssphrase").unwrap(), b"");
    }

    #[test]
    fn wrong_passphrase_flipped_bits_truncation_and_reordering_are_refused() {
        let plain: Vec<u8> = (0..SEGMENT + 10).map(|i| i as u8).collect();
        let sealed = seal(&plain, "correct horse");
        // Tries a wrong passphrase.
        assert!(open(&sealed, "wrong horse").is_err());
        // Tries a flipped bit in the header, in a segment, in the last tag.
        for at in [9, HEADER_LEN + 100, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[at] ^= 1;
            assert!(open(&bad, "correct horse").is_err(), "flip at {at}");
        }
        // Tries every cut: the whole first segment alone (a clean segment boundary) too.
        for cut in [
            0,
            10,
            HEADER_LEN,
            HEADER_LEN + 4 + SEGMENT + TAG,
            sealed.len() - 1,
        ] {
            assert!(
                open(&sealed[..cut], "correct horse").is_err(),
                "cut at {cut}"
            );
        }
        // Tries bytes after the end.
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(open(&longer, "correct horse").is_err());
        // Tries a forged iteration count, and an unknown key derivation.
        let mut slow = sealed.clone();
        slow[9..13].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(open(&slow, "correct horse").is_err());
        let mut other = sealed.clone();
        other[8] = 2;
        assert!(
            matches!(open(&other, "correct horse"), Err(BackupError::Unreadable(m)) if m.contains("newer"))
        );
    }

    /// A file of the first version, written by the code of November 2026 (`FLLMBAK1`, 310 000
    /// iterations, an 8-character passphrase), still opens.
    #[test]
    fn a_version_one_file_still_opens() {
        let old = include_bytes!("../tests/fixtures/backup-v1.bak");
        assert_eq!(&old[..8], MAGIC_V1);
        let mut r = OpenReader::new(&old[..], "passw0rd").unwrap();
        assert_eq!(read_part(&mut r, MASTER_PART).unwrap(), 65);
        // A wrong passphrase shows at the first segment.
        let mut wrong = OpenReader::new(&old[..], "passw0rd!").unwrap();
        assert!(read_part(&mut wrong, MASTER_PART).is_err());
    }

    #[test]
    fn new_files_are_version_two_at_todays_cost() {
        let sealed = seal(b"x", "correct horse");
        assert_eq!(&sealed[..8], MAGIC_V2);
        assert_eq!(sealed[8], KDF_PBKDF2_SHA256);
        assert_eq!(
            u32::from_be_bytes(sealed[9..13].try_into().unwrap()),
            600_000
        );
    }
}
