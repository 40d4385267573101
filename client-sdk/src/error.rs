//! Client errors, sorted by fault.

use kith_protocol::app::AppErrorCode;
use thiserror::Error;

/// Everything that can go wrong talking to your node.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node could not be reached (not running, wrong address, network down).
    #[error("node unreachable at {addr}: {reason}")]
    NodeUnreachable { addr: String, reason: String },
    /// Something answers at the address, but not the node the credential pins: another
    /// node (or another program's TLS) uses the address, e.g. after a restart on a port
    /// another node took.
    #[error("the node at {addr} is not yours: its key is not the one your credential pins (is another node using that address?)")]
    WrongNode { addr: String },
    /// The credential may not make this request (an owner-only request from an app).
    #[error("this credential may not do that (owner only)")]
    Unauthorized,
    /// The node does not know this credential: never paired, or the node was
    /// re-initialised. Pair again.
    #[error("the node does not know this credential; pair the app again")]
    NotPaired,
    /// The node's owner revoked this app.
    #[error("this app was revoked by the node's owner")]
    Revoked,
    /// The node answered with an error about the request.
    #[error("{message}")]
    Node { code: AppErrorCode, message: String },
    /// The node sent bytes that do not follow the protocol, or an unexpected response.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The local credential is missing or unreadable.
    #[error("{0}")]
    Credential(String),
    /// The request took longer than its deadline.
    #[error("the node did not answer within {0} seconds")]
    Timeout(u64),
    /// The app's scope does not cover the request (an item it may not ask about, names for
    /// a counts-only app, or an owner-only request).
    #[error("out of scope: {0}")]
    OutOfScope(String),
    /// The app used up its daily limit of asks.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// The pairing code was not accepted (malformed, unknown, expired, used, or for another
    /// node).
    #[error("{0}")]
    PairingRefused(String),
}
