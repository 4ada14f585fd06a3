//! Named client keys: besides the unified key, keys an operator hands to one device or app and
//! revokes alone. Only each key's SHA-256 digest is stored (the key is shown once, when made),
//! with its label, a masked form, and when it was made and last used. Owns the `client_keys`
//! setting; must not keep a key in plaintext.

use serde::{Deserialize, Serialize};

use super::{Result, Store, StoreError, setting};
use crate::crypto::{self, Secret, digest, new_unified_key};

/// At most this many named keys.
pub const MAX_CLIENT_KEYS: usize = 256;
pub const MAX_LABEL: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientKey {
    pub id: u64,
    pub label: String,
    /// Hex SHA-256 of the key.
    pub digest: String,
    pub masked: String,
    pub created_ms: u64,
    #[serde(default)]
    pub last_used_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ClientKeys {
    next_id: u64,
    keys: Vec<ClientKey>,
}

/// Why a key could not be made.
#[derive(Debug)]
pub enum AddClientKey {
    BadLabel(&'static str),
    TooMany,
    Store(StoreError),
}

impl ClientKey {
    /// The stored digest as bytes (`None` for a row that does not hold one).
    pub fn digest_bytes(&self) -> Option<[u8; 32]> {
        crypto::from_hex(&self.digest)?.try_into().ok()
    }
}

impl Store {
    pub fn client_keys(&self) -> Result<Vec<ClientKey>> {
        let rtxn = self.read_txn()?;
        Ok(self
            .json_setting::<ClientKeys>(&rtxn, setting::CLIENT_KEYS, "client keys")?
            .unwrap_or_default()
            .keys)
    }

    /// Makes a key labelled `label`; returns its row and the key (shown once).
    pub fn add_client_key(
        &self,
        label: &str,
        now_ms: u64,
    ) -> std::result::Result<(ClientKey, Secret), AddClientKey> {
        let label = label.trim();
        if label.is_empty() {
            return Err(AddClientKey::BadLabel("a client key needs a label"));
        }
        if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
            return Err(AddClientKey::BadLabel(
                "a label is at most 64 characters, without control characters",
            ));
        }
        let key = new_unified_key();
        let masked = format!("{}…{}", &key[..14], &key[key.len() - 4..]);
        let row = self
            .update_json_setting(
                setting::CLIENT_KEYS,
                "client keys",
                true,
                |all: &mut ClientKeys| {
                    if all.keys.len() >= MAX_CLIENT_KEYS {
                        return None;
                    }
                    all.next_id += 1;
                    let row = ClientKey {
                        id: all.next_id,
                        label: label.to_string(),
                        digest: crypto::to_hex(&digest(key.as_bytes())),
                        masked: masked.clone(),
                        created_ms: now_ms,
                        last_used_ms: None,
                    };
                    all.keys.push(row.clone());
                    Some(row)
                },
            )
            .map_err(AddClientKey::Store)?
            .ok_or(AddClientKey::TooMany)?;
        Ok((row, Secret::new(key.into_bytes())))
    }

    /// Revokes a key; false when there was none with that id.
    pub fn remove_client_key(&self, id: u64) -> Result<bool> {
        self.update_json_setting(
            setting::CLIENT_KEYS,
            "client keys",
            true,
            |all: &mut ClientKeys| {
                let before = all.keys.len();
                all.keys.retain(|k| k.id != id);
                all.keys.len() != before
            },
        )
    }

    /// Records when keys were last used (`(id, ms)`); not a change a server must reload for.
    pub fn touch_client_keys(&self, used: &[(u64, u64)]) -> Result<()> {
        self.update_json_setting(
            setting::CLIENT_KEYS,
            "client keys",
            false,
            |all: &mut ClientKeys| {
                for k in &mut all.keys {
                    if let Some((_, ms)) = used.iter().find(|(id, _)| *id == k.id) {
                        k.last_used_ms = Some(k.last_used_ms.unwrap_or(0).max(*ms));
                    }
                }
            },
        )
    }
}
