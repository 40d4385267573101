//! # kith-client
//!
//! The library apps use to talk to their owner's kith node. An app never talks to other
//! people's nodes: it asks its own node, which asks the owner's contacts and answers within
//! what the app is allowed to see.
//!
//! ```text
//!  ┌─────────┐  kith-client            ┌────────────┐  kith/peer/2 (QUIC)  ┌───────────────┐
//!  │ your app│ ──kith/app/2 (QUIC)───▶ │ owner's    │ ───────────────────▶ │ contacts'     │
//!  └─────────┘  pinned node key,       │ node       │ ◀─── answers by ──── │ nodes         │
//!               the app's own key      │ (kith run) │   name, in a secure  └───────────────┘
//!                                      └────────────┘   aggregate, or not at all
//!       scope checked here: items, names or counts only, daily limit
//! ```
//!
//! ## 1. Pair, once
//!
//! The node's owner runs `kith apps pair --name shop --scope 'ask:tag:vehicle/*'` (add
//! `--named` to let the app see names, `--daily-limit N` to cap its asks) and hands the
//! printed `KITHAPP1…` code to the app, which redeems it within 10 minutes and saves the
//! credential it gets (mode 0600):
//!
//! ```no_run
//! # async fn run() -> Result<(), kith_client::ClientError> {
//! use kith_client::Client;
//! let api: std::net::SocketAddr = "127.0.0.1:7400".parse().unwrap(); // `kith status --json`: api_addr
//! let (client, credential, app) = Client::pair(api, "KITHAPP1...").await?;
//! credential.save("shop.credential".as_ref())?;
//! println!("paired as {} with scope {:?}", app.name, app.scope);
//! # Ok(()) }
//! ```
//!
//! From then on, connect with the saved credential: `Client::connect_with(&Credential::load(path)?)`.
//!
//! ## 2. Ask
//!
//! ```no_run
//! # async fn run(client: kith_client::Client) -> Result<(), kith_client::ClientError> {
//! use std::time::Duration;
//! let item = kith_protocol::ItemKey::parse("tag:vehicle/subaru").unwrap();
//! let mut answer = client.ask(kith_client::Query::new(item).timeout(Duration::from_secs(5))).await?;
//! answer.named.retain(|n| n.verify().is_ok()); // check each endorser's signature yourself
//! println!("{}", kith_client::social_proof(&answer)); // "Chloe and 3 other friends own one"
//! # Ok(()) }
//! ```
//!
//! The answer has `asked`, `answered`, `cohort`, `aggregate` (a noisy sum, or none with a
//! `withheld` reason when too few friends took part), `epsilon`, and `named` — empty for a
//! counts-only app. [`NamedEndorsement::verify`] checks a name against the endorser's
//! signature, so your backend cannot invent social proof.
//!
//! ## 3. Follow an answer
//!
//! Contacts whose consent is `ask` are counted at once and may approve later; the approval
//! reaches the node as a late named endorsement. An app with names in its scope follows:
//!
//! ```no_run
//! # async fn run(client: kith_client::Client, answer: kith_client::AskResult) -> Result<(), kith_client::ClientError> {
//! let mut updates = client.follow(answer.query_id);
//! loop {
//!     let update = updates.next().await?;
//!     println!("{} approved: {}", update.named.name, update.named.endorsement.item);
//! }
//! # }
//! ```
//!
//! ## 4. Errors
//!
//! [`ClientError`], sorted by fault: `NodeUnreachable` (node down or wrong address; the
//! client reconnects by itself at the next request after a restart), `NotPaired` and
//! `Revoked` (pair again, or ask the owner), `OutOfScope` and `RateLimited` (the owner's
//! limits), `Unauthorized` (an owner-only request), `Node` (the node refused the request,
//! with a code), `Protocol` (bytes that break the protocol), `Timeout`, `Credential`,
//! `PairingRefused`.
//!
//! Examples: `cargo run -p kith-client --example social_proof -- --node API_ADDR --pair CODE
//! --item ITEM`, and `--example owner_console` for the owner's pending approvals and audit
//! log. The wire protocol is `spec/kith.md` §10.

#![forbid(unsafe_code)]

pub mod client;
pub mod credential;
pub mod error;
pub mod sentence;
pub mod transport;
pub mod updates;

pub use client::{Answer, Client, Closer, Query};
pub use credential::Credential;
pub use error::ClientError;
pub use kith_protocol::app::{AskResult, NamedEndorsement};
pub use sentence::{count_phrase, social_proof};
pub use updates::Updates;
