//! `kith endorsements` (list) and `kith unendorse ITEM`.

use std::fmt;

use anyhow::{bail, Context, Result};
use kith_client::Client;
use kith_protocol::ItemKey;
use serde::Serialize;

use super::endorse::Shown;
use crate::output::{date, stars};

#[derive(Debug, clap::Args)]
pub struct UnendorseArgs {
    /// The item, exactly as endorsed (see `kith endorsements`).
    pub item: String,
}

#[derive(Debug, Serialize)]
pub struct Endorsements {
    pub endorsements: Vec<Shown>,
}

impl fmt::Display for Endorsements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.endorsements.is_empty() {
            return f.write_str("No endorsements yet. Add one with `kith endorse ITEM`.");
        }
        for (n, e) in self.endorsements.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            let note = e
                .note
                .as_deref()
                .map(|n| format!("  \"{n}\""))
                .unwrap_or_default();
            write!(
                f,
                "{} × {}  {}  since {}{}",
                e.count,
                e.item,
                stars(e.rating),
                date(e.since),
                note
            )?;
        }
        Ok(())
    }
}

pub async fn list(client: &Client) -> Result<Endorsements> {
    let es = client.endorsements().await?;
    Ok(Endorsements {
        endorsements: es.iter().map(Shown::from).collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct Unendorsed {
    pub item: String,
    pub removed: bool,
}

impl fmt::Display for Unendorsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Removed {}", self.item)
    }
}

/// Remove an endorsement. Removing one that does not exist is an error for a person, and
/// `"removed": false` for a script (`json`).
pub async fn unendorse(client: &Client, args: &UnendorseArgs, json: bool) -> Result<Unendorsed> {
    let key =
        ItemKey::parse(&args.item).with_context(|| format!("invalid item {:?}", args.item))?;
    let removed = client.unendorse(key.clone()).await?;
    if !removed && !json {
        bail!("no endorsement of {key}");
    }
    Ok(Unendorsed {
        item: key.to_string(),
        removed,
    })
}
