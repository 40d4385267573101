//! A running node: its endpoints, their accept loops and its background tasks. The state
//! every service uses is in [`crate::shared`]; protocol decisions live in `kith-protocol`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_client::transport::{self, CLOSE_SHUTDOWN, CLOSE_UNAUTHORIZED};
use kith_protocol::{Identity, NodeId, ALPN_APP, ALPN_PEER};
use tokio::task::JoinHandle;

use crate::connections::MAX_CONNECTIONS;
use crate::data_dir::{default_api_addr, local_api_addr, DataDir};
use crate::error::NodeError;
pub use crate::shared::NodeOptions;
#[cfg(feature = "peer-extension")]
pub use crate::shared::PeerExtension;
use crate::shared::Shared;
use crate::store::{Setting, Store};
use crate::{app_service, peer_service, unix_now};

/// A running kith node. Dropping it stops accepting connections; [`Node::shutdown`] also
/// closes the open ones and waits for the port to be released.
#[derive(Debug)]
pub struct Node {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    app_accept: JoinHandle<()>,
    sweeper: JoinHandle<()>,
    /// Sends the current card to contacts that have not acknowledged it (spec §8.6).
    announcer: JoinHandle<()>,
    data_dir: DataDir,
    /// Held while the node runs: a second daemon on the directory is refused.
    lock: Option<crate::data_dir::DirLock>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.accept.abort();
        self.app_accept.abort();
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
        });
        shared.agg_sessions.load_used(used_queries);
        // Tell local clients where the API is, in case the port was chosen at bind time.
        crate::data_dir::write_private(&dir.api_addr_file(), api_addr.to_string().as_bytes())?;
        let accept = tokio::spawn(accept_loop(shared.clone(), shared.endpoint.clone()));
        let app_accept = tokio::spawn(accept_loop(shared.clone(), shared.app_endpoint.clone()));
        let sweeper = tokio::spawn(sweep(Arc::downgrade(&shared)));
        let announcer = tokio::spawn(announce(Arc::downgrade(&shared)));
        tracing::info!(node = %shared.identity.node_id().short(), %bound, "node listening");
        Ok(Node {
            shared,
            accept,
            app_accept,
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
        let addresses = contact.addresses();
        crate::peers::request(&self.shared, peer, &addresses, payload).await
    }

    /// Close every connection and stop. Committed data is already on disk. When this
    /// returns the UDP port is free again (bounded wait), so a restart can bind it.
    pub async fn shutdown(mut self) {
        self.shared.budget.flush(&self.shared.store);
        self.accept.abort();
        self.app_accept.abort();
        self.sweeper.abort();
        self.announcer.abort();
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
    tokio::spawn(async move { peer_service::serve_streams(shared, conn, peer).await });
}

/// Wipe expired responder sessions and close retired connections, every second, until the
/// node is gone.
async fn sweep(weak: std::sync::Weak<Shared>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let Some(shared) = weak.upgrade() else { return };
        shared.agg_sessions.sweep(Instant::now());
        crate::peers::close_retired(&shared, Instant::now());
    }
}

/// Send the current card to contacts that have not acknowledged it (spec §8.6): at start,
/// then every 10 minutes, until the node is gone.
async fn announce(weak: std::sync::Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else { return };
        let report = crate::card_updates::push(&shared).await;
        drop(shared);
        if !report.unreached.is_empty() {
            tracing::info!(
                waiting = report.unreached.len(),
                "card update not yet acknowledged; trying again in 10 minutes"
            );
        }
        tokio::time::sleep(crate::card_updates::RETRY_EVERY).await;
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

/// What a key connecting to the app endpoint is (spec §10.1, §10.5).
enum AppKey {
    Known(crate::store::Principal),
    Revoked,
    /// Not a credential: it may only redeem a pairing code.
    Unknown,
}

fn app_key(shared: &Shared, key: &NodeId) -> Result<AppKey, crate::store::StoreError> {
    Ok(match shared.store.principal(key)? {
        Some(principal) => AppKey::Known(principal),
        None if shared.store.credential_revoked(key)? => AppKey::Revoked,
        None => AppKey::Unknown,
    })
}

/// Accept connections on `endpoint`: the peer endpoint offers only `kith/peer/2`, the app
/// endpoint only `kith/app/2` (each endpoint's TLS configuration refuses the other ALPN).
async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    while let Some(incoming) = endpoint.accept().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "connection limit reached; refusing {}",
                incoming.remote_address()
            );
            incoming.refuse();
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let conn = match incoming.await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!("handshake failed: {e}");
                    return;
                }
            };
            let Some(key) = transport::peer_key(&conn) else {
                conn.close(CLOSE_UNAUTHORIZED.into(), b"no key");
                return;
            };
            match transport::alpn(&conn).as_deref() {
                Some(a) if a == ALPN_PEER => peer_service::serve(shared, conn, key).await,
                Some(a) if a == ALPN_APP => match app_key(&shared, &key) {
                    Ok(AppKey::Revoked) => conn.close(CLOSE_UNAUTHORIZED.into(), b"revoked"),
                    Ok(AppKey::Known(principal)) => {
                        app_service::serve(shared, conn, key, Some(principal)).await
                    }
                    Ok(AppKey::Unknown) => app_service::serve(shared, conn, key, None).await,
                    // Never read a store failure as "unknown": a revoked key would be offered
                    // pairing, and its app told it is not paired.
                    Err(e) => {
                        tracing::error!("store: {e}");
                        conn.close(CLOSE_SHUTDOWN.into(), b"internal error")
                    }
                },
                _ => conn.close(CLOSE_UNAUTHORIZED.into(), b"unknown ALPN"),
            }
        });
    }
}
