//! Provider key rows: sealed key bytes plus the metadata the router and the dashboard need.
//! Rows are JSON under a big-endian id, so new fields can be added without a migration.

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, be_u64, setting};
use crate::crypto::{self, MasterKey, OpenError};

/// What the last health check or upstream answer said about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Unknown,
    Healthy,
    RateLimited,
    Invalid,
    Error,
    /// The key's platform is gone (shown, never stored: a key keeps its last real status).
    Retired,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: u64,
    pub platform: String,
    #[serde(default)]
    pub label: String,
    /// `crypto::MasterKey::seal` output, hex encoded.
    pub sealed: String,
    /// `crypto::mask` of the plaintext, computed when the key was added.
    pub masked: String,
    pub enabled: bool,
    pub status: KeyStatus,
    /// A paid key: the catalog's free-tier limits do not apply (its 429s still count).
    #[serde(default)]
    pub unlimited: bool,
    pub created_ms: u64,
    #[serde(default)]
    pub last_checked_ms: Option<u64>,
    /// Consecutive health probes that confirmed the key is not valid.
    #[serde(default)]
    pub auth_failures: u32,
    /// Set when the health checker disabled the key (it re-enables it when valid again);
    /// a key the user disabled stays disabled.
    #[serde(default)]
    pub auto_disabled: bool,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    /// What the last probe saw (`HTTP 403`, `timed out`, ...), for the operator.
    #[serde(default)]
    pub last_detail: Option<String>,
    /// An upstream answered 429 for this key; it reads `rate_limited` until then.
    #[serde(default)]
    pub rate_limited_until: Option<u64>,
    /// This key's own outbound proxy, sealed like the key (the URL may hold a password), hex.
    #[serde(default)]
    pub proxy_sealed: Option<String>,
    /// That proxy's URL with its credentials hidden, for lists.
    #[serde(default)]
    pub proxy_shown: Option<String>,
}

/// A key to add: what the CLI and the dashboard ask for.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    pub platform: &'a str,
    pub label: &'a str,
    /// The plaintext key; sealed before it is stored.
    pub key: &'a str,
    pub unlimited: bool,
    /// An outbound proxy URL for this key's calls (already checked by the caller).
    pub proxy: Option<&'a str>,
}

/// The associated data a key's proxy is sealed under: a sealed proxy opens only on its row.
fn proxy_aad(id: u64) -> String {
    format!("proxy/{id}")
}

impl KeyStatus {
    /// The name operators see, in the CLI, the dashboard and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Unknown => "unknown",
            KeyStatus::Healthy => "healthy",
            KeyStatus::RateLimited => "rate_limited",
            KeyStatus::Invalid => "invalid",
            KeyStatus::Error => "error",
            KeyStatus::Retired => "retired",
        }
    }
}

impl KeyRecord {
    /// The status to show: `rate_limited` while a 429's cooldown lasts, else the last probe's.
    pub fn effective_status(&self, now_ms: u64) -> KeyStatus {
        if self.rate_limited_until.is_some_and(|t| t > now_ms) {
            KeyStatus::RateLimited
        } else if self.status == KeyStatus::RateLimited && self.rate_limited_until.is_some() {
            KeyStatus::Healthy
        } else {
            self.status
        }
    }

    pub fn sealed_bytes(&self) -> Option<Vec<u8>> {
        crypto::from_hex(&self.sealed)
    }

    /// This key's own proxy URL, opened: `Ok(None)` when it has none, `Err` when the sealed
    /// URL does not open with `master` (the key must then not be used: going out directly
    /// would bypass the proxy the operator set).
    pub fn open_proxy(&self, master: &MasterKey) -> std::result::Result<Option<String>, OpenError> {
        let Some(sealed) = &self.proxy_sealed else {
            return Ok(None);
        };
        let bytes = crypto::from_hex(sealed).ok_or(OpenError)?;
        let opened = master.open(&bytes, &proxy_aad(self.id))?;
        opened
            .as_str()
            .map(|s| Some(s.to_string()))
            .ok_or(OpenError)
    }

    /// Sets (or with `None` or an empty URL clears) this key's own proxy.
    pub fn set_proxy(&mut self, master: &MasterKey, url: Option<&str>) {
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        self.proxy_sealed =
            url.map(|u| crypto::to_hex(&master.seal(u.as_bytes(), &proxy_aad(self.id))));
        self.proxy_shown = url.map(crate::config::redact_proxy_url);
    }
}

impl Store {
    /// Seals and stores a new key (and its proxy); bumps the generation so a running server
    /// picks it up.
    pub fn add_key(&self, master: &MasterKey, new: &NewKey) -> Result<KeyRecord> {
        let NewKey {
            platform,
            label,
            key: plaintext,
            unlimited,
            proxy,
        } = *new;
        let mut wtxn = self.write_txn()?;
        let id = self
            .settings
            .get(&wtxn, setting::NEXT_KEY_ID)?
            .map(be_u64)
            .unwrap_or(1)
            .max(1);
        self.settings
            .put(&mut wtxn, setting::NEXT_KEY_ID, &(id + 1).to_be_bytes())?;
        let mut record = KeyRecord {
            id,
            platform: platform.to_string(),
            label: label.to_string(),
            sealed: crypto::to_hex(&master.seal(plaintext.as_bytes(), platform)),
            masked: crypto::mask(plaintext),
            enabled: true,
            status: KeyStatus::Unknown,
            unlimited,
            created_ms: crate::time::now_ms(),
            last_checked_ms: None,
            auth_failures: 0,
            auto_disabled: false,
            disabled_reason: None,
            last_detail: None,
            rate_limited_until: None,
            proxy_sealed: None,
            proxy_shown: None,
        };
        record.set_proxy(master, proxy);
        self.put_key_row(&mut wtxn, &record)?;
        self.bump_generation(&mut wtxn)?;
        wtxn.commit()?;
        Ok(record)
    }

    /// One key row, decoded; `None` when there is no row with that id.
    pub(super) fn key_row(&self, txn: &heed::RoTxn, id: u64) -> Result<Option<KeyRecord>> {
        let Some(bytes) = self.keys.get(txn, &id.to_be_bytes())? else {
            return Ok(None);
        };
        let mut bytes = bytes.to_vec();
        simd_json::serde::from_slice(&mut bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("key {id}")))
    }

    /// One key by id.
    pub fn get_key(&self, id: u64) -> Result<Option<KeyRecord>> {
        let rtxn = self.read_txn()?;
        self.key_row(&rtxn, id)
    }

    pub(super) fn put_key_row(&self, wtxn: &mut heed::RwTxn, record: &KeyRecord) -> Result<()> {
        let bytes = simd_json::serde::to_vec(record)
            .map_err(|_| StoreError::Corrupt(format!("key {}", record.id)))?;
        self.keys.put(wtxn, &record.id.to_be_bytes(), &bytes)?;
        Ok(())
    }

    /// Every key row in id order. A row that does not decode is reported and skipped.
    pub fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let rtxn = self.read_txn()?;
        let mut out = Vec::new();
        for item in self.keys.iter(&rtxn)? {
            let (k, v) = item?;
            let mut bytes = v.to_vec();
            match simd_json::serde::from_slice::<KeyRecord>(&mut bytes) {
                Ok(r) => out.push(r),
                Err(_) => log::warn!("key row {} is unreadable and was skipped", be_u64(k)),
            }
        }
        Ok(out)
    }

    /// Removes a key; false when there was none with that id.
    pub fn remove_key(&self, id: u64) -> Result<bool> {
        let mut wtxn = self.write_txn()?;
        let removed = self.keys.delete(&mut wtxn, &id.to_be_bytes())?;
        if removed {
            self.bump_generation(&mut wtxn)?;
        }
        wtxn.commit()?;
        Ok(removed)
    }

    /// Applies `change` to one key row; false when there was none with that id.
    pub fn update_key(&self, id: u64, change: impl FnOnce(&mut KeyRecord)) -> Result<bool> {
        let mut wtxn = self.write_txn()?;
        let Some(mut record) = self.key_row(&wtxn, id)? else {
            return Ok(false);
        };
        change(&mut record);
        self.put_key_row(&mut wtxn, &record)?;
        self.bump_generation(&mut wtxn)?;
        wtxn.commit()?;
        Ok(true)
    }

    /// Sets (or with `None` clears) one key's own proxy; false when there is no such key.
    pub fn set_key_proxy(&self, master: &MasterKey, id: u64, url: Option<&str>) -> Result<bool> {
        self.update_key(id, |r| r.set_proxy(master, url))
    }

    /// Records a 429's cooldown end on a key. No generation bump: the running router already
    /// knows, this is for what operators see.
    pub fn set_rate_limited_until(&self, id: u64, until_ms: u64) -> Result<bool> {
        let mut wtxn = self.write_txn()?;
        let Some(mut record) = self.key_row(&wtxn, id)? else {
            return Ok(false);
        };
        if record.rate_limited_until.is_some_and(|t| t >= until_ms) {
            return Ok(true);
        }
        record.rate_limited_until = Some(until_ms);
        self.put_key_row(&mut wtxn, &record)?;
        wtxn.commit()?;
        Ok(true)
    }

    /// Test and repair hook: overwrite a row's raw bytes.
    #[doc(hidden)]
    pub fn put_raw_key_row(&self, id: u64, bytes: &[u8]) -> Result<()> {
        let mut wtxn = self.write_txn()?;
        self.keys.put(&mut wtxn, &id.to_be_bytes(), bytes)?;
        self.bump_generation(&mut wtxn)?;
        wtxn.commit()?;
        Ok(())
    }
}

/// What became of one key offered to [`Store::import_keys`].
#[derive(Debug)]
pub enum Imported {
    Added(Box<KeyRecord>),
    /// Not in its platform's key format (why).
    Malformed(String),
    /// The same key is already stored for that platform.
    Present,
}

impl Store {
    /// Every stored key that opens with `master`: (platform, plaintext).
    pub fn opened_keys(&self, master: &MasterKey) -> Result<Vec<(String, crypto::Secret)>> {
        Ok(self
            .list_keys()?
            .into_iter()
            .filter_map(|k| {
                let plain = master.open(&k.sealed_bytes()?, &k.platform).ok()?;
                Some((k.platform, plain))
            })
            .collect())
    }

    /// Adds `keys` ((platform, key), labelled "imported"), skipping malformed keys and keys
    /// already stored for their platform; one outcome per key, in order.
    pub fn import_keys(
        &self,
        master: &MasterKey,
        catalog: &crate::catalog::Catalog,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<(String, Imported)>> {
        let existing = self.opened_keys(master)?;
        let mut out = Vec::with_capacity(keys.len());
        for (platform, key) in keys {
            let outcome = if let Err(why) = catalog.check_key(&platform, &key) {
                Imported::Malformed(why)
            } else if existing
                .iter()
                .any(|(p, k)| *p == platform && k.as_bytes() == key.as_bytes())
            {
                Imported::Present
            } else {
                Imported::Added(Box::new(self.add_key(
                    master,
                    &NewKey {
                        platform: &platform,
                        label: "imported",
                        key: &key,
                        unlimited: false,
                        proxy: None,
                    },
                )?))
            };
            out.push((platform, outcome));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_store;
    use super::*;

    #[test]
    fn keys_round_trip_sealed() {
        let (store, dir) = temp_store();
        let m = MasterKey::from_hex(&"11".repeat(32), "t").unwrap();
        let a = store
            .add_key(&m, &new("groq", "main", "gsk_abcdefghijklmnop", false))
            .unwrap();
        let b = store
            .add_key(&m, &new("cerebras", "", "csk-123456789", true))
            .unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        let keys = store.list_keys().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].masked, "gsk_...mnop");
        assert!(!keys[0].sealed.contains("abcdef"));
        let sealed = keys[0].sealed_bytes().unwrap();
        assert_eq!(
            m.open(&sealed, "groq").unwrap().as_bytes(),
            b"gsk_abcdefghijklmnop"
        );
        assert!(keys[1].unlimited);
        assert!(store.update_key(1, |r| r.enabled = false).unwrap());
        assert!(!store.list_keys().unwrap()[0].enabled);
        assert!(store.remove_key(1).unwrap());
        assert!(!store.remove_key(1).unwrap());
        let c = store.add_key(&m, &new("groq", "", "gsk_x", false)).unwrap();
        assert_eq!(c.id, 3, "ids are never reused");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn new<'a>(platform: &'a str, label: &'a str, key: &'a str, unlimited: bool) -> NewKey<'a> {
        NewKey {
            platform,
            label,
            key,
            unlimited,
            proxy: None,
        }
    }

    #[test]
    fn a_keys_proxy_is_sealed_to_its_row_and_shown_without_credentials() {
        let (store, dir) = temp_store();
        let m = MasterKey::from_hex(&"22".repeat(32), "t").unwrap();
        let url = "socks5h://me:s3cret-pw@10.0.0.9:1080";
        let a = store
            .add_key(
                &m,
                &NewKey {
                    proxy: Some(url),
                    ..new("groq", "", "gsk_abcdefghijklmnop", false)
                },
            )
            .unwrap();
        let b = store
            .add_key(&m, &new("groq", "", "gsk_qrstuvwxyz012345", false))
            .unwrap();
        assert_eq!(
            a.proxy_shown.as_deref(),
            Some("socks5h://***@10.0.0.9:1080")
        );
        assert!(!a.proxy_sealed.as_ref().unwrap().contains("s3cret"));
        assert_eq!(a.open_proxy(&m), Ok(Some(url.to_string())));
        assert_eq!(b.open_proxy(&m), Ok(None));
        // Moved onto another row, the sealed URL does not open.
        let mut moved = b.clone();
        moved.proxy_sealed = a.proxy_sealed.clone();
        assert_eq!(moved.open_proxy(&m), Err(OpenError));
        let other = MasterKey::from_hex(&"33".repeat(32), "t").unwrap();
        assert_eq!(a.open_proxy(&other), Err(OpenError));

        assert!(
            store
                .set_key_proxy(&m, b.id, Some("http://10.0.0.1:3128"))
                .unwrap()
        );
        assert!(store.set_key_proxy(&m, a.id, None).unwrap());
        let keys = store.list_keys().unwrap();
        assert_eq!(keys[0].open_proxy(&m), Ok(None));
        assert_eq!(keys[0].proxy_shown, None);
        assert_eq!(
            keys[1].open_proxy(&m),
            Ok(Some("http://10.0.0.1:3128".into()))
        );
        assert!(!store.set_key_proxy(&m, 99, None).unwrap());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
