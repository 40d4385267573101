//! Paired apps (spec §10.5): pairing codes, scopes enforced on every request, revocation.
//!
//! The owner credential may do everything. A paired app may ask about the items its
//! scope names, within its daily limit, and receives named endorsements only if its scope
//! says so; it may read the updates of its own asks and a status without counts. Every
//! request an app makes is written to the audit log under its name.

use std::time::Duration;

use kith_protocol::app::{
    AppError, AppErrorCode, AppInfo, AppRequest, AppResponse, AppScope, InviteCode, PairingCreated,
};
use kith_protocol::display_text::is_displayable;
use kith_protocol::pairing::{PairingCode, PAIRING_SECRET_LEN, PAIRING_TTL_SECS};
use kith_protocol::NodeId;
use rand_core::{OsRng, RngCore};

use crate::replies::{err, internal};
use crate::shared::Shared;
use crate::store::{AuditEvent, Event, PairingRefused, Principal};
use crate::unix_now;

/// Longest app name.
pub const MAX_APP_NAME: usize = 64;

/// `CreatePairing`: a fresh one-time code for an app called `name`.
pub(crate) fn create_pairing(
    shared: &Shared,
    name: String,
    scope: AppScope,
) -> Result<PairingCreated, AppError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_APP_NAME || !is_displayable(&name) {
        return Err(err(
            AppErrorCode::BadRequest,
            format!("an app name is 1 to {MAX_APP_NAME} printable characters"),
        ));
    }
    if scope.ask.is_empty() {
        return Err(err(
            AppErrorCode::BadRequest,
            "a scope needs at least one item pattern the app may ask about",
        ));
    }
    let mut secret = [0u8; PAIRING_SECRET_LEN];
    OsRng.fill_bytes(&mut secret);
    let code = PairingCode {
        node: shared.identity.node_id(),
        secret,
    };
    let now = unix_now();
    let expires_at = now + PAIRING_TTL_SECS;
    shared
        .store
        .add_pairing(&code.secret_hash(), &name, &scope, now, expires_at)
        .map_err(internal)?;
    shared.audit(AuditEvent {
        event: Event::AppPairing,
        peer: None,
        peer_name: Some(&name),
        item: None,
        detail: "pairing code created (valid 10 minutes)".into(),
    });
    Ok(PairingCreated {
        code: InviteCode(code.to_text()),
        name,
        expires_at,
    })
}

/// `Pair` from a key the node does not know: redeem the code for that key.
pub(crate) fn redeem(shared: &Shared, key: NodeId, code: &InviteCode) -> Result<AppInfo, AppError> {
    let refused = |why: &str| {
        err(
            AppErrorCode::Unauthorized,
            format!("pairing refused: {why}"),
        )
    };
    let code = PairingCode::from_text(&code.0).map_err(|e| refused(&e.to_string()))?;
    if code.node != shared.identity.node_id() {
        return Err(refused("the code was made by another node"));
    }
    let outcome = shared
        .store
        .redeem_pairing(&code.secret_hash(), &key, unix_now())
        .map_err(|e| {
            // Logged here; a stranger is not told the store's details.
            tracing::error!("store: {e}");
            err(AppErrorCode::Internal, "the node failed; try again later")
        })?;
    match outcome {
        Ok(info) => {
            shared.audit(AuditEvent {
                event: Event::AppPaired,
                peer: Some(key),
                peer_name: Some(&info.name),
                item: None,
                detail: "app paired".into(),
            });
            Ok(info)
        }
        Err(PairingRefused::Unknown) => Err(refused("unknown code")),
        Err(PairingRefused::Expired) => Err(refused("the code expired")),
        Err(PairingRefused::Used) => Err(refused("the code was already used")),
        Err(PairingRefused::NameTaken) => Err(refused("a paired app already has this name")),
        Err(PairingRefused::SameKey) => Err(refused("this key is already a credential")),
    }
}

/// `RevokeApp`: revoke at once and close the app's connections.
pub(crate) fn revoke(shared: &Shared, name: &str) -> Result<AppInfo, AppError> {
    let now = unix_now();
    let key = shared
        .store
        .revoke_app(name, now)
        .map_err(internal)?
        .ok_or_else(|| {
            err(
                AppErrorCode::NotFound,
                format!("no paired app called {name}"),
            )
        })?;
    shared.app_connections.close_all(&key, b"revoked");
    shared.audit(AuditEvent {
        event: Event::AppRevoked,
        peer: Some(key),
        peer_name: Some(name),
        item: None,
        detail: "app revoked".into(),
    });
    shared
        .store
        .apps(now)
        .map_err(internal)?
        .into_iter()
        .find(|a| a.key == key)
        .ok_or_else(|| internal("revoked app vanished"))
}

/// The name of a request, for the audit log.
fn kind(req: &AppRequest) -> &'static str {
    match req {
        AppRequest::Status => "Status",
        AppRequest::CreateInvite { .. } => "CreateInvite",
        AppRequest::AcceptInvite { .. } => "AcceptInvite",
        AppRequest::ListContacts => "ListContacts",
        AppRequest::Endorse { .. } => "Endorse",
        AppRequest::ListEndorsements => "ListEndorsements",
        AppRequest::Unendorse { .. } => "Unendorse",
        AppRequest::SetPolicy { .. } => "SetPolicy",
        AppRequest::ListPolicy => "ListPolicy",
        AppRequest::Ask { .. } => "Ask",
        AppRequest::Audit { .. } => "Audit",
        AppRequest::ListSettings => "ListSettings",
        AppRequest::SetSetting { .. } => "SetSetting",
        AppRequest::ListPending => "ListPending",
        AppRequest::Approve { .. } => "Approve",
        AppRequest::Deny { .. } => "Deny",
        AppRequest::ListUpdates { .. } => "ListUpdates",
        AppRequest::CreatePairing { .. } => "CreatePairing",
        AppRequest::Pair { .. } => "Pair",
        AppRequest::ListApps => "ListApps",
        AppRequest::RevokeApp { .. } => "RevokeApp",
        AppRequest::RemovePolicy { .. } => "RemovePolicy",
        AppRequest::RemoveContact { .. } => "RemoveContact",
        AppRequest::RenameContact { .. } => "RenameContact",
        AppRequest::AuditPage { .. } => "AuditPage",
        AppRequest::ListInvites => "ListInvites",
        AppRequest::RevokeInvite { .. } => "RevokeInvite",
        AppRequest::ListPairings => "ListPairings",
        AppRequest::CancelPairing { .. } => "CancelPairing",
        AppRequest::SetAdvertise { .. } => "SetAdvertise",
    }
}

/// What an app (not the owner) may do, checked before the request runs. `Ok` with the
/// request's checked form; the caller filters the answer with [`filter`].
pub(crate) fn authorize(
    shared: &Shared,
    key: &NodeId,
    principal: &Principal,
    req: &AppRequest,
) -> Result<(), AppError> {
    let Principal::App { name, scope } = principal else {
        return Ok(());
    };
    let now = unix_now();
    if let Err(e) = shared.store.touch_credential(key, now) {
        tracing::warn!("store: {e}");
    }
    let denied = |code: AppErrorCode, why: String| {
        shared.audit(AuditEvent {
            event: Event::AppDenied,
            peer: Some(*key),
            peer_name: Some(name),
            item: match req {
                AppRequest::Ask { item, .. } => Some(item.to_string()),
                _ => None,
            },
            detail: format!("{}: {why}", kind(req)),
        });
        Err(err(code, why))
    };
    match req {
        AppRequest::Status => {}
        AppRequest::Ask { item, .. } => {
            if !scope.allows(item) {
                return denied(
                    AppErrorCode::OutOfScope,
                    format!("{item} is outside this app's scope"),
                );
            }
            // Counted and charged in one transaction: concurrent asks cannot all pass.
            let ask = AuditEvent {
                event: Event::AppAsk,
                peer: Some(*key),
                peer_name: Some(name),
                item: Some(item.to_string()),
                detail: "asked for the app".into(),
            };
            let since = now.saturating_sub(24 * 3600);
            let (used, charged) = shared
                .store
                .audit_within_limit(now, &ask, since, scope.daily_limit)
                .map_err(internal)?;
            if !charged {
                let limit = scope.daily_limit.unwrap_or(0);
                return denied(
                    AppErrorCode::RateLimited,
                    format!("{used} asks in 24 h (limit {limit})"),
                );
            }
            return Ok(());
        }
        AppRequest::ListUpdates { .. } if scope.named => {}
        AppRequest::ListUpdates { .. } => {
            return denied(
                AppErrorCode::OutOfScope,
                "this app receives counts only, never names".into(),
            )
        }
        AppRequest::Pair { .. } => {
            return denied(
                AppErrorCode::Conflict,
                "this credential is already paired with the node".into(),
            )
        }
        _ => {
            return denied(
                AppErrorCode::Unauthorized,
                "only the owner's credential may do this".into(),
            )
        }
    }
    shared.audit(AuditEvent {
        event: Event::AppRequest,
        peer: Some(*key),
        peer_name: Some(name),
        item: None,
        detail: kind(req).into(),
    });
    Ok(())
}

/// Cut an answer down to what an app's scope allows.
pub(crate) fn filter(
    shared: &Shared,
    key: &NodeId,
    principal: &Principal,
    response: AppResponse,
) -> Result<AppResponse, AppError> {
    let Principal::App { scope, .. } = principal else {
        return Ok(response);
    };
    Ok(match response {
        AppResponse::Status(mut s) => {
            // Counts describe the owner's social graph and shelf: not an app's business.
            s.contacts = 0;
            s.endorsements = 0;
            AppResponse::Status(s)
        }
        AppResponse::AskResult(mut r) => {
            shared
                .store
                .add_app_query(key, &r.query_id)
                .map_err(internal)?;
            if !scope.named {
                // Counts only: no names, and so no list of who did not count either.
                r.named.clear();
                r.declined.clear();
            }
            AppResponse::AskResult(r)
        }
        AppResponse::Updates(updates) => {
            let mine = shared.store.app_queries(key).map_err(internal)?;
            AppResponse::Updates(
                updates
                    .into_iter()
                    .filter(|u| mine.contains(&u.query_id))
                    .collect(),
            )
        }
        // Everything else is answered unchanged: either an app may not make the request
        // that yields it (`authorize` refused it), or it carries nothing to filter. Listed,
        // so that a new response must be placed here.
        same @ (AppResponse::Invite(_)
        | AppResponse::Contact(_)
        | AppResponse::Contacts(_)
        | AppResponse::Endorsement(_)
        | AppResponse::Endorsements(_)
        | AppResponse::Removed(_)
        | AppResponse::PolicyRule(_)
        | AppResponse::Policy(_)
        | AppResponse::Audit(_)
        | AppResponse::Error(_)
        | AppResponse::Settings(_)
        | AppResponse::Pending(_)
        | AppResponse::Decided(_)
        | AppResponse::Pairing(_)
        | AppResponse::App(_)
        | AppResponse::Apps(_)
        | AppResponse::Invites(_)
        | AppResponse::Pairings(_)
        | AppResponse::CardUpdate(_)) => same,
    })
}

/// How long an unknown key may take to open its stream and send its `Pair` request.
pub const PAIRING_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest `Pair` frame an unknown key may send (a pairing code is about 90 bytes).
pub const MAX_PAIR_FRAME: u32 = 1024;
