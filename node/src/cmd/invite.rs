//! `kith invite` (make a one-time code), `kith invite list` and `kith invite revoke ID`.

use std::fmt;

use anyhow::{bail, Result};
use kith_client::Client;
use kith_protocol::app::InviteInfo;
use serde::Serialize;

use crate::output::date_time;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    /// Circle the new contact joins.
    #[arg(long)]
    pub circle: Option<String>,
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// The invites you made: id, circle, and whether each is open, used or expired (never
    /// the code itself).
    List,
    /// Revoke an unused invite: its code no longer works.
    Revoke {
        /// The start of its id, as `kith invite list` shows it (8 hex digits or more).
        id: String,
    },
}

/// A new invite. Text output is the code alone, so that scripts can capture it.
#[derive(Debug, Serialize)]
pub struct Created {
    pub code: String,
    pub expires_at: u64,
    pub circle: String,
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

/// An invite as `kith invite list` shows it: never its code.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub id: String,
    pub circle: String,
    pub created_at: u64,
    pub expires_at: u64,
    pub used_at: Option<u64>,
    pub used_by: Option<String>,
    /// "used by NAME", "expired or revoked" or "open until DATE".
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct Invites {
    pub invites: Vec<Listed>,
}

impl fmt::Display for Invites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.invites.is_empty() {
            return f.write_str("No invites yet. Make one with `kith invite`.");
        }
        for (n, i) in self.invites.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}  {:<12} made {}  {}",
                &i.id[..8],
                i.circle,
                date_time(i.created_at),
                i.state
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct Revoked {
    pub revoked: bool,
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Revoked: the code no longer works.")
    }
}

/// The output of `invite` and its subcommands.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output {
    Created(Created),
    List(Invites),
    Revoked(Revoked),
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Created(c) => c.fmt(f),
            Output::List(l) => l.fmt(f),
            Output::Revoked(r) => r.fmt(f),
        }
    }
}

/// Run it. Revoking nothing is an error for a person, and `{"revoked": false}` for a
/// script (`json`).
pub async fn run(client: &Client, args: &Args, json: bool) -> Result<Output> {
    match &args.action {
        None => {
            let inv = client.create_invite(args.circle.clone()).await?;
            Ok(Output::Created(Created {
                code: inv.code.0,
                expires_at: inv.expires_at,
                circle: inv.circle,
            }))
        }
        Some(Action::Revoke { id }) => {
            let revoked = client.revoke_invite(id).await?;
            if !revoked && !json {
                bail!("no open invite starts with {id:?} (see `kith invite list`)");
            }
            Ok(Output::Revoked(Revoked { revoked }))
        }
        Some(Action::List) => {
            let list = client.invites().await?;
            let contacts = client.contacts().await?;
            let now = kith_node::unix_now();
            let state = |i: &InviteInfo| match (i.used_at, i.used_by) {
                (Some(_), by) => format!(
                    "used by {}",
                    by.map(|b| contacts
                        .iter()
                        .find(|c| c.node_id == b)
                        .map(|c| c.name.clone())
                        .unwrap_or_else(|| b.short()))
                        .unwrap_or_default()
                ),
                (None, _) if i.expires_at <= now => "expired or revoked".into(),
                (None, _) => format!("open until {}", date_time(i.expires_at)),
            };
            let invites = list
                .iter()
                .map(|i| Listed {
                    id: i.id.iter().map(|b| format!("{b:02x}")).collect(),
                    circle: i.circle.clone(),
                    created_at: i.created_at,
                    expires_at: i.expires_at,
                    used_at: i.used_at,
                    used_by: i.used_by.map(|b| b.to_hex()),
                    state: state(i),
                })
                .collect();
            Ok(Output::List(Invites { invites }))
        }
    }
}
