//! Connections counted per client key (spec §4.4).

use std::collections::HashMap;
use std::sync::Mutex;

use kith_client::transport::CLOSE_UNAUTHORIZED;
use kith_protocol::NodeId;

/// Open connections by the client's key: so that no key can take more than its share of
/// the node's connection slots, and so that revoking an app closes its connections.
#[derive(Debug, Default)]
pub(crate) struct Connections(Mutex<HashMap<NodeId, Vec<quinn::Connection>>>);

/// Most connections one key may hold open at once on one ALPN; the node's
/// [`crate::node::MAX_CONNECTIONS`] slots are shared by contacts, strangers and apps
/// (spec §4.4).
pub const MAX_CONNECTIONS_PER_KEY: usize = 8;

impl Connections {
    /// Track `conn` under `key`; false (and nothing tracked) if the key already has
    /// [`MAX_CONNECTIONS_PER_KEY`] open.
    pub fn add(&self, key: NodeId, conn: quinn::Connection) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(key).or_default();
        list.retain(|c| c.close_reason().is_none());
        if list.len() >= MAX_CONNECTIONS_PER_KEY {
            return false;
        }
        list.push(conn);
        true
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
