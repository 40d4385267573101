//! A member that stands in for a stopped node — same identity, same address — and takes
//! part in aggregations with kith-protocol's own `AggResponder`, but with a [`Conduct`] a
//! real node never has:
//!
//! * it **dies** when the request of a chosen round arrives: either its endpoint closes
//!   (the asker sees the connection go), or it falls silent and holds the stream open
//!   unanswered (the asker only has its round deadline), as a process killed mid-query or
//!   a machine that lost its network would look from outside;
//! * or it **tampers** with its replies — bad shares, wrong signatures, wrong-length or
//!   inflated vectors — as a dishonest node could.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_client::transport::{self, read_frame, write_frame};
use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::messages::{AggRequest, AggResponse};
use kith_protocol::aggregation::responder::ResponderSettings;
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::testing::SimMember;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{PeerRequest, PeerResponse, ALPN_PEER};
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

/// The aggregation round (0..=4) of a request; 5 for the asker's closing request.
pub fn round_of(request: &AggRequest) -> u8 {
    request.round()
}

/// Changes a reply of the given round (0..=4) before it is sent.
pub type Tamper = Arc<dyn Fn(u8, &mut AggResponse) + Send + Sync>;

/// How the stand-in departs from an honest member.
#[derive(Clone)]
pub enum Conduct {
    /// Honest until a request of round `at` arrives, then dies.
    Dies { at: u8, death: Death },
    /// Alive to the end, but every reply passes through the tamper first.
    Tampers(Tamper),
}

struct State {
    /// The node's identity and contribution, answering as the simulations' members do.
    member: Mutex<SimMember>,
    conduct: Conduct,
    died: Notify,
}

/// A running stand-in; drop it to stop it.
pub struct StandIn {
    endpoint: quinn::Endpoint,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

/// Bind `addr`, which a node just stopped: its endpoint's socket is released when the
/// node's last task lets go of it, a moment after `stop` returns, so retry for up to 2 s.
async fn bind_released(config: quinn::ServerConfig, addr: SocketAddr) -> quinn::Endpoint {
    let mut last = None;
    for _ in 0..100 {
        match quinn::Endpoint::server(config.clone(), addr) {
            Ok(endpoint) => return endpoint,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => panic!("the stopped node's port {addr}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the stopped node's port {addr} stayed in use for 2 s: {last:?}")
}

impl StandIn {
    /// Stop `node` and take its place, contributing `contribution` (noise off, minimum
    /// cohort 2), until a request of round `dies_at` arrives.
    pub async fn dying(
        node: &mut TestNode,
        contribution: Contribution,
        dies_at: u8,
        death: Death,
    ) -> StandIn {
        let conduct = Conduct::Dies { at: dies_at, death };
        Self::replace(node, contribution, conduct).await
    }

    /// Stop `node` and take its place, contributing `contribution` (noise off, minimum
    /// cohort 2), with every reply passed through `tamper` (round, reply).
    pub async fn tampering(
        node: &mut TestNode,
        contribution: Contribution,
        tamper: impl Fn(u8, &mut AggResponse) + Send + Sync + 'static,
    ) -> StandIn {
        Self::replace(node, contribution, Conduct::Tampers(Arc::new(tamper))).await
    }

    /// Stop `node` and take its place with `conduct`.
    pub async fn replace(
        node: &mut TestNode,
        contribution: Contribution,
        conduct: Conduct,
    ) -> StandIn {
        let identity = node.identity();
        let addr: SocketAddr = node.peer_addr();
        node.stop().await;
        let config =
            kith_node::tls_server::server_config(&identity, &[ALPN_PEER]).expect("server config");
        let endpoint = bind_released(config, addr).await;
        let member = SimMember::new(identity, contribution).with_settings(ResponderSettings {
            epsilon: None,
            min_cohort: 2,
        });
        let state = Arc::new(State {
            member: Mutex::new(member),
            conduct,
            died: Notify::new(),
        });
        let task = tokio::spawn(serve(endpoint.clone(), state.clone()));
        StandIn {
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

impl Drop for StandIn {
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
                let round = round_of(&request);
                if let Conduct::Dies { at, death } = state.conduct {
                    if round >= at {
                        state.died.notify_one();
                        match death {
                            Death::Close => endpoint.close(0u32.into(), b""),
                            Death::Silence => std::future::pending::<()>().await,
                        }
                        return;
                    }
                }
                let mut response = respond(&state, asker, request);
                if let Conduct::Tampers(tamper) = &state.conduct {
                    tamper(round, &mut response);
                }
                let body = encode_message(&PeerResponse::Aggregate(response));
                let _ = write_frame(&mut send, &body, MAX_PEER_FRAME).await;
            }
        });
    }
}

fn respond(state: &State, asker: kith_protocol::NodeId, request: AggRequest) -> AggResponse {
    let mut member = state.member.lock().expect("not poisoned");
    let now = Instant::now();
    member
        .answer(
            asker,
            request,
            &mut OsRng,
            now,
            now + Duration::from_secs(60),
        )
        .unwrap_or(AggResponse::Abort(
            kith_protocol::aggregation::messages::AbortReason::UnexpectedRound,
        ))
}
