//! Accepting connections: one handler per ALPN, registered on a router (the shape of
//! iroh's `Router` and `ProtocolHandler`), all stopped by the node's [`Shutdown`] token.
//! A new transport or service registers here; the node does not change.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kith_client::transport::{self, CLOSE_UNAUTHORIZED};
use kith_protocol::NodeId;
use tokio::task::{JoinHandle, JoinSet};

use crate::connections::MAX_CONNECTIONS;
use crate::shared::Shared;
use crate::shutdown::Shutdown;

/// How long connections get to finish their requests in flight after shutdown before their
/// tasks are aborted.
const DRAIN: Duration = Duration::from_secs(2);

/// A connection's service until it ends.
pub(crate) type Serving = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The service of one ALPN.
pub(crate) trait Handler: Send + Sync + 'static {
    /// Serve `conn`, whose TLS handshake authenticated `key`, until it ends.
    fn serve(&self, shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) -> Serving;
}

/// Endpoints, each with the handlers of the ALPNs it offers.
pub(crate) struct Router {
    shared: Arc<Shared>,
    routes: Vec<(quinn::Endpoint, Routes)>,
}

type Routes = HashMap<Vec<u8>, Arc<dyn Handler>>;

impl Router {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Router {
            shared,
            routes: Vec::new(),
        }
    }

    /// Serve connections of `alpn` on `endpoint` with `handler`. The endpoint's TLS
    /// configuration must offer `alpn`; one that arrives with an ALPN not registered here
    /// is closed.
    pub(crate) fn accept(
        mut self,
        endpoint: &quinn::Endpoint,
        alpn: &[u8],
        handler: impl Handler,
    ) -> Self {
        let handler: Arc<dyn Handler> = Arc::new(handler);
        match self.routes.iter_mut().find(|(e, _)| same(e, endpoint)) {
            Some((_, routes)) => {
                routes.insert(alpn.to_vec(), handler);
            }
            None => {
                let routes = HashMap::from([(alpn.to_vec(), handler)]);
                self.routes.push((endpoint.clone(), routes));
            }
        }
        self
    }

    /// One accept loop per endpoint, until the node's shutdown.
    pub(crate) fn spawn(self) -> Vec<JoinHandle<()>> {
        self.routes
            .into_iter()
            .map(|(endpoint, routes)| {
                let shared = self.shared.clone();
                tokio::spawn(accept_loop(shared, endpoint, Arc::new(routes)))
            })
            .collect()
    }
}

fn same(a: &quinn::Endpoint, b: &quinn::Endpoint) -> bool {
    matches!((a.local_addr(), b.local_addr()), (Ok(x), Ok(y)) if x == y)
}

/// Accept connections on `endpoint` until shutdown, at most [`MAX_CONNECTIONS`] at once,
/// each served by its ALPN's handler; then give them [`DRAIN`] to end (handlers stop
/// taking requests at shutdown and finish those in flight), and abort what is left.
async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint, routes: Arc<Routes>) {
    let shutdown: Shutdown = shared.shutdown.clone();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    while let Some(Some(incoming)) = shutdown.run_until(endpoint.accept()).await {
        while connections.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "connection limit reached; refusing {}",
                incoming.remote_address()
            );
            incoming.refuse();
            continue;
        };
        let (shared, routes) = (shared.clone(), routes.clone());
        connections.spawn(async move {
            let _slot = slot;
            route(shared, incoming, &routes).await;
        });
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

/// Finish the handshake and hand the connection to its ALPN's handler.
async fn route(shared: Arc<Shared>, incoming: quinn::Incoming, routes: &Routes) {
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
    let handler = transport::alpn(&conn).and_then(|alpn| routes.get(&alpn).cloned());
    match handler {
        Some(handler) => handler.serve(shared, conn, key).await,
        None => conn.close(CLOSE_UNAUTHORIZED.into(), b"unknown ALPN"),
    }
}
