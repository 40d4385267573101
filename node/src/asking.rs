//! Driving an ask (spec §8.3): the protocol's [`AskRound`] decides, this module moves bytes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_protocol::app::{AskResult, NamedEndorsement};
use kith_protocol::card::ContactCard;
use kith_protocol::wire::decode_exact;
use kith_protocol::{AskRound, ContactFailure, ItemKey, NodeId, QueryId};
use rand_core::{OsRng, RngCore};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::node::Shared;
use crate::peers;
use crate::store::{AuditEvent, StoreError};

/// Ask every contact about `item`; answers after `timeout` are ignored.
pub(crate) async fn ask(
    shared: &Arc<Shared>,
    item: ItemKey,
    timeout: Duration,
) -> Result<AskResult, StoreError> {
    let started = Instant::now();
    let contacts = shared.store.contacts()?;
    let mut qid = [0u8; 16];
    OsRng.fill_bytes(&mut qid);
    let query_id = QueryId(qid);
    let mut round = AskRound::new(
        shared.identity.node_id(),
        query_id,
        item.clone(),
        contacts.iter().map(|c| c.node_id),
        started,
        timeout,
    );

    let (tx, mut rx) = mpsc::channel::<(NodeId, Result<Vec<u8>, String>)>(contacts.len().max(1));
    let mut tasks = JoinSet::new();
    while let Some(t) = round.poll_transmit() {
        let addresses = contacts
            .iter()
            .find(|c| c.node_id == t.to)
            .and_then(|c| decode_exact::<ContactCard>(&c.card.body).ok())
            .map(|card| card.addresses)
            .unwrap_or_default();
        let (shared, tx) = (shared.clone(), tx.clone());
        tasks.spawn(async move {
            let result = peers::request(&shared, t.to, &addresses, &t.payload).await;
            let _ = tx.send((t.to, result)).await;
        });
    }
    drop(tx);

    while let Some(deadline) = round.poll_timeout() {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some((from, Ok(bytes))) => round.handle_response(from, &bytes, Instant::now()),
                Some((from, Err(e))) => round.handle_failure(from, ContactFailure::Unreachable(e)),
                None => round.handle_timeout(deadline),
            },
            _ = tokio::time::sleep_until(deadline.into()) => round.handle_timeout(Instant::now()),
        }
    }
    tasks.abort_all();

    let outcome = round.into_outcome();
    for (peer, failure) in &outcome.failures {
        tracing::debug!(peer = %peer.short(), ?failure, "contact did not answer");
    }
    let named: Vec<NamedEndorsement> = outcome
        .named
        .into_iter()
        .map(|n| NamedEndorsement {
            name: contacts
                .iter()
                .find(|c| c.node_id == n.from)
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            node: n.from,
            endorsement: n.statement.endorsement,
            signed: n.signed,
        })
        .collect();
    shared.audit(AuditEvent {
        event: "asked",
        peer: None,
        peer_name: None,
        item: Some(item.to_string()),
        detail: format!(
            "{} asked, {} answered, {} named",
            outcome.asked,
            outcome.answered,
            named.len()
        ),
    });
    Ok(AskResult {
        query_id,
        item,
        asked: outcome.asked,
        answered: outcome.answered,
        named,
        elapsed_ms: started.elapsed().as_millis().min(u32::MAX as u128) as u32,
    })
}
