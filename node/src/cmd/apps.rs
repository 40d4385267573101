//! `kith apps pair|list|revoke`: apps paired with this node and what each may do (spec
//! §10.5).

use std::fmt;

use anyhow::Result;
use kith_client::{Client, ClientError};
use kith_protocol::app::{AppErrorCode, AppInfo, AppScope};
use kith_protocol::ItemPattern;
use serde::Serialize;

use crate::output::{date, date_time};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a one-time pairing code (valid 10 minutes) for a new app.
    Pair(PairArgs),
    /// Show each app, its scope, its use and when it was last used.
    List,
    /// Cut an app off at once (its open connections are closed).
    Revoke {
        /// The app's name, as `kith apps list` shows it.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct PairArgs {
    /// The app's name, as it will appear in the audit log.
    #[arg(long)]
    pub name: String,
    /// What the app may ask about: ask:PATTERN, e.g. ask:tag:vehicle/* or ask:isbn:*
    /// (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = parse_scope)]
    pub scopes: Vec<ItemPattern>,
    /// Most asks per 24 hours (default 10: below the 20 asks a day each contact allows
    /// you by default, so an app cannot use up your own budget).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        conflicts_with = "no_daily_limit"
    )]
    pub daily_limit: u32,
    /// No daily limit: the app may ask as often as your contacts' budgets allow.
    #[arg(long)]
    pub no_daily_limit: bool,
    /// The app receives named endorsements.
    #[arg(long, conflicts_with = "counts_only")]
    pub named: bool,
    /// The app receives counts only, never names (the default).
    #[arg(long)]
    pub counts_only: bool,
}

fn parse_scope(s: &str) -> std::result::Result<ItemPattern, String> {
    let pattern = s
        .strip_prefix("ask:")
        .ok_or_else(|| format!("{s:?}: a scope is ask:PATTERN, e.g. ask:tag:vehicle/*"))?;
    ItemPattern::parse(pattern).map_err(|e| format!("{s:?}: {e}"))
}

/// "ask:tag:vehicle/* (counts only, 10 asks a day)".
fn scope_text(scope: &AppScope) -> String {
    let items: Vec<String> = scope.ask.iter().map(|p| format!("ask:{p}")).collect();
    let names = if scope.named { "named" } else { "counts only" };
    let limit = scope
        .daily_limit
        .map(|l| format!(", {l} asks a day"))
        .unwrap_or_default();
    format!("{} ({names}{limit})", items.join(" "))
}

/// A new pairing code. Text output is the code alone on standard output, so that scripts
/// can capture it; the explanation goes to standard error.
#[derive(Debug, Serialize)]
pub struct Pairing {
    pub name: String,
    pub code: String,
    pub expires_at: u64,
}

impl fmt::Display for Pairing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

#[derive(Debug, Serialize)]
pub struct Scope {
    pub ask: Vec<String>,
    pub named: bool,
    pub daily_limit: Option<u32>,
}

/// A paired app.
#[derive(Debug, Serialize)]
pub struct App {
    pub name: String,
    pub key: String,
    pub scope: Scope,
    pub paired_at: u64,
    pub last_used_at: Option<u64>,
    pub asks_24h: u32,
    pub revoked_at: Option<u64>,
    #[serde(skip)]
    scope_text: String,
}

impl From<&AppInfo> for App {
    fn from(a: &AppInfo) -> Self {
        App {
            name: a.name.clone(),
            key: a.key.to_hex(),
            scope: Scope {
                ask: a.scope.ask.iter().map(|p| p.to_string()).collect(),
                named: a.scope.named,
                daily_limit: a.scope.daily_limit,
            },
            paired_at: a.paired_at,
            last_used_at: a.last_used_at,
            asks_24h: a.asks_24h,
            revoked_at: a.revoked_at,
            scope_text: scope_text(&a.scope),
        }
    }
}

impl fmt::Display for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.revoked_at {
            Some(t) => format!("revoked {}", date(t)),
            None => format!(
                "{} asks in 24 h, last used {}",
                self.asks_24h,
                self.last_used_at
                    .map(date_time)
                    .unwrap_or_else(|| "never".into())
            ),
        };
        write!(f, "{:<16} {}  {state}", self.name, self.scope_text)
    }
}

/// A pairing code not yet used (never the code).
#[derive(Debug, Serialize)]
pub struct Waiting {
    pub name: String,
    pub scope: String,
    pub created_at: u64,
    pub expires_at: u64,
}

#[derive(Debug, Serialize)]
pub struct Apps {
    pub apps: Vec<App>,
    pub pairing_codes: Vec<Waiting>,
}

impl fmt::Display for Apps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.apps.is_empty() && self.pairing_codes.is_empty() {
            return f.write_str("No apps are paired. Pair one with `kith apps pair`.");
        }
        let mut lines: Vec<String> = self.apps.iter().map(|a| a.to_string()).collect();
        lines.extend(self.pairing_codes.iter().map(|p| {
            format!(
                "{:<16} pairing code not yet used (until {}); {}; cancel: kith apps revoke {}",
                p.name,
                date_time(p.expires_at),
                p.scope,
                p.name
            )
        }));
        f.write_str(&lines.join("\n"))
    }
}

/// What `revoke` did: an app cut off, or a pairing code cancelled.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Revoked {
    App(App),
    Pairing { cancelled_pairing: String },
}

impl fmt::Display for Revoked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Revoked::App(a) => write!(f, "Revoked {}; its connections are closed.", a.name),
            Revoked::Pairing { cancelled_pairing } => write!(
                f,
                "Cancelled the pairing code for {cancelled_pairing}: it no longer works."
            ),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output {
    Pairing(Pairing),
    List(Apps),
    Revoked(Revoked),
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Pairing(p) => p.fmt(f),
            Output::List(l) => l.fmt(f),
            Output::Revoked(r) => r.fmt(f),
        }
    }
}

/// Run it; `json` says whether the output is for a script (the pairing code's explanation
/// is then not printed).
pub async fn run(client: &Client, command: &Command, json: bool) -> Result<Output> {
    Ok(match command {
        Command::Pair(p) => {
            let scope = AppScope {
                ask: p.scopes.clone(),
                named: p.named,
                daily_limit: (!p.no_daily_limit).then_some(p.daily_limit),
            };
            let created = client.create_pairing(&p.name, scope).await?;
            if !json {
                eprintln!(
                    "Give this code to {} once; it pairs until {}.",
                    created.name,
                    date_time(created.expires_at)
                );
            }
            Output::Pairing(Pairing {
                name: created.name,
                code: created.code.0,
                expires_at: created.expires_at,
            })
        }
        Command::List => {
            let apps = client.apps().await?;
            let waiting = client.pairings().await?;
            Output::List(Apps {
                apps: apps.iter().map(App::from).collect(),
                pairing_codes: waiting
                    .iter()
                    .map(|p| Waiting {
                        name: p.name.clone(),
                        scope: scope_text(&p.scope),
                        created_at: p.created_at,
                        expires_at: p.expires_at,
                    })
                    .collect(),
            })
        }
        // A paired app, or else a pairing code not yet used.
        Command::Revoke { name } => match client.revoke_app(name).await {
            Ok(a) => Output::Revoked(Revoked::App(App::from(&a))),
            Err(ClientError::Node {
                code: AppErrorCode::NotFound,
                ..
            }) if client.cancel_pairing(name).await? => Output::Revoked(Revoked::Pairing {
                cancelled_pairing: name.clone(),
            }),
            Err(e) => return Err(e.into()),
        },
    })
}
