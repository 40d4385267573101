//! The responder's side of a named ask (spec §8.3): evaluate the owner's consent for each
//! matching endorsement and answer.

use crate::consent::{ConsentPolicy, Share};
use crate::endorsement::{Endorsement, EndorsementStatement, STATEMENT_VERSION};
use crate::identity::{Identity, NodeId};
use crate::item::ItemKey;
use crate::message::{Answer, Query, MAX_NAMED_PER_ANSWER};

/// What an answer disclosed, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disclosure {
    /// Items disclosed by name.
    pub named: Vec<ItemKey>,
    /// Matching items not named, with the share that kept them back.
    pub withheld: Vec<(ItemKey, Share)>,
}

impl Disclosure {
    /// One line for the audit log. Never includes note text.
    pub fn describe(&self) -> String {
        if self.named.is_empty() && self.withheld.is_empty() {
            return "nothing (owns nothing matching)".into();
        }
        let mut parts = Vec::new();
        if !self.named.is_empty() {
            let items: Vec<String> = self.named.iter().map(ToString::to_string).collect();
            parts.push(format!("named {}", items.join(", ")));
        }
        for (item, share) in &self.withheld {
            parts.push(format!("withheld {item} (share={share})"));
        }
        parts.join("; ")
    }
}

/// Answer `query` from `asker` (a contact in `circle`): a signed statement for every
/// matching endorsement whose share is `name`; nothing else (spec §8.3).
///
/// The answer for `count`, `ask` and `none` is identical to the answer for "owns nothing".
pub fn answer_query(
    identity: &Identity,
    endorsements: &[Endorsement],
    policy: &ConsentPolicy,
    asker: &NodeId,
    circle: &str,
    query: &Query,
    now_unix: u64,
) -> (Answer, Disclosure) {
    let mut disclosure = Disclosure::default();
    let mut named = Vec::new();
    let mut matching: Vec<&Endorsement> = endorsements
        .iter()
        .filter(|e| e.item.is_within(&query.item))
        .collect();
    matching.sort_by(|a, b| a.item.cmp(&b.item));
    for e in matching {
        match policy.evaluate(asker, circle, &e.item) {
            Share::Name if named.len() < MAX_NAMED_PER_ANSWER => {
                let st = EndorsementStatement {
                    version: STATEMENT_VERSION,
                    endorser: identity.node_id(),
                    audience: *asker,
                    query_id: query.query_id,
                    endorsement: e.clone(),
                    issued_at: now_unix,
                };
                named.push(st.sign(identity));
                disclosure.named.push(e.item.clone());
            }
            share => disclosure.withheld.push((e.item.clone(), share)),
        }
    }
    (
        Answer {
            query_id: query.query_id,
            named,
        },
        disclosure,
    )
}
