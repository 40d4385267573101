//! Contacts as the owner manages them (spec §10.2): list, remove, rename, and how a
//! request names one.

use kith_protocol::app::{AppError, AppErrorCode, ContactInfo, SubjectRef};
use kith_protocol::consent::validate_circle;
use kith_protocol::Subject;

use super::{contact_info, err, internal};
use crate::shared::Shared;
use crate::store::{AuditEvent, Event, StoredContact};

/// `ListContacts`.
pub(super) fn list(shared: &Shared) -> Result<Vec<ContactInfo>, AppError> {
    Ok(shared.store.contacts()?.iter().map(contact_info).collect())
}

/// `RemoveContact`: its rules go with it, and the owner's audit log says so.
pub(super) fn remove(shared: &Shared, contact: &str) -> Result<ContactInfo, AppError> {
    let c = find_contact(shared, contact)?;
    if !shared.store.remove_contact(&c.node_id)? {
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
    Ok(contact_info(&c))
}

/// `RenameContact`: the name this node uses; the contact's card keeps its own.
pub(super) fn rename(shared: &Shared, contact: &str, name: &str) -> Result<ContactInfo, AppError> {
    let name =
        kith_protocol::card::validate_name(name).map_err(|e| err(AppErrorCode::BadRequest, e))?;
    let mut c = find_contact(shared, contact)?;
    shared.store.rename_contact(&c.node_id, &name)?;
    c.name = name;
    Ok(contact_info(&c))
}

/// A contact named as [`resolve_subject`] names one.
pub(crate) fn find_contact(shared: &Shared, name: &str) -> Result<StoredContact, AppError> {
    match resolve_subject(shared, SubjectRef::Contact(name.to_string()))? {
        (Subject::Contact(id), _) => shared
            .store
            .contact(&id)?
            .ok_or_else(|| err(AppErrorCode::NotFound, format!("no contact {name:?}"))),
        (Subject::Circle(_), _) => Err(internal("a contact resolved to a circle")),
    }
}

/// A contact named by node-id hex prefix (at least 8 digits; tried first, since names are
/// chosen by the contacts themselves and one could take another's id as its name) or by
/// display name (case-insensitive); a circle by name.
pub(super) fn resolve_subject(
    shared: &Shared,
    s: SubjectRef,
) -> Result<(Subject, Option<String>), AppError> {
    match s {
        SubjectRef::Circle(c) => Ok((
            Subject::Circle(validate_circle(&c).map_err(|e| err(AppErrorCode::BadRequest, e))?),
            None,
        )),
        SubjectRef::Contact(name) => {
            let contacts = shared.store.contacts()?;
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
