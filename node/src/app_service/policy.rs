//! Consent rules as the owner manages them (spec §6.3, §10.2).

use kith_protocol::app::{AppError, PolicyEntry, SubjectRef};
use kith_protocol::{ItemPattern, PolicyRule, Share, Subject};

use super::contacts::resolve_subject;
use crate::shared::Shared;

/// `SetPolicy`: add or replace the rule for (subject, items).
pub(super) fn set(
    shared: &Shared,
    subject: SubjectRef,
    items: ItemPattern,
    share: Share,
) -> Result<PolicyEntry, AppError> {
    let (subject, contact_name) = resolve_subject(shared, subject)?;
    let rule = PolicyRule {
        subject: subject.clone(),
        items: items.clone(),
        share,
    };
    shared.store.put_rule(&rule)?;
    Ok(PolicyEntry {
        subject,
        contact_name,
        items,
        share,
    })
}

/// `ListPolicy`, each contact rule with the contact's name.
pub(super) fn list(shared: &Shared) -> Result<Vec<PolicyEntry>, AppError> {
    let contacts = shared.store.contacts()?;
    Ok(shared
        .store
        .policy()?
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
        .collect())
}

/// `RemovePolicy`: whether there was such a rule.
pub(super) fn remove(
    shared: &Shared,
    subject: SubjectRef,
    items: &ItemPattern,
) -> Result<bool, AppError> {
    let (subject, _) = resolve_subject(shared, subject)?;
    shared
        .store
        .remove_rule(&subject, items)
        .map_err(AppError::from)
}
