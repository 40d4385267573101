//! Key/value node settings, each named by a [`Setting`]: the owner's (`kith settings`) and
//! the node's own records (name, addresses, the node id it belongs to).

use rusqlite::{params, OptionalExtension};

use super::{Result, Store};

/// Every key of the settings table, spelled once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    /// The owner's display name (`init --name`).
    Name,
    /// The peer address to bind (`init --listen`).
    Listen,
    /// The addresses the owner asked to advertise, comma-separated (spec §8.6).
    Advertise,
    /// The addresses contacts were last told, comma-separated (spec §8.6).
    Announced,
    /// Where the owner/app API listens (spec §10.1).
    Api,
    /// The node id this database belongs to.
    NodeId,
    MinCohort,
    Epsilon,
    AsksPerDay,
    EpsilonPerDay,
}

impl Setting {
    /// The settings the owner changes with `kith settings set` (`SetSetting`, spec §9.10),
    /// in the order `kith settings list` shows them.
    pub const OWNER: [Setting; 5] = [
        Setting::Advertise,
        Setting::MinCohort,
        Setting::Epsilon,
        Setting::AsksPerDay,
        Setting::EpsilonPerDay,
    ];

    /// The key, as stored and as the owner types it.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Name => "name",
            Setting::Listen => "listen",
            Setting::Advertise => "advertise",
            Setting::Announced => "announced",
            Setting::Api => "api",
            Setting::NodeId => "node_id",
            Setting::MinCohort => "min-cohort",
            Setting::Epsilon => "epsilon",
            Setting::AsksPerDay => "asks-per-day",
            Setting::EpsilonPerDay => "epsilon-per-day",
        }
    }

    /// A setting the owner may change, by the key they typed.
    pub fn owner_key(key: &str) -> Option<Setting> {
        Self::OWNER.into_iter().find(|s| s.key() == key)
    }
}

impl Store {
    pub fn setting(&self, key: Setting) -> Result<Option<String>> {
        Ok(self
            .read()
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key.key()],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn set_setting(&self, key: Setting, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key.key(), value],
        )?;
        Ok(())
    }
}
