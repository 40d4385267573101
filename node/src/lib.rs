//! # kith-node
//!
//! The personal node daemon behind the `kith` command: QUIC transport with pinned raw
//! public keys, the SQLite store, serving contacts' queries and the owner's apps, and
//! driving the protocol's state machines with real IO.
//!
//! ```text
//!            ┌──────────────── kith-node ────────────────┐
//!  app ──────┤ app_service ──┐                           │
//!  (kith-client, ALPN app)   ├─ asking ── peers ─────────┼──▶ contacts' nodes
//!            │ peer_service ◀┼─ invites                  │◀── (ALPN peer)
//!            │        store (SQLite, WAL)                │
//!            └───────────────────────────────────────────┘
//! ```

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
pub mod error;
mod invites;
mod node;
mod peer_service;
mod peers;
mod replies;
mod sessions;
pub mod settings;
mod shared;
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
