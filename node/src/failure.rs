//! Every way a request can fail inside the node, and what each side is told: one
//! exhaustive map from a failure to the contact's `Refusal` (spec §8.4) and to the app's
//! `AppError` (spec §10.4), so that a new kind of failure must say what both see. Store
//! failures are logged here, once, and never reach the other side in detail.

use kith_protocol::app::{AppError, AppErrorCode};
use kith_protocol::budget::OverBudget;
use kith_protocol::Refusal;

use crate::replies::err;
use crate::store::StoreError;

/// A request that could not be served.
#[derive(Debug)]
pub(crate) enum Failure {
    /// This node's store failed: "try again later" for the other side.
    Store(StoreError),
    /// The sender is not (or no longer) a contact.
    NotAContact,
    /// The sender is over its daily budget (spec §9.10).
    OverBudget(OverBudget),
    /// Something the contact sent does not hold (a signature, a card, a statement).
    Malformed(&'static str),
    /// A refusal the protocol's own checks decided (an invite's, spec §3.2).
    Refused(Refusal),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl Failure {
    /// What a contact is told (spec §8.4).
    pub(crate) fn refusal(&self) -> Refusal {
        self.log();
        match self {
            Failure::Store(_) => Refusal::Internal,
            Failure::NotAContact => Refusal::NotAContact,
            Failure::OverBudget(_) => Refusal::RateLimited,
            Failure::Malformed(_) => Refusal::Malformed,
            Failure::Refused(r) => *r,
        }
    }

    /// What the owner or an app is told (spec §10.4).
    pub(crate) fn app_error(&self) -> AppError {
        self.log();
        match self {
            Failure::Store(_) => err(AppErrorCode::Internal, "the node failed; try again later"),
            Failure::NotAContact => err(AppErrorCode::NotFound, "not a contact"),
            Failure::OverBudget(over) => err(AppErrorCode::RateLimited, over),
            Failure::Malformed(what) => err(AppErrorCode::PeerMisbehaved, what),
            Failure::Refused(r) => err(AppErrorCode::PeerMisbehaved, r),
        }
    }

    fn log(&self) {
        match self {
            Failure::Store(e) => tracing::error!("store: {e}"),
            Failure::Malformed(what) => tracing::debug!("refused: {what}"),
            Failure::NotAContact | Failure::OverBudget(_) | Failure::Refused(_) => {}
        }
    }
}

impl From<Failure> for AppError {
    fn from(f: Failure) -> Self {
        f.app_error()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Failure::Store(e).app_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_maps_to_both_sides() {
        let store = || Failure::Store(StoreError::Corrupt("x".into()));
        let over = OverBudget::Daily { asked: 3, limit: 3 };
        let cases = [
            (store(), Refusal::Internal, AppErrorCode::Internal),
            (
                Failure::NotAContact,
                Refusal::NotAContact,
                AppErrorCode::NotFound,
            ),
            (
                Failure::OverBudget(over),
                Refusal::RateLimited,
                AppErrorCode::RateLimited,
            ),
            (
                Failure::Malformed("card"),
                Refusal::Malformed,
                AppErrorCode::PeerMisbehaved,
            ),
            (
                Failure::Refused(Refusal::InviteUsed),
                Refusal::InviteUsed,
                AppErrorCode::PeerMisbehaved,
            ),
        ];
        for (failure, refusal, code) in cases {
            assert_eq!(failure.refusal(), refusal, "{failure:?}");
            assert_eq!(failure.app_error().code, code, "{failure:?}");
        }
        // The store's details stay here.
        assert!(!store().app_error().message.contains('x'));
    }
}
