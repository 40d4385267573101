//! Consent policy (spec §6.3): what a node's owner lets each contact learn about each item.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::identity::NodeId;
use crate::item::{ItemKey, ItemPattern};

/// What a matching rule lets the asker learn (spec §6.3).
///
/// The discriminants are the wire codes (the postcard variant index, spec §10.3); a test
/// checks that the encoding uses them. Nothing orders shares implicitly: what each one
/// allows is asked of it by name ([`Share::counts_in_aggregate`], [`Share::names_to_asker`],
/// [`Share::asks_owner`]) and the tie-break of §6.3 uses [`Share::disclosure_rank`], so a
/// new level must say what it allows and where it ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Share {
    /// Nothing: answer as if the item were not owned.
    None = 0,
    /// Only inside an anonymous aggregate (spec §9); by itself reveals nothing.
    Count = 1,
    /// Ask the owner first; until approved, reveals no more than `Count`.
    Ask = 2,
    /// By name: a signed endorsement is sent to the asker.
    Name = 3,
}

/// The share for a contact when no rule matches (spec §6.3).
pub const DEFAULT_SHARE: Share = Share::Count;

impl Share {
    /// Every share, in wire-code order (spec §6.3).
    pub const ALL: [Share; 4] = [Share::None, Share::Count, Share::Ask, Share::Name];

    /// The share's code on the wire (spec §6.3, §10.3).
    pub fn wire_code(self) -> u8 {
        self as u8
    }

    /// Whether the item is counted in an aggregate the asker runs (spec §9.6): every share
    /// but `none`.
    pub fn counts_in_aggregate(self) -> bool {
        match self {
            Share::None => false,
            Share::Count | Share::Ask | Share::Name => true,
        }
    }

    /// Whether a signed endorsement naming the owner goes to the asker in the answer itself
    /// (spec §8.3): `name` only.
    pub fn names_to_asker(self) -> bool {
        match self {
            Share::Name => true,
            Share::None | Share::Count | Share::Ask => false,
        }
    }

    /// Whether a match waits for the owner's decision (spec §8.5): `ask` only.
    pub fn asks_owner(self) -> bool {
        match self {
            Share::Ask => true,
            Share::None | Share::Count | Share::Name => false,
        }
    }

    /// How much the share reveals, for the tie-break of spec §6.3 (least revealing wins):
    /// `none` < `count` < `ask` < `name`.
    pub fn disclosure_rank(self) -> u8 {
        match self {
            Share::None => 0,
            Share::Count => 1,
            Share::Ask => 2,
            Share::Name => 3,
        }
    }

    /// The share's name in text: `none`, `count`, `ask` or `name` (spec §6.3).
    pub fn as_str(self) -> &'static str {
        match self {
            Share::None => "none",
            Share::Count => "count",
            Share::Ask => "ask",
            Share::Name => "name",
        }
    }

    /// Read a share's name; the text is trimmed and ASCII-lowercased first (spec §6.3).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Share::None),
            "count" => Some(Share::Count),
            "ask" => Some(Share::Ask),
            "name" => Some(Share::Name),
            _ => None,
        }
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest circle name (spec §6.3).
pub const MAX_CIRCLE_CHARS: usize = 32;
/// The circle a new contact joins unless told otherwise (spec §6.3).
pub const DEFAULT_CIRCLE: &str = "friends";

/// Check a circle name: 1..=32 of letters, digits, `-`, `_`; stored lowercase (spec §6.3).
pub fn validate_circle(name: &str) -> Result<String, InvalidInput> {
    let n = name.trim().to_lowercase();
    if n.is_empty()
        || n.chars().count() > MAX_CIRCLE_CHARS
        || !n
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return Err(InvalidInput::Circle(MAX_CIRCLE_CHARS));
    }
    Ok(n)
}

/// Whom a rule is about (spec §6.3, §10.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Subject {
    /// Every contact in the named circle.
    Circle(String),
    /// One contact.
    Contact(NodeId),
}

/// One consent rule: subject × item pattern → share (spec §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PolicyRule {
    pub subject: Subject,
    pub items: ItemPattern,
    pub share: Share,
}

/// The owner's rules, evaluated by [`ConsentPolicy::evaluate`] (spec §6.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentPolicy {
    pub rules: Vec<PolicyRule>,
}

impl ConsentPolicy {
    /// A policy made of `rules` (spec §6.3).
    pub fn new(rules: Vec<PolicyRule>) -> Self {
        Self { rules }
    }

    /// The share for `item` asked by `contact`, a member of `circle` (spec §6.3):
    ///
    /// 1. keep the rules whose subject is the contact or its circle and whose pattern
    ///    matches the item;
    /// 2. a rule naming the contact beats any rule naming its circle (a per-person rule is
    ///    the owner's explicit exception, so `--contact bob --items '*' --share none`
    ///    always silences Bob);
    /// 3. among those, the most specific item pattern wins (exact key > deeper tag subtree
    ///    > shallower > `scheme:*` > `*`);
    /// 4. any remaining tie goes to the least revealing share (`none` < `count` < `ask` <
    ///    `name`);
    /// 5. no matching rule: [`DEFAULT_SHARE`].
    pub fn evaluate(&self, contact: &NodeId, circle: &str, item: &ItemKey) -> Share {
        self.rules
            .iter()
            .filter(|r| match &r.subject {
                Subject::Contact(id) => id == contact,
                Subject::Circle(c) => c == circle,
            })
            .filter(|r| r.items.matches(item))
            .map(|r| {
                let subject_rank = matches!(r.subject, Subject::Contact(_)) as u8;
                // Higher tuple wins; the share is inverted so the least revealing wins ties.
                (
                    (
                        subject_rank,
                        r.items.specificity(),
                        core::cmp::Reverse(r.share.disclosure_rank()),
                    ),
                    r.share,
                )
            })
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, share)| share)
            .unwrap_or(DEFAULT_SHARE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(subject: Subject, items: &str, share: Share) -> PolicyRule {
        PolicyRule {
            subject,
            items: ItemPattern::parse(items).unwrap(),
            share,
        }
    }

    #[test]
    fn precedence() {
        let bob = NodeId([1; 32]);
        let carol = NodeId([2; 32]);
        let dan = NodeId([3; 32]);
        let friends = || Subject::Circle("friends".into());
        let p = ConsentPolicy::new(vec![
            rule(friends(), "*", Share::Name),
            rule(friends(), "tag:health/*", Share::None),
            rule(friends(), "tag:health/dentist", Share::Ask),
            rule(Subject::Contact(bob), "tag:health/*", Share::Count),
            rule(Subject::Contact(dan), "*", Share::None),
            rule(friends(), "tag:vehicle/*", Share::Name),
            rule(friends(), "tag:vehicle/*", Share::Count),
        ]);
        let item = |s: &str| ItemKey::parse(s).unwrap();
        assert_eq!(
            p.evaluate(&carol, "friends", &item("isbn:9780441013593")),
            Share::Name
        );
        // Deeper pattern beats shallower within the circle.
        assert_eq!(
            p.evaluate(&carol, "friends", &item("tag:health/flu")),
            Share::None
        );
        assert_eq!(
            p.evaluate(&carol, "friends", &item("tag:health/dentist")),
            Share::Ask
        );
        // A contact rule beats even a more specific circle rule.
        assert_eq!(
            p.evaluate(&bob, "friends", &item("tag:health/dentist")),
            Share::Count
        );
        assert_eq!(p.evaluate(&bob, "friends", &item("tag:book")), Share::Name);
        assert_eq!(
            p.evaluate(&dan, "friends", &item("tag:vehicle/subaru")),
            Share::None
        );
        // Equal rank: least revealing wins.
        assert_eq!(
            p.evaluate(&carol, "friends", &item("tag:vehicle/subaru")),
            Share::Count
        );
        // Not in any circle with rules: the default.
        assert_eq!(
            p.evaluate(&carol, "work", &item("tag:vehicle/subaru")),
            DEFAULT_SHARE
        );
    }

    #[test]
    fn circles() {
        assert_eq!(validate_circle(" Friends ").unwrap(), "friends");
        assert!(validate_circle("").is_err());
        assert!(validate_circle("a b").is_err());
    }

    #[test]
    fn shares_encode_as_their_wire_codes_and_say_what_they_allow() {
        for share in Share::ALL {
            assert_eq!(
                crate::wire::encode_value(&share),
                [share.wire_code()],
                "{share}"
            );
            assert_eq!(Share::parse(share.as_str()), Some(share));
        }
        let allows = |s: Share| (s.counts_in_aggregate(), s.names_to_asker(), s.asks_owner());
        assert_eq!(allows(Share::None), (false, false, false));
        assert_eq!(allows(Share::Count), (true, false, false));
        assert_eq!(allows(Share::Ask), (true, false, true));
        assert_eq!(allows(Share::Name), (true, true, false));
        let mut ranked = Share::ALL;
        ranked.sort_by_key(|s| s.disclosure_rank());
        assert_eq!(ranked, Share::ALL);
    }
}
