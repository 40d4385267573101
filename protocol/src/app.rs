//! The app API (spec §10): messages between an app (or the `kith` CLI) and its owner's node,
//! on ALPN `kith/app/2`. Same framing and versioning as peer messages.

use serde::{Deserialize, Serialize};

use crate::consent::{Share, Subject};
use crate::endorsement::{Endorsement, EndorsementStatement, SignedEndorsement};
use crate::error::PeerMisbehaved;
use crate::identity::NodeId;
use crate::item::{ItemKey, ItemPattern};
use crate::message::QueryId;
pub use crate::pairing::{AppInfo, AppScope, PairingCreated};

/// A request from an app to its node. Variant indices are listed in spec §10.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppRequest {
    /// 0
    Status,
    /// 1: make an invite; the acceptor joins `circle` (default `friends`).
    CreateInvite { circle: Option<String> },
    /// 2: redeem someone's invite code; the inviter joins `circle` (default: unchanged for
    /// an existing contact, `friends` for a new one).
    AcceptInvite {
        code: InviteCode,
        circle: Option<String>,
    },
    /// 3
    ListContacts,
    /// 4: record or replace the endorsement of `item`.
    Endorse {
        item: ItemKey,
        count: u32,
        rating: Option<u8>,
        note: Option<String>,
    },
    /// 5
    ListEndorsements,
    /// 6
    Unendorse { item: ItemKey },
    /// 7: add or replace the rule for (subject, items).
    SetPolicy {
        subject: SubjectRef,
        items: ItemPattern,
        share: Share,
    },
    /// 8
    ListPolicy,
    /// 9: ask every contact about `item`, waiting at most `timeout_ms`; `epsilon` is the
    /// requested ε in thousandths (None: no requirement beyond the cohort's settings);
    /// `detail` asks for units and ratings besides `owners`, from the same ε (§9.6.1).
    Ask {
        item: ItemKey,
        timeout_ms: u32,
        epsilon: Option<u32>,
        detail: bool,
    },
    /// 10: the newest `limit` audit entries, newest first.
    Audit { limit: u32 },
    /// 11: every node setting with its current value (spec §9.10).
    ListSettings,
    /// 12: change one setting.
    SetSetting { key: String, value: String },
    /// 13: requests waiting for the owner's approval (consent `ask`, spec §8.5).
    ListPending,
    /// 14: approve a pending request: the named endorsement is sent to the asker.
    Approve { id: u64 },
    /// 15: deny a pending request: nothing is sent.
    Deny { id: u64 },
    /// 16: named endorsements that arrived after an ask finished (all asks, or one).
    ListUpdates { query_id: Option<QueryId> },
    /// 17 (owner): a one-time code that pairs a new app with `name` and `scope` (§10.5).
    CreatePairing { name: String, scope: AppScope },
    /// 18 (a key the node does not know yet): redeem a pairing code; the connection's key
    /// becomes the app's credential.
    Pair { code: InviteCode },
    /// 19 (owner): the paired apps, revoked ones included.
    ListApps,
    /// 20 (owner): revoke an app at once; its open connections are closed.
    RevokeApp { name: String },
    /// 21: remove the rule for exactly this subject and pattern (owner only; spec §10.2).
    /// Answered `Removed(bool)`: whether there was one.
    RemovePolicy {
        subject: SubjectRef,
        items: ItemPattern,
    },
    /// 22: forget a contact (owner only): it can no longer ask, is no longer asked, and
    /// rules naming it go. Answered `Contact` with what was removed.
    RemoveContact { contact: String },
    /// 23: call a contact by another name in this node (owner only). Answered `Contact`.
    RenameContact { contact: String, name: String },
    /// 24: a page of the audit log, newest first (owner only; spec §10.2): entries with an
    /// id below `before` (all if none), about `contact` (name or node id prefix) if given,
    /// about `item` or anything below it if given, at most `limit` (capped at 1000).
    /// Answered `Audit`.
    AuditPage {
        before: Option<u64>,
        contact: Option<String>,
        item: Option<String>,
        limit: u32,
    },
    /// 25: the invites this node issued, newest first (owner only). Answered `Invites`.
    ListInvites,
    /// 26: revoke an unused invite, named by the start of its id in hex (at least 8 digits;
    /// owner only): it can no longer be redeemed. Answered `Removed(bool)`: whether an
    /// unused invite was revoked.
    RevokeInvite { id: String },
    /// 27: the pairing codes made and not yet redeemed, expired or superseded (owner
    /// only). Answered `Pairings`.
    ListPairings,
    /// 28: cancel the open pairing code for the app called `name` (owner only): it can no
    /// longer be redeemed. Answered `Removed(bool)`: whether there was one.
    CancelPairing { name: String },
    /// 29: advertise these addresses (`host:port`, 1 to 4) from now on (owner only; spec
    /// §8.6, §10.2): new invites carry them, and every contact is sent the new card at once
    /// (and every 10 minutes until it acknowledges). Answered `CardUpdate`.
    SetAdvertise { addresses: Vec<String> },
}

/// How an app names a rule's subject: a circle, or a contact by display name or node id hex.
/// Spec: §10.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectRef {
    Circle(String),
    Contact(String),
}

/// A response from the node. Variant indices are listed in spec §10.3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppResponse {
    /// 0
    Status(NodeStatus),
    /// 1
    Invite(InviteCreated),
    /// 2
    Contact(ContactInfo),
    /// 3
    Contacts(Vec<ContactInfo>),
    /// 4
    Endorsement(Endorsement),
    /// 5
    Endorsements(Vec<Endorsement>),
    /// 6: whether something was removed.
    Removed(bool),
    /// 7
    PolicyRule(PolicyEntry),
    /// 8
    Policy(Vec<PolicyEntry>),
    /// 9
    AskResult(AskResult),
    /// 10
    Audit(Vec<AuditEntry>),
    /// 11
    Error(AppError),
    /// 12: (key, value) pairs.
    Settings(Vec<(String, String)>),
    /// 13
    Pending(Vec<PendingRequest>),
    /// 14: the request after the owner's decision.
    Decided(PendingRequest),
    /// 15
    Updates(Vec<AnswerUpdate>),
    /// 16: a new pairing code, shown once.
    Pairing(PairingCreated),
    /// 17: one app (after pairing or revocation).
    App(AppInfo),
    /// 18
    Apps(Vec<AppInfo>),
    /// 19: invites issued, newest first (spec §10.3).
    Invites(Vec<InviteInfo>),
    /// 20: pairing codes waiting to be redeemed, newest first (spec §10.3).
    Pairings(Vec<PairingInfo>),
    /// 21: the addresses now advertised, and which contacts acknowledged the new card
    /// (spec §8.6).
    CardUpdate(CardUpdateReport),
}

/// Where a card update stands right after the owner changed the advertised addresses
/// (spec §8.6, §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardUpdateReport {
    /// The addresses the card (and every new invite) now carries.
    pub addresses: Vec<String>,
    /// Names of the contacts that acknowledged the new card.
    pub delivered: Vec<String>,
    /// Contacts that did not; they are sent it again every 10 minutes.
    pub unreached: Vec<CardUpdateUnreached>,
}

/// A contact that has not acknowledged the new card yet (spec §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardUpdateUnreached {
    pub contact: NodeId,
    /// Its name in this node's contact list.
    pub name: String,
    /// Why, for a person: "no answer in time", "refused: not a contact", …
    pub reason: String,
}

/// A pairing code not yet redeemed, as the owner lists it (spec §10.3): never the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingInfo {
    /// The name the app will have.
    pub name: String,
    pub scope: AppScope,
    pub created_at: u64,
    pub expires_at: u64,
}

/// An invite as the owner lists it (spec §10.3): never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteInfo {
    /// The invite id (16 bytes): what `RevokeInvite` names it by.
    pub id: [u8; 16],
    pub circle: String,
    pub created_at: u64,
    pub expires_at: u64,
    /// When it was redeemed, and by whom.
    pub used_at: Option<u64>,
    pub used_by: Option<NodeId>,
}

/// A request waiting for (or past) the owner's decision (spec §8.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub id: u64,
    pub asker: NodeId,
    pub asker_name: String,
    pub query_id: QueryId,
    /// The endorsed item the asker would learn about.
    pub item: ItemKey,
    /// What the asker asked about.
    pub asked: ItemKey,
    pub created_at: u64,
    pub status: PendingStatus,
}

/// Where a pending request stands (spec §8.5.2). The discriminants are the wire codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum PendingStatus {
    /// Waiting for the owner.
    Pending = 0,
    /// Approved: the named endorsement was delivered.
    Approved = 1,
    /// Denied: nothing was sent.
    Denied = 2,
    /// Not decided within 7 days: nothing will be sent.
    Expired = 3,
}

impl PendingStatus {
    /// Every status, in wire order (spec §10.3).
    pub const ALL: [PendingStatus; 4] = [
        PendingStatus::Pending,
        PendingStatus::Approved,
        PendingStatus::Denied,
        PendingStatus::Expired,
    ];

    /// Its code on the wire (spec §10.3), also what the reference node stores.
    pub fn wire_code(self) -> u8 {
        self as u8
    }

    /// Its name, as shown: `pending`, `approved`, `denied` or `expired` (spec §10.3).
    pub fn as_str(self) -> &'static str {
        match self {
            PendingStatus::Pending => "pending",
            PendingStatus::Approved => "approved",
            PendingStatus::Denied => "denied",
            PendingStatus::Expired => "expired",
        }
    }

    /// Read a name written by [`PendingStatus::as_str`] (spec §10.3).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl core::fmt::Display for PendingStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named endorsement that arrived after its ask finished (spec §10.3, §8.5.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerUpdate {
    pub query_id: QueryId,
    pub received_at: u64,
    pub named: NamedEndorsement,
}

/// What `kith status` shows (spec §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub node_id: NodeId,
    /// Where contacts reach this node.
    pub peer_addr: String,
    /// Where apps reach this node's API.
    pub api_addr: String,
    pub contacts: u32,
    pub endorsements: u32,
    pub software: String,
    pub uptime_secs: u64,
}

/// An invite code as text. It is a bearer secret until redeemed, so `Debug` hides it. On
/// the wire it is a plain string (spec §10.2).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InviteCode(pub String);

impl core::fmt::Debug for InviteCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("InviteCode(<redacted>)")
    }
}

/// A new invite: its `KITH1` code, its expiry and the acceptor's circle (spec §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteCreated {
    pub code: InviteCode,
    pub expires_at: u64,
    pub circle: String,
}

/// A contact as the app API lists it: name, node id, circle, addresses (spec §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactInfo {
    pub name: String,
    pub node_id: NodeId,
    pub circle: String,
    pub addresses: Vec<String>,
    pub added_at: u64,
}

/// A consent rule as the app API lists it, with the contact's name (spec §10.3, §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyEntry {
    pub subject: Subject,
    /// For a contact rule, the contact's display name.
    pub contact_name: Option<String>,
    pub items: ItemPattern,
    pub share: Share,
}

/// The result of an ask (spec §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskResult {
    pub query_id: QueryId,
    pub item: ItemKey,
    /// Contacts the query was sent to.
    pub asked: u32,
    /// Contacts whose answer arrived and verified before the deadline.
    pub answered: u32,
    pub named: Vec<NamedEndorsement>,
    pub elapsed_ms: u32,
    /// Members whose keys arrived (|U1|, spec §9.8).
    pub cohort: u32,
    /// Members whose input is in the aggregate (|U3|).
    pub survivors: u32,
    /// The noisy sum, or `None` when withheld.
    pub aggregate: Option<crate::aggregation::estimate::AggregateSum>,
    /// Why the aggregate was withheld.
    pub withheld: Option<String>,
    /// The effective ε in thousandths; `None` means no noise was required (exact).
    pub epsilon: Option<u32>,
    /// Every asked contact that is not in the aggregate, and why (spec §10.3).
    pub declined: Vec<Declined>,
}

/// A contact that did not count in an ask (spec §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declined {
    pub contact: NodeId,
    /// Its name in the asker's contact list.
    pub name: String,
    /// The round (0–4, spec §9.7) in which it stopped counting.
    pub round: u8,
    pub reason: DeclineReason,
}

/// Why a contact did not count (spec §10.3). The variants are numbered as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeclineReason {
    /// 0: no connection could be made, or it broke.
    Unreachable,
    /// 1: no reply before the round's deadline.
    TimedOut,
    /// 2: the asker used up the contact's `asks-per-day`.
    DailyBudget,
    /// 3: the ask would take the asker past the contact's `epsilon-per-day`.
    PrivacyBudget,
    /// 4: the asker already has as many asks open with the contact as it allows.
    TooManyOpenAsks,
    /// 5: the contact does not have the asker as a contact (any more).
    NotAContact,
    /// 6: the contact refused for another reason (internal error, version).
    Refused,
    /// 7: the contact left the aggregation: it found the asker's messages inconsistent,
    ///    the cohort too small for the session's parameters, or its session expired.
    Aborted,
    /// 8: its reply was malformed or forged, and was ignored.
    Misbehaved,
    /// 9: left out: the cohort was full (spec §9.8.4).
    CohortFull,
}

impl DeclineReason {
    /// A short stable name, for JSON and logs (spec §10.3).
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineReason::Unreachable => "unreachable",
            DeclineReason::TimedOut => "timed-out",
            DeclineReason::DailyBudget => "daily-budget",
            DeclineReason::PrivacyBudget => "privacy-budget",
            DeclineReason::TooManyOpenAsks => "too-many-open-asks",
            DeclineReason::NotAContact => "not-a-contact",
            DeclineReason::Refused => "refused",
            DeclineReason::Aborted => "aborted",
            DeclineReason::Misbehaved => "misbehaved",
            DeclineReason::CohortFull => "cohort-full",
        }
    }

    /// What it means, for people (spec §10.3).
    pub fn explain(self) -> &'static str {
        match self {
            DeclineReason::Unreachable => "unreachable",
            DeclineReason::TimedOut => "did not answer in time",
            DeclineReason::DailyBudget => "you used up the asks it allows you per day",
            DeclineReason::PrivacyBudget => "you used up the privacy budget it allows you per day",
            DeclineReason::TooManyOpenAsks => "too many of your asks are still open there",
            DeclineReason::NotAContact => "no longer has you as a contact",
            DeclineReason::Refused => "refused the ask",
            DeclineReason::Aborted => "left the aggregate",
            DeclineReason::Misbehaved => "sent an invalid reply",
            DeclineReason::CohortFull => "left out: the cohort was full",
        }
    }
}

/// An endorsement disclosed by name, with the endorser's signature so that anyone can
/// check it ([`NamedEndorsement::verify`]; spec §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedEndorsement {
    /// The endorser's name in the asker's contact list.
    pub name: String,
    pub node: NodeId,
    pub endorsement: Endorsement,
    pub signed: SignedEndorsement,
}

impl NamedEndorsement {
    /// Check that `signed` is a valid signature by `node` and says exactly `endorsement`.
    /// Spec: §10.3 (`NamedEndorsement`), with the checks of §8.3.3 steps 6.1–6.4.
    pub fn verify(&self) -> Result<EndorsementStatement, PeerMisbehaved> {
        let st = self.signed.verify_signature()?;
        if st.endorser != self.node || st.endorsement != self.endorsement {
            return Err(PeerMisbehaved::Unexpected(
                "named endorsement does not match its signature",
            ));
        }
        Ok(st)
    }
}

/// One line of the audit log (spec §10.3, §8.3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: u64,
    /// Unix seconds.
    pub at: u64,
    /// What happened: `answered`, `asked`, `contact-added`, `rate-limited`, `pending`,
    /// `approved`, `denied`, `late-endorsement` (spec §8.3.5), or one of the paired-app
    /// events `app-pairing`, `app-paired`, `app-ask`, `app-request`, `app-denied`,
    /// `app-revoked` (spec §10.5).
    pub event: String,
    pub peer: Option<NodeId>,
    pub peer_name: Option<String>,
    pub item: Option<String>,
    /// What was disclosed or done, in words.
    pub detail: String,
}

/// An error from the node (spec §10.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    pub code: AppErrorCode,
    pub message: String,
}

/// Error codes, sorted by fault. Indices are listed in spec §10.4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppErrorCode {
    /// 0: the request was invalid (bad value, unknown contact name...).
    BadRequest,
    /// 1: the thing named does not exist.
    NotFound,
    /// 2: the credential is not (or no longer) allowed to do this.
    Unauthorized,
    /// 3: the invite code is malformed.
    InviteMalformed,
    /// 4: the invite code expired.
    InviteExpired,
    /// 5: the invite code was already used.
    InviteUsed,
    /// 6: the inviter's node does not know the code.
    InviteUnknown,
    /// 7: a remote node could not be reached.
    Unreachable,
    /// 8: a remote node misbehaved.
    PeerMisbehaved,
    /// 9: the node failed internally.
    Internal,
    /// 10: the request conflicts with existing state (e.g. a request already decided).
    Conflict,
    /// 11: the app's scope does not cover this request (§10.5).
    OutOfScope,
    /// 12: the app used up its daily limit of asks (§10.5).
    RateLimited,
}
