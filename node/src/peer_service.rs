//! Serving other nodes (spec §8): invite redemption and answering queries.

use std::sync::Arc;
use std::time::Duration;

use kith_client::transport::{self, FrameReadError, CLOSE_UNAUTHORIZED};
use kith_protocol::endpoint::{refusal_for, Effect};
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{NodeId, PeerRequest, PeerResponse, Query, Refusal};

use crate::effects::{self, Origin, Outcome};
use crate::failure::Failure;
use crate::peers;
use crate::router::{Handler, Serving};
use crate::shared::{Shared, REQUEST_READ_TIMEOUT};
/// How long a stranger may take to open its one request stream.
pub const STRANGER_GRACE: Duration = Duration::from_secs(10);
/// How long to wait for a stranger to acknowledge our answer before closing.
const STRANGER_LINGER: Duration = Duration::from_secs(2);

/// The `kith/peer/2` service (spec §8), registered on the node's router.
#[derive(Debug)]
pub(crate) struct PeerService;

impl Handler for PeerService {
    fn serve(&self, shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) -> Serving {
        Box::pin(serve(shared, conn, key))
    }
}

/// Serve an incoming peer connection authenticated as `key` (spec §4.3).
///
/// A contact may send any number of requests. A stranger gets exactly one request —
/// normally an invite redemption — and the connection is closed after the answer unless
/// that request made it a contact.
pub(crate) async fn serve(shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) {
    shared
        .peer_connections
        .add_closing_oldest(key, conn.clone());
    if is_contact(&shared, &key) {
        peers::remember(&shared, key, conn.clone());
        return serve_streams(shared, conn, key).await;
    }
    let first = tokio::time::timeout(STRANGER_GRACE, conn.accept_bi());
    let (send, recv) = match shared.shutdown.run_until(first).await {
        Some(Ok(Ok(s))) => s,
        _ => {
            conn.close(CLOSE_UNAUTHORIZED.into(), b"not a contact");
            return;
        }
    };
    let sent = respond(&shared, &conn, key, send, recv).await;
    if is_contact(&shared, &key) {
        return serve_streams(shared, conn, key).await;
    }
    if let Some(send) = sent {
        let _ = tokio::time::timeout(STRANGER_LINGER, send.stopped()).await;
    }
    conn.close(CLOSE_UNAUTHORIZED.into(), b"not a contact");
}

fn is_contact(shared: &Shared, key: &NodeId) -> bool {
    matches!(shared.store.contact(key), Ok(Some(_)))
}

/// Answer each request stream on `conn` until it closes or the node shuts down; then let
/// the requests in flight finish (the router bounds how long, at shutdown).
pub(crate) async fn serve_streams(shared: Arc<Shared>, conn: quinn::Connection, key: NodeId) {
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(Ok((send, recv))) = shared.shutdown.run_until(conn.accept_bi()).await {
        while in_flight.try_join_next().is_some() {}
        let (shared, conn) = (shared.clone(), conn.clone());
        in_flight.spawn(async move { respond(&shared, &conn, key, send, recv).await });
    }
    while in_flight.join_next().await.is_some() {}
}

/// Read one request, answer it, and hand back the finished send stream.
async fn respond(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    key: NodeId,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Option<quinn::SendStream> {
    let read = tokio::time::timeout(
        REQUEST_READ_TIMEOUT,
        transport::read_frame(&mut recv, MAX_PEER_FRAME),
    )
    .await;
    #[cfg(feature = "peer-extension")]
    if let (Ok(Ok(bytes)), Some(extension)) = (&read, &shared.options.peer_extension) {
        if is_contact(shared, &key) {
            if let Some(reply) = extension(key, bytes) {
                transport::write_frame(&mut send, &reply, MAX_PEER_FRAME)
                    .await
                    .ok()?;
                count_answered(shared, &reply);
                return Some(send);
            }
        }
    }
    let origin = Origin {
        key,
        conn: conn.clone(),
    };
    let (response, after) = match read {
        Err(_) => {
            let _ = recv.stop(0u32.into());
            return None;
        }
        Ok(Ok(bytes)) => match decode_message::<PeerRequest>(&bytes) {
            Ok(request) => answer(shared, &origin, request).await,
            Err(e) => {
                tracing::debug!(peer = %key.short(), "undecodable request: {e}");
                (PeerResponse::Refused(refusal_for(&e)), Vec::new())
            }
        },
        Ok(Err(FrameReadError::TooLarge(e))) => {
            tracing::debug!(peer = %key.short(), "{e}");
            let _ = recv.stop(0u32.into());
            (PeerResponse::Refused(Refusal::Malformed), Vec::new())
        }
        Ok(Err(FrameReadError::Truncated)) => {
            (PeerResponse::Refused(Refusal::Malformed), Vec::new())
        }
        Ok(Err(_)) => return None,
    };
    let frame = encode_message(&response);
    let sent = transport::write_frame(&mut send, &frame, MAX_PEER_FRAME).await;
    effects::apply_after(shared, &origin, after);
    sent.ok()?;
    count_answered(shared, &frame);
    Some(send)
}

/// A frame on the wire: its 4-byte length prefix and its body (spec §5.1).
fn count_answered(shared: &Shared, body: &[u8]) {
    shared
        .answered_bytes
        .fetch_add(4 + body.len() as u64, std::sync::atomic::Ordering::Relaxed);
}

/// The response to a decoded request, and what to write once it is sent: decided by the
/// protocol's endpoint off the async workers (store writes, up to 32 signatures). A
/// contact's aggregation round is routed at once (one indexed read) to its session, so that
/// rounds never queue behind asks for a blocking thread.
async fn answer(
    shared: &Arc<Shared>,
    origin: &Origin,
    request: PeerRequest,
) -> (PeerResponse, Vec<Effect>) {
    let internal = || (PeerResponse::Refused(Refusal::Internal), Vec::new());
    if matches!(request, PeerRequest::Aggregate(_)) {
        return match (effects::decide(shared, origin, &request), request) {
            (Outcome::Reply { response, after }, _) => (response, after),
            // A round's crypto takes milliseconds to tens of them (spec §11.16): off the
            // async workers, one round per core.
            (Outcome::Aggregate, PeerRequest::Aggregate(round)) => {
                let response = crate::aggregation_service::serve(shared, origin.key, round).await;
                (response, Vec::new())
            }
            (Outcome::Aggregate, _) => internal(),
        };
    }
    let (shared, origin) = (shared.clone(), origin.clone());
    let decided = tokio::task::spawn_blocking(move || match &request {
        PeerRequest::Ask(query) => answer_ask(&shared, &origin, query),
        _ => effects::decide(&shared, &origin, &request),
    });
    match decided.await {
        Ok(Outcome::Reply { response, after }) => (response, after),
        Ok(Outcome::Aggregate) | Err(_) => internal(),
    }
}

/// A plain `Ask` (spec §8.3.2). A copy is answered from the cache only for a contact: the
/// cache is emptied whenever the owner changes contacts, rules or endorsements, so what it
/// holds is what the node would answer now. Strangers are not audited (they could fill the
/// log); they learn only a refusal.
fn answer_ask(shared: &Arc<Shared>, origin: &Origin, query: &Query) -> Outcome {
    match shared.store.contact(&origin.key) {
        Ok(Some(_)) => {}
        Ok(None) => return effects::decide(shared, origin, &PeerRequest::Ask(query.clone())),
        Err(e) => return Outcome::refused(Failure::Store(e).refusal()),
    }
    let mut after = Vec::new();
    let response = shared
        .answered_asks
        .answer(origin.key, query.clone(), |query| {
            match effects::decide(shared, origin, &PeerRequest::Ask(query)) {
                Outcome::Reply {
                    response,
                    after: then,
                } => {
                    after = then;
                    response
                }
                Outcome::Aggregate => PeerResponse::Refused(Refusal::Internal),
            }
        });
    Outcome::Reply { response, after }
}
