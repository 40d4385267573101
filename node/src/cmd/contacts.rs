//! `kith contacts` (list), `kith contacts remove NAME` and `kith contacts rename NAME NEW`.

use std::fmt;

use anyhow::Result;
use kith_client::Client;
use kith_protocol::app::ContactInfo;
use serde::Serialize;

use crate::output::{date, duplicate_names};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Forget a contact: it can no longer ask you anything, you no longer ask it, and your
    /// rules naming it go. The audit log keeps what happened.
    Remove {
        /// The contact's name, or the start of its node id (8 hex digits or more).
        contact: String,
    },
    /// Call a contact by another name (in your node only; it keeps its own).
    Rename {
        /// The contact's name, or the start of its node id (8 hex digits or more).
        contact: String,
        /// Its new name here.
        name: String,
    },
}

/// A contact as every command prints it.
#[derive(Debug, Serialize)]
pub struct Contact {
    pub name: String,
    pub node: String,
    pub circle: String,
    /// Where its node is reached, from its latest card.
    pub addresses: Vec<String>,
    pub added_at: u64,
    #[serde(skip)]
    pub short: String,
}

impl From<&ContactInfo> for Contact {
    fn from(c: &ContactInfo) -> Self {
        Contact {
            name: c.name.clone(),
            node: c.node_id.to_hex(),
            circle: c.circle.clone(),
            addresses: c.addresses.clone(),
            added_at: c.added_at,
            short: c.node_id.short(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Contacts {
    pub contacts: Vec<Contact>,
}

impl fmt::Display for Contacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.contacts.is_empty() {
            return f.write_str("No contacts yet. Invite someone with `kith invite`.");
        }
        write!(f, "{:<24} {:<12} {:<10} SINCE", "NAME", "CIRCLE", "NODE")?;
        for c in &self.contacts {
            write!(
                f,
                "\n{:<24} {:<12} {:<10} {}",
                c.name,
                c.circle,
                c.short,
                date(c.added_at)
            )?;
        }
        Ok(())
    }
}

/// What `remove` and `rename` did.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Changed {
    pub contact: Contact,
    #[serde(skip)]
    pub text: String,
}

impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output {
    List(Contacts),
    Changed(Changed),
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::List(l) => l.fmt(f),
            Output::Changed(c) => c.fmt(f),
        }
    }
}

pub async fn run(client: &Client, args: &Args) -> Result<Output> {
    Ok(match &args.action {
        None => {
            let cs = client.contacts().await?;
            for name in duplicate_names(cs.iter().map(|c| (&c.name, c.node_id))) {
                super::warn(&format!(
                    "more than one contact is named {name:?}: tell them apart by NODE"
                ));
            }
            Output::List(Contacts {
                contacts: cs.iter().map(Contact::from).collect(),
            })
        }
        Some(Action::Remove { contact }) => {
            let c = client.remove_contact(contact).await?;
            Output::Changed(Changed {
                text: format!(
                    "{} ({}) is no longer a contact; rules naming it were removed.",
                    c.name,
                    c.node_id.short()
                ),
                contact: Contact::from(&c),
            })
        }
        Some(Action::Rename { contact, name }) => {
            let c = client.rename_contact(contact, name).await?;
            Output::Changed(Changed {
                text: format!("{contact} is now called {} ({})", c.name, c.node_id.short()),
                contact: Contact::from(&c),
            })
        }
    })
}
