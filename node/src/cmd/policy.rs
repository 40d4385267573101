//! `kith policy set|remove|list`: consent rules, who may learn what (spec §6.3).

use std::fmt;

use anyhow::{bail, Context, Result};
use kith_client::Client;
use kith_protocol::app::{PolicyEntry, SubjectRef};
use kith_protocol::{ItemPattern, Share, Subject};
use serde::Serialize;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Add or replace a rule.
    Set(SetArgs),
    /// Remove the rule for exactly this subject and pattern.
    Remove(RemoveArgs),
    /// List the rules.
    List,
}

#[derive(Debug, clap::Args)]
pub struct SetArgs {
    /// The rule applies to everyone in this circle.
    #[arg(long, conflicts_with = "contact", required_unless_present = "contact")]
    pub circle: Option<String>,
    /// The rule applies to this contact (name or node id prefix).
    #[arg(long)]
    pub contact: Option<String>,
    /// Items: an exact key, tag:path/*, scheme:*, or *.
    #[arg(long, value_name = "PATTERN")]
    pub items: String,
    /// none | count | name | ask
    #[arg(long, value_parser = parse_share)]
    pub share: Share,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The rule's circle.
    #[arg(long, conflicts_with = "contact", required_unless_present = "contact")]
    pub circle: Option<String>,
    /// The rule's contact (name or node id prefix).
    #[arg(long)]
    pub contact: Option<String>,
    /// The rule's item pattern, exactly as `kith policy list` shows it.
    #[arg(long)]
    pub items: String,
}

fn parse_share(s: &str) -> std::result::Result<Share, String> {
    Share::parse(s).ok_or_else(|| format!("{s:?} is not one of none, count, name, ask"))
}

/// A rule's subject and pattern as `policy set` and `policy remove` take them.
fn rule_target(
    circle: &Option<String>,
    contact: &Option<String>,
    items: &str,
) -> Result<(SubjectRef, ItemPattern)> {
    let subject = match (circle, contact) {
        (Some(c), _) => SubjectRef::Circle(c.clone()),
        (None, Some(c)) => SubjectRef::Contact(c.clone()),
        (None, None) => bail!("give --circle C or --contact NAME"),
    };
    let items = ItemPattern::parse(items).with_context(|| format!("invalid pattern {items:?}"))?;
    Ok((subject, items))
}

/// A rule as JSON: `subject` is "circle" or "contact", and the field of that name holds the
/// circle or the contact's node id.
#[derive(Debug, Serialize)]
pub struct Rule {
    pub subject: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    pub contact_name: Option<String>,
    pub items: String,
    pub share: &'static str,
    /// "circle friends", "contact Bo".
    #[serde(skip)]
    pub who: String,
}

impl From<&PolicyEntry> for Rule {
    fn from(e: &PolicyEntry) -> Self {
        let (subject, circle, contact, who) = match &e.subject {
            Subject::Circle(c) => ("circle", Some(c.clone()), None, format!("circle {c}")),
            Subject::Contact(id) => (
                "contact",
                None,
                Some(id.to_hex()),
                format!(
                    "contact {}",
                    e.contact_name.clone().unwrap_or_else(|| id.short())
                ),
            ),
        };
        Rule {
            subject,
            circle,
            contact,
            contact_name: e.contact_name.clone(),
            items: e.items.to_string(),
            share: e.share.as_str(),
            who,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} → {}", self.who, self.items, self.share)
    }
}

#[derive(Debug, Serialize)]
pub struct Rules {
    pub rules: Vec<Rule>,
    /// The share of an item no rule matches.
    pub default: &'static str,
}

impl fmt::Display for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.rules {
            writeln!(f, "{:<32} {:<32} {}", r.who, r.items, r.share)?;
        }
        write!(f, "(no matching rule: {})", self.default)
    }
}

#[derive(Debug, Serialize)]
pub struct Removed {
    pub removed: bool,
}

impl fmt::Display for Removed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Removed the rule.")
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output {
    Set(Rule),
    Removed(Removed),
    List(Rules),
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Set(r) => r.fmt(f),
            Output::Removed(r) => r.fmt(f),
            Output::List(r) => r.fmt(f),
        }
    }
}

/// Run it. Removing no rule is an error for a person, and `{"removed": false}` for a script
/// (`json`).
pub async fn run(client: &Client, command: &Command, json: bool) -> Result<Output> {
    match command {
        Command::Set(p) => {
            let (subject, items) = rule_target(&p.circle, &p.contact, &p.items)?;
            let e = client.set_policy(subject, items, p.share).await?;
            if let Some(circle) = &p.circle {
                warn_if_nobody_in(client, circle).await?;
            }
            Ok(Output::Set(Rule::from(&e)))
        }
        Command::Remove(p) => {
            let (subject, items) = rule_target(&p.circle, &p.contact, &p.items)?;
            let removed = client.remove_policy(subject, items).await?;
            if !removed && !json {
                bail!("no such rule (see `kith policy list`)");
            }
            Ok(Output::Removed(Removed { removed }))
        }
        Command::List => {
            let rules = client.policy().await?;
            Ok(Output::List(Rules {
                rules: rules.iter().map(Rule::from).collect(),
                default: kith_protocol::DEFAULT_SHARE.as_str(),
            }))
        }
    }
}

/// A rule for a circle nobody is in protects nothing: most likely a typo.
async fn warn_if_nobody_in(client: &Client, circle: &str) -> Result<()> {
    let contacts = client.contacts().await?;
    if contacts.iter().any(|c| c.circle == circle) {
        return Ok(());
    }
    let mut circles: Vec<&str> = contacts.iter().map(|c| c.circle.as_str()).collect();
    circles.sort_unstable();
    circles.dedup();
    super::warn(&format!(
        "no contact is in circle {circle:?}, so this rule applies to nobody yet{}",
        if circles.is_empty() {
            String::new()
        } else {
            format!(" (your circles: {})", circles.join(", "))
        }
    ));
    Ok(())
}
