//! The node's SQLite store: identity settings, contacts and circles, endorsements, consent
//! rules, invites, app credentials and the audit log.
//!
//! One writer connection behind a mutex, and read-only connections for reads, so that a
//! read never waits behind a write's `fsync`: WAL lets readers see the last committed state
//! while a write is in progress. WAL journal with `synchronous=FULL`, so a committed write
//! survives a crash or a power loss: the budget's record of ε spent (spec §9.10) is a
//! privacy control, and a power cut must not hand an asker back what it used. Every
//! multi-row change is one transaction. Callers run store calls off the async workers
//! (`spawn_blocking`) where a write may wait for the disk.

mod approvals;
mod audit;
mod contacts;
mod credentials;
mod endorsements;
mod invites;
mod migrations;
mod policy;
mod settings;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

pub use audit::{AuditEvent, Event};
pub use contacts::{CircleOnConflict, StoredContact};
pub use credentials::{PairingRefused, Principal};
pub use invites::{RedeemOutcome, StoredInvite};
pub use settings::Setting;

/// Storage failure. Always the local node's problem, never a peer's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database is from a newer kith (schema {found}, this build knows {known})")]
    TooNew { found: i64, known: i64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Most idle read-only connections kept open; more are opened while many reads run at
/// once, and closed after.
const MAX_IDLE_READERS: usize = 4;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The node's database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// Read-only connections to the same file; none for an in-memory store, whose reads
    /// use the writer.
    readers: Option<Readers>,
}

#[derive(Debug)]
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// A connection to read with: a reader, back to the pool when dropped, or the writer.
enum ReadConn<'a> {
    Reader(Option<Connection>, &'a Readers),
    Writer(MutexGuard<'a, Connection>),
}

impl Deref for ReadConn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            ReadConn::Reader(conn, _) => conn.as_ref().expect("held until dropped"),
            ReadConn::Writer(guard) => guard,
        }
    }
}

impl Drop for ReadConn<'_> {
    fn drop(&mut self) {
        if let ReadConn::Reader(conn, readers) = self {
            let mut idle = lock(&readers.idle);
            if idle.len() < MAX_IDLE_READERS {
                idle.extend(conn.take());
            }
        }
    }
}

/// A poisoned lock is safe to reuse here: a panic cannot leave SQLite half-written
/// (transactions roll back on drop).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Store {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        let readers = Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        };
        Self::setup(conn, Some(readers))
    }

    /// An in-memory store, for tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?, None)
    }

    fn setup(mut conn: Connection, readers: Option<Readers>) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            readers,
        })
    }

    /// A connection for reads only: an idle reader, a new one, or (in memory, or if a
    /// reader cannot be opened) the writer.
    fn read(&self) -> ReadConn<'_> {
        let Some(readers) = &self.readers else {
            return ReadConn::Writer(self.conn());
        };
        if let Some(conn) = lock(&readers.idle).pop() {
            return ReadConn::Reader(Some(conn), readers);
        }
        match open_reader(&readers.path) {
            Ok(conn) => ReadConn::Reader(Some(conn), readers),
            Err(e) => {
                tracing::warn!("store: cannot open a reader ({e}); reading on the writer");
                ReadConn::Writer(self.conn())
            }
        }
    }

    /// SQLite's own check of the whole database file: `Ok(())` or the problems it found.
    pub fn integrity_check(&self) -> Result<()> {
        let conn = self.read();
        let mut stmt = conn.prepare("PRAGMA integrity_check")?;
        let problems: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<std::result::Result<_, _>>()?;
        match problems.as_slice() {
            [ok] if ok == "ok" => Ok(()),
            _ => Err(StoreError::Corrupt(problems.join("; "))),
        }
    }

    /// The writer.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        lock(&self.conn)
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

pub(crate) fn blob32(v: Vec<u8>) -> Result<[u8; 32]> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("key column is not 32 bytes".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_protocol::{Endorsement, ItemKey};

    #[test]
    fn reads_see_committed_writes_without_waiting_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).unwrap();
        let item = ItemKey::parse("tag:bike").unwrap();
        store
            .put_endorsement(&Endorsement::new(item.clone(), 1, None, None, 1).unwrap())
            .unwrap();
        // The writer is busy (as during a write's fsync): a read still goes through, on a
        // reader, and sees what was committed.
        let writer = store.conn();
        let shelf = store.endorsements().unwrap();
        assert_eq!(shelf.len(), 1);
        assert_eq!(shelf[0].item, item);
        drop(writer);
        // Readers go back to the pool, at most MAX_IDLE_READERS of them.
        let held: Vec<_> = (0..MAX_IDLE_READERS + 2).map(|_| store.read()).collect();
        assert!(held.iter().all(|r| matches!(r, ReadConn::Reader(..))));
        drop(held);
        let idle = lock(&store.readers.as_ref().unwrap().idle).len();
        assert_eq!(idle, MAX_IDLE_READERS);
    }

    #[test]
    fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).unwrap();
        let reader = store.read();
        assert!(reader.execute("DELETE FROM contacts", []).is_err());
    }
}
