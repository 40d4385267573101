//! The owner's endorsements (spec §6.1, §10.2).

use kith_protocol::app::{AppError, AppErrorCode};
use kith_protocol::{Endorsement, ItemKey};

use super::err;
use crate::shared::Shared;
use crate::unix_now;

/// `Endorse`: add or replace the endorsement of `item`; a blank note is none.
pub(super) fn endorse(
    shared: &Shared,
    item: ItemKey,
    count: u32,
    rating: Option<u8>,
    note: Option<String>,
) -> Result<Endorsement, AppError> {
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    let e = Endorsement::new(item, count, rating, note, unix_now())
        .map_err(|e| err(AppErrorCode::BadRequest, e))?;
    shared.store.put_endorsement(&e)?;
    Ok(e)
}

/// `ListEndorsements`.
pub(super) fn list(shared: &Shared) -> Result<Vec<Endorsement>, AppError> {
    shared.store.endorsements().map_err(AppError::from)
}

/// `Unendorse`: whether there was one.
pub(super) fn unendorse(shared: &Shared, item: &ItemKey) -> Result<bool, AppError> {
    shared
        .store
        .remove_endorsement(item)
        .map_err(AppError::from)
}
