//! One human sentence for an answer, the way a shop or a reader shows social proof:
//! "Chloe and 3 other friends own one".

use std::collections::BTreeSet;

use kith_protocol::app::AskResult;

/// The sentence for `answer`. Names come first, the aggregate adds the friends counted but
/// not named; the aggregate is noisy (spec §9.6), so it is read as "about" and never as
/// fewer than the names shown. Verify named endorsements (`NamedEndorsement::verify`) and
/// drop the ones that fail before calling this.
pub fn social_proof(answer: &AskResult) -> String {
    let names: Vec<&str> = answer
        .named
        .iter()
        .map(|n| n.name.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let counted = answer.aggregate.map(|a| a.owners);
    let others = counted
        .map(|owners| owners.saturating_sub(names.len() as i64).max(0) as u64)
        .unwrap_or(0);
    let friends = |k: u64| if k == 1 { "friend" } else { "friends" };
    match (names.as_slice(), counted) {
        ([], None) => "Not enough friends answered to say".into(),
        ([], Some(o)) if o <= 0 => "None of your friends who answered own one".into(),
        ([], Some(o)) => format!("About {o} of your {} own one", friends(o as u64)),
        ([one], _) if others == 0 => format!("{one} owns one"),
        ([one], _) => format!("{one} and {others} other {} own one", friends(others)),
        ([a, b], _) if others == 0 => format!("{a} and {b} own one"),
        ([a, b, rest @ ..], _) => {
            let more = rest.len() as u64 + others;
            if more == 0 {
                format!("{a} and {b} own one")
            } else {
                format!("{a}, {b} and {more} other {} own one", friends(more))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kith_protocol::aggregation::input::AggregateSum;
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

    fn answer(names: &[&str], owners: Option<i64>) -> AskResult {
        AskResult {
            query_id: QueryId([2; 16]),
            item: ItemKey::parse("tag:vehicle/subaru").unwrap(),
            asked: 10,
            answered: 10,
            named: names.iter().map(|n| named(n)).collect(),
            elapsed_ms: 5,
            cohort: 10,
            survivors: 10,
            aggregate: owners.map(|o| AggregateSum {
                owners: o,
                units: o,
                ratings: [0; 5],
            }),
            withheld: owners
                .is_none()
                .then(|| "cohort of 3 is below the minimum of 5".into()),
            epsilon: Some(1000),
        }
    }

    #[test]
    fn sentences() {
        let cases: [(&[&str], Option<i64>, &str); 9] = [
            (&["Chloe"], Some(4), "Chloe and 3 other friends own one"),
            (&["Chloe"], Some(2), "Chloe and 1 other friend own one"),
            (&["Chloe"], Some(-1), "Chloe owns one"),
            (&["Chloe"], None, "Chloe owns one"),
            (&["Chloe", "Bruno"], Some(2), "Bruno and Chloe own one"),
            (
                &["Chloe", "Bruno", "Dev"],
                Some(5),
                "Bruno, Chloe and 3 other friends own one",
            ),
            (&[], Some(0), "None of your friends who answered own one"),
            (&[], Some(3), "About 3 of your friends own one"),
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
}
