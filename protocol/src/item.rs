//! Item keys and patterns (spec §6.1).
//!
//! An [`ItemKey`] names a thing people own or recommend, as `scheme:value`:
//!
//! | scheme | value | normal form |
//! | --- | --- | --- |
//! | `isbn` | ISBN-10 or ISBN-13, hyphens and spaces allowed | 13 digits (ISBN-10 converted) |
//! | `gtin` | GTIN-8, -12 (UPC-A), -13 (EAN) or -14 | 14 digits, zero padded |
//! | `wikidata` | `Q` and digits | `Q` and digits, no leading zeros |
//! | `tag` | a `/` path of words | lowercase, segments trimmed, inner spaces as `-` |
//!
//! A tag key is *within* another when it is equal or a descendant:
//! `tag:vehicle/subaru/outback` is within `tag:vehicle/subaru`, `tag:vehicle/subarus` is not.

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ItemError;

/// Longest normalised item key, in bytes (spec §6.1).
pub const MAX_ITEM_KEY_LEN: usize = 160;
/// Most segments in a tag path (spec §6.1).
pub const MAX_TAG_SEGMENTS: usize = 8;

/// An item scheme (spec §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    Isbn,
    Gtin,
    Wikidata,
    Tag,
}

impl Scheme {
    /// The scheme's name: `isbn`, `gtin`, `wikidata` or `tag` (spec §6.1).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Isbn => "isbn",
            Scheme::Gtin => "gtin",
            Scheme::Wikidata => "wikidata",
            Scheme::Tag => "tag",
        }
    }

    fn parse(s: &str) -> Result<Self, ItemError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "isbn" => Ok(Scheme::Isbn),
            "gtin" => Ok(Scheme::Gtin),
            "wikidata" => Ok(Scheme::Wikidata),
            "tag" => Ok(Scheme::Tag),
            other => Err(ItemError::UnknownScheme(other.chars().take(32).collect())),
        }
    }
}

/// A normalised item key. On the wire it is its normal-form string; decoding re-validates
/// it and rejects anything not already in normal form (spec §6.1).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ItemKey {
    scheme: Scheme,
    value: String,
}

impl ItemKey {
    /// Parse and normalise text typed by a person (spec §6.1).
    pub fn parse(text: &str) -> Result<Self, ItemError> {
        if text.len() > MAX_ITEM_KEY_LEN * 4 {
            return Err(ItemError::TooLong(MAX_ITEM_KEY_LEN));
        }
        let (scheme, value) = text
            .trim()
            .split_once(':')
            .ok_or(ItemError::MissingScheme)?;
        let scheme = Scheme::parse(scheme)?;
        let value = match scheme {
            Scheme::Isbn => normalise_isbn(value)?,
            Scheme::Gtin => normalise_gtin(value)?,
            Scheme::Wikidata => normalise_wikidata(value)?,
            Scheme::Tag => normalise_tag(value)?,
        };
        let key = Self { scheme, value };
        if key.to_string().len() > MAX_ITEM_KEY_LEN {
            return Err(ItemError::TooLong(MAX_ITEM_KEY_LEN));
        }
        Ok(key)
    }

    /// The key's scheme (spec §6.1).
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The normalised value after the colon (spec §6.1).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// True when `self` is `other` or, for tags, a descendant of it (spec §6.1).
    pub fn is_within(&self, other: &ItemKey) -> bool {
        if self.scheme != other.scheme {
            return false;
        }
        self.value == other.value
            || (self.scheme == Scheme::Tag
                && self.value.len() > other.value.len()
                && self.value.starts_with(&other.value)
                && self.value.as_bytes()[other.value.len()] == b'/')
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme.as_str(), self.value)
    }
}

impl fmt::Debug for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemKey({self})")
    }
}

impl From<ItemKey> for String {
    fn from(k: ItemKey) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for ItemKey {
    type Error = ItemError;
    fn try_from(s: String) -> Result<Self, ItemError> {
        let key = ItemKey::parse(&s)?;
        if key.to_string() != s {
            return Err(ItemError::NotNormalForm);
        }
        Ok(key)
    }
}

impl core::str::FromStr for ItemKey {
    type Err = ItemError;
    fn from_str(s: &str) -> Result<Self, ItemError> {
        ItemKey::parse(s)
    }
}

fn digits_only(value: &str, allow_x: bool) -> Option<String> {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '0'..='9' => out.push(c),
            'x' | 'X' if allow_x => out.push('X'),
            '-' | ' ' => {}
            _ => return None,
        }
    }
    Some(out)
}

fn normalise_isbn(value: &str) -> Result<String, ItemError> {
    let d = digits_only(value.trim(), true).ok_or(ItemError::BadIsbn("only digits, X, hyphens"))?;
    match d.len() {
        10 => {
            if d[..9].contains('X') {
                return Err(ItemError::BadIsbn("X only as the last ISBN-10 character"));
            }
            let sum: u32 = d
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    (10 - i as u32)
                        * if c == 'X' {
                            10
                        } else {
                            c.to_digit(10).unwrap()
                        }
                })
                .sum();
            if !sum.is_multiple_of(11) {
                return Err(ItemError::BadIsbn("ISBN-10 check digit does not match"));
            }
            let body = format!("978{}", &d[..9]);
            Ok(format!("{body}{}", ean_check_digit(&body)))
        }
        13 => {
            if d.contains('X') {
                return Err(ItemError::BadIsbn("X is not valid in an ISBN-13"));
            }
            if !(d.starts_with("978") || d.starts_with("979")) {
                return Err(ItemError::BadIsbn("ISBN-13 starts with 978 or 979"));
            }
            if ean_check_digit(&d[..12]) != d.as_bytes()[12] - b'0' {
                return Err(ItemError::BadIsbn("ISBN-13 check digit does not match"));
            }
            Ok(d)
        }
        _ => Err(ItemError::BadIsbn("expected 10 or 13 digits")),
    }
}

/// GS1 check digit for the given digits (weights 3,1,3,… from the right).
fn ean_check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| (b - b'0') as u32 * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

fn normalise_gtin(value: &str) -> Result<String, ItemError> {
    let d = digits_only(value.trim(), false).ok_or(ItemError::BadGtin("only digits"))?;
    if ![8, 12, 13, 14].contains(&d.len()) {
        return Err(ItemError::BadGtin("expected 8, 12, 13 or 14 digits"));
    }
    let n = d.len();
    if ean_check_digit(&d[..n - 1]) != d.as_bytes()[n - 1] - b'0' {
        return Err(ItemError::BadGtin("check digit does not match"));
    }
    Ok(format!("{d:0>14}"))
}

fn normalise_wikidata(value: &str) -> Result<String, ItemError> {
    let v = value.trim();
    let digits = v.strip_prefix(['Q', 'q']).ok_or(ItemError::BadWikidata)?;
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ItemError::BadWikidata);
    }
    let n: u64 = digits.parse().map_err(|_| ItemError::BadWikidata)?;
    if n == 0 {
        return Err(ItemError::BadWikidata);
    }
    Ok(format!("Q{n}"))
}

fn normalise_tag(value: &str) -> Result<String, ItemError> {
    let mut segments = Vec::new();
    for raw in value.split('/') {
        // ASCII only, so that every implementation, whatever its Unicode tables, agrees on
        // the normal form (spec §6.1).
        if !raw.is_ascii() {
            return Err(ItemError::BadTag(
                "tags use ASCII letters, digits, '-', '_', '.', '+'",
            ));
        }
        let words: Vec<&str> = raw.split_ascii_whitespace().collect();
        if words.is_empty() {
            return Err(ItemError::BadTag("empty path segment"));
        }
        let seg = words.join("-").to_ascii_lowercase();
        if seg == "*" || seg.contains('*') {
            return Err(ItemError::BadTag("'*' is for patterns, not item keys"));
        }
        if !seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
        {
            return Err(ItemError::BadTag(
                "tags use ASCII letters, digits, '-', '_', '.', '+'",
            ));
        }
        segments.push(seg);
    }
    if segments.len() > MAX_TAG_SEGMENTS {
        return Err(ItemError::BadTag("more than 8 path segments"));
    }
    Ok(segments.join("/"))
}

/// An item pattern in a consent rule (spec §6.2): `*`, `scheme:*`, `tag:path/*`, or an
/// exact key.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ItemPattern {
    /// Every item.
    Any,
    /// Every item of a scheme.
    Scheme(Scheme),
    /// A tag and every tag within it.
    Subtree(ItemKey),
    /// Exactly one item.
    Exact(ItemKey),
}

impl ItemPattern {
    /// Parse a pattern typed by a person: `*`, `scheme:*`, `tag:path/*` or a key (spec §6.2).
    pub fn parse(text: &str) -> Result<Self, ItemError> {
        let t = text.trim();
        if t == "*" {
            return Ok(ItemPattern::Any);
        }
        if let Some(prefix) = t.strip_suffix("/*") {
            let key = ItemKey::parse(prefix)?;
            if key.scheme != Scheme::Tag {
                return Err(ItemError::BadPattern("only tag: patterns may end in /*"));
            }
            return Ok(ItemPattern::Subtree(key));
        }
        if let Some(scheme) = t.strip_suffix(":*") {
            return Ok(ItemPattern::Scheme(Scheme::parse(scheme)?));
        }
        if t.contains('*') {
            return Err(ItemError::BadPattern(
                "'*' only as '*', 'scheme:*' or 'tag:path/*'",
            ));
        }
        Ok(ItemPattern::Exact(ItemKey::parse(t)?))
    }

    /// Does `item` fall under this pattern?
    /// Spec: §6.2.
    pub fn matches(&self, item: &ItemKey) -> bool {
        match self {
            ItemPattern::Any => true,
            ItemPattern::Scheme(s) => item.scheme == *s,
            ItemPattern::Subtree(root) => item.is_within(root),
            ItemPattern::Exact(k) => item == k,
        }
    }

    /// How specific the pattern is (spec §6.2, §6.3): `*` = 0, `scheme:*` = 1, a subtree = 1 +
    /// its depth in segments, an exact key = 1000.
    pub fn specificity(&self) -> u32 {
        match self {
            ItemPattern::Any => 0,
            ItemPattern::Scheme(_) => 1,
            ItemPattern::Subtree(k) => 1 + k.value.split('/').count() as u32,
            ItemPattern::Exact(_) => 1000,
        }
    }
}

impl fmt::Display for ItemPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemPattern::Any => f.write_str("*"),
            ItemPattern::Scheme(s) => write!(f, "{}:*", s.as_str()),
            ItemPattern::Subtree(k) => write!(f, "{k}/*"),
            ItemPattern::Exact(k) => write!(f, "{k}"),
        }
    }
}

impl fmt::Debug for ItemPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ItemPattern({self})")
    }
}

impl From<ItemPattern> for String {
    fn from(p: ItemPattern) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for ItemPattern {
    type Error = ItemError;
    fn try_from(s: String) -> Result<Self, ItemError> {
        let p = ItemPattern::parse(&s)?;
        if p.to_string() != s {
            return Err(ItemError::BadPattern(
                "pattern on the wire must be in normal form",
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn k(s: &str) -> ItemKey {
        ItemKey::parse(s).unwrap()
    }

    #[test]
    fn isbn_normalisation() {
        assert_eq!(k("isbn:0-441-01359-7").to_string(), "isbn:9780441013593");
        assert_eq!(
            k(" ISBN : 978-0-441-01359-3 ").to_string(),
            "isbn:9780441013593"
        );
        assert_eq!(k("isbn:0-8044-2957-X").to_string(), "isbn:9780804429573");
        assert!(matches!(
            ItemKey::parse("isbn:0-441-01359-8"),
            Err(ItemError::BadIsbn(_))
        ));
        assert!(matches!(
            ItemKey::parse("isbn:12345"),
            Err(ItemError::BadIsbn(_))
        ));
    }

    #[test]
    fn gtin_wikidata_tag() {
        assert_eq!(k("gtin:036000291452").to_string(), "gtin:00036000291452");
        assert_eq!(k("gtin:0036000291452"), k("gtin:036000291452"));
        assert!(ItemKey::parse("gtin:036000291453").is_err());
        assert_eq!(k("wikidata:q042").to_string(), "wikidata:Q42");
        assert!(ItemKey::parse("wikidata:42").is_err());
        assert_eq!(
            k("TAG: Vehicle / Subaru  Outback").to_string(),
            "tag:vehicle/subaru-outback"
        );
        assert!(ItemKey::parse("tag:a//b").is_err());
        assert!(ItemKey::parse("tag:bücher").is_err());
        assert!(ItemKey::parse("tag:a\u{a0}b").is_err());
        assert!(ItemKey::parse("tag:").is_err());
        assert!(ItemKey::parse("car:subaru").is_err());
        assert!(ItemKey::parse("subaru").is_err());
    }

    #[test]
    fn tag_paths_match_whole_segments() {
        let subaru = k("tag:vehicle/subaru");
        assert!(k("tag:vehicle/subaru/outback").is_within(&subaru));
        assert!(k("tag:vehicle/subaru").is_within(&subaru));
        assert!(!k("tag:vehicle/subarus").is_within(&subaru));
        assert!(!k("tag:vehicle").is_within(&subaru));
        assert!(!k("isbn:9780441013593").is_within(&k("isbn:9780804429573")));
    }

    #[test]
    fn patterns() {
        let p = ItemPattern::parse("tag:vehicle/*").unwrap();
        assert!(p.matches(&k("tag:vehicle/subaru/outback")));
        assert!(p.matches(&k("tag:vehicle")));
        assert!(!p.matches(&k("tag:vehicles")));
        assert!(ItemPattern::parse("isbn:*")
            .unwrap()
            .matches(&k("isbn:9780441013593")));
        assert!(ItemPattern::parse("*").unwrap().matches(&k("wikidata:Q1")));
        assert!(ItemPattern::parse("isbn:978*").is_err());
        assert!(ItemPattern::parse("isbn:9780441013593/*").is_err());
        assert!(
            ItemPattern::Any.specificity() < ItemPattern::parse("tag:*").unwrap().specificity()
        );
        assert!(
            ItemPattern::parse("tag:a/*").unwrap().specificity()
                < ItemPattern::parse("tag:a/b/*").unwrap().specificity()
        );
    }

    #[test]
    fn wire_form_must_be_normal() {
        assert!(ItemKey::try_from("isbn:0441013597".to_string()).is_err());
        assert!(ItemKey::try_from("isbn:9780441013593".to_string()).is_ok());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_normal_form_is_a_fixed_point(s in ".{0,80}") {
            if let Ok(key) = ItemKey::parse(&s) {
                let again = ItemKey::parse(&key.to_string()).unwrap();
                prop_assert_eq!(&again, &key);
                prop_assert!(key.to_string().len() <= MAX_ITEM_KEY_LEN);
            }
            let _ = ItemPattern::parse(&s);
        }

        #[test]
        fn tag_paths(a in "[a-z]{1,6}", b in "[a-z]{1,6}", c in "[a-z]{1,6}") {
            let parent = k(&format!("tag:{a}/{b}"));
            let child = k(&format!("tag:{a}/{b}/{c}"));
            let sibling = k(&format!("tag:{a}/{b}{c}"));
            prop_assert!(child.is_within(&parent));
            prop_assert!(!sibling.is_within(&parent));
            prop_assert!(!parent.is_within(&child));
        }
    }
}
