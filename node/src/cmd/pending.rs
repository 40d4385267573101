//! `kith pending`, `kith approve` and `kith deny`: the requests for items shared as `ask`
//! (spec §8.5), grouped so that a contact who asked the same thing five times is one line,
//! and decided in bulk with `--all-from NAME`.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{bail, Result};
use kith_client::Client;
use kith_protocol::app::{PendingRequest, PendingStatus};
use serde::Serialize;

use crate::output::date_time;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Also show requests already approved, denied or expired.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, clap::Args)]
pub struct DecideArgs {
    /// The request's number, from `kith pending`.
    #[arg(required_unless_present = "all_from", conflicts_with = "all_from")]
    pub id: Option<u64>,
    /// Every waiting request from this contact (its name, or the start of its node id).
    #[arg(long, value_name = "NAME")]
    pub all_from: Option<String>,
}

/// One line of `kith pending`: the requests of one contact about one item.
#[derive(Debug, Serialize)]
pub struct Group {
    pub asker: String,
    pub asker_name: String,
    /// The endorsed item the contact would learn about.
    pub item: String,
    /// What it asked about.
    pub asked: String,
    pub status: String,
    pub ids: Vec<u64>,
    pub first_at: u64,
    pub last_at: u64,
}

/// `pending`: every request shown (the same objects as before), and their groups.
#[derive(Debug, Serialize)]
pub struct Pending {
    pub pending: Vec<Request>,
    pub groups: Vec<Group>,
}

/// A request as JSON.
#[derive(Debug, Serialize)]
pub struct Request {
    pub id: u64,
    pub status: String,
    pub asker: String,
    pub asker_name: String,
    pub query_id: String,
    pub item: String,
    pub asked: String,
    pub created_at: u64,
}

impl From<&PendingRequest> for Request {
    fn from(p: &PendingRequest) -> Self {
        Request {
            id: p.id,
            status: p.status.as_str().to_string(),
            asker: p.asker.to_hex(),
            asker_name: p.asker_name.clone(),
            query_id: p.query_id.to_hex(),
            item: p.item.to_string(),
            asked: p.asked.to_string(),
            created_at: p.created_at,
        }
    }
}

impl fmt::Display for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.groups.is_empty() {
            return write!(f, "No requests waiting.");
        }
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let ids: Vec<String> = g.ids.iter().map(u64::to_string).collect();
            let times = match g.ids.len() {
                1 => String::new(),
                n => format!(" ({n} times, last {})", date_time(g.last_at)),
            };
            write!(
                f,
                "{:>9}  {:<9} {}  {} asked about {}{times}; would learn {}",
                ids.join(","),
                g.status,
                date_time(g.first_at),
                g.asker_name,
                g.asked,
                g.item
            )?;
        }
        Ok(())
    }
}

pub async fn list(client: &Client, args: &ListArgs) -> Result<Pending> {
    let shown: Vec<PendingRequest> = client
        .pending()
        .await?
        .into_iter()
        .filter(|p| args.all || p.status == PendingStatus::Pending)
        .collect();
    let mut groups: BTreeMap<(String, String, String, String), Group> = BTreeMap::new();
    for p in &shown {
        let key = (
            p.asker.to_hex(),
            p.item.to_string(),
            p.asked.to_string(),
            p.status.as_str().to_string(),
        );
        let g = groups.entry(key).or_insert_with(|| Group {
            asker: p.asker.to_hex(),
            asker_name: p.asker_name.clone(),
            item: p.item.to_string(),
            asked: p.asked.to_string(),
            status: p.status.as_str().to_string(),
            ids: Vec::new(),
            first_at: p.created_at,
            last_at: p.created_at,
        });
        g.ids.push(p.id);
        g.first_at = g.first_at.min(p.created_at);
        g.last_at = g.last_at.max(p.created_at);
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    groups.sort_by_key(|g| (g.first_at, g.ids[0]));
    Ok(Pending {
        pending: shown.iter().map(Request::from).collect(),
        groups,
    })
}

/// What `approve` or `deny` did.
#[derive(Debug, Serialize)]
pub struct Decided {
    pub approved: bool,
    pub decided: Vec<Request>,
}

impl fmt::Display for Decided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.decided.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if self.approved {
                write!(
                    f,
                    "Approved #{}: {} now knows you endorse {}.",
                    p.id, p.asker_name, p.item
                )?;
            } else {
                write!(f, "Denied #{}: nothing was sent to {}.", p.id, p.asker_name)?;
            }
        }
        Ok(())
    }
}

pub async fn decide(client: &Client, args: &DecideArgs, approve: bool) -> Result<Decided> {
    let ids: Vec<u64> = match (&args.id, &args.all_from) {
        (Some(id), _) => vec![*id],
        (None, Some(who)) => {
            // As contacts are named everywhere: a node id prefix of 8 hex digits or more,
            // else a name, case-insensitively; more than one contact is an error.
            let wanted = who.trim().to_lowercase();
            if wanted.is_empty() {
                bail!("--all-from needs a contact's name or node id");
            }
            let is_hex = wanted.len() >= 8 && wanted.bytes().all(|b| b.is_ascii_hexdigit());
            let waiting: Vec<PendingRequest> = client
                .pending()
                .await?
                .into_iter()
                .filter(|p| p.status == PendingStatus::Pending)
                .filter(|p| {
                    (is_hex && p.asker.to_hex().starts_with(&wanted))
                        || (!is_hex && p.asker_name.to_lowercase() == wanted)
                })
                .collect();
            let askers: std::collections::BTreeSet<_> = waiting.iter().map(|p| p.asker).collect();
            if askers.len() > 1 {
                let ids: Vec<String> = askers.iter().map(|a| a.short()).collect();
                bail!(
                    "{who:?} names {} contacts ({}); use the start of one's node id",
                    askers.len(),
                    ids.join(", ")
                );
            }
            if waiting.is_empty() {
                bail!("no request from {who:?} is waiting; see `kith pending`");
            }
            waiting.iter().map(|p| p.id).collect()
        }
        (None, None) => bail!("give a request number or --all-from NAME"),
    };
    let mut decided = Vec::new();
    for id in ids {
        let p = if approve {
            client.approve(id).await?
        } else {
            client.deny(id).await?
        };
        decided.push(Request::from(&p));
    }
    Ok(Decided {
        approved: approve,
        decided,
    })
}
