//! `kith accept CODE`: become a contact of whoever made the invite.

use std::fmt;
use std::io::Read;

use anyhow::{Context, Result};
use kith_client::Client;
use serde::Serialize;

use super::contacts::Contact;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The code your contact's `kith invite` printed (KITH1…), or - to read it from
    /// standard input.
    pub code: String,
    /// Circle the inviter joins.
    #[arg(long)]
    pub circle: Option<String>,
}

/// The new contact.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Accepted(pub Contact);

impl fmt::Display for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.0;
        write!(
            f,
            "{} is now a contact (circle {}, node {})",
            c.name, c.circle, c.short
        )
    }
}

pub async fn run(client: &Client, args: &Args) -> Result<Accepted> {
    let code = if args.code == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(8192)
            .read_to_string(&mut s)
            .context("reading the code from stdin")?;
        s
    } else {
        args.code.clone()
    };
    let c = client.accept_invite(code, args.circle.clone()).await?;
    let others = client.contacts().await?;
    if others
        .iter()
        .any(|o| o.name == c.name && o.node_id != c.node_id)
    {
        super::warn(&format!(
            "you now have more than one contact named {:?}; kith shows them with their node ids \
             ({} is the new one)",
            c.name,
            c.node_id.short()
        ));
    }
    Ok(Accepted(Contact::from(&c)))
}
