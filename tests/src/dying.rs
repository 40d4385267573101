//! A member that dies in the middle of an aggregation. It stands in for a stopped node —
//! same identity, same address — and takes part honestly, with kith-protocol's own
//! `AggResponder`, until the request of a chosen round arrives. Then it dies: either its
//! endpoint closes (the asker sees the connection go), or it falls silent and holds the
//! stream open unanswered (the asker only has its round deadline), as a process killed
//! mid-query or a machine that lost its network would look from outside.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_client::transport::{self, read_frame, write_frame};
use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::keys::Context;
use kith_protocol::aggregation::messages::{AggRequest, AggResponse};
use kith_protocol::aggregation::responder::{AggResponder, ResponderSettings};
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::message::Answer;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{Identity, PeerRequest, PeerResponse, ALPN_PEER};
use rand_core::OsRng;
use tokio::sync::Notify;

use crate::TestNode;

/// How the member dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// Its endpoint closes at once.
    Close,
    /// It reads the request and never answers.
    Silence,
}

/// The aggregation round (0..=4) of a request.
pub fn round_of(request: &AggRequest) -> u8 {
    match request {
        AggRequest::Advertise { .. } => 0,
        AggRequest::ShareKeys { .. } => 1,
        AggRequest::MaskInput { .. } => 2,
        AggRequest::Consistency { .. } => 3,
        AggRequest::Unmask { .. } => 4,
    }
}

struct State {
    identity: Identity,
    contribution: Contribution,
    dies_at: u8,
    death: Death,
    session: Mutex<Option<AggResponder>>,
    died: Notify,
}

/// A running member that will die; drop it to stop it.
pub struct DyingMember {
    endpoint: quinn::Endpoint,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl DyingMember {
    /// Stop `node` and take its place, contributing `contribution` (noise off, minimum
    /// cohort 2), until a request of round `dies_at` arrives.
    pub async fn replace(
        node: &mut TestNode,
        contribution: Contribution,
        dies_at: u8,
        death: Death,
    ) -> DyingMember {
        let identity = node.identity();
        let addr: SocketAddr = node.peer_addr();
        node.stop().await;
        let config = transport::server_config(&identity, &[ALPN_PEER]).expect("server config");
        let endpoint = quinn::Endpoint::server(config, addr).expect("the stopped node's port");
        let state = Arc::new(State {
            identity,
            contribution,
            dies_at,
            death,
            session: Mutex::new(None),
            died: Notify::new(),
        });
        let task = tokio::spawn(serve(endpoint.clone(), state.clone()));
        DyingMember {
            endpoint,
            state,
            task,
        }
    }

    /// Wait until the member has died (bounded by `limit`); whether it did.
    pub async fn died_within(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.state.died.notified())
            .await
            .is_ok()
    }
}

impl Drop for DyingMember {
    fn drop(&mut self) {
        self.task.abort();
        self.endpoint.close(0u32.into(), b"");
    }
}

async fn serve(endpoint: quinn::Endpoint, state: Arc<State>) {
    while let Some(incoming) = endpoint.accept().await {
        let Ok(conn) = incoming.await else { continue };
        let (endpoint, state) = (endpoint.clone(), state.clone());
        tokio::spawn(async move {
            while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                let Ok(bytes) = read_frame(&mut recv, MAX_PEER_FRAME).await else {
                    continue;
                };
                let asker = transport::peer_key(&conn).expect("client key");
                let Ok(PeerRequest::Aggregate(request)) = decode_message::<PeerRequest>(&bytes)
                else {
                    continue; // this member only ever aggregates
                };
                if round_of(&request) >= state.dies_at {
                    state.died.notify_one();
                    match state.death {
                        Death::Close => endpoint.close(0u32.into(), b""),
                        Death::Silence => std::future::pending::<()>().await,
                    }
                    return;
                }
                let response = respond(&state, asker, request);
                let body = encode_message(&PeerResponse::Aggregate(response));
                let _ = write_frame(&mut send, &body, MAX_PEER_FRAME).await;
            }
        });
    }
}

fn respond(state: &State, asker: kith_protocol::NodeId, request: AggRequest) -> AggResponse {
    let mut session = state.session.lock().expect("not poisoned");
    let now = Instant::now();
    match request {
        AggRequest::Advertise {
            query_id, epsilon, ..
        } => {
            let ctx = Context { query_id, asker };
            let settings = ResponderSettings {
                epsilon: None,
                min_cohort: 2,
            };
            let responder = AggResponder::start(
                &state.identity,
                ctx,
                state.contribution,
                settings,
                epsilon,
                &mut OsRng,
                now + Duration::from_secs(60),
            );
            let advertisement = responder.advertisement().clone();
            *session = Some(responder);
            AggResponse::Advertised {
                answer: Answer {
                    query_id,
                    named: vec![],
                },
                advertisement,
            }
        }
        other => match session.as_mut() {
            Some(s) => s.handle(&state.identity, other, &mut OsRng, now),
            None => AggResponse::Abort(
                kith_protocol::aggregation::messages::AbortReason::UnexpectedRound,
            ),
        },
    }
}
