//! A running node: its endpoints, their accept loops and its background tasks. The state
//! every service uses is in [`crate::shared`]; protocol decisions live in `kith-protocol`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_client::transport::CLOSE_SHUTDOWN;
use kith_protocol::{Identity, NodeId, ALPN_APP, ALPN_PEER};
use tokio::task::JoinHandle;

use crate::app_service::AppService;
use crate::data_dir::{default_api_addr, local_api_addr, DataDir};
use crate::error::NodeError;
use crate::peer_service::{self, PeerService};
use crate::router::Router;
pub use crate::shared::NodeOptions;
#[cfg(feature = "peer-extension")]
pub use crate::shared::PeerExtension;
use crate::shared::Shared;
use crate::shutdown::Shutdown;
use crate::store::{Setting, Store};
use crate::unix_now;

/// A running kith node. Dropping it stops accepting connections; [`Node::shutdown`] also
/// closes the open ones and waits for the port to be released.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    /// The accept loop of each endpoint.
    accepting: Vec<JoinHandle<()>>,
    sweeper: JoinHandle<()>,
    /// Sends the current card to contacts that have not acknowledged it (spec §8.6).
    announcer: JoinHandle<()>,
    data_dir: DataDir,
    /// Held while the node runs: a second daemon on the directory is refused.
    lock: Option<crate::data_dir::DirLock>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        for task in &self.accepting {
            task.abort();
        }
        self.sweeper.abort();
        self.announcer.abort();
    }
}

/// How often expired responder sessions are wiped even when no request comes.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl Node {
    /// Start the node stored in `dir`, listening where `init` said (or on `listen_override`).
    pub async fn start(
        dir: &DataDir,
        listen_override: Option<SocketAddr>,
    ) -> Result<Node, NodeError> {
        Self::start_with(dir, listen_override, NodeOptions::default()).await
    }

    /// [`Node::start`] with options other than the defaults.
    pub async fn start_with(
        dir: &DataDir,
        listen_override: Option<SocketAddr>,
        options: NodeOptions,
    ) -> Result<Node, NodeError> {
        let identity = dir.load_identity()?;
        let lock = dir.lock()?;
        dir.check_secret_modes()?;
        let store = Store::open(&dir.database())?;
        dir.check_binding(&store, &identity)?;
        let name = store
            .setting(Setting::Name)?
            .ok_or_else(|| NodeError::Config("node has no name".into()))?;
        let listen: SocketAddr = match listen_override {
            Some(a) => a,
            None => store
                .setting(Setting::Listen)?
                .ok_or_else(|| NodeError::Config("node has no listen address".into()))?
                .parse()
                .map_err(|_| NodeError::Config("stored listen address is invalid".into()))?,
        };
        let server = crate::tls_server::server_config(&identity, &[ALPN_PEER])?;
        let endpoint = bind_endpoint(&identity, server, listen, "--listen")?;
        let bound = endpoint
            .local_addr()
            .map_err(|e| NodeError::io(std::path::Path::new("endpoint"), e))?;
        let (app_endpoint, api_bound) = bind_api(dir, &store, &identity, &options, bound)?;
        // Advertise what init recorded; a port of 0 there means "whatever we bound". If that
        // differs from what contacts were last told, they are sent the new card (spec §8.6).
        let advertise = crate::card_updates::advertised(
            &store.setting(Setting::Advertise)?.unwrap_or_default(),
            bound,
            listen_override.is_some(),
        );
        store.announce_addresses(None, &advertise.join(","))?;
        let card = crate::card_updates::sign_card(&identity, &name, advertise)?;
        let used_queries = store.used_queries(kith_protocol::budget::window_start(unix_now()))?;
        let api_addr = local_api_addr(api_bound);
        let shared = Arc::new(Shared {
            identity,
            name,
            card: std::sync::RwLock::new(card),
            card_push: Default::default(),
            store,
            endpoint: endpoint.clone(),
            app_endpoint: app_endpoint.clone(),
            peer_addr: bound,
            api_addr,
            started: Instant::now(),
            peers: Mutex::new(HashMap::new()),
            retiring: Default::default(),
            agg_sessions: Default::default(),
            answered_asks: Default::default(),
            budget: Default::default(),
            app_connections: Default::default(),
            peer_connections: Default::default(),
            options,
            answered_bytes: Default::default(),
            round_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
            serve_peer: serve_back,
            shutdown: Default::default(),
        });
        shared.agg_sessions.load_used(used_queries);
        // Tell local clients where the API is, in case the port was chosen at bind time.
        crate::data_dir::write_private(&dir.api_addr_file(), api_addr.to_string().as_bytes())?;
        let accepting = Router::new(shared.clone())
            .accept(&shared.endpoint, ALPN_PEER, PeerService)
            .accept(&shared.app_endpoint, ALPN_APP, AppService)
            .spawn();
        let shutdown = shared.shutdown.clone();
        let sweeper = tokio::spawn(sweep(Arc::downgrade(&shared), shutdown.clone()));
        let announcer = tokio::spawn(announce(Arc::downgrade(&shared), shutdown));
        tracing::info!(node = %shared.identity.node_id().short(), %bound, "node listening");
        Ok(Node {
            shared,
            accepting,
            sweeper,
            announcer,
            data_dir: dir.clone(),
            lock: Some(lock),
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.shared.identity.node_id()
    }
    pub fn name(&self) -> &str {
        &self.shared.name
    }
    /// Where contacts reach this node.
    pub fn peer_addr(&self) -> SocketAddr {
        self.shared.peer_addr
    }
    /// Where apps on this machine reach this node.
    pub fn api_addr(&self) -> SocketAddr {
        self.shared.api_addr
    }

    /// Public-key operations this node has performed as a responder in aggregations.
    pub fn aggregation_work(&self) -> kith_protocol::aggregation::CryptoWork {
        self.shared.agg_sessions.work()
    }

    /// Aggregations this node holds secrets for as a responder; expired ones are wiped
    /// within a second of their deadline.
    pub fn open_aggregations(&self) -> usize {
        self.shared.agg_sessions.open_count()
    }

    /// Bytes of the frames (length prefix included) this node has sent answering other
    /// nodes' requests since it started.
    pub fn answered_bytes(&self) -> u64 {
        self.shared
            .answered_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Statistics of the open connection to `peer`, if there is one.
    pub fn connection_stats(&self, peer: &NodeId) -> Option<quinn::ConnectionStats> {
        let peers = self.shared.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.get(peer).map(|c| c.stats())
    }

    /// One request/response exchange with the contact `peer`, on the connection kith
    /// itself uses (spec §4.5). `payload` is a whole frame body; for an embedder's
    /// [`PeerExtension`] on the other side.
    #[cfg(feature = "peer-extension")]
    pub async fn exchange_with_contact(
        &self,
        peer: NodeId,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        let contact = self
            .shared
            .store
            .contact(&peer)
            .map_err(|e| e.to_string())?
            .ok_or("not a contact")?;
        let addresses = contact.card.addresses();
        crate::peers::request(&self.shared, peer, &addresses, payload).await
    }

    /// Close every connection and stop. Committed data is already on disk. When this
    /// returns the UDP port is free again (bounded wait), so a restart can bind it.
    pub async fn shutdown(mut self) {
        // Nothing new is taken; requests in flight get a bounded time to finish (the
        // accept loops drain their connections), then their declines are written.
        self.shared.shutdown.cancel();
        for task in std::mem::take(&mut self.accepting) {
            let _ = task.await;
        }
        self.shared.budget.flush(&self.shared.store);
        let endpoints = [
            self.shared.endpoint.clone(),
            self.shared.app_endpoint.clone(),
        ];
        for e in &endpoints {
            e.close(CLOSE_SHUTDOWN.into(), b"shutdown");
        }
        for e in &endpoints {
            let _ = tokio::time::timeout(Duration::from_secs(2), e.wait_idle()).await;
        }
        // Connection tasks hold the shared state, and so the socket, until they see the close.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Arc::strong_count(&self.shared) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let sockets: Vec<SocketAddr> = endpoints
            .iter()
            .filter_map(|e| e.local_addr().ok())
            .collect();
        drop(endpoints);
        let api_addr_file = self.data_dir.api_addr_file();
        // The directory stays ours until the sockets are gone and api.addr removed, so that
        // a daemon started meanwhile cannot have its api.addr deleted by us.
        let lock = self.lock.take();
        drop(self);
        // quinn's endpoint driver closes each socket on its next poll.
        for addr in sockets {
            while std::net::UdpSocket::bind(addr).is_err() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let _ = std::fs::remove_file(api_addr_file);
        drop(lock);
        tracing::info!("node stopped");
    }
}

/// Bind the owner/app API's endpoint (spec §10.1): on this machine unless told otherwise,
/// so that a public peer address never exposes it. A port chosen now is kept, and written
/// into the owner's credential, which `init` wrote without one.
fn bind_api(
    dir: &DataDir,
    store: &Store,
    identity: &Identity,
    options: &NodeOptions,
    peer: SocketAddr,
) -> Result<(quinn::Endpoint, SocketAddr), NodeError> {
    let stored =
        match store.setting(Setting::Api)? {
            Some(a) => Some(a.parse::<SocketAddr>().map_err(|_| {
                NodeError::Config(format!("the stored API address {a:?} is invalid"))
            })?),
            None => None,
        };
    let listen = options
        .api
        .or(stored)
        .unwrap_or_else(|| default_api_addr(peer));
    let server = crate::tls_server::server_config(identity, &[ALPN_APP])?;
    let endpoint = bind_endpoint(identity, server, listen, "--api")?;
    let bound = endpoint
        .local_addr()
        .map_err(|e| NodeError::io(std::path::Path::new("endpoint"), e))?;
    if options.api.is_none() && stored.is_none_or(|a| a.port() == 0) {
        store.set_setting(Setting::Api, &bound.to_string())?;
        let path = dir.owner_credential();
        if let Ok(mut owner) = kith_client::Credential::load(&path) {
            owner.api_addr = local_api_addr(bound);
            owner
                .save(&path)
                .map_err(|e| NodeError::Config(e.to_string()))?;
        }
    }
    Ok((endpoint, bound))
}

/// Serve the requests a peer sends back on a connection this node opened (spec §4.5).
fn serve_back(shared: Arc<Shared>, conn: quinn::Connection, peer: NodeId) {
    tokio::spawn(peer_service::serve_streams(shared, conn, peer));
}

/// Wipe expired responder sessions and close retired connections, every second, until the
/// node is gone.
async fn sweep(weak: std::sync::Weak<Shared>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    while shutdown.run_until(tick.tick()).await.is_some() {
        let Some(shared) = weak.upgrade() else { return };
        shared.agg_sessions.sweep(Instant::now());
        crate::peers::close_retired(&shared, Instant::now());
    }
}

/// Send the current card to contacts that have not acknowledged it (spec §8.6): at start,
/// then every 10 minutes, until the node is gone.
async fn announce(weak: std::sync::Weak<Shared>, shutdown: Shutdown) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let Some(report) = shutdown.run_until(crate::card_updates::push(&shared)).await else {
            return;
        };
        drop(shared);
        if !report.unreached.is_empty() {
            tracing::info!(
                waiting = report.unreached.len(),
                "card update not yet acknowledged; trying again in 10 minutes"
            );
        }
        let retry = tokio::time::sleep(crate::card_updates::RETRY_EVERY);
        if shutdown.run_until(retry).await.is_none() {
            return;
        }
    }
}

/// HKDF label of the QUIC stateless-reset key (spec §4.4).
pub const STATELESS_RESET_LABEL: &str = "kith/v1/quic-stateless-reset";

/// Bind the UDP endpoint. The stateless-reset key is derived from the identity, so after a
/// crash and restart this node can still reset its peers' stale connections, and they
/// reconnect at once instead of waiting for an idle timeout.
fn bind_endpoint(
    identity: &Identity,
    server: quinn::ServerConfig,
    listen: SocketAddr,
    flag: &str,
) -> Result<quinn::Endpoint, NodeError> {
    let io_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::AddrInUse => NodeError::Config(format!(
            "{listen} is already in use (by another kith node or program); choose another \
             address with `kith run {flag} ADDR`"
        )),
        std::io::ErrorKind::AddrNotAvailable => NodeError::Config(format!(
            "{listen} is not an address of this machine; choose another with `kith run {flag} \
             ADDR`"
        )),
        _ => NodeError::io(std::path::Path::new(&listen.to_string()), e),
    };
    let reset_key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        identity.derive_key(STATELESS_RESET_LABEL).as_ref(),
    );
    let config = quinn::EndpointConfig::new(Arc::new(reset_key));
    let socket = std::net::UdpSocket::bind(listen).map_err(io_err)?;
    let runtime = quinn::default_runtime()
        .ok_or_else(|| NodeError::Config("no async runtime to run the QUIC endpoint on".into()))?;
    quinn::Endpoint::new(config, Some(server), socket, runtime).map_err(io_err)
}
