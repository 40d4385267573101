//! `kith updates [QUERY_ID]`: named endorsements contacts approved after an ask finished
//! (spec §8.5.3), each verified again here before it is shown.

use std::fmt;

use anyhow::{anyhow, Result};
use kith_client::Client;
use kith_protocol::QueryId;
use serde::Serialize;

use super::ask::Named;
use crate::output::{date_time, named_line};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this ask (the query_id printed by `kith ask --json`).
    pub query_id: Option<String>,
}

/// A late answer: the endorsement as `kith ask` shows one, with its ask and arrival.
#[derive(Debug, Serialize)]
pub struct Update {
    #[serde(flatten)]
    pub named: Named,
    pub query_id: String,
    pub received_at: u64,
    #[serde(skip)]
    line: String,
}

#[derive(Debug, Serialize)]
pub struct Updates {
    pub updates: Vec<Update>,
}

impl fmt::Display for Updates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.updates.is_empty() {
            return f.write_str("No late answers.");
        }
        for (n, u) in self.updates.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}  {}  (ask {})",
                date_time(u.received_at),
                u.line,
                u.query_id
            )?;
        }
        Ok(())
    }
}

fn parse_query_id(text: &str) -> Result<QueryId> {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<_>>()
        .filter(|b: &Vec<u8>| b.len() == 16)
        .ok_or_else(|| anyhow!("query id must be 32 hex digits"))?;
    Ok(QueryId(bytes.try_into().expect("16 bytes")))
}

pub async fn run(client: &Client, args: &Args) -> Result<Updates> {
    let qid = args.query_id.as_deref().map(parse_query_id).transpose()?;
    let updates = client.updates(qid).await?;
    let mut shown = Vec::with_capacity(updates.len());
    for u in &updates {
        u.named
            .verify()
            .map_err(|e| anyhow!("an update does not verify: {e}"))?;
        shown.push(Update {
            named: Named::from(&u.named),
            query_id: u.query_id.to_hex(),
            received_at: u.received_at,
            line: named_line(&u.named),
        });
    }
    Ok(Updates { updates: shown })
}
