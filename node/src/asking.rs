//! Driving an ask (spec §8.3, §9.8): the protocol's [`AggAsker`] decides, this module moves
//! bytes. Named endorsements arrive in round 0; the aggregate after round 4.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kith_protocol::aggregation::asker::{AggAsker, AggOutcome, AggregationParams};
use kith_protocol::aggregation::cohort::DENSE_MAX;
use kith_protocol::aggregation::messages::MilliEpsilon;
use kith_protocol::app::{AskResult, Declined, NamedEndorsement};
use kith_protocol::{ContactFailure, ItemKey, NodeId, QueryId};
use rand_core::{OsRng, RngCore};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::shared::Shared;
use crate::store::{AuditEvent, Event, StoreError, StoredContact};
use crate::{peers, settings};

/// Rounds in an aggregate ask; the ask's timeout is shared among them.
const ROUNDS: u32 = 5;

/// How long an ask waits for its closing requests to be answered: the sessions of members
/// that do not answer in time expire anyway.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Ask every contact about `item`, with an aggregate at the strictest of `epsilon` and the
/// cohort's settings. The whole ask takes at most about `timeout`.
pub(crate) async fn ask(
    shared: &Arc<Shared>,
    item: ItemKey,
    timeout: Duration,
    epsilon: Option<MilliEpsilon>,
    detail: bool,
) -> Result<AskResult, StoreError> {
    let started = Instant::now();
    let contacts = shared.store.contacts()?;
    let mine = settings::load(&shared.store)?;
    let addresses: Addresses = contacts
        .iter()
        .map(|c| (c.node_id, c.card.addresses()))
        .collect();
    let mut qid = [0u8; 16];
    OsRng.fill_bytes(&mut qid);
    let query_id = QueryId(qid);
    shared
        .store
        .record_ask(&query_id, &item, crate::unix_now())?;
    let params = AggregationParams {
        epsilon,
        min_cohort: mine.min_cohort,
        round_timeout: timeout / ROUNDS,
        dense_max: DENSE_MAX,
        detail,
    };
    let mut agg = AggAsker::new(
        shared.identity.node_id(),
        query_id,
        item.clone(),
        addresses.keys().copied(),
        params,
        started,
    );
    drive(shared, &mut agg, &addresses).await;
    close(shared, &mut agg, &addresses).await;
    let result = result(&agg.outcome(), &contacts, query_id, item, started);
    shared.audit(asked_entry(&result));
    Ok(result)
}

/// Where each contact is reached, from its card.
type Addresses = HashMap<NodeId, Vec<String>>;

/// Run the ask's rounds to their end: each transmit on a task of its own, each reply or
/// failure back to the state machine, and its timeouts.
async fn drive(shared: &Arc<Shared>, agg: &mut AggAsker, addresses: &Addresses) {
    let (tx, mut rx) = mpsc::channel::<(NodeId, Result<Vec<u8>, String>)>(addresses.len().max(1));
    let mut tasks = JoinSet::new();
    // Until the ask is done; what it sends then (its closing requests) is sent by `close`.
    while !agg.is_done() {
        while let Some(t) = agg.poll_transmit() {
            let (shared, tx) = (shared.clone(), tx.clone());
            let addrs = addresses.get(&t.to).cloned().unwrap_or_default();
            tasks.spawn(async move {
                let result = peers::request(&shared, t.to, &addrs, &t.payload).await;
                let _ = tx.send((t.to, result)).await;
            });
        }
        let Some(deadline) = agg.poll_timeout() else {
            break;
        };
        tokio::select! {
            msg = rx.recv() => match msg {
                Some((from, Ok(bytes))) => agg.handle_response(from, &bytes, Instant::now()),
                Some((from, Err(e))) => agg.handle_failure(from, ContactFailure::Unreachable(e), Instant::now()),
                None => agg.handle_timeout(deadline),
            },
            _ = tokio::time::sleep_until(deadline.into()) => agg.handle_timeout(Instant::now()),
        }
    }
    tasks.abort_all();
}

/// The ask is over: tell the members still holding a session, so that it stops counting
/// among this node's open asks there before the next ask can arrive. Their replies say
/// nothing; a member that does not answer in time expires the session.
async fn close(shared: &Arc<Shared>, agg: &mut AggAsker, addresses: &Addresses) {
    let mut closing = JoinSet::new();
    while let Some(t) = agg.poll_transmit() {
        let shared = shared.clone();
        let addrs = addresses.get(&t.to).cloned().unwrap_or_default();
        closing.spawn(async move {
            let _ = peers::request(&shared, t.to, &addrs, &t.payload).await;
        });
    }
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while closing.join_next().await.is_some() {}
    })
    .await;
    closing.abort_all();
}

/// What the app is told (spec §10.3): the named answers and the contacts that did not
/// count, by the names this node gives them, and the count.
fn result(
    outcome: &AggOutcome,
    contacts: &[StoredContact],
    query_id: QueryId,
    item: ItemKey,
    started: Instant,
) -> AskResult {
    for (peer, round, failure) in &outcome.failures {
        tracing::debug!(peer = %peer.short(), round, ?failure, "member dropped out");
    }
    let name_of = |id: &NodeId| {
        contacts
            .iter()
            .find(|c| c.node_id == *id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    let named = outcome
        .named
        .iter()
        .map(|n| NamedEndorsement {
            name: name_of(&n.from),
            node: n.from,
            endorsement: n.statement.endorsement.clone(),
            signed: n.signed.clone(),
        })
        .collect();
    let declined = outcome
        .failures
        .iter()
        .map(|(peer, round, failure)| Declined {
            contact: *peer,
            name: name_of(peer),
            round: *round,
            reason: failure.reason(),
        })
        .collect();
    let (aggregate, withheld) = match &outcome.aggregate {
        Ok(sum) => (Some(*sum), None),
        Err(why) => (None, Some(why.to_string())),
    };
    AskResult {
        query_id,
        item,
        asked: outcome.asked,
        answered: outcome.answered,
        named,
        elapsed_ms: started.elapsed().as_millis().min(u32::MAX as u128) as u32,
        cohort: outcome.cohort,
        survivors: outcome.survivors,
        aggregate,
        withheld,
        epsilon: outcome.epsilon,
        declined,
    }
}

/// The `asked` audit entry (spec §8.3.5).
fn asked_entry(r: &AskResult) -> AuditEvent<'static> {
    AuditEvent {
        event: Event::Asked,
        peer: None,
        peer_name: None,
        item: Some(r.item.to_string()),
        detail: format!(
            "{} asked, {} answered, {} named; aggregate {}",
            r.asked,
            r.answered,
            r.named.len(),
            match &r.withheld {
                None => format!("over {} of {}", r.survivors, r.cohort),
                Some(w) => format!("withheld: {w}"),
            }
        ),
    }
}
