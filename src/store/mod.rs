//! Persistent state in one LMDB environment in the data dir: settings, sealed
//! provider keys, the ledger snapshot, the request log and dashboard sessions.
//!
//! Owns the heed environment and its databases. Every write is one transaction, so a crash
//! loses no committed key or setting. The CLI and the server open the same environment at
//! once (LMDB locks across processes); a write that the server must notice bumps the
//! `generation` setting, which the server polls. This module never sees plaintext keys: it
//! stores what `crypto` sealed.

mod admin;
mod clientkeys;
mod cooldowns;
mod keys;
mod requestlog;
#[cfg(freellmapi_robust_fallback)]
mod robust;

use std::fmt;
use std::path::Path;

use heed::byteorder::BigEndian;
use heed::types::{Bytes, U128};
use heed::{Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};

pub use clientkeys::{AddClientKey, ClientKey, MAX_CLIENT_KEYS};
pub use cooldowns::CooldownClear;
pub use keys::{Imported, KeyRecord, KeyStatus, NewKey};
pub use requestlog::{
    Asked, AttemptRecord, LogSink, QueueStats, RequestOutcome, RequestRecord, Retention, Spent,
    spawn_writer,
};

use crate::crypto::{MasterKey, Secret};

/// Map size: LMDB reserves address space, not disk. 32-bit boards get less address space.
#[cfg(target_pointer_width = "64")]
const MAP_SIZE: usize = 1 << 30;
#[cfg(not(target_pointer_width = "64"))]
const MAP_SIZE: usize = 256 << 20;

const CANARY_PLAINTEXT: &[u8] = b"freellmapi master key canary v1";
const CANARY_AAD: &str = "canary";
const UNIFIED_KEY_AAD: &str = "unified-key";

/// Setting names. Values are raw bytes; integers are big-endian u64.
mod setting {
    pub const CANARY: &[u8] = b"canary";
    pub const UNIFIED_KEY: &[u8] = b"unified_key";
    pub const GENERATION: &[u8] = b"generation";
    pub const NEXT_KEY_ID: &[u8] = b"next_key_id";
    pub const LEDGER: &[u8] = b"ledger_snapshot";
    pub const CHAIN: &[u8] = b"chain_order";
    pub const OVERRIDES: &[u8] = b"catalog_overrides";
    pub const ADMIN_PASSWORD: &[u8] = b"admin_password";
    pub const COOLDOWN_CLEARS: &[u8] = b"cooldown_clears";
    pub const CLIENT_KEYS: &[u8] = b"client_keys";
    pub const LIFECYCLE: &[u8] = b"catalog_lifecycle";
}

/// One fallback-chain entry as stored: the model by identity, and the chain's own switch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainEntry {
    pub platform: String,
    pub model: String,
    pub enabled: bool,
}

#[derive(Debug)]
pub enum StoreError {
    Lmdb(heed::Error),
    /// A row could not be decoded; names the row, never its content.
    Corrupt(String),
    /// The master key does not open the canary sealed with the key that wrote this data dir.
    WrongMasterKey,
    /// The writer thread's queue is full or the writer has stopped.
    WriterUnavailable,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Lmdb(e) => write!(f, "storage error: {e}"),
            StoreError::Corrupt(what) => write!(f, "storage error: unreadable {what}"),
            StoreError::WrongMasterKey => f.write_str(
                "the master key does not match this data dir (the canary did not decrypt); \
                 use the FREELLMAPI_ENCRYPTION_KEY or master.key that created it, or start with a new --data-dir",
            ),
            StoreError::WriterUnavailable => {
                f.write_str("storage error: the store writer is busy or stopped; try again")
            }
        }
    }
}

impl From<heed::Error> for StoreError {
    fn from(e: heed::Error) -> Self {
        StoreError::Lmdb(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The LMDB environment and its typed databases.
pub struct Store {
    env: Env<WithoutTls>,
    /// The address range of LMDB's read-only map of `data.mdb`, from /proc/self/maps.
    map: Option<(usize, usize)>,
    settings: Database<Bytes, Bytes>,
    keys: Database<Bytes, Bytes>,
    requests: Database<U128<BigEndian>, Bytes>,
    sessions: Database<Bytes, Bytes>,
}

impl Store {
    /// Opens (creating if needed) the environment in `dir`.
    pub fn open(dir: &Path) -> Result<Store> {
        Store::open_sized(dir, MAP_SIZE)
    }

    fn open_sized(dir: &Path, map_size: usize) -> Result<Store> {
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(map_size).max_dbs(8);
        // SAFETY: heed requires that the same environment is not opened twice in one process;
        // `Store::open` is called once per process (the server or one CLI command).
        let env = unsafe { options.open(dir)? };
        let mut wtxn = env.write_txn()?;
        let settings = env.create_database(&mut wtxn, Some("settings"))?;
        let keys = env.create_database(&mut wtxn, Some("keys"))?;
        let requests = env.create_database(&mut wtxn, Some("requests"))?;
        let sessions = env.create_database(&mut wtxn, Some("sessions"))?;
        wtxn.commit()?;
        let map = find_map(&dir.join("data.mdb"));
        Ok(Store {
            map,
            env,
            settings,
            keys,
            requests,
            sessions,
        })
    }

    /// Opens an existing environment for reading only: no lock file is needed on a read-only
    /// file system, and nothing is written on a full one. Writes through it fail.
    pub fn open_read_only(dir: &Path) -> Result<Store> {
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(MAP_SIZE).max_dbs(8);
        // SAFETY: READ_ONLY only restricts what this process does with the environment;
        // it is opened once in this process, as in `open`.
        let env = unsafe {
            options.flags(heed::EnvFlags::READ_ONLY);
            options.open(dir)?
        };
        let rtxn = env.read_txn()?;
        let missing = || StoreError::Corrupt("store (a database is missing)".into());
        let settings = env
            .open_database(&rtxn, Some("settings"))?
            .ok_or_else(missing)?;
        let keys = env
            .open_database(&rtxn, Some("keys"))?
            .ok_or_else(missing)?;
        let requests = env
            .open_database(&rtxn, Some("requests"))?
            .ok_or_else(missing)?;
        let sessions = env
            .open_database(&rtxn, Some("sessions"))?
            .ok_or_else(missing)?;
        rtxn.commit()?;
        Ok(Store {
            map: None,
            env,
            settings,
            keys,
            requests,
            sessions,
        })
    }

    /// Drops this process's page-table entries for the map, so pages the store touched (the
    /// request log grows by appending) stop counting as our RSS. The data stays in the page
    /// cache, and the map is read-only and shared: any later access simply faults it back in.
    pub fn release_mapped_pages(&self) {
        if let Some((start, end)) = self.map {
            // SAFETY: the range is LMDB's own read-only MAP_SHARED file mapping; MADV_DONTNEED on
            // it discards no data, and readers touching it afterwards refault the same pages.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        }
    }

    /// Whether less than an eighth of the map is left beyond the file's pages (free pages
    /// inside the file are reused by LMDB first, so this is the room truly left). The request
    /// log stops writing then: keys, sessions and settings must still find room.
    pub fn nearly_full(&self) -> bool {
        let info = self.env.info();
        let used = (info.last_page_number as u64 + 1) * u64::from(self.env.stat().page_size);
        let map = info.map_size as u64;
        map.saturating_sub(used) < map / 8
    }

    pub(crate) fn read_txn(&self) -> Result<RoTxn<'_, WithoutTls>> {
        Ok(self.env.read_txn()?)
    }

    pub(crate) fn write_txn(&self) -> Result<RwTxn<'_>> {
        Ok(self.env.write_txn()?)
    }

    /// Proves `master` is the key this data dir was sealed with, sealing the canary on first use.
    /// Writes a consistent copy of the whole store to `file` (a read transaction's view: a
    /// server may keep writing meanwhile).
    pub fn copy_to(&self, file: &mut std::fs::File) -> Result<()> {
        self.env
            .copy_to_file(file, heed::CompactionOption::Disabled)
            .map_err(StoreError::Lmdb)
    }

    pub fn verify_master_key(&self, master: &MasterKey) -> Result<()> {
        let rtxn = self.read_txn()?;
        if let Some(sealed) = self.settings.get(&rtxn, setting::CANARY)? {
            return match master.open(sealed, CANARY_AAD) {
                Ok(p) if p.as_bytes() == CANARY_PLAINTEXT => Ok(()),
                _ => Err(StoreError::WrongMasterKey),
            };
        }
        drop(rtxn);
        let mut wtxn = self.write_txn()?;
        if self.settings.get(&wtxn, setting::CANARY)?.is_none() {
            self.settings.put(
                &mut wtxn,
                setting::CANARY,
                &master.seal(CANARY_PLAINTEXT, CANARY_AAD),
            )?;
        }
        wtxn.commit()?;
        Ok(())
    }

    /// The unified client key, creating one when there is none. Returns `(key, created)`.
    pub fn unified_key(&self, master: &MasterKey) -> Result<(Secret, bool)> {
        if let Some(key) = self.existing_unified_key(master)? {
            return Ok((key, false));
        }
        self.set_unified_key(master, &crate::crypto::new_unified_key())
            .map(|k| (k, true))
    }

    /// The unified client key, if one was made (reads only).
    pub fn existing_unified_key(&self, master: &MasterKey) -> Result<Option<Secret>> {
        let rtxn = self.read_txn()?;
        let Some(sealed) = self.settings.get(&rtxn, setting::UNIFIED_KEY)? else {
            return Ok(None);
        };
        master
            .open(sealed, UNIFIED_KEY_AAD)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("unified key setting".into()))
    }

    /// Replaces the unified key (rotation) and bumps the generation so a running server notices.
    pub fn set_unified_key(&self, master: &MasterKey, key: &str) -> Result<Secret> {
        let mut wtxn = self.write_txn()?;
        self.settings.put(
            &mut wtxn,
            setting::UNIFIED_KEY,
            &master.seal(key.as_bytes(), UNIFIED_KEY_AAD),
        )?;
        self.bump_generation(&mut wtxn)?;
        wtxn.commit()?;
        Ok(Secret::new(key.as_bytes().to_vec()))
    }

    /// A counter bumped by every write a running server must pick up (keys, token, chain).
    pub fn generation(&self) -> Result<u64> {
        let rtxn = self.read_txn()?;
        Ok(self
            .settings
            .get(&rtxn, setting::GENERATION)?
            .map(be_u64)
            .unwrap_or(0))
    }

    fn bump_generation(&self, wtxn: &mut RwTxn) -> Result<()> {
        let next = self
            .settings
            .get(wtxn, setting::GENERATION)?
            .map(be_u64)
            .unwrap_or(0)
            + 1;
        self.settings
            .put(wtxn, setting::GENERATION, &next.to_be_bytes())?;
        Ok(())
    }

    /// A setting stored as JSON, decoded; `None` when it was never saved. `what` names it in
    /// the error when it does not decode.
    fn json_setting<T: serde::de::DeserializeOwned>(
        &self,
        txn: &heed::RoTxn,
        name: &[u8],
        what: &str,
    ) -> Result<Option<T>> {
        let Some(bytes) = self.settings.get(txn, name)? else {
            return Ok(None);
        };
        let mut bytes = bytes.to_vec();
        simd_json::serde::from_slice(&mut bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(what.into()))
    }

    /// Writes a setting as JSON in `wtxn`; `notify` bumps the generation a running server
    /// polls.
    fn write_json_setting<T: serde::Serialize + ?Sized>(
        &self,
        wtxn: &mut RwTxn,
        name: &[u8],
        value: &T,
        what: &str,
        notify: bool,
    ) -> Result<()> {
        let bytes =
            simd_json::serde::to_vec(value).map_err(|_| StoreError::Corrupt(what.into()))?;
        self.settings.put(wtxn, name, &bytes)?;
        if notify {
            self.bump_generation(wtxn)?;
        }
        Ok(())
    }

    /// Replaces a JSON setting (a stored value that no longer decodes is overwritten too).
    fn put_json_setting<T: serde::Serialize + ?Sized>(
        &self,
        name: &[u8],
        value: &T,
        what: &str,
        notify: bool,
    ) -> Result<()> {
        let mut wtxn = self.write_txn()?;
        self.write_json_setting(&mut wtxn, name, value, what, notify)?;
        wtxn.commit()?;
        Ok(())
    }

    /// Changes a JSON setting in one write transaction (read, `change`, write back), so a
    /// concurrent change is never lost.
    fn update_json_setting<T, R>(
        &self,
        name: &[u8],
        what: &str,
        notify: bool,
        change: impl FnOnce(&mut T) -> R,
    ) -> Result<R>
    where
        T: serde::de::DeserializeOwned + serde::Serialize + Default,
    {
        let mut wtxn = self.write_txn()?;
        let mut value: T = self.json_setting(&wtxn, name, what)?.unwrap_or_default();
        let out = change(&mut value);
        self.write_json_setting(&mut wtxn, name, &value, what, notify)?;
        wtxn.commit()?;
        Ok(out)
    }

    /// The user's fallback-chain order, if one was saved (else the default order applies).
    pub fn chain_order(&self) -> Result<Option<Vec<ChainEntry>>> {
        let rtxn = self.read_txn()?;
        self.json_setting(&rtxn, setting::CHAIN, "chain order")
    }

    /// Saves the fallback-chain order; a running server picks it up.
    pub fn put_chain_order(&self, order: &[ChainEntry]) -> Result<()> {
        self.put_json_setting(setting::CHAIN, order, "chain order", true)
    }

    /// The user's catalog edits, custom models and custom platforms.
    pub fn overrides(&self) -> Result<crate::catalog::Overrides> {
        let rtxn = self.read_txn()?;
        Ok(self
            .json_setting(&rtxn, setting::OVERRIDES, "catalog overrides")?
            .unwrap_or_default())
    }

    /// Saves catalog edits (validated by the caller); a running server picks them up.
    pub fn put_overrides(&self, o: &crate::catalog::Overrides) -> Result<()> {
        self.put_json_setting(setting::OVERRIDES, o, "catalog overrides", true)
    }

    /// What the providers said: retired and discovered models, the last syncs.
    pub fn lifecycle(&self) -> Result<crate::catalog::Lifecycle> {
        let rtxn = self.read_txn()?;
        Ok(self
            .json_setting(&rtxn, setting::LIFECYCLE, "catalog lifecycle")?
            .unwrap_or_default())
    }

    /// Changes that record in one transaction; a running server picks it up.
    pub fn update_lifecycle<R>(
        &self,
        change: impl FnOnce(&mut crate::catalog::Lifecycle) -> R,
    ) -> Result<R> {
        self.update_json_setting(setting::LIFECYCLE, "catalog lifecycle", true, change)
    }

    /// The catalog in effect: `builtin`, then what the providers said, then the user's edits.
    pub fn catalog(&self, builtin: &crate::catalog::Catalog) -> Result<crate::catalog::Catalog> {
        Ok(builtin.merged(&self.overrides()?, &self.lifecycle()?))
    }

    /// The last persisted ledger snapshot (router windows, cooldowns, penalties).
    pub fn ledger_snapshot(&self) -> Result<Option<Vec<u8>>> {
        let rtxn = self.read_txn()?;
        Ok(self
            .settings
            .get(&rtxn, setting::LEDGER)?
            .map(<[u8]>::to_vec))
    }

    pub fn put_ledger_snapshot(&self, bytes: &[u8]) -> Result<()> {
        let mut wtxn = self.write_txn()?;
        self.settings.put(&mut wtxn, setting::LEDGER, bytes)?;
        wtxn.commit()?;
        Ok(())
    }
}

/// The mapping of `file` in /proc/self/maps (LMDB maps the whole map size at once).
fn find_map(file: &Path) -> Option<(usize, usize)> {
    let file = std::fs::canonicalize(file).ok()?;
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .find(|l| l.ends_with(&*file.to_string_lossy()) && l.contains(" r--s "))
        .and_then(|l| {
            let (start, end) = l.split_whitespace().next()?.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn temp_store() -> (Store, std::path::PathBuf) {
        temp_store_sized(MAP_SIZE)
    }

    /// A store whose map is `map_size` bytes (to fill it in a test).
    pub fn temp_store_sized(map_size: usize) -> (Store, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("fla-store-{}", crate::crypto::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        (Store::open_sized(&dir, map_size).unwrap(), dir)
    }

    #[test]
    fn the_map_is_found_and_released() {
        let (store, dir) = temp_store();
        let (start, end) = store.map.expect("data.mdb is mapped");
        assert!(end > start);
        store.release_mapped_pages();
        assert_eq!(
            store.generation().unwrap(),
            0,
            "the store still reads after a release"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn canary_detects_a_different_master_key() {
        let (store, dir) = temp_store();
        let a = MasterKey::from_hex(&"11".repeat(32), "t").unwrap();
        let b = MasterKey::from_hex(&"22".repeat(32), "t").unwrap();
        store.verify_master_key(&a).unwrap();
        store.verify_master_key(&a).unwrap();
        assert!(matches!(
            store.verify_master_key(&b),
            Err(StoreError::WrongMasterKey)
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn chain_order_round_trips_and_bumps_the_generation() {
        let (store, dir) = temp_store();
        assert_eq!(store.chain_order().unwrap(), None);
        let g = store.generation().unwrap();
        let order = vec![ChainEntry {
            platform: "groq".into(),
            model: "m".into(),
            enabled: false,
        }];
        store.put_chain_order(&order).unwrap();
        assert_eq!(store.chain_order().unwrap(), Some(order));
        assert_eq!(store.generation().unwrap(), g + 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unified_key_is_created_once_and_rotates() {
        let (store, dir) = temp_store();
        let m = MasterKey::from_hex(&"11".repeat(32), "t").unwrap();
        let (k1, created) = store.unified_key(&m).unwrap();
        assert!(created);
        let (k2, created) = store.unified_key(&m).unwrap();
        assert!(!created);
        assert_eq!(k1.as_bytes(), k2.as_bytes());
        let g = store.generation().unwrap();
        store.set_unified_key(&m, "freellmapi-new").unwrap();
        assert_eq!(store.generation().unwrap(), g + 1);
        assert_eq!(
            store.unified_key(&m).unwrap().0.as_bytes(),
            b"freellmapi-new"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
