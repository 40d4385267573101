//! How a member sizes its noise from what it can check itself (spec §9.6.2): pure rules,
//! used by the [`responder`](super::responder) and by simulations that measure the
//! released intervals without running every round.
//!
//! A member `v` knows its **holders** `H_v` (itself and its neighbours), which of its
//! neighbours are its own contacts (**vouched**), and the session threshold `t`. Every other
//! holder is a **stranger** that may be the asker's. Nothing the asker chose beyond `t`
//! and the graph, both bound into the cohort digest every signature covers, enters.
//!
//! A member shares its own secrets with its **own threshold** `t_v ≥ t`: high enough that
//! the strangers cannot help the asker to both of them (it is then **covered**), and in a
//! sparse graph high enough to count its contacts' noise, but never above
//! `⌊(3h + 1)/4⌋ + 1`, so that about a quarter of its holders may drop out without the
//! aggregate being withheld; where that is impossible it keeps `t` and its whole noise.

use super::cohort::Graph;
use super::messages::NoiseDeclaration;

/// What one member sees of its neighbourhood (spec §9.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoiseView {
    /// `h = |H_v|`: itself and its neighbours.
    pub holders: usize,
    /// The session's Shamir threshold `t`.
    pub session_threshold: u32,
    /// Whether the graph is complete (every member holds every other's shares).
    pub complete: bool,
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

    /// `t_v`: the threshold it shares its own secrets with (spec §9.6.2). With fewer
    /// vouched co-members than its minimum cohort it stands alone and keeps `t`. Else the
    /// largest of `t`, coverage `⌈(h + C̄)/2⌉ + 1`, and in a sparse graph `⌊(3h + 1)/4⌋ + 1`
    /// (so that neighbours across its whole neighbourhood can be counted); if that would
    /// leave fewer than about a quarter of its holders free to drop out (more than
    /// `⌊(3h + 1)/4⌋ + 1`, or every holder), it keeps `t` and stands alone: one missing
    /// holder too many would withhold the whole aggregate.
    pub fn threshold(&self) -> u32 {
        let (h, t) = (self.holders as u32, self.session_threshold);
        if 1 + (self.vouched as u32) < self.min_cohort {
            return t;
        }
        let cover = (h + self.strangers() as u32).div_ceil(2) + 1;
        // Enough that, with no strangers, two neighbours at the graph's widest distance
        // `(h − 1)/2` count each other: `2·t_v − h − (h − 1)/2 > 1` (rule 4).
        let counting = if self.complete { 0 } else { quarter(h) };
        let own = t.max(cover).max(counting);
        if own > highest_threshold(h, t) {
            return t;
        }
        own
    }

    /// Whether the asker cannot learn its masked input alone (spec §9.6.2): getting both of
    /// its secrets takes `t_v` holders of each kind, disjoint among the honest ones, which
    /// is impossible while the strangers stay below `2t_v − h`; one more holder is granted
    /// to the asker as a margin (`C̄ + 1 < 2t_v − h`).
    pub fn covered(&self) -> bool {
        (self.strangers() as i64 + 1) < 2 * self.threshold() as i64 - self.holders as i64
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
            threshold: self.threshold(),
        }
    }

    /// The mass to keep once U3 is signed (spec §9.6.2), given the declarations of the
    /// contacts it may count ([`may_count`]): enough that the sum holds a whole draw; all of
    /// it when not covered or counting fewer co-members than its minimum cohort. Each
    /// contact counts for at most this member's own base `1/w`, so that `c` contacts lying
    /// about their noise take at most `c/w` of it away (spec §9.6.3).
    pub fn keep(&self, counted: &[NoiseDeclaration]) -> f64 {
        if !self.covered() || 1 + counted.len() < self.min_cohort as usize {
            return 1.0;
        }
        let base = 1.0 / self.base_divisor() as f64;
        let mass: f64 = counted
            .iter()
            .filter(|d| d.base_divisor > 0)
            .map(|d| (1.0 / d.base_divisor as f64).min(base))
            .sum();
        (1.0 - mass).max(base)
    }
}

/// Whether `v` may count the base noise of its contact `u` (spec §9.6.2 rules 4 and 5),
/// **given that at least `t_v` members of `H_v` signed `v`'s bitmap** (the caller checks
/// that). Those signers, honest ones at least `t_v − c_v`, saw `u` in the sum and never
/// reveal shares of `u`'s mask-key seed; so dropping `u` from the sum needs `t_u` other
/// holders of `u`, which is impossible when `t_v + t_u − |H_v ∪ H_u|` exceeds the holders
/// that may work for the asker: `v`'s strangers plus a margin of one. Only `v`'s view
/// bounds them: `v` relies on its contacts, never on theirs. A declared threshold outside
/// `[t, highest_threshold(h, t)]`, which no honest member declares, is not believed. `v` is
/// its view, `u` its declaration.
pub fn may_count(v: &NoiseView, u: &NoiseDeclaration, union: usize) -> bool {
    let t = v.session_threshold;
    let believable = (t..=highest_threshold(v.holders as u32, t)).contains(&u.threshold);
    let slack = v.threshold() as i64 + u.threshold as i64 - union as i64;
    believable && u.base_divisor > 0 && slack > v.strangers() as i64 + 1
}

/// `⌊(3h + 1)/4⌋ + 1`: the threshold that counting across a sparse neighbourhood needs,
/// and the most a member raises its own to (spec §9.6.2).
pub fn quarter(holders: u32) -> u32 {
    (3 * holders + 1) / 4 + 1
}

/// The highest own threshold an honest member with `h` holders shares with in a session of
/// threshold `t` (spec §9.6.2): `h` only if `t` is; else at most [`quarter`] and at most
/// `h − 1`, so that about a quarter of its holders (at least one) may drop out without the
/// aggregate being withheld. The asker refuses a higher one, and no member believes it.
pub fn highest_threshold(holders: u32, t: u32) -> u32 {
    if t >= holders {
        holders
    } else {
        t.max(quarter(holders).min(holders - 1))
    }
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
            session_threshold: two_thirds(holders),
            complete: true,
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
        // A contact claiming a whole draw of its own counts for 1/11 only.
        let liar = NoiseDeclaration {
            base_divisor: 1,
            threshold: v.threshold(),
        };
        let mut lied = others[..5].to_vec();
        lied.push(liar);
        assert!((v.keep(&lied) - 5.0 / 11.0).abs() < 1e-12);
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
        // h = 9, t = 7: 2t − h = 5, so up to 3 strangers (with the margin of one) at the
        // session's threshold.
        assert_eq!(view(9, 5, 2).threshold(), 7);
        assert!(view(9, 5, 2).covered());
        // 5 strangers: it raises its own threshold to ⌊(9 + 5 + 1)/2⌋ + 1 = 8 and is covered.
        assert_eq!(view(9, 3, 2).threshold(), 8);
        assert!(view(9, 3, 2).covered());
        // 6 strangers would need all 9 holders: it keeps t and its whole noise.
        assert_eq!(view(9, 2, 2).threshold(), 7);
        assert!(!view(9, 2, 2).covered());
        // Fewer vouched than its minimum cohort: t, whatever else.
        assert_eq!(view(9, 3, 5).threshold(), 7);
    }

    #[test]
    fn partial_acquaintance_in_a_complete_graph_counts_while_a_quarter_may_drop() {
        // 30 members; this one knows two thirds of the others: coverage needs
        // ⌈(30 + 9)/2⌉ + 1 = 21 holders, within three quarters (⌊91/4⌋ + 1 = 23).
        let v = view(30, 20, 5);
        assert_eq!(v.threshold(), 21);
        assert!(v.covered());
        let u = view(30, 19, 5).declaration(true);
        assert!(
            may_count(&v, &u, 30),
            "covered members of one complete graph count"
        );
        // Knowing a third, coverage would need 26 of 30 holders, so 5 missing would
        // withhold the aggregate: it stands alone with t and its whole draw instead.
        let w = view(30, 10, 5);
        assert_eq!(w.threshold(), w.session_threshold);
        assert!(!w.covered());
        assert_eq!(w.keep(&[u; 10]), 1.0);
        // At the cap: 14 strangers need 23 = quarter, 15 would need 24.
        assert_eq!(
            (view(30, 15, 5).threshold(), view(30, 15, 5).covered()),
            (23, true)
        );
        assert_eq!(
            (view(30, 14, 5).threshold(), view(30, 14, 5).covered()),
            (21, false)
        );
        // A declared threshold above what an honest member may use is not believed.
        let inflated = NoiseDeclaration { threshold: 24, ..u };
        assert!(!may_count(&v, &inflated, 30));
    }

    /// For every size and acquaintance: the own threshold lies between `t` and the highest
    /// an honest member uses, a member that raises it is covered, and one that is not
    /// covered keeps its whole draw (spec §9.6.2).
    #[test]
    fn own_thresholds_stay_within_their_bounds() {
        for h in 2..=123usize {
            let t = two_thirds(h);
            for complete in [true, false] {
                for vouched in 0..h {
                    for min_cohort in [2, 5] {
                        let v = NoiseView {
                            holders: h,
                            session_threshold: t,
                            complete,
                            vouched,
                            min_cohort,
                        };
                        let tv = v.threshold();
                        assert!(t <= tv && tv <= highest_threshold(h as u32, t), "{v:?}");
                        assert!(tv == t || v.covered(), "{v:?}");
                        if !v.covered() {
                            assert_eq!(v.keep(&[]), 1.0);
                        }
                    }
                }
            }
        }
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
        let clique = NoiseView {
            holders: k + 1,
            session_threshold: two_thirds(k + 1),
            complete: false,
            vouched: k,
            min_cohort: 5,
        };
        assert_eq!(k, 44);
        assert_eq!(clique.threshold(), 35, "⌊(3h + 1)/4⌋ + 1 in a sparse graph");
        let d = clique.declaration(true);
        assert!(
            may_count(&clique, &d, 45 + 22),
            "the farthest neighbour counts"
        );
        assert!(!may_count(&clique, &d, 45 + 24));
        let boastful = NoiseDeclaration {
            threshold: 1000,
            ..d
        };
        assert!(
            !may_count(&clique, &boastful, 45),
            "a threshold above h is not believed"
        );
    }
}
