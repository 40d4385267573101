//! Keys allowed on the app API: the owner's, and paired apps' with their scopes
//! (spec §10.5); pairing codes; the asks each app made.

use kith_protocol::app::{AppInfo, AppScope};
use kith_protocol::wire::{decode_exact, encode_value};
use kith_protocol::{NodeId, QueryId};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{blob32, Result, Store, StoreError};

/// Who holds an app-API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The owner: every request.
    Owner { name: String },
    /// A paired app: what its scope allows.
    App { name: String, scope: AppScope },
}

impl Principal {
    pub fn name(&self) -> &str {
        match self {
            Principal::Owner { name } | Principal::App { name, .. } => name,
        }
    }
}

/// Why a pairing code was not redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingRefused {
    Unknown,
    Expired,
    Used,
    /// A live app already has the name.
    NameTaken,
    /// The redeeming key is already a credential (of any role, revoked or not).
    SameKey,
}

fn scope_of(bytes: &[u8]) -> Result<AppScope> {
    decode_exact(bytes).map_err(|e| StoreError::Corrupt(format!("app scope: {e}")))
}

impl Store {
    /// Register an owner credential key.
    pub fn add_owner_credential(&self, key: &NodeId, name: &str, now: u64) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO credentials (key, name, role, created_at) VALUES (?1, ?2, 'owner', ?3)",
            params![&key.0[..], name, now as i64],
        )?;
        Ok(())
    }

    /// Who holds `key`, if it may use the app API (not revoked).
    pub fn principal(&self, key: &NodeId) -> Result<Option<Principal>> {
        let row: Option<(String, String, Option<Vec<u8>>)> = self
            .read()
            .query_row(
                "SELECT name, role, scope FROM credentials WHERE key = ?1 AND revoked_at IS NULL",
                params![&key.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        Ok(match row {
            None => None,
            Some((name, role, scope)) => Some(match (role.as_str(), scope) {
                ("app", Some(bytes)) => Principal::App {
                    name,
                    scope: scope_of(&bytes)?,
                },
                ("owner", None) => Principal::Owner { name },
                // Never owner rights by default.
                _ => {
                    return Err(StoreError::Corrupt(format!(
                        "credential {name}: role {role}"
                    )))
                }
            }),
        })
    }

    /// Whether `key` is a credential that was revoked.
    pub fn credential_revoked(&self, key: &NodeId) -> Result<bool> {
        Ok(self.read().query_row(
            "SELECT EXISTS (SELECT 1 FROM credentials WHERE key = ?1 AND revoked_at IS NOT NULL)",
            params![&key.0[..]],
            |r| r.get(0),
        )?)
    }

    /// Remember a pairing code (by the hash of its secret) for an app to be named `name`.
    pub fn add_pairing(
        &self,
        code_hash: &[u8; 32],
        name: &str,
        scope: &AppScope,
        now: u64,
        expires_at: u64,
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // A new code for a name supersedes the unused ones: only the latest scope can win.
        tx.execute(
            "UPDATE pairings SET used_at = ?2 WHERE name = ?1 AND used_at IS NULL",
            params![name, now as i64],
        )?;
        tx.execute(
            "INSERT INTO pairings (code_hash, name, scope, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &code_hash[..],
                name,
                encode_value(scope),
                now as i64,
                expires_at as i64
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Redeem a pairing code: in one transaction, mark it used and register `key` as the
    /// app it names.
    pub fn redeem_pairing(
        &self,
        code_hash: &[u8; 32],
        key: &NodeId,
        now: u64,
    ) -> Result<std::result::Result<AppInfo, PairingRefused>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, Vec<u8>, i64, Option<i64>)> = tx
            .query_row(
                "SELECT name, scope, expires_at, used_at FROM pairings WHERE code_hash = ?1",
                params![&code_hash[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((name, scope, expires_at, used_at)) = row else {
            return Ok(Err(PairingRefused::Unknown));
        };
        if used_at.is_some() {
            return Ok(Err(PairingRefused::Used));
        }
        if now as i64 > expires_at {
            return Ok(Err(PairingRefused::Expired));
        }
        let taken: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM credentials WHERE name = ?1 AND role = 'app' AND revoked_at IS NULL)",
            params![name],
            |r| r.get(0),
        )?;
        if taken {
            return Ok(Err(PairingRefused::NameTaken));
        }
        let known: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM credentials WHERE key = ?1)",
            params![&key.0[..]],
            |r| r.get(0),
        )?;
        if known {
            return Ok(Err(PairingRefused::SameKey));
        }
        tx.execute(
            "UPDATE pairings SET used_at = ?2 WHERE code_hash = ?1",
            params![&code_hash[..], now as i64],
        )?;
        tx.execute(
            "INSERT INTO credentials (key, name, role, scope, created_at) VALUES (?1, ?2, 'app', ?3, ?4)",
            params![&key.0[..], name, scope, now as i64],
        )?;
        tx.commit()?;
        drop(conn);
        Ok(self
            .apps(now)?
            .into_iter()
            .find(|a| a.key == *key)
            .ok_or(PairingRefused::Unknown))
    }

    /// Every paired app, newest first, with its asks in the 24 hours before `now`.
    pub fn apps(&self, now: u64) -> Result<Vec<AppInfo>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT c.key, c.name, c.scope, c.created_at, c.last_used_at, c.revoked_at,
                    (SELECT count(*) FROM audit a WHERE a.event = ?2 AND a.peer = c.key AND a.at >= ?1)
             FROM credentials c WHERE c.role = 'app' ORDER BY c.created_at DESC, c.name",
        )?;
        let rows = stmt
            .query_map(
                params![
                    now.saturating_sub(24 * 3600) as i64,
                    super::Event::AppAsk.code()
                ],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                        r.get::<_, u32>(6)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(key, name, scope, paired, last, revoked, asks)| {
                Ok(AppInfo {
                    name,
                    key: NodeId(blob32(key)?),
                    scope: scope_of(&scope)?,
                    paired_at: paired as u64,
                    last_used_at: last.map(|t| t as u64),
                    asks_24h: asks,
                    revoked_at: revoked.map(|t| t as u64),
                })
            })
            .collect()
    }

    /// Pairing codes not yet used, expired or superseded, newest first.
    pub fn open_pairings(&self, now: u64) -> Result<Vec<kith_protocol::app::PairingInfo>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT name, scope, created_at, expires_at FROM pairings
             WHERE used_at IS NULL AND expires_at > ?1 ORDER BY created_at DESC, name",
        )?;
        let rows = stmt
            .query_map(params![now as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(name, scope, created, expires)| {
                Ok(kith_protocol::app::PairingInfo {
                    name,
                    scope: scope_of(&scope)?,
                    created_at: created as u64,
                    expires_at: expires as u64,
                })
            })
            .collect()
    }

    /// Cancel the open pairing code for `name`; whether there was one.
    pub fn cancel_pairing(&self, name: &str, now: u64) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE pairings SET used_at = ?2 WHERE name = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![name, now as i64],
        )? > 0)
    }

    /// Revoke the live app named `name`; its key, if there was one.
    pub fn revoke_app(&self, name: &str, now: u64) -> Result<Option<NodeId>> {
        let conn = self.conn();
        let key: Option<Vec<u8>> = conn
            .query_row(
                "UPDATE credentials SET revoked_at = ?2
                 WHERE name = ?1 AND role = 'app' AND revoked_at IS NULL RETURNING key",
                params![name, now as i64],
                |r| r.get(0),
            )
            .optional()?;
        key.map(|k| blob32(k).map(NodeId)).transpose()
    }

    pub fn touch_credential(&self, key: &NodeId, now: u64) -> Result<()> {
        self.conn().execute(
            "UPDATE credentials SET last_used_at = ?2 WHERE key = ?1",
            params![&key.0[..], now as i64],
        )?;
        Ok(())
    }

    /// Remember that app `key` made the ask `query_id`, so it may see its updates.
    pub fn add_app_query(&self, key: &NodeId, query_id: &QueryId) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO app_queries (key, query_id) VALUES (?1, ?2)",
            params![&key.0[..], &query_id.0[..]],
        )?;
        Ok(())
    }

    pub fn app_queries(&self, key: &NodeId) -> Result<Vec<QueryId>> {
        let conn = self.read();
        let mut stmt = conn.prepare("SELECT query_id FROM app_queries WHERE key = ?1")?;
        let rows = stmt
            .query_map(params![&key.0[..]], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|q| {
                q.try_into()
                    .map(QueryId)
                    .map_err(|_| StoreError::Corrupt("app query id".into()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_protocol::ItemPattern;

    fn scope() -> AppScope {
        AppScope {
            ask: vec![ItemPattern::parse("*").unwrap()],
            named: false,
            daily_limit: None,
        }
    }

    #[test]
    fn pairing_codes_expire_are_single_use_and_names_stay_unique() {
        let store = Store::open_in_memory().unwrap();
        let (first, code, late) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let (a, b) = (NodeId([8; 32]), NodeId([9; 32]));
        // A second code for a name supersedes the first while it is unused.
        store
            .add_pairing(&first, "shop", &scope(), 90, 700)
            .unwrap();
        store
            .add_pairing(&code, "shop", &scope(), 100, 700)
            .unwrap();
        store
            .add_pairing(&late, "late", &scope(), 100, 700)
            .unwrap();
        let refused = |hash: &[u8; 32], key: &NodeId, now| {
            store.redeem_pairing(hash, key, now).unwrap().unwrap_err()
        };
        assert_eq!(refused(&first, &a, 200), PairingRefused::Used);
        assert_eq!(refused(&late, &a, 701), PairingRefused::Expired);
        assert_eq!(refused(&[7; 32], &a, 200), PairingRefused::Unknown);
        let info = store.redeem_pairing(&code, &a, 700).unwrap().unwrap();
        assert_eq!((info.name.as_str(), info.key), ("shop", a));
        assert_eq!(refused(&code, &b, 200), PairingRefused::Used);
        let twin = [4u8; 32];
        store
            .add_pairing(&twin, "shop", &scope(), 200, 800)
            .unwrap();
        assert_eq!(refused(&twin, &b, 200), PairingRefused::NameTaken);
        let other = [5u8; 32];
        store
            .add_pairing(&other, "other", &scope(), 200, 800)
            .unwrap();
        assert_eq!(
            refused(&other, &a, 200),
            PairingRefused::SameKey,
            "one key, one credential"
        );
        assert!(matches!(
            store.principal(&a).unwrap(),
            Some(Principal::App { .. })
        ));
        assert_eq!(store.revoke_app("shop", 300).unwrap(), Some(a));
        assert_eq!(store.principal(&a).unwrap(), None);
        assert!(store.credential_revoked(&a).unwrap());
        // The name is free again once the app is revoked.
        assert!(store.redeem_pairing(&twin, &b, 300).unwrap().is_ok());
    }
}
