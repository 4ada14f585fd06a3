//! Uploads kept on disk while their request needs them: an audio file arrives from the client
//! into `<data dir>/spool/`, is read (once per upstream attempt) from there, and is removed
//! when the request is over, however it ends.
//!
//! Owns the spool directory (0700), its files (0600, created with `O_EXCL` under a random
//! name, never one a client chose), the count of uploads on disk at once and the removal of
//! files an earlier process left behind. A [`SpoolFile`] removes its file when dropped, so a
//! request that fails, whose client leaves or whose handler panics leaves nothing behind.
//! File reads and writes are plain blocking calls of at most 64 KiB each; they run on the
//! request's coroutine worker, which a local disk serves in well under a millisecond.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The directory under the data dir.
pub const DIR: &str = "spool";
/// Uploads on disk at once (each at most the route's limit): past this a new one is refused
/// (503) rather than letting clients fill a Pi's SD card.
pub const MAX_ACTIVE: usize = 8;
/// A spool file's name starts with this.
const PREFIX: &str = "upload-";

/// Why an upload could not be spooled.
#[derive(Debug)]
pub enum SpoolError {
    /// [`MAX_ACTIVE`] uploads are on disk already.
    Busy,
    Io(io::Error),
}

/// The spool directory and the uploads in it.
pub struct Spool {
    dir: PathBuf,
    active: AtomicUsize,
    max: usize,
}

impl Spool {
    pub fn new(data_dir: &Path) -> Spool {
        Spool {
            dir: data_dir.join(DIR),
            active: AtomicUsize::new(0),
            max: MAX_ACTIVE,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the uploads a previous process left (killed mid-request); returns how many.
    /// Run once at start-up, before requests. The directory itself is made with the first
    /// upload, so a server that never transcribes has none.
    pub fn prepare(&self) -> io::Result<usize> {
        if !self.dir.exists() {
            return Ok(0);
        }
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let is_upload = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(PREFIX));
            if is_upload && entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A new, empty upload file.
    pub fn create(&self) -> Result<SpoolFile<'_>, SpoolError> {
        if self.active.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(SpoolError::Busy);
        }
        // From here the place is the file's: dropped with it, or on the error below.
        let slot = Slot(&self.active);
        let mut name = [0u8; 12];
        crate::crypto::fill_random(&mut name);
        let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
        let path = self.dir.join(format!("{PREFIX}{hex}"));
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
        };
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .and_then(|()| open()),
            other => other,
        }
        .map_err(SpoolError::Io)?;
        Ok(SpoolFile {
            _slot: slot,
            path,
            file,
            len: 0,
        })
    }

    /// Uploads on disk now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

/// One place among the [`MAX_ACTIVE`], given back when dropped.
struct Slot<'s>(&'s AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One upload on disk; removed when dropped.
pub struct SpoolFile<'s> {
    _slot: Slot<'s>,
    path: PathBuf,
    file: File,
    len: u64,
}

impl SpoolFile<'_> {
    /// Appends `bytes`.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader from the first byte (each upstream attempt takes its own).
    pub fn reader(&self) -> SpoolReader<'_> {
        SpoolReader {
            file: &self.file,
            at: 0,
            len: self.len,
        }
    }
}

impl Drop for SpoolFile<'_> {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            log::warn!("could not remove the upload {}: {e}", self.path.display());
        }
    }
}

/// Reads a spooled upload from the start, by offset (so readers never share a file position).
pub struct SpoolReader<'f> {
    file: &'f File,
    at: u64,
    len: u64,
}

impl Read for SpoolReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len - self.at;
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            // The file is shorter than what was written to it: never by our hand.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp() -> PathBuf {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "freellmapi-spool-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn uploads_are_private_read_back_whole_and_gone_when_dropped() {
        let data = temp();
        let spool = Spool::new(&data);
        fs::create_dir_all(spool.dir()).unwrap();
        fs::write(spool.dir().join("upload-stale"), b"old").unwrap();
        fs::write(spool.dir().join("not-ours"), b"keep").unwrap();
        assert_eq!(spool.prepare().unwrap(), 1);
        assert!(spool.dir().join("not-ours").exists());
        let mode = fs::metadata(spool.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        let mut f = spool.create().unwrap();
        f.append(b"hello ").unwrap();
        f.append(b"world").unwrap();
        let path = f.path.clone();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for _ in 0..2 {
            let mut back = Vec::new();
            f.reader().read_to_end(&mut back).unwrap();
            assert_eq!(back, b"hello world");
        }
        assert_eq!(spool.active(), 1);
        drop(f);
        assert!(!path.exists());
        assert_eq!(spool.active(), 0);
        fs::remove_dir_all(&data).unwrap();
    }

    #[test]
    fn at_most_max_active_uploads_at_once() {
        let data = temp();
        let spool = Spool::new(&data);
        spool.prepare().unwrap();
        let held: Vec<_> = (0..MAX_ACTIVE).map(|_| spool.create().unwrap()).collect();
        assert!(matches!(spool.create(), Err(SpoolError::Busy)));
        drop(held);
        assert_eq!(spool.active(), 0);
        // The directory comes back with the next upload; a failed create gives its place back.
        fs::remove_dir_all(spool.dir()).unwrap();
        drop(spool.create().unwrap());
        fs::remove_dir_all(spool.dir()).unwrap();
        fs::write(spool.dir(), b"not a directory").unwrap();
        assert!(matches!(spool.create(), Err(SpoolError::Io(_))));
        assert_eq!(spool.active(), 0);
        fs::remove_file(spool.dir()).unwrap();
        fs::remove_dir_all(&data).unwrap();
    }
}
