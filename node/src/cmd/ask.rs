//! `kith ask ITEM`: ask every contact, and say what came back as people read it — names,
//! a count with its 90 % range, who did not count and why — or as JSON for scripts.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use kith_client::{count_phrase, Client};
use kith_protocol::aggregation::estimate::AggregateSum;
use kith_protocol::app::{AskResult, NamedEndorsement};
use kith_protocol::ItemKey;
use serde::Serialize;

use crate::output::{duplicate_names, named_line, plural};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The item or a pattern: isbn:..., gtin:..., wikidata:Q..., tag:path (a tag covers
    /// everything below it).
    pub item: String,
    /// Seconds to wait for the whole ask, more than 0 and at most 60.
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    pub timeout: f64,
    /// Noise at least this strict, 0.01 to 10 (smaller is more private); the effective ε is
    /// the strictest of this and every contact's setting.
    #[arg(long, allow_negative_numbers = true)]
    pub epsilon: Option<f64>,
    /// Also count units owned and the ratings given, from the same ε: every count, owners
    /// too, gets about three times noisier.
    #[arg(long)]
    pub detail: bool,
}

/// A named endorsement as `kith ask --json` prints it.
#[derive(Debug, Serialize)]
pub struct Named {
    pub name: String,
    pub item: String,
    pub count: u32,
    pub rating: Option<u8>,
    pub note: Option<String>,
    pub node: String,
    pub since: u64,
}

/// A contact that did not count, as `kith ask --json` prints it.
#[derive(Debug, Serialize)]
pub struct NotCounted {
    /// Its name.
    pub contact: String,
    pub node: String,
    /// `unreachable`, `timed-out`, `daily-budget`, `privacy-budget`, … (spec §10.3).
    pub reason: &'static str,
    pub round: u8,
}

/// What `kith ask` reports (the JSON fields are a public contract).
#[derive(Debug, Serialize)]
pub struct Asked {
    pub item: String,
    pub asked: u32,
    pub answered: u32,
    pub named: Vec<Named>,
    pub cohort: u32,
    pub survivors: u32,
    pub aggregate: Option<AggregateSum>,
    pub withheld: Option<String>,
    pub epsilon: Option<f64>,
    pub query_id: String,
    pub elapsed_ms: u32,
    pub declined: Vec<NotCounted>,
    /// The result as it came, for the text.
    #[serde(skip)]
    result: AskResult,
}

pub async fn run(client: &Client, args: &Args) -> Result<Asked> {
    let key =
        ItemKey::parse(&args.item).with_context(|| format!("invalid item {:?}", args.item))?;
    if !args.timeout.is_finite() || args.timeout <= 0.0 || args.timeout > 60.0 {
        bail!("--timeout must be between 0 and 60 seconds");
    }
    if let Some(e) = args.epsilon {
        if !e.is_finite() || !(0.01..=10.0).contains(&e) {
            bail!("--epsilon must be between 0.01 and 10");
        }
    }
    let mut query = kith_client::Query::new(key).timeout(Duration::from_secs_f64(args.timeout));
    query.epsilon = args.epsilon;
    query.detail = args.detail;
    let r = client.ask(query).await?;
    for n in &r.named {
        n.verify()
            .map_err(|e| anyhow!("the node returned an endorsement that does not verify: {e}"))?;
    }
    Ok(Asked {
        item: r.item.to_string(),
        asked: r.asked,
        answered: r.answered,
        named: r.named.iter().map(Named::from).collect(),
        cohort: r.cohort,
        survivors: r.survivors,
        aggregate: r.aggregate,
        withheld: r.withheld.clone(),
        epsilon: r.epsilon.map(|m| m as f64 / 1000.0),
        query_id: r.query_id.to_hex(),
        elapsed_ms: r.elapsed_ms,
        declined: r
            .declined
            .iter()
            .map(|d| NotCounted {
                contact: d.name.clone(),
                node: d.contact.to_hex(),
                reason: d.reason.as_str(),
                round: d.round,
            })
            .collect(),
        result: r,
    })
}

impl From<&NamedEndorsement> for Named {
    fn from(n: &NamedEndorsement) -> Self {
        Named {
            name: n.name.clone(),
            item: n.endorsement.item.to_string(),
            count: n.endorsement.count,
            rating: n.endorsement.rating,
            note: n.endorsement.note.clone(),
            node: n.node.to_hex(),
            since: n.endorsement.since,
        }
    }
}

impl fmt::Display for Asked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.result;
        writeln!(
            f,
            "Asked {} about {}; {} answered in {} ms.",
            plural(r.asked, "contact"),
            r.item,
            r.answered,
            r.elapsed_ms
        )?;
        match (&r.aggregate, &r.withheld) {
            (Some(a), _) => {
                let phrase = count_phrase(a, r.survivors, self.epsilon.is_none(), "contacts");
                match self.epsilon {
                    Some(e) => {
                        writeln!(
                            f,
                            "Counted privately: {phrase} own one (90 % range; ε = {e})."
                        )?;
                        if a.owners_low == 0 && a.owners_high >= r.survivors {
                            writeln!(
                                f,
                                "  Too much noise to say more: each contact adds noise for itself unless it knows \
                                 others in the count (see the README, \"What `count` protects\")."
                            )?;
                        }
                    }
                    None => writeln!(f, "Counted privately: {phrase} own one (exact).")?,
                }
                if r.survivors < r.cohort {
                    writeln!(
                        f,
                        "  counted over the {} of the {} who took part; the others dropped out",
                        r.survivors, r.cohort
                    )?;
                }
                if let (Some(units), Some(ratings)) = (a.units, a.ratings) {
                    writeln!(
                        f,
                        "  about {units} units; ratings 1–5 stars: {}",
                        ratings.map(|r| r.to_string()).join(" / ")
                    )?;
                }
            }
            (None, Some(w)) => {
                writeln!(f, "Aggregate withheld: {w}.")?;
                if w.contains("min-cohort") {
                    writeln!(
                        f,
                        "  For a small test network: kith settings set min-cohort 2"
                    )?;
                }
            }
            (None, None) => {}
        }
        if !r.declined.is_empty() {
            writeln!(f, "Not counted:")?;
            for d in &r.declined {
                let who = if d.name.is_empty() {
                    d.contact.short()
                } else {
                    d.name.clone()
                };
                writeln!(f, "  {who}: {}", d.reason.explain())?;
            }
        }
        if r.named.is_empty() {
            write!(
                f,
                "Nobody who answered shares an endorsement of it by name."
            )?;
        } else {
            write!(f, "named: {}", plural(r.named.len() as u32, "endorsement"))?;
        }
        let twins = duplicate_names(r.named.iter().map(|n| (&n.name, n.node)));
        for n in &r.named {
            if twins.contains(&n.name) {
                write!(f, "\n  {} ({})", named_line(n), n.node.short())?;
            } else {
                write!(f, "\n  {}", named_line(n))?;
            }
        }
        Ok(())
    }
}
