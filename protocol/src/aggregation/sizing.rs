//! How a member sizes its noise from what it can check itself (spec §9.6.2): pure rules,
//! used by the [`responder`](super::responder) and by simulations that measure the
//! released intervals without running every round.
//!
//! A member `v` knows its **holders** `H_v` (itself and its neighbours), which of its
//! neighbours are its own contacts (**vouched**), and the session threshold `t`. Every other
//! holder is a **stranger** that may be the asker's. Nothing the asker chose beyond `t`
//! and the graph, both bound into the cohort digest every signature covers, enters.

use super::cohort::Graph;
use super::messages::NoiseDeclaration;

/// What one member sees of its neighbourhood (spec §9.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoiseView {
    /// `h = |H_v|`: itself and its neighbours.
    pub holders: usize,
    /// The session's Shamir threshold `t`.
    pub threshold: u32,
    /// Neighbours that are its own contacts.
    pub vouched: usize,
    /// Its minimum cohort setting.
    pub min_cohort: u32,
}

impl NoiseView {
    /// `C̄_v`: holders that are not its contacts (spec §9.6.2).
    pub fn strangers(&self) -> usize {
        self.holders - 1 - self.vouched
    }

    /// Whether the asker cannot learn its masked input alone (spec §9.6.2): getting both of
    /// its secrets takes `t` holders of each kind, disjoint among the honest ones, which
    /// is impossible while the strangers stay below `2t − h`.
    pub fn covered(&self) -> bool {
        (self.strangers() as i64) < 2 * self.threshold as i64 - self.holders as i64
    }

    /// `w`: its base mass is `1/w` (spec §9.6.2). `1 + vouched` when covered and at least
    /// its minimum cohort, else 1: the whole draw, never removed.
    pub fn base_divisor(&self) -> u32 {
        let w = 1 + self.vouched as u32;
        if self.covered() && w >= self.min_cohort {
            w
        } else {
            1
        }
    }

    /// What it declares in round 3 (spec §9.6.2, §9.7.3): its base, or 0 ("count nothing on
    /// me") when it adds no noise or is not covered.
    pub fn declaration(&self, noisy: bool) -> NoiseDeclaration {
        NoiseDeclaration {
            base_divisor: if noisy && self.covered() {
                self.base_divisor()
            } else {
                0
            },
            strangers: self.strangers() as u32,
        }
    }

    /// The mass to keep once U3 is signed (spec §9.6.2), given the declarations of the
    /// contacts it may count ([`may_count`]): enough that the sum holds a whole draw; all of
    /// it when not covered or counting fewer co-members than its minimum cohort.
    pub fn keep(&self, counted: &[NoiseDeclaration]) -> f64 {
        if !self.covered() || 1 + counted.len() < self.min_cohort as usize {
            return 1.0;
        }
        let base = 1.0 / self.base_divisor() as f64;
        let mass: f64 = counted
            .iter()
            .filter(|d| d.base_divisor > 0)
            .map(|d| 1.0 / d.base_divisor as f64)
            .sum();
        (1.0 - mass).max(base)
    }
}

/// Whether `v` may count the base noise of its contact `u` (spec §9.6.2): the asker cannot
/// both reveal `v`'s self mask and drop `u` from the sum, because that takes `t` holders
/// of each, disjoint among the honest ones, and `2t − |H_v ∪ H_u|` exceeds the fewer
/// strangers either of them has.
pub fn may_count(threshold: u32, union: usize, strangers_v: u32, strangers_u: u32) -> bool {
    2 * threshold as i64 - union as i64 > strangers_v.min(strangers_u) as i64
}

/// `|H_v ∪ H_u|` for the members at positions `v` and `u` of `graph` (spec §9.6.2).
pub fn holder_union(graph: &Graph, v: u32, u: u32) -> usize {
    let mine = graph.degree() + 1;
    let outside = graph
        .neighbours(u)
        .into_iter()
        .filter(|q| *q != v && !graph.adjacent(v, *q))
        .count();
    mine + outside + usize::from(u != v && !graph.adjacent(v, u))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::cohort::{sparse_degree, two_thirds};

    fn view(holders: usize, vouched: usize, min_cohort: u32) -> NoiseView {
        NoiseView {
            holders,
            threshold: two_thirds(holders),
            vouched,
            min_cohort,
        }
    }

    #[test]
    fn a_member_among_strangers_keeps_everything() {
        let alone = view(50, 0, 5);
        assert!(!alone.covered());
        assert_eq!(alone.base_divisor(), 1);
        assert_eq!(alone.declaration(true).base_divisor, 0);
        assert_eq!(alone.keep(&[]), 1.0);
    }

    #[test]
    fn a_circle_that_knows_each_other_splits_one_draw() {
        let v = view(11, 10, 5);
        assert!(v.covered());
        assert_eq!(v.base_divisor(), 11);
        let others = vec![v.declaration(true); 10];
        assert!((v.keep(&others) - 1.0 / 11.0).abs() < 1e-12);
        // Half of them gone from U3: it keeps what they took with them.
        assert!((v.keep(&others[..5]) - 6.0 / 11.0).abs() < 1e-12);
        // Below its minimum cohort it stands alone.
        assert_eq!(v.keep(&others[..3]), 1.0);
        assert_eq!(
            v.declaration(false).base_divisor,
            0,
            "no noise, nothing to count"
        );
    }

    #[test]
    fn coverage_is_the_split_bound() {
        // h = 9, t = 7: 2t − h = 5, so up to 4 strangers.
        assert!(view(9, 4, 2).covered());
        assert!(!view(9, 3, 2).covered());
    }

    #[test]
    fn holder_unions_in_both_graphs() {
        let g = Graph::new(&[1; 32], 11, 10).unwrap();
        assert_eq!(holder_union(&g, 0, 5), 11, "complete: the same holders");
        let n = 100;
        let k = sparse_degree(n).unwrap();
        let g = Graph::new(&[2; 32], n, k).unwrap();
        for u in g.neighbours(0) {
            let union = holder_union(&g, 0, u);
            assert!(union > k + 1 && union <= k + 1 + k / 2, "{union}");
        }
        assert!(may_count(23, 33, 0, 0) && !may_count(23, 46, 0, 0));
    }
}
