//! `kith endorse ITEM`: record that you own (or recommend) an item. On an item you already
//! endorse, only the fields you give change, and the output says what was replaced.

use std::fmt;

use anyhow::{Context, Result};
use kith_client::Client;
use kith_protocol::{Endorsement, ItemKey};
use serde::Serialize;

use crate::output::stars;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// isbn:..., gtin:..., wikidata:Q..., or tag:path/to/thing
    pub item: String,
    /// Units owned, 1 to 1 000 000 (default 1 for a new item; unchanged otherwise).
    #[arg(long, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub count: Option<u32>,
    /// Your rating, 1 to 5 stars (unchanged if not given).
    #[arg(long, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u8).range(1..=5), conflicts_with = "clear_rating")]
    pub rating: Option<u8>,
    /// A short note, at most 280 characters (shared only with those you name it to;
    /// unchanged if not given).
    #[arg(long, conflicts_with = "clear_note")]
    pub note: Option<String>,
    /// Remove the rating of an existing endorsement.
    #[arg(long)]
    pub clear_rating: bool,
    /// Remove the note of an existing endorsement.
    #[arg(long)]
    pub clear_note: bool,
}

/// An endorsement as `kith endorse` and `kith endorsements` print it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    pub item: String,
    pub count: u32,
    pub rating: Option<u8>,
    pub note: Option<String>,
    pub since: u64,
}

impl From<&Endorsement> for Shown {
    fn from(e: &Endorsement) -> Self {
        Shown {
            item: e.item.to_string(),
            count: e.count,
            rating: e.rating,
            note: e.note.clone(),
            since: e.since,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Endorsed {
    #[serde(flatten)]
    pub now: Shown,
    /// What it replaced, if the item was endorsed already.
    pub replaced: Option<Shown>,
}

impl fmt::Display for Endorsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.now;
        match &self.replaced {
            None => write!(f, "Endorsed {} × {} {}", e.count, e.item, stars(e.rating)),
            Some(old) if old.count == e.count && old.rating == e.rating && old.note == e.note => {
                write!(f, "Unchanged: {} × {} {}", e.count, e.item, stars(e.rating))
            }
            Some(old) => {
                write!(f, "Updated {}:", e.item)?;
                if old.count != e.count {
                    write!(f, " count {} → {};", old.count, e.count)?;
                }
                if old.rating != e.rating {
                    let r = |r: Option<u8>| r.map_or("none".into(), |r| stars(Some(r)));
                    write!(f, " rating {} → {};", r(old.rating), r(e.rating))?;
                }
                if old.note != e.note {
                    let n = |n: &Option<String>| {
                        n.as_deref().map_or("none".into(), |n| format!("{n:?}"))
                    };
                    write!(f, " note {} → {};", n(&old.note), n(&e.note))?;
                }
                Ok(())
            }
        }
    }
}

pub async fn run(client: &Client, args: &Args) -> Result<Endorsed> {
    let key =
        ItemKey::parse(&args.item).with_context(|| format!("invalid item {:?}", args.item))?;
    let existing = client
        .endorsements()
        .await?
        .into_iter()
        .find(|e| e.item == key);
    let old = existing.as_ref();
    let count = args.count.or(old.map(|e| e.count)).unwrap_or(1);
    let rating = if args.clear_rating {
        None
    } else {
        args.rating.or(old.and_then(|e| e.rating))
    };
    let note = if args.clear_note {
        None
    } else {
        args.note.clone().or(old.and_then(|e| e.note.clone()))
    };
    let e = client.endorse(key, count, rating, note).await?;
    Ok(Endorsed {
        now: Shown::from(&e),
        replaced: old.map(Shown::from),
    })
}
