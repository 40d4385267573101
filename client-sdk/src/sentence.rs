//! One human sentence for an answer, the way a shop or a reader shows social proof:
//! "Chloe and 3 other friends own one".

use std::collections::BTreeSet;

use kith_protocol::aggregation::estimate::AggregateSum;
use kith_protocol::app::AskResult;

/// A released count as people read it (spec §9.6.4): "about 4 of your 11 friends (2–6)",
/// "fewer than 3 of your 11 friends" when the range reaches zero, "anywhere from none to
/// all of your 3 friends" when it spans the whole cohort (too much noise to say more),
/// "4 of your 11 friends" when the count is exact (no noise), never a negative number. `noun` is the
/// plural for the people counted ("friends", "contacts"); `cohort` how many were counted.
pub fn count_phrase(a: &AggregateSum, cohort: u32, exact: bool, noun: &str) -> String {
    let of = format!("of your {cohort} {noun}");
    if exact {
        return match a.owners {
            0 => format!("none {of}"),
            n => format!("{n} {of}"),
        };
    }
    match (a.owners_low, a.owners_high) {
        (_, 0) => format!("probably none {of}"),
        (0, high) if high < cohort => format!("fewer than {} {of}", high + 1),
        (0, _) => format!("anywhere from none to all {of}"),
        (low, high) => format!("about {} {of} ({low}–{high})", a.owners),
    }
}

/// The sentence for `answer`. Names come first; the aggregate adds the friends counted but
/// not named, read as "about" because it is noisy (spec §9.6), and never as fewer than the
/// names shown. Verify named endorsements (`NamedEndorsement::verify`) and drop the ones
/// that fail before calling this.
pub fn social_proof(answer: &AskResult) -> String {
    let names: Vec<&str> = answer
        .named
        .iter()
        .map(|n| n.name.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let exact = answer.epsilon.is_none();
    let others = answer
        .aggregate
        .map(|a| a.owners.saturating_sub(names.len() as u32))
        .unwrap_or(0);
    let about = if exact { "" } else { "about " };
    let friends = |k: u32| if k == 1 { "friend" } else { "friends" };
    match (names.as_slice(), &answer.aggregate) {
        ([], None) => "Not enough friends answered to say".into(),
        ([], Some(a)) => {
            let phrase = count_phrase(a, answer.survivors, exact, "friends");
            let mut chars = phrase.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
            format!("{}{} own one", first.unwrap_or_default(), chars.as_str())
        }
        ([one], _) if others == 0 => format!("{one} owns one"),
        ([one], _) => format!(
            "{one} and {about}{others} other {} own one",
            friends(others)
        ),
        ([a, b], _) if others == 0 => format!("{a} and {b} own one"),
        ([a, b, rest @ ..], _) => {
            let more = rest.len() as u32 + others;
            if more == 0 {
                format!("{a} and {b} own one")
            } else if others == 0 {
                format!("{a}, {b} and {more} other {} own one", friends(more))
            } else {
                format!("{a}, {b} and {about}{more} other {} own one", friends(more))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_protocol::app::NamedEndorsement;
    use kith_protocol::{Endorsement, EndorsementStatement, Identity, ItemKey, NodeId, QueryId};
    use rand_core::OsRng;

    fn named(name: &str) -> NamedEndorsement {
        let id = Identity::generate(&mut OsRng);
        let endorsement = Endorsement {
            item: ItemKey::parse("tag:vehicle/subaru").unwrap(),
            count: 1,
            rating: None,
            note: None,
            since: 0,
        };
        let statement = EndorsementStatement {
            version: kith_protocol::endorsement::STATEMENT_VERSION,
            endorser: id.node_id(),
            audience: NodeId([1; 32]),
            query_id: QueryId([2; 16]),
            endorsement: endorsement.clone(),
            issued_at: 0,
        };
        NamedEndorsement {
            name: name.into(),
            node: id.node_id(),
            endorsement,
            signed: statement.sign(&id),
        }
    }

    fn answer(names: &[&str], owners: Option<(u32, u32, u32)>) -> AskResult {
        AskResult {
            query_id: QueryId([2; 16]),
            item: ItemKey::parse("tag:vehicle/subaru").unwrap(),
            asked: 10,
            answered: 10,
            named: names.iter().map(|n| named(n)).collect(),
            elapsed_ms: 5,
            cohort: 10,
            survivors: 10,
            aggregate: owners.map(|(owners, owners_low, owners_high)| AggregateSum {
                owners,
                owners_low,
                owners_high,
                units: None,
                ratings: None,
            }),
            withheld: owners.is_none().then(|| {
                "only 3 took part, fewer than your minimum cohort of 5 (setting min-cohort)".into()
            }),
            declined: vec![],
            epsilon: Some(1000),
        }
    }

    #[test]
    fn sentences() {
        type Case<'a> = (&'a [&'a str], Option<(u32, u32, u32)>, &'a str);
        let cases: [Case; 10] = [
            (
                &["Chloe"],
                Some((4, 2, 6)),
                "Chloe and about 3 other friends own one",
            ),
            (
                &["Chloe"],
                Some((2, 0, 4)),
                "Chloe and about 1 other friend own one",
            ),
            (&["Chloe"], Some((0, 0, 2)), "Chloe owns one"),
            (&["Chloe"], None, "Chloe owns one"),
            (
                &["Chloe", "Bruno"],
                Some((2, 0, 4)),
                "Bruno and Chloe own one",
            ),
            (
                &["Chloe", "Bruno", "Dev"],
                Some((5, 3, 7)),
                "Bruno, Chloe and about 3 other friends own one",
            ),
            (
                &[],
                Some((0, 0, 0)),
                "Probably none of your 10 friends own one",
            ),
            (
                &[],
                Some((1, 0, 2)),
                "Fewer than 3 of your 10 friends own one",
            ),
            (
                &[],
                Some((4, 2, 6)),
                "About 4 of your 10 friends (2–6) own one",
            ),
            (&[], None, "Not enough friends answered to say"),
        ];
        for (names, owners, want) in cases {
            assert_eq!(
                social_proof(&answer(names, owners)),
                want,
                "{names:?} {owners:?}"
            );
        }
    }

    #[test]
    fn count_phrases() {
        let a = |owners, owners_low, owners_high| AggregateSum {
            owners,
            owners_low,
            owners_high,
            units: None,
            ratings: None,
        };
        assert_eq!(
            count_phrase(&a(4, 4, 4), 11, true, "contacts"),
            "4 of your 11 contacts"
        );
        assert_eq!(
            count_phrase(&a(0, 0, 0), 11, true, "contacts"),
            "none of your 11 contacts"
        );
        assert_eq!(
            count_phrase(&a(2, 0, 2), 2, false, "friends"),
            "anywhere from none to all of your 2 friends",
            "a range that spans everyone says so"
        );
        assert_eq!(
            count_phrase(&a(9, 7, 11), 11, false, "friends"),
            "about 9 of your 11 friends (7–11)"
        );
    }
}
