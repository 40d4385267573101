//! The responder sessions a node holds (spec §9.8.1, §9.8.2): each behind its own lock,
//! the query ids already used, and one admission at a time per asker. The rules of one
//! session are `kith_protocol::aggregation::session`; the service that drives them is
//! `aggregation_service`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_protocol::aggregation::session::{ResponderSession, SessionKey, UsedQueries};
use kith_protocol::aggregation::CryptoWork;
use kith_protocol::{NodeId, QueryId};

use crate::unix_now;

/// How long a responder keeps an aggregation's state after round 0.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(60);

/// What the node keeps with a session: for the audit entry written when its input is
/// counted, the asker's name and the item.
#[derive(Debug)]
pub(crate) struct Audited {
    pub asker_name: String,
    pub item: String,
}

pub(crate) type Session = ResponderSession<Audited>;

/// A session behind its own lock: the round's crypto runs under it, not under the map's,
/// so sessions of different asks proceed in parallel, and a duplicate of a request waits
/// for the first copy and then gets its reply. `None` while its `Advertise` is being
/// admitted, and after an admission that failed.
///
/// Lock order: a session's lock, then the map's; the map's lock is never held while
/// waiting for a session's (only `try_lock` or a lock nobody else can hold yet).
pub(crate) type SharedSession = Arc<Mutex<Option<Session>>>;

pub(crate) fn lock_session(s: &SharedSession) -> std::sync::MutexGuard<'_, Option<Session>> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Open responder sessions, the query ids already used by each asker, and one admission
/// at a time per asker.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<SessionKey, SharedSession>>,
    used: Mutex<UsedQueries>,
    /// Per asker (contacts only): held while one of its `Advertise`s is admitted, so that
    /// its open sessions are counted without counting reservations that may still fail.
    admitting: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>,
    /// Public-key operations done as a responder since the node started.
    work: Mutex<CryptoWork>,
}

impl Sessions {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, SharedSession>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn used(&self) -> std::sync::MutexGuard<'_, UsedQueries> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember the pairs used before a restart (oldest first, with their Unix times).
    pub(crate) fn load_used(&self, pairs: Vec<(NodeId, QueryId, u64)>) {
        let (now, unix) = (Instant::now(), unix_now());
        let mut used = self.used();
        for (asker, qid, at) in pairs {
            let age = Duration::from_secs(unix.saturating_sub(at));
            let at = now.checked_sub(age).unwrap_or(now);
            used.insert((asker, qid), at, now);
        }
    }

    /// The lock under which `asker`'s `Advertise`s are admitted, one at a time.
    pub(crate) fn admission_lock(&self, asker: NodeId) -> Arc<tokio::sync::Mutex<()>> {
        self.admitting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(asker)
            .or_default()
            .clone()
    }

    /// Drop every session past its deadline or whose admission failed (secrets are wiped
    /// on drop). A finished session stays until its deadline, so that a copy of its last
    /// request still gets its reply. A session busy with a round stays until the next sweep.
    pub(crate) fn sweep(&self, now: Instant) {
        self.lock().retain(|_, s| match s.try_lock() {
            Ok(s) => s.as_ref().is_some_and(|s| s.keep(now)),
            Err(_) => true,
        });
    }

    pub(crate) fn remove(&self, key: &SessionKey) {
        self.lock().remove(key);
    }

    /// Sessions of `asker` that count as open (spec §9.10), other than `except`:
    /// admitted, not finished, not expired. A session busy with a round is open.
    pub(crate) fn open_for(&self, asker: &NodeId, except: &QueryId, now: Instant) -> usize {
        self.lock()
            .iter()
            .filter(|((a, q), _)| a == asker && q != except)
            .filter(|(_, s)| match s.try_lock() {
                Ok(s) => s.as_ref().is_some_and(|s| s.is_open(now)),
                Err(_) => true,
            })
            .count()
    }

    /// Add what a session just did to the node's total.
    pub(crate) fn add_work(&self, done: CryptoWork) {
        *self.work.lock().unwrap_or_else(|p| p.into_inner()) += done;
    }

    /// Public-key operations done as a responder since the node started.
    pub(crate) fn work(&self) -> CryptoWork {
        *self.work.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Responder sessions holding secrets: admitted and not finished (a finished session
    /// keeps only the replies it sent, for their copies, until its deadline). Sessions
    /// being admitted or busy with a round count.
    pub(crate) fn open_count(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| match s.try_lock() {
                Ok(s) => s.as_ref().is_some_and(|s| !s.responder().is_finished()),
                Err(_) => true,
            })
            .count()
    }
}
