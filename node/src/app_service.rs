//! Serving the owner's apps (spec §10).

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use kith_client::transport::{self, FrameReadError, CLOSE_SHUTDOWN, CLOSE_UNAUTHORIZED};
use kith_protocol::app::{
    AppError, AppErrorCode, AppRequest, AppResponse, ContactInfo, NodeStatus, PolicyEntry,
    SubjectRef,
};
use kith_protocol::consent::validate_circle;
use kith_protocol::frame::MAX_APP_FRAME;
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::{Endorsement, NodeId, PolicyRule, Subject, WireError};

use crate::node::Shared;
use crate::store::{AuditEvent, Event};
use crate::store::{Principal, Setting, StoredContact};
use crate::{approvals, apps, asking, invites, settings, unix_now};

/// Longest ask an app may request.
pub const MAX_ASK_TIMEOUT: Duration = Duration::from_secs(60);
/// Most audit entries returned at once.
pub const MAX_AUDIT_LIMIT: u32 = 1_000;

pub(crate) fn err(code: AppErrorCode, message: impl Display) -> AppError {
    AppError {
        code,
        message: message.to_string(),
    }
}

/// Serve an app connection authenticated as `key`: the owner, a paired app, or (when
/// `principal` is `None`) a key that may only redeem a pairing code (spec §10.5).
pub(crate) async fn serve(
    shared: Arc<Shared>,
    conn: quinn::Connection,
    key: NodeId,
    principal: Option<Principal>,
) {
    let principal = match principal {
        Some(p) => p,
        None => match pair(&shared, &conn, key).await {
            Some(p) => p,
            None => return,
        },
    };
    tracing::debug!(app = principal.name(), "app connected");
    // The owner's newest connection replaces its oldest: a CLI that died without closing
    // (a broken pipe, a kill) must not lock its owner out. Apps keep a hard limit.
    if matches!(principal, Principal::Owner { .. }) {
        shared.app_connections.add_closing_oldest(key, conn.clone());
    } else if !shared.app_connections.add(key, conn.clone()) {
        conn.close(
            CLOSE_SHUTDOWN.into(),
            b"too many connections for this credential",
        );
        return;
    }
    // A revocation between the lookup and the registration above would have missed this
    // connection: look again now that it is registered.
    if !matches!(shared.store.principal(&key), Ok(Some(_))) {
        conn.close(CLOSE_UNAUTHORIZED.into(), b"revoked");
        return;
    }
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(_) => return,
        };
        let (shared, conn, principal) = (shared.clone(), conn.clone(), principal.clone());
        tokio::spawn(async move { respond(&shared, &conn, key, &principal, send, recv).await });
    }
}

/// An unknown key's one chance: a `Pair` request with a valid code. Anything else closes
/// the connection as before pairing existed.
async fn pair(shared: &Arc<Shared>, conn: &quinn::Connection, key: NodeId) -> Option<Principal> {
    let unknown = || conn.close(CLOSE_UNAUTHORIZED.into(), b"unknown credential");
    // One deadline for the stream and its one small frame.
    let first = tokio::time::timeout(apps::PAIRING_READ_TIMEOUT, async {
        let (send, mut recv) = conn.accept_bi().await.ok()?;
        let bytes = transport::read_frame(&mut recv, apps::MAX_PAIR_FRAME)
            .await
            .ok()?;
        Some((send, bytes))
    })
    .await;
    let Ok(Some((mut send, bytes))) = first else {
        unknown();
        return None;
    };
    let Ok(AppRequest::Pair { code }) = decode_message::<AppRequest>(&bytes) else {
        unknown();
        return None;
    };
    let (response, principal) = match apps::redeem(shared, key, &code) {
        Ok(info) => {
            let principal = Principal::App {
                name: info.name.clone(),
                scope: info.scope.clone(),
            };
            (AppResponse::App(info), Some(principal))
        }
        Err(e) => (AppResponse::Error(e), None),
    };
    let _ = transport::write_frame(&mut send, &encode_message(&response), MAX_APP_FRAME).await;
    if principal.is_none() {
        // Let the refusal reach the app before the connection goes.
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
        conn.close(CLOSE_UNAUTHORIZED.into(), b"pairing refused");
    }
    principal
}

async fn respond(
    shared: &Arc<Shared>,
    conn: &quinn::Connection,
    key: NodeId,
    principal: &Principal,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let read = tokio::time::timeout(
        crate::peer_service::REQUEST_READ_TIMEOUT,
        transport::read_frame(&mut recv, MAX_APP_FRAME),
    )
    .await;
    let response = match read {
        Err(_) => {
            let _ = recv.stop(0u32.into());
            return;
        }
        Ok(Ok(bytes)) => match decode_message::<AppRequest>(&bytes) {
            Ok(req) => match shared.store.principal(&key) {
                // Revoked since the connection opened: refuse, close.
                Ok(None) => {
                    conn.close(CLOSE_UNAUTHORIZED.into(), b"revoked");
                    return;
                }
                // The node's own trouble is not the credential's: the app may come back.
                Err(e) => {
                    tracing::error!("store: {e}");
                    conn.close(CLOSE_SHUTDOWN.into(), b"internal error");
                    return;
                }
                Ok(Some(_)) => authorized(shared, key, principal, req)
                    .await
                    .unwrap_or_else(AppResponse::Error),
            },
            Err(WireError::Incompatible(e)) => AppResponse::Error(err(AppErrorCode::BadRequest, e)),
            Err(WireError::PeerMisbehaved(e)) => {
                AppResponse::Error(err(AppErrorCode::BadRequest, e))
            }
        },
        Ok(Err(FrameReadError::TooLarge(e))) => {
            let _ = recv.stop(0u32.into());
            AppResponse::Error(err(AppErrorCode::BadRequest, e))
        }
        Ok(Err(FrameReadError::Truncated)) => AppResponse::Error(err(
            AppErrorCode::BadRequest,
            "stream ended inside the request frame",
        )),
        Ok(Err(_)) => return,
    };
    let mut bytes = encode_message(&response);
    if bytes.len() > MAX_APP_FRAME as usize {
        tracing::warn!(len = bytes.len(), "response exceeds the app frame cap");
        bytes = encode_message(&AppResponse::Error(err(
            AppErrorCode::Internal,
            format!(
                "the response ({} bytes) exceeds the {MAX_APP_FRAME}-byte frame cap; ask for less",
                bytes.len()
            ),
        )));
    }
    let _ = transport::write_frame(&mut send, &bytes, MAX_APP_FRAME).await;
}

pub(crate) fn contact_info(c: &StoredContact) -> ContactInfo {
    let addresses = crate::peers::card_addresses(&c.card.body);
    ContactInfo {
        name: c.name.clone(),
        node_id: c.node_id,
        circle: c.circle.clone(),
        addresses,
        added_at: c.added_at,
    }
}

fn internal(e: impl Display) -> AppError {
    tracing::error!("{e}");
    err(AppErrorCode::Internal, e)
}

/// A request checked against the principal's scope, and its answer cut down to it.
async fn authorized(
    shared: &Arc<Shared>,
    key: NodeId,
    principal: &Principal,
    req: AppRequest,
) -> Result<AppResponse, AppError> {
    apps::authorize(shared, &key, principal, &req)?;
    let app = matches!(principal, Principal::App { .. }).then_some(key);
    let response = handle(shared, req, app).await?;
    apps::filter(shared, &key, principal, response)
}

/// Answer `req`; `app` is the paired app making it, if it is not the owner.
async fn handle(
    shared: &Arc<Shared>,
    req: AppRequest,
    app: Option<NodeId>,
) -> Result<AppResponse, AppError> {
    let store = &shared.store;
    Ok(match req {
        AppRequest::Status => AppResponse::Status(NodeStatus {
            name: shared.name.clone(),
            node_id: shared.identity.node_id(),
            peer_addr: shared.peer_addr.to_string(),
            api_addr: shared.api_addr.to_string(),
            contacts: store.contact_count().map_err(internal)?,
            endorsements: store.endorsements().map_err(internal)?.len() as u32,
            software: format!("kith {}", env!("CARGO_PKG_VERSION")),
            uptime_secs: shared.started.elapsed().as_secs(),
        }),
        AppRequest::CreateInvite { circle } => {
            AppResponse::Invite(invites::create(shared, circle)?)
        }
        AppRequest::AcceptInvite { code, circle } => {
            AppResponse::Contact(invites::accept(shared, &code.0, circle).await?)
        }
        AppRequest::ListContacts => AppResponse::Contacts(
            store
                .contacts()
                .map_err(internal)?
                .iter()
                .map(contact_info)
                .collect(),
        ),
        AppRequest::Endorse {
            item,
            count,
            rating,
            note,
        } => {
            let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
            let e = Endorsement::new(item, count, rating, note, unix_now())
                .map_err(|e| err(AppErrorCode::BadRequest, e))?;
            store.put_endorsement(&e).map_err(internal)?;
            AppResponse::Endorsement(e)
        }
        AppRequest::ListEndorsements => {
            AppResponse::Endorsements(store.endorsements().map_err(internal)?)
        }
        AppRequest::Unendorse { item } => {
            AppResponse::Removed(store.remove_endorsement(&item).map_err(internal)?)
        }
        AppRequest::SetPolicy {
            subject,
            items,
            share,
        } => {
            let (subject, contact_name) = resolve_subject(shared, subject)?;
            let rule = PolicyRule {
                subject: subject.clone(),
                items: items.clone(),
                share,
            };
            store.put_rule(&rule).map_err(internal)?;
            AppResponse::PolicyRule(PolicyEntry {
                subject,
                contact_name,
                items,
                share,
            })
        }
        AppRequest::ListPolicy => {
            let contacts = store.contacts().map_err(internal)?;
            let entries = store
                .policy()
                .map_err(internal)?
                .rules
                .into_iter()
                .map(|r| {
                    let contact_name = match &r.subject {
                        Subject::Contact(id) => contacts
                            .iter()
                            .find(|c| c.node_id == *id)
                            .map(|c| c.name.clone()),
                        Subject::Circle(_) => None,
                    };
                    PolicyEntry {
                        subject: r.subject,
                        contact_name,
                        items: r.items,
                        share: r.share,
                    }
                })
                .collect();
            AppResponse::Policy(entries)
        }
        AppRequest::Ask {
            item,
            timeout_ms,
            epsilon,
            detail,
        } => {
            let timeout = Duration::from_millis(timeout_ms as u64).min(MAX_ASK_TIMEOUT);
            if epsilon == Some(0) {
                return Err(err(AppErrorCode::BadRequest, "epsilon must be positive"));
            }
            AppResponse::AskResult(
                asking::ask(shared, item, timeout, epsilon, detail)
                    .await
                    .map_err(internal)?,
            )
        }
        AppRequest::ListPending => {
            approvals::expire_old(shared)?;
            AppResponse::Pending(store.pending_requests().map_err(internal)?)
        }
        AppRequest::Approve { id } => AppResponse::Decided(approvals::approve(shared, id).await?),
        AppRequest::Deny { id } => AppResponse::Decided(approvals::deny(shared, id)?),
        AppRequest::ListUpdates { query_id } => {
            AppResponse::Updates(approvals::updates(shared, query_id.as_ref(), app.as_ref())?)
        }
        AppRequest::CreatePairing { name, scope } => {
            AppResponse::Pairing(apps::create_pairing(shared, name, scope)?)
        }
        AppRequest::Pair { .. } => {
            return Err(err(
                AppErrorCode::Conflict,
                "this credential is already paired with the node",
            ))
        }
        AppRequest::ListApps => AppResponse::Apps(store.apps(unix_now()).map_err(internal)?),
        AppRequest::RevokeApp { name } => AppResponse::App(apps::revoke(shared, &name)?),
        AppRequest::ListSettings => AppResponse::Settings(settings::list(store).map_err(internal)?),

        AppRequest::SetAdvertise { addresses } => {
            AppResponse::CardUpdate(crate::card_updates::set_advertise(shared, &addresses).await?)
        }
        AppRequest::SetSetting { key, value } => {
            let bad = |e| err(AppErrorCode::BadRequest, e);
            match settings::owner_setting(&key).map_err(bad)? {
                Setting::Advertise => {
                    crate::card_updates::set_advertise(shared, &[value]).await?;
                }
                setting => {
                    let value = settings::validate(setting, &value).map_err(bad)?;
                    store.set_setting(setting, &value).map_err(internal)?;
                }
            }
            AppResponse::Settings(settings::list(store).map_err(internal)?)
        }
        AppRequest::RemovePolicy { subject, items } => {
            let (subject, _) = resolve_subject(shared, subject)?;
            AppResponse::Removed(store.remove_rule(&subject, &items).map_err(internal)?)
        }
        AppRequest::RemoveContact { contact } => {
            let c = find_contact(shared, &contact)?;
            if !store.remove_contact(&c.node_id).map_err(internal)? {
                return Err(err(
                    AppErrorCode::NotFound,
                    format!("no contact {contact:?}"),
                ));
            }
            shared.audit(AuditEvent {
                event: Event::ContactRemoved,
                peer: Some(c.node_id),
                peer_name: Some(&c.name),
                item: None,
                detail: "removed by the owner; its rules went with it".into(),
            });
            AppResponse::Contact(contact_info(&c))
        }
        AppRequest::RenameContact { contact, name } => {
            let name = kith_protocol::card::validate_name(&name)
                .map_err(|e| err(AppErrorCode::BadRequest, e))?;
            let mut c = find_contact(shared, &contact)?;
            store.rename_contact(&c.node_id, &name).map_err(internal)?;
            c.name = name;
            AppResponse::Contact(contact_info(&c))
        }
        AppRequest::AuditPage {
            before,
            contact,
            item,
            limit,
        } => {
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
            AppResponse::Audit(
                store
                    .audit_page(
                        before,
                        peer.as_ref(),
                        item.as_deref(),
                        limit.min(MAX_AUDIT_LIMIT),
                    )
                    .map_err(internal)?,
            )
        }
        AppRequest::ListInvites => AppResponse::Invites(store.invites().map_err(internal)?),
        AppRequest::ListPairings => {
            AppResponse::Pairings(store.open_pairings(unix_now()).map_err(internal)?)
        }
        AppRequest::CancelPairing { name } => {
            AppResponse::Removed(store.cancel_pairing(&name, unix_now()).map_err(internal)?)
        }
        AppRequest::RevokeInvite { id } => {
            let prefix = id.trim().to_lowercase();
            if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(
                    AppErrorCode::BadRequest,
                    "name an invite by the start of its id: 8 hex digits or more (see kith invite list)",
                ));
            }
            AppResponse::Removed(
                store
                    .revoke_invites(&prefix, unix_now())
                    .map_err(internal)?
                    > 0,
            )
        }
        AppRequest::Audit { limit } => AppResponse::Audit(
            store
                .audit_log(limit.min(MAX_AUDIT_LIMIT))
                .map_err(internal)?,
        ),
    })
}

/// A contact named as [`resolve_subject`] names one.
fn find_contact(shared: &Shared, name: &str) -> Result<StoredContact, AppError> {
    match resolve_subject(shared, SubjectRef::Contact(name.to_string()))? {
        (Subject::Contact(id), _) => shared
            .store
            .contact(&id)
            .map_err(internal)?
            .ok_or_else(|| err(AppErrorCode::NotFound, format!("no contact {name:?}"))),
        (Subject::Circle(_), _) => Err(internal("a contact resolved to a circle")),
    }
}

/// A contact named by node-id hex prefix (at least 8 digits; tried first, since names are
/// chosen by the contacts themselves and one could take another's id as its name) or by
/// display name (case-insensitive); a circle by name.
fn resolve_subject(shared: &Shared, s: SubjectRef) -> Result<(Subject, Option<String>), AppError> {
    match s {
        SubjectRef::Circle(c) => Ok((
            Subject::Circle(validate_circle(&c).map_err(|e| err(AppErrorCode::BadRequest, e))?),
            None,
        )),
        SubjectRef::Contact(name) => {
            let contacts = shared.store.contacts().map_err(internal)?;
            let wanted = name.trim();
            let lower = wanted.to_lowercase();
            let is_hex = lower.len() >= 8 && lower.bytes().all(|b| b.is_ascii_hexdigit());
            let by_id: Vec<&StoredContact> = if is_hex {
                contacts
                    .iter()
                    .filter(|c| c.node_id.to_hex().starts_with(&lower))
                    .collect()
            } else {
                Vec::new()
            };
            let matches = if by_id.is_empty() {
                contacts
                    .iter()
                    .filter(|c| c.name.to_lowercase() == lower)
                    .collect()
            } else {
                by_id
            };
            match matches.as_slice() {
                [one] => Ok((Subject::Contact(one.node_id), Some(one.name.clone()))),
                [] => Err(err(
                    AppErrorCode::NotFound,
                    format!("no contact named {wanted:?} (see `kith contacts`)"),
                )),
                many => Err(err(
                    AppErrorCode::BadRequest,
                    format!(
                        "{} contacts match {wanted:?}; use a longer node id prefix: {}",
                        many.len(),
                        many.iter()
                            .map(|c| c.node_id.short())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
    }
}
