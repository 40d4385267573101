//! Outgoing connections to other nodes, pinned to their keys and reused (spec §4.5).

use std::sync::Arc;
use std::time::Duration;

use kith_client::transport;
use kith_protocol::{NodeId, ALPN_PEER, TLS_SERVER_NAME};

use crate::node::Shared;
use crate::peer_service;

/// How long one connection attempt to one address may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The open connection to `peer`, or a new one to the first of `addresses` that answers.
/// A new connection also serves requests the peer sends back on it.
pub(crate) async fn connection_to(
    shared: &Arc<Shared>,
    peer: NodeId,
    addresses: &[String],
) -> Result<quinn::Connection, String> {
    if let Some(c) = cached(shared, &peer) {
        return Ok(c);
    }
    let cfg =
        transport::client_config(&shared.identity, peer, ALPN_PEER).map_err(|e| e.to_string())?;
    let mut last_err = String::from("no address");
    for addr in addresses {
        let resolved = match tokio::net::lookup_host(addr.as_str()).await {
            Ok(r) => r.collect::<Vec<_>>(),
            Err(e) => {
                last_err = format!("{addr}: {e}");
                continue;
            }
        };
        for sa in resolved {
            let connecting = match shared
                .endpoint
                .connect_with(cfg.clone(), sa, TLS_SERVER_NAME)
            {
                Ok(c) => c,
                Err(e) => {
                    last_err = format!("{sa}: {e}");
                    continue;
                }
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(Ok(conn)) => {
                    remember(shared, peer, conn.clone());
                    let (s, c) = (shared.clone(), conn.clone());
                    tokio::spawn(async move { peer_service::serve_streams(s, c, peer).await });
                    return Ok(conn);
                }
                Ok(Err(e)) => last_err = format!("{sa}: {e}"),
                Err(_) => last_err = format!("{sa}: timed out"),
            }
        }
    }
    Err(last_err)
}

fn cached(shared: &Shared, peer: &NodeId) -> Option<quinn::Connection> {
    let mut peers = shared.peers.lock().unwrap_or_else(|p| p.into_inner());
    match peers.get(peer) {
        Some(c) if c.close_reason().is_none() => Some(c.clone()),
        Some(_) => {
            peers.remove(peer);
            None
        }
        None => None,
    }
}

/// Keep `conn` for reuse with `peer`.
pub(crate) fn remember(shared: &Shared, peer: NodeId, conn: quinn::Connection) {
    shared
        .peers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(peer, conn);
}
