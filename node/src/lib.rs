//! # kith-node
//!
//! The personal node daemon behind the `kith` command: QUIC transport with pinned raw
//! public keys, the SQLite store, serving contacts' queries and the owner's apps, and
//! driving the protocol's state machines with real IO.
//!
//! Modules in layers; each uses only those below it (`tests/structure.rs` checks there is
//! no cycle). Protocol rules are `kith-protocol`'s: what a contact's request is answered
//! and what must be written for it is decided by its responder endpoint
//! (`kith_protocol::endpoint`), the budget, the aggregation sessions and the card checks are
//! pure functions there. The modules here read the store, apply what was decided, and do
//! the IO.
//!
//! ```text
//!   node            endpoints, the router, background tasks (sweep, card announcer)
//!   router          one handler per ALPN (PeerService, AppService), the shutdown token
//!   app_service     owner/app requests, one file per domain (contacts, shelf, policy, owner)
//!   peer_service    contacts' requests: decided by the protocol's endpoint (effects),
//!                   Aggregate rounds to aggregation_service
//!   services        aggregation_service, asking, approvals, apps, invites, card_updates
//!   effects         applying the endpoint's effects; node_state: the store as it reads it
//!   peers           outgoing exchanges on cached, pinned connections (spec §4.5)
//!   shared          the state every service shares; NodeOptions
//!   state           sessions, budget (decline tally), answered_asks, connections, failure
//!   below           store (SQLite, WAL, a writer and readers; migrations in
//!                   store/migrations), settings, replies (app errors), data_dir, error,
//!                   tls_server, shutdown
//! ```
//!
//! An ask: the app's `Ask` reaches `app_service`, `asking` drives the protocol's `AggAsker`
//! through `peers`; at each contact, `peer_service` hands `Aggregate` rounds to
//! `aggregation_service`, which admits round 0 (budget, named answer, responder keys) and
//! runs later rounds in the session kept by `sessions`.

#![forbid(unsafe_code)]

mod aggregation_service;
mod answered_asks;
mod app_service;
mod approvals;
mod apps;
mod asking;
mod budget;
mod card_updates;
mod connections;
pub mod data_dir;
mod effects;
pub mod error;
mod failure;
mod invites;
mod node;
mod node_state;
mod peer_service;
mod peers;
mod replies;
mod router;
mod sessions;
pub mod settings;
mod shared;
mod shutdown;
pub mod store;
pub mod tls_server;

pub use data_dir::{init, DataDir, InitReport};
pub use error::NodeError;
#[cfg(feature = "peer-extension")]
pub use node::PeerExtension;
pub use node::{Node, NodeOptions};

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
