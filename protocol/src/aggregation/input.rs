//! What one responder contributes to an aggregate (spec §9.2): a fixed vector of
//! [`VECTOR_LEN`] cells over Z/2³².
//!
//! | cell | meaning | range per responder |
//! | --- | --- | --- |
//! | 0 `owners` | owns anything within the asked item | 0 or 1 |
//! | 1 `units` | units owned within it, capped at [`UNIT_CAP`] | 0..=10 |
//! | 2..=6 `ratings[r-1]` | one vote for its best rating among them, if rated | one-hot or zero |
//!
//! A responder whose share for every matching item is `none` contributes all zeros —
//! exactly what a responder that owns nothing contributes.

use crate::consent::ConsentPolicy;
use crate::endorsement::Endorsement;
use crate::identity::NodeId;
use crate::item::ItemKey;

/// Cells in an input vector (spec §9.2).
pub const VECTOR_LEN: usize = 7;
/// Most units one responder adds to the `units` cell (spec §9.2).
pub const UNIT_CAP: u32 = 10;

/// One responder's contribution, before noise and masking (spec §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Contribution {
    pub owns: bool,
    pub units: u32,
    pub best_rating: Option<u8>,
}

impl Contribution {
    /// What the owner's consent lets this responder contribute about `asked` to `asker`.
    /// Endorsements whose share is `none` are left out entirely (spec §9.2).
    pub fn from_shelf(
        endorsements: &[Endorsement],
        policy: &ConsentPolicy,
        asker: &NodeId,
        circle: &str,
        asked: &ItemKey,
    ) -> Self {
        let counted: Vec<&Endorsement> = endorsements
            .iter()
            .filter(|e| e.item.is_within(asked))
            .filter(|e| {
                policy
                    .evaluate(asker, circle, &e.item)
                    .counts_in_aggregate()
            })
            .collect();
        Contribution {
            owns: !counted.is_empty(),
            units: counted
                .iter()
                .map(|e| e.count)
                .fold(0u32, u32::saturating_add)
                .min(UNIT_CAP),
            best_rating: counted.iter().filter_map(|e| e.rating).max(),
        }
    }

    /// The vector cells (spec §9.2).
    pub fn to_vector(self) -> [u32; VECTOR_LEN] {
        let mut v = [0u32; VECTOR_LEN];
        v[0] = self.owns as u32;
        v[1] = self.units.min(UNIT_CAP);
        if let Some(r @ 1..=5) = self.best_rating {
            v[1 + r as usize] = 1;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{PolicyRule, Share, Subject};
    use crate::item::ItemPattern;

    #[test]
    fn consent_shapes_the_vector() {
        let e = |item: &str, count, rating| {
            Endorsement::new(ItemKey::parse(item).unwrap(), count, rating, None, 0).unwrap()
        };
        let shelf = vec![
            e("tag:vehicle/subaru/outback", 2, Some(5)),
            e("tag:vehicle/subaru/forester", 30, Some(3)),
            e("tag:book/dune", 1, Some(1)),
        ];
        let asked = ItemKey::parse("tag:vehicle/subaru").unwrap();
        let me = NodeId([1; 32]);
        let open = ConsentPolicy::default();
        let c = Contribution::from_shelf(&shelf, &open, &me, "friends", &asked);
        assert_eq!(c.to_vector(), [1, 10, 0, 0, 0, 0, 1]);
        let closed = ConsentPolicy::new(vec![PolicyRule {
            subject: Subject::Circle("friends".into()),
            items: ItemPattern::parse("tag:vehicle/*").unwrap(),
            share: Share::None,
        }]);
        let none = Contribution::from_shelf(&shelf, &closed, &me, "friends", &asked);
        assert_eq!(none.to_vector(), [0; VECTOR_LEN]);
        assert_eq!(
            none,
            Contribution::from_shelf(&[], &open, &me, "friends", &asked)
        );
    }
}
