//! What the node knows, as the protocol's responder endpoint reads it
//! ([`kith_protocol::endpoint::NodeState`]): the store, read only.

use kith_protocol::budget::Usage;
use kith_protocol::endpoint::{Contact, HeldInvite, NodeState, Shelf};
use kith_protocol::{InviteId, ItemKey, NodeId, QueryId};

use crate::store::{Event, Store, StoreError, StoredInvite};

/// The store, as the endpoint sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoreState<'a>(pub(crate) &'a Store);

impl From<StoredInvite> for HeldInvite {
    fn from(i: StoredInvite) -> Self {
        HeldInvite {
            id: i.id,
            secret: i.secret,
            circle: i.circle,
            expires_at: i.expires_at,
            used: i.used_at.map(|_| i.used_by),
        }
    }
}

impl NodeState for StoreState<'_> {
    type Error = StoreError;

    fn contact(&self, key: &NodeId) -> Result<Option<Contact>, StoreError> {
        self.0.contact(key)
    }

    fn shelf(&self) -> Result<Shelf, StoreError> {
        let settings = crate::settings::load(self.0)?;
        Ok(Shelf {
            endorsements: self.0.endorsements()?,
            policy: self.0.policy()?,
            limits: crate::budget::limits(&settings),
        })
    }

    fn usage(&self, asker: &NodeId, since: u64) -> Result<Usage, StoreError> {
        self.0.budget_usage(asker, since)
    }

    fn invite(&self, id: &InviteId) -> Result<Option<HeldInvite>, StoreError> {
        Ok(self.0.invite(id)?.map(HeldInvite::from))
    }

    fn ask_record(&self, query_id: &QueryId) -> Result<Option<(ItemKey, u64)>, StoreError> {
        self.0.ask_record(query_id)
    }

    fn moves_since(&self, contact: &NodeId, since: u64) -> Result<u32, StoreError> {
        self.0.audit_count(Event::ContactMoved, contact, since)
    }
}
