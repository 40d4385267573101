//! The owner's view of the node itself (spec §10.2): status, settings, the audit log, and
//! the invites and pairing codes it issued.

use std::sync::Arc;

use kith_protocol::app::{
    AppError, AppErrorCode, AppInfo, AuditEntry, InviteInfo, NodeStatus, PairingInfo,
};

use super::{err, find_contact, MAX_AUDIT_LIMIT};
use crate::shared::Shared;
use crate::store::Setting;
use crate::{settings, unix_now};

/// `Status`.
pub(super) fn status(shared: &Shared) -> Result<NodeStatus, AppError> {
    let store = &shared.store;
    Ok(NodeStatus {
        name: shared.name.clone(),
        node_id: shared.identity.node_id(),
        peer_addr: shared.peer_addr.to_string(),
        api_addr: shared.api_addr.to_string(),
        contacts: store.contact_count()?,
        endorsements: store.endorsements()?.len() as u32,
        software: format!("kith {}", env!("CARGO_PKG_VERSION")),
        uptime_secs: shared.started.elapsed().as_secs(),
    })
}

/// `ListSettings` (spec §9.10).
pub(super) fn settings(shared: &Shared) -> Result<Vec<(String, String)>, AppError> {
    settings::list(&shared.store).map_err(AppError::from)
}

/// `SetSetting`: check and store one of the owner's settings (`advertise` sends contacts
/// the new card, spec §8.6); answered with every setting.
pub(super) async fn set_setting(
    shared: &Arc<Shared>,
    key: &str,
    value: String,
) -> Result<Vec<(String, String)>, AppError> {
    let bad = |e| err(AppErrorCode::BadRequest, e);
    match settings::owner_setting(key).map_err(bad)? {
        Setting::Advertise => {
            crate::card_updates::set_advertise(shared, &[value]).await?;
        }
        setting => {
            let value = settings::validate(setting, &value).map_err(bad)?;
            shared.store.set_setting(setting, &value)?;
        }
    }
    self::settings(shared)
}

/// `Audit`: the newest entries.
pub(super) fn audit(shared: &Shared, limit: u32) -> Result<Vec<AuditEntry>, AppError> {
    shared
        .store
        .audit_log(limit.min(MAX_AUDIT_LIMIT))
        .map_err(AppError::from)
}

/// `AuditPage`: entries before an id, about a contact or an item (and below it).
pub(super) fn audit_page(
    shared: &Shared,
    before: Option<u64>,
    contact: Option<String>,
    item: Option<String>,
    limit: u32,
) -> Result<Vec<AuditEntry>, AppError> {
    let peer = match &contact {
        Some(name) => Some(find_contact(shared, name)?.node_id),
        None => None,
    };
    let item = match &item {
        Some(text) => Some(
            kith_protocol::ItemKey::parse(text)
                .map_err(|e| err(AppErrorCode::BadRequest, e))?
                .to_string(),
        ),
        None => None,
    };
    shared
        .store
        .audit_page(
            before,
            peer.as_ref(),
            item.as_deref(),
            limit.min(MAX_AUDIT_LIMIT),
        )
        .map_err(AppError::from)
}

/// `ListInvites`: never their secrets.
pub(super) fn invites(shared: &Shared) -> Result<Vec<InviteInfo>, AppError> {
    shared.store.invites().map_err(AppError::from)
}

/// `RevokeInvite`: by the start of its id in hex, 8 digits or more; whether one was.
pub(super) fn revoke_invite(shared: &Shared, id: &str) -> Result<bool, AppError> {
    let prefix = id.trim().to_lowercase();
    if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(
            AppErrorCode::BadRequest,
            "name an invite by the start of its id: 8 hex digits or more (see kith invite list)",
        ));
    }
    Ok(shared.store.revoke_invites(&prefix, unix_now())? > 0)
}

/// `ListApps`, revoked ones included.
pub(super) fn apps(shared: &Shared) -> Result<Vec<AppInfo>, AppError> {
    shared.store.apps(unix_now()).map_err(AppError::from)
}

/// `ListPairings`: codes not yet redeemed, never the codes.
pub(super) fn pairings(shared: &Shared) -> Result<Vec<PairingInfo>, AppError> {
    shared
        .store
        .open_pairings(unix_now())
        .map_err(AppError::from)
}

/// `CancelPairing`: whether there was an open code for the name.
pub(super) fn cancel_pairing(shared: &Shared, name: &str) -> Result<bool, AppError> {
    shared
        .store
        .cancel_pairing(name, unix_now())
        .map_err(AppError::from)
}
