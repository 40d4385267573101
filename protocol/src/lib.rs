//! # kith-protocol
//!
//! The kith protocol as plain data and pure functions: identities, contact cards and
//! invites, item keys, endorsements, consent, wire messages and framing, sealed envelopes,
//! the budget, and the ask as sans-IO state machines. No sockets, files, clocks or global
//! RNG: callers inject randomness (`rand_core::CryptoRngCore`) and time (`now`).
//!
//! The normative description is `spec/` in the repository; every public item names the
//! section it implements.
//!
//! ## Data flow of an ask
//!
//! A node asks every contact at once with [`aggregation::asker::AggAsker`]: round 0
//! carries each contact's named answer and opens its aggregation session, rounds 1–4
//! compute the noisy count (§9.8); a contact's node answers with
//! [`aggregation::responder::AggResponder`], kept per (asker, query id) in an
//! [`aggregation::session::ResponderSession`].
//!
//! ```text
//!   app ──AppRequest::Ask──▶ asker node                                  contact nodes
//!                            AggAsker::new ──poll_transmit──▶ AggRequest::Advertise ──▶ answer_query()
//!                                                                                       + AggResponder::start
//!                                          ◀─handle_response── AggResponse::Advertised { answer, advertisement }
//!                            (verifies each SignedEndorsement: endorser, audience, query id)
//!                            rounds 1–4 ──▶ ShareKeys, MaskInput, Consistency, Unmask ──▶ AggResponder::handle
//!                            then Close to every session left open
//!   app ◀─AppResponse::AskResult── outcome(): named, the count with its interval, declined
//! ```
//!
//! [`AskRound`] (a plain [`PeerRequest::Ask`], named answers only, §8.3) is kept for
//! implementations that do not aggregate; the reference node answers it but never sends it.
//!
//! Every message travels in a [frame](frame) of at most [`MAX_PEER_FRAME`] bytes (peers) or
//! [`MAX_APP_FRAME`] bytes (apps), and starts with [`PROTOCOL_VERSION`] ([`wire`]).
//!
//! ## The responder side
//!
//! What a node answers another node's request, and what it must write for it, is decided
//! by [`endpoint::Endpoint::decide`]: the request, what the node knows (read through
//! [`endpoint::NodeState`]) and `now` in, the response and its [`endpoint::Effect`]s out.
//! A contact's aggregation rounds go to its [`aggregation::session::ResponderSession`].
//!
//! ## Errors
//!
//! Sorted by who is at fault: [`PeerMisbehaved`] (bad bytes from the network),
//! [`Incompatible`] (a version we do not speak), [`InviteError`] and [`ItemError`] (input a
//! person typed), [`InvalidInput`] (values an app supplied).
//!
//! ## Spec sections
//!
//! §2 identities · §3 cards and invites · §4 transport · §5 framing and encoding ·
//! §6 items, endorsements, consent · §7 sealed envelopes · §8 peer messages ·
//! §9 secure aggregation · §10 app API.

#![forbid(unsafe_code)]
#![deny(missing_debug_implementations)]

pub mod aggregation;
pub mod app;
pub mod ask;
pub mod budget;
pub mod card;
pub mod consent;
pub mod display_text;
pub mod endorsement;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod frame;
pub mod identity;
pub mod invite;
pub mod item;
pub mod message;
pub mod pairing;
pub mod responder;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text_code;
pub mod wire;

pub use ask::{AskOutcome, AskRound, ContactFailure, Named, Transmit, DEFAULT_ASK_TIMEOUT};
pub use card::{CardUpdate, ContactCard, SignedCard, VerifiedCard};
pub use consent::{ConsentPolicy, PolicyRule, Share, Subject, DEFAULT_CIRCLE, DEFAULT_SHARE};
pub use endorsement::{Endorsement, EndorsementStatement, SignedEndorsement};
pub use envelope::{open, seal, SealedEnvelope};
pub use error::{Incompatible, InvalidInput, InviteError, ItemError, PeerMisbehaved, WireError};
pub use frame::{encode_frame, FrameDecoder, MAX_APP_FRAME, MAX_PEER_FRAME};
pub use identity::{Identity, NodeId, SealingPublicKey, Signature, SigningLabel};
pub use invite::{CheckedInvite, Invite, InviteId, InviteSecret};
pub use item::{ItemKey, ItemPattern, Scheme};
pub use message::{Answer, InviteRedemption, PeerRequest, PeerResponse, Query, QueryId, Refusal};
pub use responder::{answer_query, Disclosure};
pub use wire::{decode_message, encode_message, PROTOCOL_VERSION};

/// ALPN protocol id for node-to-node traffic (spec §4.1).
pub const ALPN_PEER: &[u8] = b"kith/peer/2";
/// ALPN protocol id for app-to-node traffic (spec §10.1).
pub const ALPN_APP: &[u8] = b"kith/app/2";
/// TLS server name used on every connection; identity comes from the pinned key (spec §4.2).
pub const TLS_SERVER_NAME: &str = "kith.invalid";
