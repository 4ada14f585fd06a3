//! Dashboard credentials: the admin password hash (a setting) and login sessions (their own
//! database, keyed by the SHA-256 of the session token so a copied data dir holds no usable
//! cookie). Hashing and token generation live in `admin::auth`; this module only stores bytes.

use super::{Result, Store, be_u64, setting};

impl Store {
    /// The stored password hash (`pbkdf2-sha256$…`), if a password was ever set.
    pub fn admin_password(&self) -> Result<Option<String>> {
        let rtxn = self.read_txn()?;
        Ok(self
            .settings
            .get(&rtxn, setting::ADMIN_PASSWORD)?
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_string))
    }

    /// Sets the password hash and ends every session, in one transaction: a reset from the CLI
    /// logs out whoever had the old password.
    pub fn set_admin_password(&self, encoded_hash: &str) -> Result<()> {
        let mut wtxn = self.write_txn()?;
        self.settings
            .put(&mut wtxn, setting::ADMIN_PASSWORD, encoded_hash.as_bytes())?;
        self.sessions.clear(&mut wtxn)?;
        wtxn.commit()?;
        Ok(())
    }

    /// Replaces the password hash `old` by `new` (the same password hashed at a higher cost),
    /// keeping every session; false when the hash is no longer `old` (changed meanwhile).
    pub fn upgrade_admin_password(&self, old: &str, new: &str) -> Result<bool> {
        let mut wtxn = self.write_txn()?;
        if self.settings.get(&wtxn, setting::ADMIN_PASSWORD)? != Some(old.as_bytes()) {
            return Ok(false);
        }
        self.settings
            .put(&mut wtxn, setting::ADMIN_PASSWORD, new.as_bytes())?;
        wtxn.commit()?;
        Ok(true)
    }

    /// Stores a session under the hash of its token; it is valid until `expires_ms`.
    pub fn create_session(&self, token_hash: &[u8; 32], expires_ms: u64) -> Result<()> {
        let mut wtxn = self.write_txn()?;
        self.sessions
            .put(&mut wtxn, token_hash, &expires_ms.to_be_bytes())?;
        wtxn.commit()?;
        Ok(())
    }

    /// Whether a session with this token hash exists and has not expired.
    pub fn session_valid(&self, token_hash: &[u8; 32], now_ms: u64) -> Result<bool> {
        let rtxn = self.read_txn()?;
        Ok(self
            .sessions
            .get(&rtxn, token_hash)?
            .is_some_and(|v| be_u64(v) > now_ms))
    }

    pub fn delete_session(&self, token_hash: &[u8; 32]) -> Result<()> {
        let mut wtxn = self.write_txn()?;
        self.sessions.delete(&mut wtxn, token_hash)?;
        wtxn.commit()?;
        Ok(())
    }

    /// Deletes expired sessions; returns how many.
    pub fn prune_sessions(&self, now_ms: u64) -> Result<usize> {
        let mut wtxn = self.write_txn()?;
        let expired: Vec<Vec<u8>> = self
            .sessions
            .iter(&wtxn)?
            .filter_map(|r| r.ok())
            .filter(|(_, v)| be_u64(v) <= now_ms)
            .map(|(k, _)| k.to_vec())
            .collect();
        for k in &expired {
            self.sessions.delete(&mut wtxn, k)?;
        }
        wtxn.commit()?;
        Ok(expired.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_store;

    #[test]
    fn sessions_expire_and_a_password_reset_ends_them() {
        let (store, dir) = temp_store();
        assert_eq!(store.admin_password().unwrap(), None);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        store.create_session(&a, 1_000).unwrap();
        store.create_session(&b, 5_000).unwrap();
        assert!(store.session_valid(&a, 999).unwrap());
        assert!(
            !store.session_valid(&a, 1_000).unwrap(),
            "expiry is exclusive"
        );
        assert!(!store.session_valid(&[3u8; 32], 0).unwrap());
        assert_eq!(store.prune_sessions(2_000).unwrap(), 1);
        assert!(store.session_valid(&b, 2_000).unwrap());
        store.delete_session(&b).unwrap();
        assert!(!store.session_valid(&b, 2_000).unwrap());

        store.create_session(&a, 9_000).unwrap();
        store.set_admin_password("pbkdf2-sha256$1$00$00").unwrap();
        assert_eq!(
            store.admin_password().unwrap().as_deref(),
            Some("pbkdf2-sha256$1$00$00")
        );
        assert!(
            !store.session_valid(&a, 0).unwrap(),
            "reset logs everyone out"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
