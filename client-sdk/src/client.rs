//! [`Client`]: an authenticated connection from an app to its node (spec §10).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use kith_protocol::app::{
    AnswerUpdate, AppErrorCode, AppInfo, AppRequest, AppResponse, AppScope, AskResult, AuditEntry,
    ContactInfo, InviteCode, InviteCreated, NodeStatus, PairingCreated, PendingRequest,
    PolicyEntry, SubjectRef,
};
use kith_protocol::frame::MAX_APP_FRAME;
use kith_protocol::pairing::PairingCode;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{
    Endorsement, Identity, ItemKey, ItemPattern, NodeId, QueryId, Share, ALPN_APP, TLS_SERVER_NAME,
};

use crate::credential::Credential;
use crate::error::ClientError;
use crate::transport::{self, CLOSE_UNAUTHORIZED};

/// How long to wait for the QUIC handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an ordinary request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits between attempts to reconnect after the connection was lost: about 4 s in all.
const RECONNECT_BACKOFF: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_secs(1),
    Duration::from_secs(3),
];

/// A connection to your own node. If the connection is lost (the node restarted, the
/// network blinked), the next request reconnects first, with backoff; a request that was
/// in flight when the connection went fails with [`ClientError::NodeUnreachable`] and may
/// be retried.
#[derive(Debug)]
pub struct Client {
    endpoint: quinn::Endpoint,
    conn: tokio::sync::Mutex<quinn::Connection>,
    config: quinn::ClientConfig,
    addr: SocketAddr,
}

impl Client {
    /// Connect to the node at `addr`, pinning `credential.node` and authenticating with the
    /// credential's key. Acceptance is known only when the first request is answered.
    pub async fn connect(addr: SocketAddr, credential: &Credential) -> Result<Self, ClientError> {
        let unreachable = |reason: String| ClientError::NodeUnreachable {
            addr: addr.to_string(),
            reason,
        };
        let bind: SocketAddr = if addr.is_ipv6() {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = quinn::Endpoint::client(bind).map_err(|e| unreachable(e.to_string()))?;
        let config = transport::client_config(&credential.identity, credential.node, ALPN_APP)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let conn = dial(&endpoint, &config, addr).await?;
        Ok(Self {
            endpoint,
            conn: tokio::sync::Mutex::new(conn),
            config,
            addr,
        })
    }

    /// The connection to use: the current one, or, if it was lost, a new one (with
    /// backoff). A connection the node closed because of the credential is not retried.
    async fn connection(&self) -> Result<quinn::Connection, ClientError> {
        let mut conn = self.conn.lock().await;
        match conn.close_reason() {
            None => return Ok(conn.clone()),
            Some(reason) => {
                if let Some(e) = credential_refused(&reason) {
                    return Err(e);
                }
            }
        }
        let mut last = None;
        for wait in RECONNECT_BACKOFF {
            tokio::time::sleep(wait).await;
            match dial(&self.endpoint, &self.config, self.addr).await {
                Ok(c) => {
                    *conn = c.clone();
                    return Ok(c);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Connect using the address in the credential.
    pub async fn connect_with(credential: &Credential) -> Result<Self, ClientError> {
        Self::connect(credential.api_addr, credential).await
    }

    /// Pair a new app with the node at `addr` using a one-time `code` from
    /// `kith apps pair` (spec §10.5): a fresh key is made for the app and registered by the
    /// node. Save the returned credential (0600) and connect with it from then on.
    pub async fn pair(
        addr: SocketAddr,
        code: &str,
    ) -> Result<(Self, Credential, AppInfo), ClientError> {
        let parsed =
            PairingCode::from_text(code).map_err(|e| ClientError::PairingRefused(e.to_string()))?;
        let credential = Credential {
            node: parsed.node,
            api_addr: addr,
            identity: Identity::generate(&mut rand_core::OsRng),
        };
        let client = Self::connect(addr, &credential).await?;
        let request = AppRequest::Pair {
            code: InviteCode(code.trim().to_string()),
        };
        match client.call_raw(&request, REQUEST_TIMEOUT).await? {
            AppResponse::App(info) => Ok((client, credential, info)),
            // The node failed: not a refusal of the code, which may still work later.
            AppResponse::Error(e) if e.code == AppErrorCode::Internal => Err(ClientError::Node {
                code: e.code,
                message: e.message,
            }),
            AppResponse::Error(e) => Err(ClientError::PairingRefused(e.message)),
            other => Err(unexpected(other)),
        }
    }

    /// Send one request and wait for its response, errors included.
    async fn call_raw(
        &self,
        request: &AppRequest,
        timeout: Duration,
    ) -> Result<AppResponse, ClientError> {
        let bytes = encode_message(request);
        let conn = self.connection().await?;
        let fut = transport::exchange(&conn, &bytes, MAX_APP_FRAME, MAX_APP_FRAME);
        let reply = match tokio::time::timeout(timeout, fut).await {
            Err(_) => return Err(ClientError::Timeout(timeout.as_secs())),
            Ok(Err(e)) => {
                if let Some(refused) = conn.close_reason().as_ref().and_then(credential_refused) {
                    return Err(refused);
                }
                return Err(ClientError::NodeUnreachable {
                    addr: self.addr.to_string(),
                    reason: e.to_string(),
                });
            }
            Ok(Ok(r)) => r,
        };
        decode_message::<AppResponse>(&reply).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Send one request and wait for its response. A node error becomes [`ClientError::Node`].
    pub async fn call(
        &self,
        request: &AppRequest,
        timeout: Duration,
    ) -> Result<AppResponse, ClientError> {
        match self.call_raw(request, timeout).await? {
            AppResponse::Error(e) => Err(match e.code {
                AppErrorCode::Unauthorized => ClientError::Unauthorized,
                AppErrorCode::OutOfScope => ClientError::OutOfScope(e.message),
                AppErrorCode::RateLimited => ClientError::RateLimited(e.message),
                code => ClientError::Node {
                    code,
                    message: e.message,
                },
            }),
            r => Ok(r),
        }
    }

    async fn call_default(&self, request: AppRequest) -> Result<AppResponse, ClientError> {
        self.call(&request, REQUEST_TIMEOUT).await
    }

    /// The node's name, key, addresses and counts.
    pub async fn status(&self) -> Result<NodeStatus, ClientError> {
        match self.call_default(AppRequest::Status).await? {
            AppResponse::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Make a one-time invite code; whoever redeems it joins `circle` (default `friends`).
    pub async fn create_invite(
        &self,
        circle: Option<String>,
    ) -> Result<InviteCreated, ClientError> {
        match self
            .call_default(AppRequest::CreateInvite { circle })
            .await?
        {
            AppResponse::Invite(i) => Ok(i),
            other => Err(unexpected(other)),
        }
    }

    /// Redeem someone's invite code; they join `circle` (default `friends`).
    pub async fn accept_invite(
        &self,
        code: String,
        circle: Option<String>,
    ) -> Result<ContactInfo, ClientError> {
        match self
            .call_default(AppRequest::AcceptInvite {
                code: kith_protocol::app::InviteCode(code),
                circle,
            })
            .await?
        {
            AppResponse::Contact(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    pub async fn contacts(&self) -> Result<Vec<ContactInfo>, ClientError> {
        match self.call_default(AppRequest::ListContacts).await? {
            AppResponse::Contacts(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// Record (or replace) the endorsement of `item`.
    pub async fn endorse(
        &self,
        item: ItemKey,
        count: u32,
        rating: Option<u8>,
        note: Option<String>,
    ) -> Result<Endorsement, ClientError> {
        match self
            .call_default(AppRequest::Endorse {
                item,
                count,
                rating,
                note,
            })
            .await?
        {
            AppResponse::Endorsement(e) => Ok(e),
            other => Err(unexpected(other)),
        }
    }

    pub async fn endorsements(&self) -> Result<Vec<Endorsement>, ClientError> {
        match self.call_default(AppRequest::ListEndorsements).await? {
            AppResponse::Endorsements(e) => Ok(e),
            other => Err(unexpected(other)),
        }
    }

    /// Remove the endorsement of `item`; `Ok(false)` if there was none.
    pub async fn unendorse(&self, item: ItemKey) -> Result<bool, ClientError> {
        match self.call_default(AppRequest::Unendorse { item }).await? {
            AppResponse::Removed(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Pairing codes not yet redeemed (owner only).
    pub async fn pairings(&self) -> Result<Vec<kith_protocol::app::PairingInfo>, ClientError> {
        match self.call_default(AppRequest::ListPairings).await? {
            AppResponse::Pairings(list) => Ok(list),
            other => Err(unexpected(other)),
        }
    }

    /// Cancel the open pairing code for the app called `name` (owner only); whether there
    /// was one.
    pub async fn cancel_pairing(&self, name: &str) -> Result<bool, ClientError> {
        match self
            .call_default(AppRequest::CancelPairing {
                name: name.to_string(),
            })
            .await?
        {
            AppResponse::Removed(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// Advertise `addresses` (`host:port`, 1 to 4) from now on (owner only, spec §8.6): new
    /// invites carry them, and every contact is sent the node's new card. Returns which
    /// contacts acknowledged it; the node keeps trying the others every 10 minutes.
    pub async fn set_advertise(
        &self,
        addresses: &[String],
    ) -> Result<kith_protocol::app::CardUpdateReport, ClientError> {
        let request = AppRequest::SetAdvertise {
            addresses: addresses.to_vec(),
        };
        match self.call_default(request).await? {
            AppResponse::CardUpdate(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// The invites this node issued, newest first (owner only).
    pub async fn invites(&self) -> Result<Vec<kith_protocol::app::InviteInfo>, ClientError> {
        match self.call_default(AppRequest::ListInvites).await? {
            AppResponse::Invites(list) => Ok(list),
            other => Err(unexpected(other)),
        }
    }

    /// Revoke the unused invite whose id starts with `id` (hex, 8 digits or more; owner
    /// only); whether one was revoked.
    pub async fn revoke_invite(&self, id: &str) -> Result<bool, ClientError> {
        match self
            .call_default(AppRequest::RevokeInvite { id: id.to_string() })
            .await?
        {
            AppResponse::Removed(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// A page of the audit log, newest first (owner only): entries below id `before`,
    /// about `contact` (name or node id prefix) and about `item` or below it, if given.
    pub async fn audit_page(
        &self,
        before: Option<u64>,
        contact: Option<String>,
        item: Option<String>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, ClientError> {
        match self
            .call_default(AppRequest::AuditPage {
                before,
                contact,
                item,
                limit,
            })
            .await?
        {
            AppResponse::Audit(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// Remove the rule for exactly this subject and pattern; whether there was one (owner
    /// only).
    pub async fn remove_policy(
        &self,
        subject: SubjectRef,
        items: ItemPattern,
    ) -> Result<bool, ClientError> {
        match self
            .call_default(AppRequest::RemovePolicy { subject, items })
            .await?
        {
            AppResponse::Removed(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// Forget a contact, named by display name or node id prefix (owner only); returns it.
    pub async fn remove_contact(&self, contact: &str) -> Result<ContactInfo, ClientError> {
        match self
            .call_default(AppRequest::RemoveContact {
                contact: contact.to_string(),
            })
            .await?
        {
            AppResponse::Contact(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// Call a contact by another name in this node (owner only); returns it renamed.
    pub async fn rename_contact(
        &self,
        contact: &str,
        name: &str,
    ) -> Result<ContactInfo, ClientError> {
        match self
            .call_default(AppRequest::RenameContact {
                contact: contact.to_string(),
                name: name.to_string(),
            })
            .await?
        {
            AppResponse::Contact(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    pub async fn set_policy(
        &self,
        subject: SubjectRef,
        items: ItemPattern,
        share: Share,
    ) -> Result<PolicyEntry, ClientError> {
        match self
            .call_default(AppRequest::SetPolicy {
                subject,
                items,
                share,
            })
            .await?
        {
            AppResponse::PolicyRule(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    pub async fn policy(&self) -> Result<Vec<PolicyEntry>, ClientError> {
        match self.call_default(AppRequest::ListPolicy).await? {
            AppResponse::Policy(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Ask every contact about `item`, waiting at most `timeout` for the whole ask
    /// (named answers and the aggregate). `epsilon` requests noise at least that strict.
    pub async fn ask(&self, query: impl Into<Query>) -> Result<Answer, ClientError> {
        let q = query.into();
        let timeout_ms = q.timeout.as_millis().min(u32::MAX as u128) as u32;
        let epsilon = q
            .epsilon
            .map(|e| (e * 1000.0).round().clamp(1.0, u32::MAX as f64) as u32);
        let request = AppRequest::Ask {
            item: q.item,
            timeout_ms,
            epsilon,
            detail: q.detail,
        };
        match self
            .call(&request, q.timeout.saturating_add(REQUEST_TIMEOUT))
            .await?
        {
            AppResponse::AskResult(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// [`Client::ask`] with a requested ε (the effective ε is the strictest of this and
    /// every cohort member's setting).
    pub async fn ask_with_epsilon(
        &self,
        item: ItemKey,
        timeout: Duration,
        epsilon: Option<f64>,
    ) -> Result<AskResult, ClientError> {
        self.ask(Query {
            item,
            timeout,
            epsilon,
            detail: false,
        })
        .await
    }

    /// Requests waiting for the owner's approval (consent `ask`), newest first.
    pub async fn pending(&self) -> Result<Vec<PendingRequest>, ClientError> {
        match self.call_default(AppRequest::ListPending).await? {
            AppResponse::Pending(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Approve a pending request: the named endorsement is delivered to the asker.
    pub async fn approve(&self, id: u64) -> Result<PendingRequest, ClientError> {
        match self.call_default(AppRequest::Approve { id }).await? {
            AppResponse::Decided(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Deny a pending request: nothing is sent.
    pub async fn deny(&self, id: u64) -> Result<PendingRequest, ClientError> {
        match self.call_default(AppRequest::Deny { id }).await? {
            AppResponse::Decided(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Named endorsements approved after their ask finished (for one ask, or all).
    pub async fn updates(
        &self,
        query_id: Option<QueryId>,
    ) -> Result<Vec<AnswerUpdate>, ClientError> {
        match self
            .call_default(AppRequest::ListUpdates { query_id })
            .await?
        {
            AppResponse::Updates(u) => Ok(u),
            other => Err(unexpected(other)),
        }
    }

    /// Follow one answer: the named endorsements contacts approve after the ask `query_id`
    /// finished, as they arrive (polling every 2 s; see [`crate::updates`]).
    pub fn follow(&self, query_id: QueryId) -> crate::Updates<'_> {
        crate::Updates::new(self, query_id, crate::updates::DEFAULT_POLL)
    }

    /// [`Client::follow`] with another polling interval.
    pub fn follow_every(&self, query_id: QueryId, poll: Duration) -> crate::Updates<'_> {
        crate::Updates::new(self, query_id, poll)
    }

    /// Every node setting and its value.
    pub async fn settings(&self) -> Result<Vec<(String, String)>, ClientError> {
        match self.call_default(AppRequest::ListSettings).await? {
            AppResponse::Settings(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Change a setting; returns every setting after the change.
    pub async fn set_setting(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<(String, String)>, ClientError> {
        let request = AppRequest::SetSetting {
            key: key.to_string(),
            value: value.to_string(),
        };
        match self.call_default(request).await? {
            AppResponse::Settings(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>, ClientError> {
        match self.call_default(AppRequest::Audit { limit }).await? {
            AppResponse::Audit(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// Owner: a one-time code (valid 10 minutes) that pairs an app named `name` with
    /// `scope` (spec §10.5).
    pub async fn create_pairing(
        &self,
        name: &str,
        scope: AppScope,
    ) -> Result<PairingCreated, ClientError> {
        let request = AppRequest::CreatePairing {
            name: name.into(),
            scope,
        };
        match self.call_default(request).await? {
            AppResponse::Pairing(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Owner: the paired apps, revoked ones included.
    pub async fn apps(&self) -> Result<Vec<AppInfo>, ClientError> {
        match self.call_default(AppRequest::ListApps).await? {
            AppResponse::Apps(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// Owner: revoke the app called `name` at once; its open connections are closed.
    pub async fn revoke_app(&self, name: &str) -> Result<AppInfo, ClientError> {
        match self
            .call_default(AppRequest::RevokeApp { name: name.into() })
            .await?
        {
            AppResponse::App(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// The node this client is connected to.
    pub fn node(&self) -> Option<NodeId> {
        self.conn
            .try_lock()
            .ok()
            .and_then(|c| transport::peer_key(&c))
    }

    /// A handle that closes this client's connection to the node, usable on every path
    /// out of a program, even after the client was dropped by an error: a connection left
    /// open counts against the credential's connections at the node until it times out.
    pub fn closer(&self) -> Closer {
        Closer {
            endpoint: self.endpoint.clone(),
        }
    }

    /// Close the connection politely.
    pub async fn close(self) {
        self.conn
            .into_inner()
            .close(transport::CLOSE_SHUTDOWN.into(), b"bye");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

/// Closes a [`Client`]'s connection; see [`Client::closer`].
#[derive(Debug, Clone)]
pub struct Closer {
    endpoint: quinn::Endpoint,
}

impl Closer {
    /// Close every connection of the client and wait (at most a second) until the node
    /// has been told.
    pub async fn close(self) {
        self.endpoint
            .close(transport::CLOSE_SHUTDOWN.into(), b"bye");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()).await;
    }
}

fn unexpected(r: AppResponse) -> ClientError {
    ClientError::Protocol(
        format!("unexpected response {r:?}")
            .chars()
            .take(120)
            .collect(),
    )
}

/// One connection attempt, bounded by [`CONNECT_TIMEOUT`].
async fn dial(
    endpoint: &quinn::Endpoint,
    config: &quinn::ClientConfig,
    addr: SocketAddr,
) -> Result<quinn::Connection, ClientError> {
    let unreachable = |reason: String| ClientError::NodeUnreachable {
        addr: addr.to_string(),
        reason,
    };
    let connecting = endpoint
        .connect_with(config.clone(), addr, TLS_SERVER_NAME)
        .map_err(|e| unreachable(e.to_string()))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => Err(unreachable("no answer (is `kith run` running?)".into())),
        Ok(Err(e)) if pinned_key_mismatch(&e) => Err(ClientError::WrongNode {
            addr: addr.to_string(),
        }),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Whether a handshake failed because the server's key is not the pinned one (our own
/// verifier's verdict, `transport::PinnedServerKey`).
fn pinned_key_mismatch(e: &quinn::ConnectionError) -> bool {
    e.to_string().contains("ApplicationVerificationFailure")
}

/// The error for a connection the node closed because of the credential (spec §10.1):
/// revoked, or not known at all.
fn credential_refused(reason: &quinn::ConnectionError) -> Option<ClientError> {
    match reason {
        quinn::ConnectionError::ApplicationClosed(close)
            if close.error_code.into_inner() == CLOSE_UNAUTHORIZED as u64 =>
        {
            Some(if close.reason.as_ref() == b"revoked" {
                ClientError::Revoked
            } else {
                ClientError::NotPaired
            })
        }
        _ => None,
    }
}

/// The answer to an ask (spec §10.3 `AskResult`).
pub type Answer = AskResult;

/// What to ask (spec §10.2 `Ask`): an item, how long the node may wait for contacts
/// (default 5 s, at most 60 s), and optionally noise stricter than the contacts require.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub item: ItemKey,
    pub timeout: Duration,
    pub epsilon: Option<f64>,
    /// Ask for units owned and the ratings histogram besides `owners`. They are paid from
    /// the same ε, so every count gets noisier (spec §9.6.1).
    pub detail: bool,
}

impl Query {
    pub fn new(item: ItemKey) -> Self {
        Query {
            item,
            timeout: Duration::from_secs(5),
            epsilon: None,
            detail: false,
        }
    }

    /// Ask for units and ratings too (see [`Query::detail`]).
    pub fn detail(mut self) -> Self {
        self.detail = true;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Ask for ε at most `epsilon` (smaller is more private, spec §9.6).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = Some(epsilon);
        self
    }
}

impl From<ItemKey> for Query {
    fn from(item: ItemKey) -> Self {
        Query::new(item)
    }
}
