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

/// Most read-only connections open at once: opened when reads overlap, then kept, idle,
/// between reads. With all of them busy, a read waits for the writer instead: the node's
/// file descriptors and memory stay bounded whatever the load.
const MAX_READERS: usize = 2;
/// Each reader's page cache, in KiB (SQLite's `cache_size` as a negative number): the
/// writer keeps the default; readers serve small lookups.
const READER_CACHE_KIB: i64 = 128;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The node's database.
#[derive(Debug)]
pub struct Store {
    /// Read-only connections to the same file; none for an in-memory store, whose reads
    /// use the writer. Declared before the writer so that they close first: the last
    /// connection to close checkpoints the write-ahead log and removes it, and only the
    /// writer may.
    readers: Option<Readers>,
    conn: Mutex<Connection>,
}

#[derive(Debug)]
struct Readers {
    path: PathBuf,
    pool: Mutex<Pool>,
}

#[derive(Debug, Default)]
struct Pool {
    /// The readers not in use.
    idle: Vec<Connection>,
    /// How many are open in all, in use or not.
    open: usize,
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
            lock(&readers.pool).idle.extend(conn.take());
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
            pool: Mutex::default(),
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

    /// A connection for reads only: an idle reader, a new one, or (in memory, with
    /// [`MAX_READERS`] busy, or if a reader cannot be opened) the writer.
    fn read(&self) -> ReadConn<'_> {
        let Some(readers) = &self.readers else {
            return ReadConn::Writer(self.conn());
        };
        {
            let mut pool = lock(&readers.pool);
            if let Some(conn) = pool.idle.pop() {
                return ReadConn::Reader(Some(conn), readers);
            }
            if pool.open >= MAX_READERS {
                drop(pool);
                return ReadConn::Writer(self.conn());
            }
            pool.open += 1;
        }
        match open_reader(&readers.path) {
            Ok(conn) => ReadConn::Reader(Some(conn), readers),
            Err(e) => {
                lock(&readers.pool).open -= 1;
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
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
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
        // At most MAX_READERS readers: one more read waits for the writer. They stay open,
        // idle, for the next reads.
        let held: Vec<_> = (0..MAX_READERS).map(|_| store.read()).collect();
        assert!(held.iter().all(|r| matches!(r, ReadConn::Reader(..))));
        assert!(matches!(store.read(), ReadConn::Writer(_)));
        drop(held);
        let pool = lock(&store.readers.as_ref().unwrap().pool);
        assert_eq!((pool.idle.len(), pool.open), (MAX_READERS, MAX_READERS));
        drop(pool);
        assert!(matches!(store.read(), ReadConn::Reader(..)));
    }

    #[test]
    fn readers_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("node.db")).unwrap();
        let reader = store.read();
        assert!(reader.execute("DELETE FROM contacts", []).is_err());
    }

    /// A card is replaced only over the one its update was decided on, and a move only
    /// within the day's limit; otherwise nothing is written (spec §8.6.3).
    #[test]
    fn a_card_is_replaced_only_over_the_card_it_was_checked_against() {
        use kith_protocol::{ContactCard, Identity, SignedCard};
        let store = Store::open_in_memory().unwrap();
        let bo = Identity::generate(&mut rand_core::OsRng);
        let card = |address: &str, at: u64| -> SignedCard {
            ContactCard::new(&bo, "Bo", vec![address.into()], at, 1 << 30)
                .unwrap()
                .sign(&bo)
        };
        let (v1, v2, v3) = (
            card("127.0.0.1:1", 10),
            card("127.0.0.1:2", 20),
            card("127.0.0.1:3", 30),
        );
        let contact = StoredContact {
            node_id: bo.node_id(),
            name: "Bo".into(),
            circle: "friends".into(),
            card: v1.clone(),
            added_at: 1,
        };
        store
            .upsert_contact(&contact, CircleOnConflict::Keep)
            .unwrap();
        let moved = AuditEvent {
            event: Event::ContactMoved,
            peer: Some(bo.node_id()),
            peer_name: Some("Bo"),
            item: None,
            detail: "moved".into(),
        };
        let held = |s: &Store| s.contact(&bo.node_id()).unwrap().unwrap().card;
        let moves = |s: &Store| {
            s.audit_count(Event::ContactMoved, &bo.node_id(), 0)
                .unwrap()
        };
        // v3 decided over v1 goes in; v2, also decided over v1, finds v3 and writes nothing.
        assert!(store
            .replace_contact_card(&bo.node_id(), &v1, &v3, Some(&moved), 100, 2)
            .unwrap());
        assert!(!store
            .replace_contact_card(&bo.node_id(), &v1, &v2, Some(&moved), 100, 2)
            .unwrap());
        assert_eq!((held(&store), moves(&store)), (v3.clone(), 1));
        // At the day's limit, a move is not recorded and the card stays.
        assert!(store
            .replace_contact_card(&bo.node_id(), &v3, &v2, Some(&moved), 100, 2)
            .unwrap());
        assert!(!store
            .replace_contact_card(&bo.node_id(), &v2, &v1, Some(&moved), 100, 2)
            .unwrap());
        assert_eq!((held(&store), moves(&store)), (v2, 2));
    }
}
