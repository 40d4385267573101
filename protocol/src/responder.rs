//! The responder's side of a named ask (spec §8.3): evaluate the owner's consent for each
//! matching endorsement and answer.

use crate::consent::{ConsentPolicy, Share};
use crate::endorsement::{Endorsement, EndorsementStatement, STATEMENT_VERSION};
use crate::identity::{Identity, NodeId};
use crate::item::ItemKey;
use crate::message::{Answer, Query, MAX_NAMED_PER_ANSWER};

/// What an answer disclosed, for the audit log (spec §8.3.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Disclosure {
    /// Items disclosed by name.
    pub named: Vec<ItemKey>,
    /// Matching items not named, with the share that kept them back.
    pub withheld: Vec<(ItemKey, Share)>,
}

impl Disclosure {
    /// One line for the audit log, at most a few hundred bytes whatever the shelf size.
    /// Never includes note text (spec §8.3.5).
    pub fn describe(&self) -> String {
        const LISTED: usize = 5;
        fn list(items: impl Iterator<Item = String>, total: usize) -> String {
            let mut shown: Vec<String> = items.take(LISTED).collect();
            if total > LISTED {
                shown.push(format!("and {} more", total - LISTED));
            }
            shown.join(", ")
        }
        if self.named.is_empty() && self.withheld.is_empty() {
            return "nothing (owns nothing matching)".into();
        }
        let mut parts = Vec::new();
        if !self.named.is_empty() {
            parts.push(format!(
                "named {}",
                list(self.named.iter().map(ToString::to_string), self.named.len())
            ));
        }
        if !self.withheld.is_empty() {
            let items = self
                .withheld
                .iter()
                .map(|(item, share)| format!("{item} (share={share})"));
            parts.push(format!("withheld {}", list(items, self.withheld.len())));
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
            share if share.names_to_asker() && named.len() < MAX_NAMED_PER_ANSWER => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_is_bounded() {
        let item = |i: usize| ItemKey::parse(&format!("tag:shelf/item-{i}")).unwrap();
        let d = Disclosure {
            named: (0..100).map(item).collect(),
            withheld: (0..1000).map(|i| (item(i), Share::Count)).collect(),
        };
        let text = d.describe();
        assert!(text.len() < 500, "{} bytes", text.len());
        assert!(text.contains("and 95 more") && text.contains("and 995 more"));
    }
}
