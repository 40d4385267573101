//! Keys allowed on the app API.

use kith_protocol::NodeId;
use rusqlite::{params, OptionalExtension};

use super::{Result, Store};

impl Store {
    /// Register an owner credential key.
    pub fn add_owner_credential(&self, key: &NodeId, name: &str, now: u64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO credentials (key, name, role, created_at) VALUES (?1, ?2, 'owner', ?3)",
            params![&key.0[..], name, now as i64],
        )?;
        Ok(())
    }

    /// The credential's name if `key` may use the app API.
    pub fn credential_name(&self, key: &NodeId) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name FROM credentials WHERE key = ?1 AND revoked_at IS NULL",
                params![&key.0[..]],
                |r| r.get(0),
            )
            .optional()?)
    }
}
