//! Connections counted per client key (spec §4.4).

use std::collections::HashMap;
use std::sync::Mutex;

use kith_client::transport::{CLOSE_SHUTDOWN, CLOSE_UNAUTHORIZED};
use kith_protocol::NodeId;

/// Most connections (peers and apps together) served at once; more are refused at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Open connections by the client's key: so that no key can take more than its share of
/// the node's connection slots, and so that revoking an app closes its connections.
#[derive(Debug, Default)]
pub(crate) struct Connections(Mutex<HashMap<NodeId, Vec<quinn::Connection>>>);

/// Most connections one key may hold open at once on one ALPN; the node's
/// [`MAX_CONNECTIONS`] slots are shared by contacts, strangers and apps
/// (spec §4.4).
pub const MAX_CONNECTIONS_PER_KEY: usize = 8;

impl Connections {
    /// Track `conn` under `key`; false (and nothing tracked) if the key already has
    /// [`MAX_CONNECTIONS_PER_KEY`] open.
    pub fn add(&self, key: NodeId, conn: quinn::Connection) -> bool {
        let mut map = self.lock_pruned();
        let list = open_of(&mut map, key);
        if list.len() >= MAX_CONNECTIONS_PER_KEY {
            return false;
        }
        list.push(conn);
        true
    }

    /// Track `conn` under `key`; if the key already has [`MAX_CONNECTIONS_PER_KEY`] open,
    /// close its oldest to make room. A peer that reconnects is thus never locked out by
    /// connections of its own that it no longer uses, and still holds at most the limit.
    pub fn add_closing_oldest(&self, key: NodeId, conn: quinn::Connection) {
        let mut map = self.lock_pruned();
        let list = open_of(&mut map, key);
        if list.len() >= MAX_CONNECTIONS_PER_KEY {
            let oldest = list.remove(0);
            oldest.close(CLOSE_SHUTDOWN.into(), b"too many connections for this key");
        }
        list.push(conn);
    }

    /// The map, with closed connections and keys left without any dropped once it holds
    /// more keys than the node has connection slots: strangers come with a new key each.
    fn lock_pruned(&self) -> std::sync::MutexGuard<'_, HashMap<NodeId, Vec<quinn::Connection>>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > MAX_CONNECTIONS {
            map.retain(|_, list| {
                list.retain(|c| c.close_reason().is_none());
                !list.is_empty()
            });
        }
        map
    }

    /// Close every open connection of `key`.
    pub fn close_all(&self, key: &NodeId, reason: &[u8]) {
        let conns = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key)
            .unwrap_or_default();
        for c in conns {
            c.close(CLOSE_UNAUTHORIZED.into(), reason);
        }
    }
}

/// `key`'s list, its closed connections dropped.
fn open_of(
    map: &mut HashMap<NodeId, Vec<quinn::Connection>>,
    key: NodeId,
) -> &mut Vec<quinn::Connection> {
    let list = map.entry(key).or_default();
    list.retain(|c| c.close_reason().is_none());
    list
}
