//! What the owner/app API answers besides data (spec §10.3, §10.4): errors with their code
//! and cause, and contacts as apps see them. Below every service that answers apps.

use std::fmt::Display;

use kith_protocol::app::{AppError, AppErrorCode, ContactInfo};

use crate::store::StoredContact;

/// An error for the app: its code and a cause a person can read.
pub(crate) fn err(code: AppErrorCode, message: impl Display) -> AppError {
    AppError {
        code,
        message: message.to_string(),
    }
}

/// A failure of this node (usually its store): logged, and `Internal` for the app.
pub(crate) fn internal(e: impl Display) -> AppError {
    tracing::error!("{e}");
    err(AppErrorCode::Internal, e)
}

/// A stored contact as the app API lists it.
pub(crate) fn contact_info(c: &StoredContact) -> ContactInfo {
    let addresses = c.card.addresses();
    ContactInfo {
        name: c.name.clone(),
        node_id: c.node_id,
        circle: c.circle.clone(),
        addresses,
        added_at: c.added_at,
    }
}
