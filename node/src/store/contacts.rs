//! Contacts: a verified card, a display name and one circle each.

use kith_protocol::{NodeId, Signature, SignedCard};
use rusqlite::{params, OptionalExtension, Row};

use super::{blob32, Result, Store, StoreError};

/// A contact as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContact {
    pub node_id: NodeId,
    pub name: String,
    pub circle: String,
    pub card: SignedCard,
    pub added_at: u64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<(Vec<u8>, String, String, Vec<u8>, Vec<u8>, i64)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn build(row: (Vec<u8>, String, String, Vec<u8>, Vec<u8>, i64)) -> Result<StoredContact> {
    let (id, name, circle, body, sig, added_at) = row;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| StoreError::Corrupt("signature length".into()))?;
    Ok(StoredContact {
        node_id: NodeId(blob32(id)?),
        name,
        circle,
        card: SignedCard {
            body,
            signature: Signature(sig),
        },
        added_at: added_at as u64,
    })
}

const COLUMNS: &str = "node_id, name, circle, card, signature, added_at";

impl Store {
    /// Insert or refresh a contact (a newer card replaces the old one; the circle is kept
    /// unless `circle` is given).
    pub fn upsert_contact(&self, c: &StoredContact) -> Result<()> {
        upsert(&self.conn(), c)
    }

    pub fn contact(&self, id: &NodeId) -> Result<Option<StoredContact>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM contacts WHERE node_id = ?1"),
                params![&id.0[..]],
                from_row,
            )
            .optional()?;
        row.map(build).transpose()
    }

    pub fn contacts(&self) -> Result<Vec<StoredContact>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM contacts ORDER BY name, node_id"
        ))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(build).collect()
    }

    pub fn contact_count(&self) -> Result<u32> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?)
    }
}

pub(super) fn upsert(conn: &rusqlite::Connection, c: &StoredContact) -> Result<()> {
    conn.execute(
        "INSERT INTO contacts (node_id, name, circle, card, signature, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (node_id) DO UPDATE SET
            name = excluded.name, circle = excluded.circle,
            card = excluded.card, signature = excluded.signature",
        params![
            &c.node_id.0[..],
            c.name,
            c.circle,
            c.card.body,
            &c.card.signature.0[..],
            c.added_at as i64
        ],
    )?;
    Ok(())
}
