//! The state every service of a running node shares, and how an embedding program runs a
//! node. Below the services: it names their state types, never their functions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_protocol::{Identity, NodeId, SignedCard};

use crate::store::{AuditEvent, Store};

/// How long a request may take to arrive whole once its stream is open, on either endpoint.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the requests a peer sends on a connection this node opened (spec §4.5); set by
/// the node to the peer service, so that outgoing connections can be answered on.
pub(crate) type ServePeer = fn(Arc<Shared>, quinn::Connection, NodeId);

/// State shared by the node's tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub identity: Identity,
    pub name: String,
    /// This node's current card: what invites and card updates carry (spec §3.1, §8.6).
    pub card: std::sync::RwLock<SignedCard>,
    /// Held while the card is being sent to contacts: one push at a time.
    pub card_push: tokio::sync::Mutex<()>,
    pub store: Store,
    /// The peer endpoint: contacts and strangers, and this node's own outgoing connections.
    pub endpoint: quinn::Endpoint,
    /// The owner/app API's endpoint (spec §10.1).
    pub app_endpoint: quinn::Endpoint,
    pub peer_addr: SocketAddr,
    pub api_addr: SocketAddr,
    pub started: Instant,
    /// Open connections to contacts, reused for every exchange (spec §4.5).
    pub peers: Mutex<HashMap<NodeId, quinn::Connection>>,
    /// Connections replaced in `peers`, and when to close them (spec §4.5). Held here,
    /// not by a task, so that a node shutting down releases them with its state.
    pub retiring: Mutex<Vec<(Instant, quinn::Connection)>>,
    /// Aggregations this node is taking part in as a responder.
    pub agg_sessions: crate::sessions::Sessions,
    /// Plain asks answered in the last minute, for their copies (spec §8.3.2).
    pub answered_asks: crate::answered_asks::AnsweredAsks,
    /// Per-asker daily budgets and the tally of declines (spec §9.10).
    pub budget: crate::budget::Budget,
    /// Open app connections, so that revoking an app closes them.
    pub app_connections: crate::connections::Connections,
    /// Open peer connections by key (contacts and strangers), each key capped.
    pub peer_connections: crate::connections::Connections,
    pub options: NodeOptions,
    /// Aggregation rounds whose crypto may run at once: one per core. More would only
    /// share the cores, and crowd out the tasks that acknowledge peers' packets.
    pub round_slots: Arc<tokio::sync::Semaphore>,
    /// Bytes of the frames this node has sent answering contacts' requests.
    pub answered_bytes: std::sync::atomic::AtomicU64,
    /// Serves requests on the connections this node opens (the peer service).
    pub serve_peer: ServePeer,
    /// Cancelled when the node shuts down: every long-running task stops.
    pub shutdown: crate::shutdown::Shutdown,
}

/// Answers a contact's request frame that is not a kith peer request: given the contact and
/// the frame, the response frame, or `None` to treat the frame as kith treats any other.
/// Only with the `peer-extension` feature (benchmarks); the `kith` command never has it.
#[cfg(feature = "peer-extension")]
pub type PeerExtension = Arc<dyn Fn(NodeId, &[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// How an embedding program runs a node. The `kith` command uses the defaults.
#[derive(Clone)]
pub struct NodeOptions {
    /// How long a responder keeps an aggregation's secrets after round 0 (spec §9.8.2).
    pub session_lifetime: Duration,
    /// Serve the owner/app API here instead of where `init` said (`kith run --api`).
    pub api: Option<SocketAddr>,
    /// Consulted first for every request frame from a contact. Benchmarks use it to
    /// compare kith with a protocol without privacy on the same connections; it exists
    /// only with the `peer-extension` feature, which the `kith` command is built without.
    #[cfg(feature = "peer-extension")]
    pub peer_extension: Option<PeerExtension>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            session_lifetime: crate::sessions::SESSION_LIFETIME,
            api: None,
            #[cfg(feature = "peer-extension")]
            peer_extension: None,
        }
    }
}

impl std::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("NodeOptions");
        d.field("session_lifetime", &self.session_lifetime)
            .field("api", &self.api);
        #[cfg(feature = "peer-extension")]
        d.field("peer_extension", &self.peer_extension.is_some());
        d.finish()
    }
}

impl Shared {
    /// Record an audit event; a failure to audit is logged, never silently dropped.
    pub fn audit(&self, e: AuditEvent<'_>) {
        self.store.record(&e);
    }
}

impl Shared {
    /// This node's current signed card (spec §3.1).
    pub fn current_card(&self) -> SignedCard {
        self.card.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
