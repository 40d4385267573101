//! An asker that stops mid-query: kith-protocol's own `AggAsker`, driven over raw peer
//! connections in the asker's name, until the first request of a chosen round — as an
//! asker node killed at that moment would leave its contacts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kith_client::transport;
use kith_protocol::aggregation::asker::{AggAsker, AggregationParams};
use kith_protocol::aggregation::cohort::DENSE_MAX;
use kith_protocol::ask::Transmit;
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::wire::decode_message;
use kith_protocol::{ContactFailure, Identity, ItemKey, NodeId, PeerRequest, QueryId};

use crate::dying::round_of;
use crate::{raw_peer, TestNode};

/// Run an aggregation about `item` among `members` as `asker`, and stop before sending any
/// request of round `stop_at`; those requests are returned unsent.
pub async fn ask_until(
    asker: &Identity,
    members: &[&TestNode],
    item: &ItemKey,
    query_id: QueryId,
    stop_at: u8,
) -> Vec<Transmit> {
    let mut conns = HashMap::new();
    let mut endpoints = Vec::new();
    for m in members {
        let (endpoint, conn) = raw_peer(m, asker).await;
        conns.insert(m.id(), conn);
        endpoints.push(endpoint);
    }
    let params = AggregationParams {
        epsilon: None,
        min_cohort: 2,
        round_timeout: Duration::from_secs(5),
        dense_max: DENSE_MAX,
    };
    let ids: Vec<NodeId> = members.iter().map(|m| m.id()).collect();
    let mut agg = AggAsker::new(
        asker.node_id(),
        query_id,
        item.clone(),
        ids,
        params,
        Instant::now(),
    );
    let mut held = Vec::new();
    // Each round is a batch of requests; at most six batches (rounds 0 to 4, and a spare).
    for _ in 0..6 {
        let mut batch = Vec::new();
        while let Some(t) = agg.poll_transmit() {
            match decode_message::<PeerRequest>(&t.payload) {
                Ok(PeerRequest::Aggregate(r)) if round_of(&r) >= stop_at => held.push(t),
                _ => batch.push(t),
            }
        }
        if batch.is_empty() {
            break;
        }
        for t in batch {
            let reply =
                transport::exchange(&conns[&t.to], &t.payload, MAX_PEER_FRAME, MAX_PEER_FRAME)
                    .await;
            match reply {
                Ok(bytes) => agg.handle_response(t.to, &bytes, Instant::now()),
                Err(e) => agg.handle_failure(
                    t.to,
                    ContactFailure::Unreachable(e.to_string()),
                    Instant::now(),
                ),
            }
        }
    }
    // The asker "dies": its connections close.
    for (_, c) in conns {
        c.close(0u32.into(), b"asker killed");
    }
    held
}
