//! # kith-client
//!
//! The library apps use to talk to their owner's kith node. An app never talks to other
//! people's nodes: it asks its own node, which asks the owner's contacts and answers within
//! what the app is allowed to see.
//!
//! ```text
//!   your app ──kith-client (QUIC, ALPN kith/app/1)──▶ your node ──▶ contacts' nodes
//!                                                       (QUIC, ALPN kith/peer/1)
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), kith_client::ClientError> {
//! use kith_client::{Client, Credential};
//! let credential = Credential::load("/path/to/owner.credential".as_ref())?;
//! let client = Client::connect_with(&credential).await?;
//! let item = kith_protocol::ItemKey::parse("tag:vehicle/subaru").unwrap();
//! let answer = client.ask(item, std::time::Duration::from_secs(5)).await?;
//! for named in &answer.named {
//!     named.verify().expect("signed by the endorser");
//!     println!("{} owns {}", named.name, named.endorsement.item);
//! }
//! # Ok(()) }
//! ```
//!
//! Errors are [`ClientError`], sorted by fault: the node is unreachable, the credential is
//! not accepted, the node refused the request, or the bytes broke the protocol.

#![forbid(unsafe_code)]

pub mod client;
pub mod credential;
pub mod error;
pub mod transport;
pub mod updates;

pub use client::Client;
pub use credential::Credential;
pub use error::ClientError;
pub use kith_protocol::app::{AskResult, NamedEndorsement};
pub use updates::Updates;
