//! Errors, sorted by who is at fault (the rustls way).
//!
//! * [`PeerMisbehaved`]: bytes from the network were malformed, forged or out of place.
//! * [`Incompatible`]: the peer speaks a protocol version or option we do not.
//! * [`InviteError`]: an invite code that cannot be used, with a reason a person can act on.
//! * [`ItemError`]: an item key or pattern typed by a person is not valid.
//!
//! Spec: Appendix A (errors sorted by fault), whose rows name their sections (§2.1 to §10.5).

use thiserror::Error;

/// Bytes received from another party were not acceptable. Never the local user's fault.
/// Spec: Appendix A, "PeerMisbehaved" (the checks of §5.1, §5.2, §2.3, §3.1, §7, §8.3.3).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    /// A frame announced a length above the cap; nothing was allocated for it (spec §5.1).
    #[error("frame of {announced} bytes exceeds the cap of {cap} bytes")]
    FrameTooLarge { announced: u64, cap: u32 },
    /// The stream ended inside a frame.
    #[error("truncated frame")]
    TruncatedFrame,
    /// The message body does not decode as the expected postcard type (spec §5.2).
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// Bytes were left over after the message.
    #[error("trailing bytes after message")]
    TrailingBytes,
    /// An Ed25519 signature did not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// A sealed envelope failed authentication.
    #[error("sealed envelope failed to open")]
    EnvelopeTampered,
    /// A contact card has expired.
    #[error("contact card expired")]
    CardExpired,
    /// An answer or endorsement does not belong to the query it claims to answer.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
}

/// The peer and we do not share a protocol version or option (spec §5.3).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Incompatible {
    /// The message carries a protocol version this implementation does not speak (spec §5.3).
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u16),
}

/// Any failure decoding or checking bytes from the network: exactly one of the two faults.
/// Spec: §5.3 and Appendix A: a version we do not speak is incompatible, the rest misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error(transparent)]
    PeerMisbehaved(#[from] PeerMisbehaved),
    #[error(transparent)]
    Incompatible(#[from] Incompatible),
}

/// Why an invite code cannot be used (spec §3.2). Each variant is a distinct, actionable reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InviteError {
    /// Not a kith invite at all, or mistyped: bad prefix, alphabet, checksum or layout.
    #[error("malformed invite code: {0}")]
    Malformed(&'static str),
    /// The invite was made by a newer (or unknown) version of kith.
    #[error("invite code uses unsupported version {0}")]
    UnsupportedVersion(u8),
    /// The inviter's card inside the code is not validly signed.
    #[error("invite code is not validly signed by its inviter")]
    BadSignature,
    /// The invite's lifetime is over.
    #[error("invite code expired")]
    Expired,
    /// The inviter's node says the code was already used (invites are single use).
    #[error("invite code was already used")]
    AlreadyUsed,
    /// The inviter's node does not know this code (it never issued it, or no longer holds
    /// it).
    #[error("invite code is unknown to the inviter's node")]
    Unknown,
    /// The code is your own.
    #[error("this invite code is your own")]
    OwnInvite,
}

/// An item key or pattern is not valid (spec §6.1, §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ItemError {
    #[error("item key must look like scheme:value (schemes: isbn, gtin, wikidata, tag)")]
    MissingScheme,
    #[error("unknown item scheme {0:?} (schemes: isbn, gtin, wikidata, tag)")]
    UnknownScheme(String),
    #[error("invalid ISBN: {0}")]
    BadIsbn(&'static str),
    #[error("invalid GTIN: {0}")]
    BadGtin(&'static str),
    #[error("invalid Wikidata id: expected Q followed by digits")]
    BadWikidata,
    #[error("invalid tag: {0}")]
    BadTag(&'static str),
    #[error("item key longer than {0} bytes")]
    TooLong(usize),
    #[error("invalid pattern: {0}")]
    BadPattern(&'static str),
    #[error("item key is not in normal form")]
    NotNormalForm,
}

/// Invalid values supplied by the local user or app (API misuse, not a peer's fault).
/// Spec: Appendix A, "InvalidInput" (rules of §3.1, §6.3, §6.4); reported as `BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidInput {
    #[error("rating must be between 1 and 5")]
    Rating,
    #[error("count must be at least 1 and at most {0}")]
    Count(u32),
    #[error("note longer than {0} characters")]
    NoteTooLong(usize),
    #[error("note contains control or invisible formatting characters")]
    NoteText,
    #[error("display name must be 1 to {0} characters with no control or invisible formatting characters")]
    Name(usize),
    #[error("address {0:?} is not host:port")]
    Address(String),
    #[error("too many addresses (at most {0})")]
    TooManyAddresses(usize),
    #[error("circle name must be 1 to {0} characters of letters, digits, '-' or '_'")]
    Circle(usize),
}
