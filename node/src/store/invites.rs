//! Invites issued by this node, and their single-use redemption.

use kith_protocol::{InviteId, InviteSecret, NodeId};
use rusqlite::{params, OptionalExtension};

use super::contacts::{upsert, CircleOnConflict, StoredContact};
use super::{Result, Store, StoreError};

/// An invite as stored by its issuer.
#[derive(Debug, Clone)]
pub struct StoredInvite {
    pub id: InviteId,
    pub secret: InviteSecret,
    pub circle: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub used_at: Option<u64>,
    /// Who used it, once used.
    pub used_by: Option<NodeId>,
}

/// The result of trying to redeem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemOutcome {
    Redeemed,
    AlreadyUsed,
}

impl Store {
    pub fn put_invite(&self, inv: &StoredInvite) -> Result<()> {
        self.conn().execute(
            "INSERT INTO invites (id, secret, circle, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&inv.id.0[..], &inv.secret.0[..], inv.circle, inv.created_at as i64, inv.expires_at as i64],
        )?;
        Ok(())
    }

    /// Every invite issued, newest first: id, circle, times, who redeemed it.
    pub fn invites(&self) -> Result<Vec<kith_protocol::app::InviteInfo>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT id, circle, created_at, expires_at, used_at, used_by FROM invites
             ORDER BY created_at DESC, id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<Vec<u8>>>(5)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(id, circle, created, expires, used_at, used_by)| {
                let id: [u8; 16] = id
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("invite id length".into()))?;
                let used_by = match used_by {
                    Some(b) => {
                        Some(NodeId(b.try_into().map_err(|_| {
                            StoreError::Corrupt("invite redeemer length".into())
                        })?))
                    }
                    None => None,
                };
                Ok(kith_protocol::app::InviteInfo {
                    id,
                    circle,
                    created_at: created as u64,
                    expires_at: expires as u64,
                    used_at: used_at.map(|t| t as u64),
                    used_by,
                })
            })
            .collect()
    }

    /// Revoke the unused, unexpired invites whose id starts with `prefix` (hex): they
    /// expire now. How many were revoked.
    pub fn revoke_invites(&self, prefix: &str, now: u64) -> Result<usize> {
        Ok(self.conn().execute(
            "UPDATE invites SET expires_at = ?2
             WHERE used_at IS NULL AND expires_at > ?2 AND lower(hex(id)) LIKE ?1 || '%'",
            params![prefix.to_lowercase(), now as i64],
        )?)
    }

    pub fn invite(&self, id: &InviteId) -> Result<Option<StoredInvite>> {
        let conn = self.read();
        let row = conn
            .query_row(
                "SELECT secret, circle, created_at, expires_at, used_at, used_by
                 FROM invites WHERE id = ?1",
                params![&id.0[..]],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<Vec<u8>>>(5)?,
                    ))
                },
            )
            .optional()?;
        row.map(
            |(secret, circle, created_at, expires_at, used_at, used_by)| {
                let secret: [u8; 32] = secret
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("invite secret".into()))?;
                Ok(StoredInvite {
                    id: *id,
                    secret: InviteSecret(secret),
                    circle,
                    created_at: created_at as u64,
                    expires_at: expires_at as u64,
                    used_at: used_at.map(|u| u as u64),
                    used_by: used_by.map(|b| super::blob32(b).map(NodeId)).transpose()?,
                })
            },
        )
        .transpose()
    }

    /// Atomically mark the invite used by `contact` and add the contact. If another
    /// redemption won the race, nothing changes and `AlreadyUsed` is returned.
    pub fn redeem_invite(
        &self,
        id: &InviteId,
        contact: &StoredContact,
        now: u64,
    ) -> Result<RedeemOutcome> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE invites SET used_at = ?2, used_by = ?3 WHERE id = ?1 AND used_at IS NULL",
            params![&id.0[..], now as i64, &contact.node_id.0[..]],
        )?;
        if changed == 0 {
            return Ok(RedeemOutcome::AlreadyUsed);
        }
        upsert(&tx, contact, CircleOnConflict::Keep)?;
        tx.commit()?;
        Ok(RedeemOutcome::Redeemed)
    }
}
