//! `kith audit`: who asked what and what was disclosed, newest first, a page at a time.

use std::fmt;

use anyhow::Result;
use kith_client::Client;
use serde::Serialize;

use crate::output::date_time;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Entries to show, newest first, 1 to 1000.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Only entries older than this entry id (the next page: the id the last page ends
    /// with, as `kith audit` prints it).
    #[arg(long, value_name = "ID")]
    pub before: Option<u64>,
    /// Only entries about this contact (name or the start of its node id).
    #[arg(long, value_name = "NAME")]
    pub contact: Option<String>,
    /// Only entries about this item, or anything below it (tag:vehicle covers
    /// tag:vehicle/subaru).
    #[arg(long)]
    pub item: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub id: u64,
    pub at: u64,
    pub event: String,
    pub peer: Option<String>,
    pub peer_name: Option<String>,
    pub item: Option<String>,
    pub detail: String,
}

/// A page of the log, and the `--before` of the next page if there may be one.
#[derive(Debug, Serialize)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub next_before: Option<u64>,
    #[serde(skip)]
    filtered: bool,
}

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            let why = if self.filtered { " match" } else { " yet" };
            return write!(f, "No audit entries{why}.");
        }
        for (n, a) in self.entries.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{:>6}  {}  {:<14} {:<16} {:<28} {}",
                a.id,
                date_time(a.at),
                a.event,
                a.peer_name.as_deref().unwrap_or("-"),
                a.item.as_deref().unwrap_or("-"),
                a.detail
            )?;
        }
        if let Some(id) = self.next_before {
            write!(f, "\n(more: kith audit --before {id})")?;
        }
        Ok(())
    }
}

pub async fn run(client: &Client, args: &Args) -> Result<Page> {
    let entries = client
        .audit_page(
            args.before,
            args.contact.clone(),
            args.item.clone(),
            args.limit,
        )
        .await?;
    // A full page may have more behind it.
    let next_before = (entries.len() as u32 == args.limit)
        .then(|| entries.last().map(|a| a.id))
        .flatten();
    Ok(Page {
        entries: entries
            .into_iter()
            .map(|a| Entry {
                id: a.id,
                at: a.at,
                event: a.event,
                peer: a.peer.map(|p| p.to_hex()),
                peer_name: a.peer_name,
                item: a.item,
                detail: a.detail,
            })
            .collect(),
        next_before,
        filtered: args.before.is_some() || args.contact.is_some() || args.item.is_some(),
    })
}
