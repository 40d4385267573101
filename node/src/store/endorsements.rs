//! The owner's endorsements, one per item.

use kith_protocol::{Endorsement, ItemKey};
use rusqlite::params;

use super::{Result, Store, StoreError};

impl Store {
    /// Record or replace the endorsement of its item.
    pub fn put_endorsement(&self, e: &Endorsement) -> Result<()> {
        self.conn().execute(
            "INSERT INTO endorsements (item, count, rating, note, since) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (item) DO UPDATE SET count = excluded.count, rating = excluded.rating,
                note = excluded.note, since = excluded.since",
            params![e.item.to_string(), e.count, e.rating, e.note, e.since as i64],
        )?;
        Ok(())
    }

    /// Remove the endorsement of `item`; whether one existed.
    pub fn remove_endorsement(&self, item: &ItemKey) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM endorsements WHERE item = ?1",
            params![item.to_string()],
        )? > 0)
    }

    pub fn endorsements(&self) -> Result<Vec<Endorsement>> {
        let conn = self.read();
        let mut stmt = conn
            .prepare("SELECT item, count, rating, note, since FROM endorsements ORDER BY item")?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, Option<u8>>(2)?,
                    r.get(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(item, count, rating, note, since)| {
                let item = ItemKey::parse(&item)
                    .map_err(|e| StoreError::Corrupt(format!("item {item:?}: {e}")))?;
                Ok(Endorsement {
                    item,
                    count,
                    rating,
                    note,
                    since: since as u64,
                })
            })
            .collect()
    }
}
