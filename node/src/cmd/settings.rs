//! `kith settings list` and `kith settings set KEY VALUE`: the node's settings (spec §9.10)
//! and the addresses it advertises to contacts (spec §8.6).

use std::fmt;

use anyhow::Result;
use kith_client::Client;
use kith_protocol::app::CardUpdateReport;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::output::and_list;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Change a setting.
    Set {
        /// min-cohort (2 to 10000), epsilon (0.01 to 10, or off), asks-per-day (0 to
        /// 100000), epsilon-per-day (0 to 1000), or advertise (1 to 4 HOST:PORT,
        /// comma-separated: where contacts reach you; they are sent your new card).
        key: String,
        /// The new value.
        value: String,
    },
    /// Show every setting.
    List,
}

/// Every setting with its value, in the node's order; JSON is one object.
#[derive(Debug)]
pub struct Settings(pub Vec<(String, String)>);

impl Serialize for Settings {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{k:<16} {v}")?;
        }
        Ok(())
    }
}

/// What `kith settings set advertise` did: the new addresses and who has the new card.
#[derive(Debug, Serialize)]
pub struct Advertised {
    pub addresses: Vec<String>,
    /// Names of the contacts that acknowledged the new card.
    pub delivered: Vec<String>,
    /// Contacts that did not, and why.
    pub unreached: Vec<Unreached>,
}

#[derive(Debug, Serialize)]
pub struct Unreached {
    /// Its name.
    pub name: String,
    /// Its node id, in hex.
    pub node: String,
    pub reason: String,
}

impl From<CardUpdateReport> for Advertised {
    fn from(r: CardUpdateReport) -> Self {
        Advertised {
            addresses: r.addresses,
            delivered: r.delivered,
            unreached: r
                .unreached
                .into_iter()
                .map(|u| Unreached {
                    name: u.name,
                    node: u.contact.to_hex(),
                    reason: u.reason,
                })
                .collect(),
        }
    }
}

impl fmt::Display for Advertised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self;
        writeln!(f, "{:<16} {}", "advertise", r.addresses.join(", "))?;
        write!(f, "New invites carry {}.", r.addresses.join(", "))?;
        if r.delivered.is_empty() && r.unreached.is_empty() {
            return write!(f, " Your contacts already have this card.");
        }
        if !r.delivered.is_empty() {
            write!(f, " Your new card reached {}.", and_list(&r.delivered))?;
        }
        for u in &r.unreached {
            write!(f, "\n{} does not have it yet ({})", u.name, u.reason)?;
        }
        if !r.unreached.is_empty() {
            write!(
                f,
                "\nYour node tries the others again every 10 minutes while it runs."
            )?;
        }
        Ok(())
    }
}

/// The output of either subcommand.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output {
    Settings(Settings),
    Advertised(Advertised),
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Settings(s) => s.fmt(f),
            Output::Advertised(a) => a.fmt(f),
        }
    }
}

pub async fn run(client: &Client, command: &Command) -> Result<Output> {
    match command {
        Command::List => Ok(Output::Settings(Settings(client.settings().await?))),
        Command::Set { key, value } if key == "advertise" => {
            let addresses: Vec<String> = value.split(',').map(|a| a.trim().to_string()).collect();
            Ok(Output::Advertised(
                client.set_advertise(&addresses).await?.into(),
            ))
        }
        Command::Set { key, value } => {
            let all = client.set_setting(key, value).await?;
            if key == "epsilon" && value.trim().eq_ignore_ascii_case("off") {
                super::warn(
                    "with epsilon off your node adds no noise: whoever asks learns your count \
                     answers exactly, unless another member requires noise",
                );
            }
            Ok(Output::Settings(Settings(all)))
        }
    }
}
