//! Outgoing exchanges with other nodes over connections pinned to their keys and reused
//! (spec §4.5).

use std::sync::Arc;
use std::time::Duration;

use kith_client::transport::{self, CLOSE_SHUTDOWN};
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::{NodeId, ALPN_PEER, TLS_SERVER_NAME};

use crate::shared::Shared;

/// How long one connection attempt to one address may take, and one name lookup.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// At most this many resolved IPs are tried per address in a card.
const MAX_RESOLVED_PER_ADDRESS: usize = 4;
/// A cached connection from which nothing at all (not even an acknowledgement) has arrived
/// within this many round trips (and at least [`MIN_STALE_AFTER`]) may be dead; a fresh
/// connection is raced against it. A peer that acknowledges but is slow to answer is
/// alive, and is waited for.
const STALE_AFTER_RTTS: u32 = 4;
const MIN_STALE_AFTER: Duration = Duration::from_millis(300);

/// One request/response exchange with `peer` (spec §4.5).
///
/// A cached connection is used first. If it fails, or stays silent past a few round trips —
/// not a single packet back: the peer may have crashed and restarted, leaving a connection
/// that QUIC cannot yet know is dead — a fresh connection is made and the first answer
/// from either wins. A busy peer still acknowledges our packets at once, so it is not
/// raced: that would cost it a handshake and a duplicate request when it can least afford
/// them.
pub(crate) async fn request(
    shared: &Arc<Shared>,
    peer: NodeId,
    addresses: &[String],
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let Some(conn) = cached(shared, &peer) else {
        return fresh_exchange(shared, peer, addresses, payload).await;
    };
    let stale_after = (conn.rtt() * STALE_AFTER_RTTS).max(MIN_STALE_AFTER);
    let mut heard = conn.stats().udp_rx.datagrams;
    let attempt = transport::exchange(&conn, payload, MAX_PEER_FRAME, MAX_PEER_FRAME);
    tokio::pin!(attempt);
    let silent = loop {
        match tokio::time::timeout(stale_after, &mut attempt).await {
            Ok(r) => break Ok(r),
            Err(_) => {
                let now_heard = conn.stats().udp_rx.datagrams;
                if now_heard == heard {
                    break Err(());
                }
                heard = now_heard;
            }
        }
    };
    match silent {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(_)) => {
            forget(shared, &peer, &conn);
            fresh_exchange(shared, peer, addresses, payload).await
        }
        Err(()) => {
            let fresh = fresh_exchange(shared, peer, addresses, payload);
            tokio::pin!(fresh);
            // The first answer wins. A failed branch is never polled again: the cached
            // attempt is disabled once it has failed, and awaited only if still running.
            let mut cached_failed: Option<String> = None;
            loop {
                tokio::select! {
                    r = &mut attempt, if cached_failed.is_none() => match r {
                        Ok(reply) => return Ok(reply),
                        Err(e) => {
                            forget(shared, &peer, &conn);
                            cached_failed = Some(e.to_string());
                        }
                    },
                    r = &mut fresh => {
                        return match (r, cached_failed) {
                            (Ok(reply), _) => Ok(reply),
                            (Err(e), Some(first)) => Err(format!("{first}; fresh connection: {e}")),
                            (Err(e), None) => {
                                attempt.await.map_err(|first| format!("{first}; fresh connection: {e}"))
                            }
                        };
                    }
                }
            }
        }
    }
}

async fn fresh_exchange(
    shared: &Arc<Shared>,
    peer: NodeId,
    addresses: &[String],
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    let conn = connect(shared, peer, addresses).await?;
    transport::exchange(&conn, payload, MAX_PEER_FRAME, MAX_PEER_FRAME)
        .await
        .map_err(|e| e.to_string())
}

/// A new connection to the first of `addresses` that answers, cached for reuse. It also
/// serves requests the peer sends back on it.
async fn connect(
    shared: &Arc<Shared>,
    peer: NodeId,
    addresses: &[String],
) -> Result<quinn::Connection, String> {
    let cfg =
        transport::client_config(&shared.identity, peer, ALPN_PEER).map_err(|e| e.to_string())?;
    let mut last_err = String::from("no address");
    for addr in addresses {
        // Resolving a name is bounded like a connection attempt: a stalled resolver must not
        // hold the ask (or the card update) past its own deadlines.
        let lookup = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host(addr.as_str()));
        let resolved = match lookup.await {
            Ok(Ok(r)) => r.take(MAX_RESOLVED_PER_ADDRESS).collect::<Vec<_>>(),
            Ok(Err(e)) => {
                last_err = format!("{addr}: {e}");
                continue;
            }
            Err(_) => {
                last_err = format!("{addr}: name lookup timed out");
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
                    (shared.serve_peer)(shared.clone(), conn.clone(), peer);
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

/// Drop `conn` from the cache if it is still the one cached for `peer`.
fn forget(shared: &Shared, peer: &NodeId, conn: &quinn::Connection) {
    let mut peers = shared.peers.lock().unwrap_or_else(|p| p.into_inner());
    if peers
        .get(peer)
        .is_some_and(|c| c.stable_id() == conn.stable_id())
    {
        peers.remove(peer);
    }
}

/// How long a connection replaced in the cache stays open for the exchanges already on it.
pub const REPLACED_LINGER: Duration = Duration::from_secs(30);

/// Keep `conn` for reuse with `peer`. A different connection it replaces is closed after
/// [`REPLACED_LINGER`], so that racing fresh connections (or a peer reconnecting) does not
/// leave live connections behind that keep-alives would hold open for ever.
pub(crate) fn remember(shared: &Shared, peer: NodeId, conn: quinn::Connection) {
    let replaced = shared
        .peers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(peer, conn.clone());
    if let Some(old) = replaced.filter(|old| old.stable_id() != conn.stable_id()) {
        let at = std::time::Instant::now() + REPLACED_LINGER;
        let mut retiring = shared.retiring.lock().unwrap_or_else(|p| p.into_inner());
        retiring.retain(|(_, c)| c.close_reason().is_none());
        retiring.push((at, old));
    }
}

/// Close the replaced connections whose linger is over (called by the node's sweeper).
pub(crate) fn close_retired(shared: &Shared, now: std::time::Instant) {
    let mut retiring = shared.retiring.lock().unwrap_or_else(|p| p.into_inner());
    retiring.retain(|(at, c)| {
        if *at <= now {
            c.close(CLOSE_SHUTDOWN.into(), b"replaced");
        }
        *at > now && c.close_reason().is_none()
    });
}
