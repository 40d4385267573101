//! Every way a request can fail inside the node, and what each side is told: one
//! exhaustive map from a failure to the contact's `Refusal` (spec §8.4), to its reply in an
//! aggregation (spec §9.9) and to the app's `AppError` (spec §10.4), so that a new kind of
//! failure must say what all of them see. Store failures are logged here, once, and never
//! reach the other side in detail. (The plain requests' refusals are decided by the
//! protocol's endpoint, `kith_protocol::endpoint`; what fails here is the node's own part.)

use kith_protocol::aggregation::messages::{AbortReason, AggResponse};
use kith_protocol::app::{AppError, AppErrorCode};
use kith_protocol::budget::OverBudget;
use kith_protocol::{PeerResponse, Refusal};

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
    /// The asker has `open` aggregations open here, the most allowed at once (spec §9.10).
    TooManyOpen { open: usize, limit: usize },
    /// An aggregation the protocol's checks refused (spec §9.9).
    Aborted(AbortReason),
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
            Failure::OverBudget(_) | Failure::TooManyOpen { .. } => Refusal::RateLimited,
            Failure::Aborted(_) => Refusal::Malformed,
        }
    }

    /// What the asker of an aggregation is told (spec §9.9): an `Abort` where the round
    /// has a reason for it, the refusal otherwise.
    pub(crate) fn aggregate_response(&self) -> PeerResponse {
        let reason = match self {
            Failure::OverBudget(OverBudget::Privacy { .. }) => AbortReason::PrivacyBudget,
            Failure::OverBudget(OverBudget::Daily { .. }) => AbortReason::RateLimited,
            Failure::TooManyOpen { .. } => AbortReason::TooManyOpen,
            Failure::Aborted(reason) => *reason,
            Failure::Store(_) | Failure::NotAContact => {
                return PeerResponse::Refused(self.refusal())
            }
        };
        PeerResponse::Aggregate(AggResponse::Abort(reason))
    }

    /// Why an ask was declined, for the owner's coalesced audit (spec §11.9): only for
    /// limits the owner set.
    pub(crate) fn decline(&self) -> Option<String> {
        match self {
            Failure::OverBudget(over) => Some(over.to_string()),
            Failure::TooManyOpen { open, limit } => {
                Some(format!("{open} aggregations already open (limit {limit})"))
            }
            Failure::Store(_) | Failure::NotAContact | Failure::Aborted(_) => None,
        }
    }

    /// What the owner or an app is told (spec §10.4).
    pub(crate) fn app_error(&self) -> AppError {
        self.log();
        match self {
            Failure::Store(_) => err(AppErrorCode::Internal, "the node failed; try again later"),
            Failure::NotAContact => err(AppErrorCode::NotFound, "not a contact"),
            Failure::OverBudget(over) => err(AppErrorCode::RateLimited, over),
            Failure::TooManyOpen { .. } => err(
                AppErrorCode::RateLimited,
                self.decline().unwrap_or_default(),
            ),
            Failure::Aborted(reason) => err(AppErrorCode::PeerMisbehaved, format!("{reason:?}")),
        }
    }

    /// Log it: a store failure as an error, a refused aggregation at debug level.
    pub(crate) fn log(&self) {
        match self {
            Failure::Store(e) => tracing::error!("store: {e}"),
            Failure::Aborted(reason) => tracing::debug!("aggregation refused: {reason:?}"),
            Failure::NotAContact | Failure::OverBudget(_) | Failure::TooManyOpen { .. } => {}
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
        let abort = |r| PeerResponse::Aggregate(AggResponse::Abort(r));
        let privacy = OverBudget::Privacy {
            spent: 4000,
            cost: 1000,
            limit: 4000,
        };
        let cases = [
            (
                store(),
                Refusal::Internal,
                PeerResponse::Refused(Refusal::Internal),
                AppErrorCode::Internal,
            ),
            (
                Failure::NotAContact,
                Refusal::NotAContact,
                PeerResponse::Refused(Refusal::NotAContact),
                AppErrorCode::NotFound,
            ),
            (
                Failure::OverBudget(over),
                Refusal::RateLimited,
                abort(AbortReason::RateLimited),
                AppErrorCode::RateLimited,
            ),
            (
                Failure::OverBudget(privacy),
                Refusal::RateLimited,
                abort(AbortReason::PrivacyBudget),
                AppErrorCode::RateLimited,
            ),
            (
                Failure::TooManyOpen { open: 4, limit: 4 },
                Refusal::RateLimited,
                abort(AbortReason::TooManyOpen),
                AppErrorCode::RateLimited,
            ),
            (
                Failure::Aborted(AbortReason::Inconsistent),
                Refusal::Malformed,
                abort(AbortReason::Inconsistent),
                AppErrorCode::PeerMisbehaved,
            ),
        ];
        for (failure, refusal, aggregate, code) in cases {
            assert_eq!(failure.refusal(), refusal, "{failure:?}");
            assert_eq!(failure.aggregate_response(), aggregate, "{failure:?}");
            assert_eq!(failure.app_error().code, code, "{failure:?}");
            // Only the owner's own limits are declines it is told of.
            let limit = matches!(
                failure,
                Failure::OverBudget(_) | Failure::TooManyOpen { .. }
            );
            assert_eq!(failure.decline().is_some(), limit, "{failure:?}");
        }
        // The store's details stay here.
        assert!(!store().app_error().message.contains('x'));
    }
}
