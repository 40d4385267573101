//! Contacts: a verified card, a display name and one circle each.

use kith_protocol::{NodeId, Signature, SignedCard};
use rusqlite::{params, OptionalExtension, Row};

use super::{blob32, AuditEvent, Result, Setting, Store, StoreError};

/// A contact as stored: the protocol's view of one (spec §3.1), nothing more.
pub use kith_protocol::endpoint::Contact as StoredContact;

/// A row as SQLite returns it, before the blobs are checked.
struct ContactRow {
    id: Vec<u8>,
    name: String,
    circle: String,
    body: Vec<u8>,
    sig: Vec<u8>,
    added_at: i64,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<ContactRow> {
    Ok(ContactRow {
        id: r.get(0)?,
        name: r.get(1)?,
        circle: r.get(2)?,
        body: r.get(3)?,
        sig: r.get(4)?,
        added_at: r.get(5)?,
    })
}

fn build(row: ContactRow) -> Result<StoredContact> {
    let sig: [u8; 64] = row
        .sig
        .try_into()
        .map_err(|_| StoreError::Corrupt("signature length".into()))?;
    Ok(StoredContact {
        node_id: NodeId(blob32(row.id)?),
        name: row.name,
        circle: row.circle,
        card: SignedCard {
            body: row.body,
            signature: Signature(sig),
        },
        added_at: row.added_at as u64,
    })
}

const COLUMNS: &str = "node_id, name, circle, card, signature, added_at";

impl Store {
    /// Insert a contact, or refresh an existing one's card and name. An existing contact's
    /// circle changes only with [`CircleOnConflict::Replace`].
    pub fn upsert_contact(&self, c: &StoredContact, circle: CircleOnConflict) -> Result<()> {
        upsert(&self.conn(), c, circle)
    }

    /// Forget a contact: it can no longer ask this node anything (its requests are refused
    /// as from a stranger) and is no longer asked. Rules naming it go too; the audit log
    /// keeps what happened. True if it was a contact.
    pub fn remove_contact(&self, id: &NodeId) -> Result<bool> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM policy_rules WHERE subject_kind = 'contact' AND subject = ?1",
            params![id.to_hex()],
        )?;
        let removed = tx.execute(
            "DELETE FROM contacts WHERE node_id = ?1",
            params![&id.0[..]],
        )? > 0;
        tx.commit()?;
        Ok(removed)
    }

    /// Call a contact by another name in this node (its card keeps its own).
    pub fn rename_contact(&self, id: &NodeId, name: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE contacts SET name = ?2 WHERE node_id = ?1",
            params![&id.0[..], name],
        )? > 0)
    }

    pub fn contact(&self, id: &NodeId) -> Result<Option<StoredContact>> {
        let conn = self.read();
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
        self.contacts_where("1")
    }

    /// The contacts matching an SQL condition on the table, by name.
    fn contacts_where(&self, condition: &str) -> Result<Vec<StoredContact>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM contacts WHERE {condition} ORDER BY name, node_id"
        ))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(build).collect()
    }

    /// Every contact's node id, without reading their cards: whom this node can vouch for
    /// in an aggregation (spec §9.6.2).
    pub fn contact_ids(&self) -> Result<std::collections::BTreeSet<NodeId>> {
        let conn = self.read();
        let mut stmt = conn.prepare("SELECT node_id FROM contacts")?;
        let ids = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))?
            .filter_map(|id| id.ok()?.try_into().ok().map(NodeId))
            .collect();
        Ok(ids)
    }

    /// Replace a contact's card after a checked update (spec §8.6.3 steps 4–5), in one
    /// transaction, only if the card held is still `held` (no concurrent update stored
    /// another); if it `moved` (its audit entry), only if fewer than `limit` such entries
    /// of it were recorded in the 24 hours before `now`, recording this one. Name and
    /// circle stay. Whether it was replaced.
    pub fn replace_contact_card(
        &self,
        id: &NodeId,
        held: &SignedCard,
        card: &SignedCard,
        moved: Option<&AuditEvent<'_>>,
        now: u64,
        limit: u32,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if let Some(entry) = moved {
            let since = kith_protocol::budget::window_start(now);
            if super::audit::count_since(&tx, entry.event, Some(id), since)? >= limit {
                return Ok(false);
            }
            super::audit::insert(&tx, now, entry)?;
        }
        let replaced = tx.execute(
            "UPDATE contacts SET card = ?2, signature = ?3 WHERE node_id = ?1 AND signature = ?4",
            params![
                &id.0[..],
                card.body,
                &card.signature.0[..],
                &held.signature.0[..]
            ],
        )?;
        if replaced == 0 {
            return Ok(false);
        }
        tx.commit()?;
        Ok(true)
    }

    /// Record that this node's card carries `announced` (comma-separated addresses; setting
    /// `announced`) and, if `advertise` is given, the owner's new setting `advertise`. If
    /// the card's addresses changed since contacts were last told, every contact now needs
    /// the new card (spec §8.6). True if they changed.
    pub fn announce_addresses(&self, advertise: Option<&str>, announced: &str) -> Result<bool> {
        let conn = self.conn();
        let tx = conn.unchecked_transaction()?;
        let before: Option<String> = tx
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![Setting::Announced.key()],
                |r| r.get(0),
            )
            .optional()?;
        // No record yet, but contacts: a node upgraded from before card updates, which
        // cannot know what they were told; they are sent the card once.
        let has_contacts = || -> rusqlite::Result<bool> {
            tx.query_row("SELECT EXISTS (SELECT 1 FROM contacts)", [], |r| r.get(0))
        };
        let changed = match before.as_deref() {
            Some(b) => b != announced,
            None => has_contacts()?,
        };
        let advertise = advertise.map(|a| (Setting::Advertise.key(), a));
        for (key, value) in advertise
            .into_iter()
            .chain([(Setting::Announced.key(), announced)])
        {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        if changed {
            tx.execute(
                "UPDATE contacts SET card_unsent = 1 WHERE card_unsent = 0",
                [],
            )?;
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Contacts that have not acknowledged this node's current card (spec §8.6).
    pub fn contacts_without_current_card(&self) -> Result<Vec<StoredContact>> {
        self.contacts_where("card_unsent = 1")
    }

    /// `id` acknowledged a card carrying `announced`: it has the current card unless the
    /// addresses changed again meanwhile.
    pub fn card_delivered(&self, id: &NodeId, announced: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE contacts SET card_unsent = 0 WHERE node_id = ?1 AND card_unsent = 1
             AND (SELECT value FROM settings WHERE key = ?3) = ?2",
            params![&id.0[..], announced, Setting::Announced.key()],
        )?;
        Ok(())
    }

    /// Contacts that said this node is not their contact, so are not sent its card.
    pub fn contacts_refusing_card(&self) -> Result<Vec<StoredContact>> {
        self.contacts_where("card_unsent = 2")
    }

    /// `id` answered that this node is not its contact: it is not sent cards any more,
    /// until it is stored again (a new invite).
    pub fn card_refused(&self, id: &NodeId) -> Result<()> {
        self.conn().execute(
            "UPDATE contacts SET card_unsent = 2 WHERE node_id = ?1 AND card_unsent = 1",
            params![&id.0[..]],
        )?;
        Ok(())
    }

    pub fn contact_count(&self) -> Result<u32> {
        Ok(self
            .read()
            .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))?)
    }
}

/// What to do with the circle of a contact that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircleOnConflict {
    /// Keep the owner's earlier choice (a contact cannot move itself by redeeming a code).
    Keep,
    /// The owner chose a circle explicitly.
    Replace,
}

pub(super) fn upsert(
    conn: &rusqlite::Connection,
    c: &StoredContact,
    circle: CircleOnConflict,
) -> Result<()> {
    conn.execute(
        "INSERT INTO contacts (node_id, name, circle, card, signature, added_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (node_id) DO UPDATE SET
            name = excluded.name,
            circle = CASE WHEN ?7 THEN excluded.circle ELSE contacts.circle END,
            card = excluded.card, signature = excluded.signature,
            card_unsent = CASE WHEN contacts.card_unsent = 2 THEN 0 ELSE contacts.card_unsent END",
        params![
            &c.node_id.0[..],
            c.name,
            c.circle,
            c.card.body,
            &c.card.signature.0[..],
            c.added_at as i64,
            circle == CircleOnConflict::Replace
        ],
    )?;
    Ok(())
}
