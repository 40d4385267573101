//! Command-line parsing and the commands. Everything that needs the running daemon goes
//! through kith-client, exactly as any app would.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use kith_client::{Client, ClientError};
use kith_node::{DataDir, Node};

use crate::cmd;
use kith_protocol::app::{AppErrorCode, AppInfo, AppScope, PolicyEntry, SubjectRef};
use kith_protocol::{ItemKey, ItemPattern, Share, Subject};
use serde_json::json;

use crate::output::{date, date_time, duplicate_names, named_json, named_line, stars};

#[derive(Debug, Parser)]
#[command(
    name = "kith",
    version,
    about = "kith: ask your contacts, privately, who owns what"
)]
struct Cli {
    /// The node's data directory.
    #[arg(long, global = true, env = "KITH_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new node in the data directory.
    Init {
        /// Your display name, as your contacts will see it.
        #[arg(long)]
        name: String,
        /// UDP address to listen on, e.g. 0.0.0.0:7400.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// Address contacts should use to reach you (repeatable); default: the listen address.
        #[arg(long, value_name = "HOST:PORT")]
        advertise: Vec<String>,
        /// Where the owner and apps reach the node's API; default: 127.0.0.1 on the port
        /// after --listen's (a port chosen at the first start if --listen's is 0).
        #[arg(long, value_name = "ADDR")]
        api: Option<SocketAddr>,
    },
    /// Run the node in the foreground until SIGINT or SIGTERM.
    Run {
        /// Listen here instead of the address given at init.
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Serve the owner/app API here instead of the address given at init.
        #[arg(long, value_name = "ADDR")]
        api: Option<SocketAddr>,
        /// Start the node in the background and return once it answers; its log goes to
        /// kith.log in the data directory. Stop it with `kith stop`.
        #[arg(long)]
        background: bool,
    },
    /// Show whether the node is running; exits 0 only if it answers.
    Status,
    /// Stop the node running on this data directory, and wait until it has.
    Stop,
    /// Make a one-time invite code (valid 7 days) and print only the code; `invite list`,
    /// `invite revoke ID`.
    #[command(args_conflicts_with_subcommands = true)]
    Invite {
        /// Circle the new contact joins.
        #[arg(long)]
        circle: Option<String>,
        #[command(subcommand)]
        action: Option<InviteCommand>,
    },
    /// Accept an invite code ("-" reads it from standard input).
    Accept {
        /// The code your contact's `kith invite` printed (KITH1…), or - to read it from
        /// standard input.
        code: String,
        /// Circle the inviter joins.
        #[arg(long)]
        circle: Option<String>,
    },
    /// List your contacts; `contacts remove NAME`, `contacts rename NAME NEW`.
    Contacts {
        #[command(subcommand)]
        action: Option<ContactsCommand>,
    },
    /// Record that you own (or recommend) an item; on one you endorse already, change only
    /// what you give.
    Endorse(cmd::endorse::Args),
    /// List your endorsements.
    Endorsements,
    /// Remove an endorsement.
    Unendorse {
        /// The item, exactly as endorsed (see `kith endorsements`).
        item: String,
    },
    /// Consent rules: who may learn what.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Ask your contacts whether they own an item.
    Ask(cmd::ask::Args),
    /// Node settings: min-cohort, epsilon, asks-per-day, epsilon-per-day, advertise.
    #[command(subcommand)]
    Settings(cmd::settings::Command),
    /// Requests waiting for your approval (items whose consent is `ask`), repeats grouped.
    Pending(cmd::pending::ListArgs),
    /// Approve a pending request (or all from one contact): the asker receives your named
    /// endorsement.
    Approve(cmd::pending::DecideArgs),
    /// Deny a pending request (or all from one contact): nothing is sent.
    Deny(cmd::pending::DecideArgs),
    /// Named endorsements your contacts approved after your ask finished.
    Updates {
        /// Only this ask (the query_id printed by `kith ask --json`).
        query_id: Option<String>,
    },
    /// Show the audit log: who asked what and what was disclosed.
    Audit {
        /// Entries to show, newest first, 1 to 1000.
        #[arg(long, default_value_t = 50, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        /// Only entries older than this entry id (the next page: the id the last page
        /// ends with, as `kith audit` prints it).
        #[arg(long, value_name = "ID")]
        before: Option<u64>,
        /// Only entries about this contact (name or the start of its node id).
        #[arg(long, value_name = "NAME")]
        contact: Option<String>,
        /// Only entries about this item, or anything below it (tag:vehicle covers
        /// tag:vehicle/subaru).
        #[arg(long)]
        item: Option<String>,
    },
    /// Apps paired with this node: pair, list, revoke.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Run a throwaway federation on 127.0.0.1 and ask it a question.
    Demo {
        /// Number of nodes, including the asker: 4 to 200.
        #[arg(long, default_value_t = 12, allow_negative_numbers = true,
              value_parser = clap::value_parser!(u16).range(4..=200))]
        nodes: u16,
    },
    /// Print a completion script for your shell.
    ///
    /// For example: `kith completions bash > ~/.local/share/bash-completion/completions/kith`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// The invites you made: id, circle, and whether each is open, used or expired (never
    /// the code itself).
    List,
    /// Revoke an unused invite: its code no longer works.
    Revoke {
        /// The start of its id, as `kith invite list` shows it (8 hex digits or more).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Forget a contact: it can no longer ask you anything, you no longer ask it, and your
    /// rules naming it go. The audit log keeps what happened.
    Remove {
        /// The contact's name, or the start of its node id (8 hex digits or more).
        contact: String,
    },
    /// Call a contact by another name (in your node only; it keeps its own).
    Rename {
        /// The contact's name, or the start of its node id (8 hex digits or more).
        contact: String,
        /// Its new name here.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum AppsCommand {
    /// Print a one-time pairing code (valid 10 minutes) for a new app.
    Pair(AppsPair),
    /// Show each app, its scope, its use and when it was last used.
    List,
    /// Cut an app off at once (its open connections are closed).
    Revoke {
        /// The app's name, as `kith apps list` shows it.
        name: String,
    },
}

#[derive(Debug, Args)]
struct AppsPair {
    /// The app's name, as it will appear in the audit log.
    #[arg(long)]
    name: String,
    /// What the app may ask about: ask:PATTERN, e.g. ask:tag:vehicle/* or ask:isbn:*
    /// (repeat for several).
    #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = parse_scope)]
    scopes: Vec<ItemPattern>,
    /// Most asks per 24 hours (default 10: below the 20 asks a day each contact allows
    /// you by default, so an app cannot use up your own budget).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10,
        conflicts_with = "no_daily_limit"
    )]
    daily_limit: u32,
    /// No daily limit: the app may ask as often as your contacts' budgets allow.
    #[arg(long)]
    no_daily_limit: bool,
    /// The app receives named endorsements.
    #[arg(long, conflicts_with = "counts_only")]
    named: bool,
    /// The app receives counts only, never names (the default).
    #[arg(long)]
    counts_only: bool,
}

fn parse_scope(s: &str) -> std::result::Result<ItemPattern, String> {
    let pattern = s
        .strip_prefix("ask:")
        .ok_or_else(|| format!("{s:?}: a scope is ask:PATTERN, e.g. ask:tag:vehicle/*"))?;
    ItemPattern::parse(pattern).map_err(|e| format!("{s:?}: {e}"))
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Add or replace a rule.
    Set(PolicySet),
    /// Remove the rule for exactly this subject and pattern.
    Remove(PolicyRemove),
    /// List the rules.
    List,
}

#[derive(Debug, Args)]
struct PolicyRemove {
    /// The rule's circle.
    #[arg(long, conflicts_with = "contact", required_unless_present = "contact")]
    circle: Option<String>,
    /// The rule's contact (name or node id prefix).
    #[arg(long)]
    contact: Option<String>,
    /// The rule's item pattern, exactly as `kith policy list` shows it.
    #[arg(long)]
    items: String,
}

#[derive(Debug, Args)]
struct PolicySet {
    /// The rule applies to everyone in this circle.
    #[arg(long, conflicts_with = "contact", required_unless_present = "contact")]
    circle: Option<String>,
    /// The rule applies to this contact (name or node id prefix).
    #[arg(long)]
    contact: Option<String>,
    /// Items: an exact key, tag:path/*, scheme:*, or *.
    #[arg(long, value_name = "PATTERN")]
    items: String,
    /// none | count | name | ask
    #[arg(long, value_parser = parse_share)]
    share: Share,
}

fn parse_share(s: &str) -> std::result::Result<Share, String> {
    Share::parse(s).ok_or_else(|| format!("{s:?} is not one of none, count, name, ask"))
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `kith` alone, or `kith policy` alone: the help, but it is not a success.
            eprint!("{}", e.render());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("kith: {}", usage_error(&e, std::env::args().skip(1)));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kith: cannot start async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Writing to a closed pipe (`kith audit | head`) ends the process quietly, as it does
    // for other command-line tools, instead of a panic in `println!`.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let outcome = runtime.block_on(async {
        let outcome = run(cli).await;
        // Close every connection on every path, errors included (see `connect`).
        let closers = std::mem::take(&mut *OPEN.lock().unwrap_or_else(|p| p.into_inner()));
        for c in closers {
            c.close().await;
        }
        outcome
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<cmd::Reported>() => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kith: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// One line for a command-line mistake: what is wrong, by name, a suggestion if clap has
/// one, and where the help for that command is.
fn usage_error(e: &clap::Error, args: impl Iterator<Item = String>) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        _ => Vec::new(),
    };
    let mut text = match e.kind() {
        ErrorKind::MissingRequiredArgument => {
            let missing = strings(ContextKind::InvalidArg);
            let verb = if missing.len() == 1 { "is" } else { "are" };
            format!("{} {verb} required", missing.join(" and "))
        }
        _ => {
            // clap's own first line, without its "error: " and usage block.
            let rendered = e.render().to_string();
            rendered
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string()
        }
    };
    for (kind, what) in [
        (ContextKind::SuggestedArg, "did you mean"),
        (ContextKind::SuggestedSubcommand, "did you mean"),
    ] {
        let suggested = strings(kind);
        if !suggested.is_empty() {
            text.push_str(&format!("; {what} {}?", suggested.join(" or ")));
        }
    }
    // The help of the (sub)command the mistake is in.
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut path = vec!["kith".to_string()];
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        if arg == "--data-dir" {
            args.next(); // its value
            continue;
        }
        match command.find_subcommand(&arg) {
            Some(sub) => {
                path.push(arg.clone());
                command = sub.clone();
            }
            None if arg.starts_with('-') => continue,
            None => break,
        }
    }
    format!("{text}; see `{} --help`", path.join(" "))
}

/// A rule's subject and pattern as `policy set` and `policy remove` take them.
fn rule_target(
    circle: &Option<String>,
    contact: &Option<String>,
    items: &str,
) -> Result<(SubjectRef, ItemPattern)> {
    let subject = match (circle, contact) {
        (Some(c), _) => SubjectRef::Circle(c.clone()),
        (None, Some(c)) => SubjectRef::Contact(c.clone()),
        (None, None) => bail!("give --circle C or --contact NAME"),
    };
    let items = ItemPattern::parse(items).with_context(|| format!("invalid pattern {items:?}"))?;
    Ok((subject, items))
}

/// A warning: something the owner typed that works but probably does not do what they
/// meant. On standard error, so that `--json` output stays clean.
fn warn(text: &str) {
    cmd::warn(text)
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn data_dir(cli: &Cli) -> Result<DataDir> {
    match &cli.data_dir {
        Some(d) => Ok(DataDir::new(d)),
        None => dirs::data_dir()
            .map(|d| DataDir::new(d.join("kith")))
            .ok_or_else(|| anyhow!("no platform data directory; pass --data-dir DIR")),
    }
}

/// [`connect`] for the commands in `cmd/`.
struct Connector<'a>(&'a Cli);

impl cmd::status::AsyncConnect for Connector<'_> {
    async fn connect(self) -> Result<Client> {
        connect(self.0).await
    }
}

/// Connections this process opened, closed when it ends whatever happened.
static OPEN: std::sync::Mutex<Vec<kith_client::Closer>> = std::sync::Mutex::new(Vec::new());

async fn connect(cli: &Cli) -> Result<Client> {
    let client = connect_once(cli).await?;
    OPEN.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(client.closer());
    Ok(client)
}

async fn connect_once(cli: &Cli) -> Result<Client> {
    let dir = data_dir(cli)?;
    let cred = dir.load_owner_credential()?;
    // A running daemon always has api.addr (removed at clean shutdown): answer at once
    // instead of waiting out the QUIC handshake timeout.
    if !dir.api_addr_file().exists() {
        bail!(
            "the node is not running; start it with `kith --data-dir {} run`",
            dir.root.display()
        );
    }
    Client::connect_with(&cred).await.map_err(|e| match e {
        ClientError::NodeUnreachable { addr, .. } => {
            anyhow!("the node is not running (no answer at {addr}); start it with `kith run`")
        }
        other => other.into(),
    })
}

fn item(text: &str) -> Result<ItemKey> {
    ItemKey::parse(text).with_context(|| format!("invalid item {text:?}"))
}

fn print_json(v: serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
}

async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Init {
            name,
            listen,
            advertise,
            api,
        } => {
            let dir = data_dir(&cli)?;
            let r =
                kith_node::data_dir::init_with_api(&dir, name, *listen, advertise.clone(), *api)?;
            if cli.json {
                print_json(json!({
                    "node_id": r.node_id.to_hex(), "name": r.name, "listen": r.listen.to_string(),
                    "advertise": r.advertise, "api": r.api.to_string(),
                    "data_dir": r.data_dir.display().to_string(),
                }));
            } else {
                println!(
                    "Created node {:?} ({}) in {}",
                    r.name,
                    r.node_id.short(),
                    r.data_dir.display()
                );
                println!(
                    "  invites will tell contacts to reach it at {}",
                    r.advertise.join(", ")
                );
                if r.api.port() == 0 {
                    println!(
                        "  you and your apps reach it on {} (a port chosen at its first start)",
                        r.api.ip()
                    );
                } else {
                    println!(
                        "  you and your apps reach it at {} (this machine only)",
                        r.api
                    );
                }
                println!(
                    "Start it with: kith --data-dir {} run",
                    r.data_dir.display()
                );
            }
        }
        Command::Run {
            listen,
            api,
            background: true,
        } => {
            let started = cmd::background::run(&data_dir(&cli)?, *listen, *api).await?;
            cmd::emit(cli.json, &started);
        }
        Command::Run { listen, api, .. } => run_daemon(&cli, *listen, *api).await?,
        Command::Status => {
            let status = cmd::status::run(&data_dir(&cli)?, Connector(&cli)).await?;
            cmd::emit(cli.json, &status);
            if !status.running {
                return Err(cmd::Reported.into());
            }
        }
        Command::Stop => {
            let stopped = cmd::stop::run(&data_dir(&cli)?).await?;
            cmd::emit(cli.json, &stopped);
        }
        Command::Invite {
            action: Some(InviteCommand::List),
            ..
        } => {
            let client = connect(&cli).await?;
            let list = client.invites().await?;
            let contacts = client.contacts().await?;
            client.close().await;
            let now = kith_node::unix_now();
            let state = |i: &kith_protocol::app::InviteInfo| match (i.used_at, i.used_by) {
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
            let hex = |id: &[u8; 16]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
            if cli.json {
                print_json(json!({"invites": list.iter().map(|i| json!({
                    "id": hex(&i.id), "circle": i.circle, "created_at": i.created_at,
                    "expires_at": i.expires_at, "used_at": i.used_at,
                    "used_by": i.used_by.map(|b| b.to_hex()), "state": state(i),
                })).collect::<Vec<_>>()}));
            } else if list.is_empty() {
                println!("No invites yet. Make one with `kith invite`.");
            } else {
                for i in &list {
                    println!(
                        "{}  {:<12} made {}  {}",
                        &hex(&i.id)[..8],
                        i.circle,
                        date_time(i.created_at),
                        state(i)
                    );
                }
            }
        }
        Command::Invite {
            action: Some(InviteCommand::Revoke { id }),
            ..
        } => {
            let client = connect(&cli).await?;
            let revoked = client.revoke_invite(id).await?;
            client.close().await;
            if cli.json {
                print_json(json!({"revoked": revoked}));
            } else if revoked {
                println!("Revoked: the code no longer works.");
            } else {
                bail!("no open invite starts with {id:?} (see `kith invite list`)");
            }
        }
        Command::Invite {
            circle,
            action: None,
        } => {
            let client = connect(&cli).await?;
            let inv = client.create_invite(circle.clone()).await?;
            if cli.json {
                print_json(
                    json!({"code": inv.code.0, "expires_at": inv.expires_at, "circle": inv.circle}),
                );
            } else {
                println!("{}", inv.code.0);
            }
            client.close().await;
        }
        Command::Accept { code, circle } => {
            let code = if code == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .take(8192)
                    .read_to_string(&mut s)
                    .context("reading the code from stdin")?;
                s
            } else {
                code.clone()
            };
            let client = connect(&cli).await?;
            let c = client.accept_invite(code, circle.clone()).await?;
            if cli.json {
                print_json(contact_json(&c));
            } else {
                println!(
                    "{} is now a contact (circle {}, node {})",
                    c.name,
                    c.circle,
                    c.node_id.short()
                );
            }
            let others = client.contacts().await?;
            if others
                .iter()
                .any(|o| o.name == c.name && o.node_id != c.node_id)
            {
                warn(&format!(
                    "you now have more than one contact named {:?}; kith shows them with their \
                     node ids ({} is the new one)",
                    c.name,
                    c.node_id.short()
                ));
            }
            client.close().await;
        }
        Command::Contacts {
            action: Some(ContactsCommand::Remove { contact }),
        } => {
            let client = connect(&cli).await?;
            let c = client.remove_contact(contact).await?;
            if cli.json {
                print_json(contact_json(&c));
            } else {
                println!(
                    "{} ({}) is no longer a contact; rules naming it were removed.",
                    c.name,
                    c.node_id.short()
                );
            }
            client.close().await;
        }
        Command::Contacts {
            action: Some(ContactsCommand::Rename { contact, name }),
        } => {
            let client = connect(&cli).await?;
            let c = client.rename_contact(contact, name).await?;
            if cli.json {
                print_json(contact_json(&c));
            } else {
                println!("{contact} is now called {} ({})", c.name, c.node_id.short());
            }
            client.close().await;
        }
        Command::Contacts { action: None } => {
            let client = connect(&cli).await?;
            let cs = client.contacts().await?;
            if cli.json {
                print_json(json!({"contacts": cs.iter().map(contact_json).collect::<Vec<_>>()}));
            } else if cs.is_empty() {
                println!("No contacts yet. Invite someone with `kith invite`.");
            } else {
                for name in duplicate_names(cs.iter().map(|c| (&c.name, c.node_id))) {
                    warn(&format!(
                        "more than one contact is named {name:?}: tell them apart by NODE"
                    ));
                }
                println!("{:<24} {:<12} {:<10} SINCE", "NAME", "CIRCLE", "NODE");
                for c in &cs {
                    println!(
                        "{:<24} {:<12} {:<10} {}",
                        c.name,
                        c.circle,
                        c.node_id.short(),
                        date(c.added_at)
                    );
                }
            }
            client.close().await;
        }
        Command::Endorse(args) => {
            let client = connect(&cli).await?;
            let endorsed = cmd::endorse::run(&client, args).await?;
            cmd::emit(cli.json, &endorsed);
            client.close().await;
        }
        Command::Endorsements => {
            let client = connect(&cli).await?;
            let es = client.endorsements().await?;
            if cli.json {
                print_json(
                    json!({"endorsements": es.iter().map(endorsement_json).collect::<Vec<_>>()}),
                );
            } else if es.is_empty() {
                println!("No endorsements yet. Add one with `kith endorse ITEM`.");
            } else {
                for e in &es {
                    let note = e
                        .note
                        .as_deref()
                        .map(|n| format!("  \"{n}\""))
                        .unwrap_or_default();
                    println!(
                        "{} × {}  {}  since {}{}",
                        e.count,
                        e.item,
                        stars(e.rating),
                        date(e.since),
                        note
                    );
                }
            }
            client.close().await;
        }
        Command::Unendorse { item: text } => {
            let key = item(text)?;
            let client = connect(&cli).await?;
            let removed = client.unendorse(key.clone()).await?;
            if cli.json {
                print_json(json!({"item": key.to_string(), "removed": removed}));
            } else if removed {
                println!("Removed {key}");
            } else {
                bail!("no endorsement of {key}");
            }
            client.close().await;
        }
        Command::Policy(PolicyCommand::Set(p)) => {
            let (subject, items) = rule_target(&p.circle, &p.contact, &p.items)?;
            let client = connect(&cli).await?;
            let e = client.set_policy(subject, items, p.share).await?;
            if cli.json {
                print_json(policy_json(&e));
            } else {
                println!("{}: {} → {}", subject_text(&e), e.items, e.share);
            }
            if let Some(circle) = &p.circle {
                let contacts = client.contacts().await?;
                if !contacts.iter().any(|c| &c.circle == circle) {
                    let mut circles: Vec<&str> =
                        contacts.iter().map(|c| c.circle.as_str()).collect();
                    circles.sort_unstable();
                    circles.dedup();
                    warn(&format!(
                        "no contact is in circle {circle:?}, so this rule applies to nobody yet{}",
                        if circles.is_empty() {
                            String::new()
                        } else {
                            format!(" (your circles: {})", circles.join(", "))
                        }
                    ));
                }
            }
            client.close().await;
        }
        Command::Policy(PolicyCommand::Remove(p)) => {
            let (subject, items) = rule_target(&p.circle, &p.contact, &p.items)?;
            let client = connect(&cli).await?;
            let removed = client.remove_policy(subject, items).await?;
            client.close().await;
            if cli.json {
                print_json(json!({"removed": removed}));
            } else if removed {
                println!("Removed the rule.");
            } else {
                bail!("no such rule (see `kith policy list`)");
            }
        }
        Command::Policy(PolicyCommand::List) => {
            let client = connect(&cli).await?;
            let rules = client.policy().await?;
            if cli.json {
                print_json(
                    json!({"rules": rules.iter().map(policy_json).collect::<Vec<_>>(), "default": kith_protocol::DEFAULT_SHARE.as_str()}),
                );
            } else {
                for e in &rules {
                    println!(
                        "{:<32} {:<32} {}",
                        subject_text(e),
                        e.items.to_string(),
                        e.share
                    );
                }
                println!("(no matching rule: {})", kith_protocol::DEFAULT_SHARE);
            }
            client.close().await;
        }
        Command::Ask(args) => {
            let client = connect(&cli).await?;
            let asked = cmd::ask::run(&client, args).await?;
            cmd::emit(cli.json, &asked);
            client.close().await;
        }
        Command::Pending(args) => {
            let client = connect(&cli).await?;
            let pending = cmd::pending::list(&client, args).await?;
            cmd::emit(cli.json, &pending);
            client.close().await;
        }
        Command::Approve(args) | Command::Deny(args) => {
            let client = connect(&cli).await?;
            let approve = matches!(cli.command, Command::Approve(_));
            let decided = cmd::pending::decide(&client, args, approve).await?;
            if cli.json && args.id.is_some() {
                // One request: the object itself, as before.
                print_json(serde_json::to_value(&decided.decided[0])?);
            } else {
                cmd::emit(cli.json, &decided);
            }
            client.close().await;
        }
        Command::Updates { query_id } => {
            let qid = match query_id {
                None => None,
                Some(text) => {
                    let bytes: Vec<u8> = (0..text.len())
                        .step_by(2)
                        .map(|i| {
                            text.get(i..i + 2)
                                .and_then(|h| u8::from_str_radix(h, 16).ok())
                        })
                        .collect::<Option<_>>()
                        .filter(|b: &Vec<u8>| b.len() == 16)
                        .ok_or_else(|| anyhow!("query id must be 32 hex digits"))?;
                    Some(kith_protocol::QueryId(bytes.try_into().expect("16 bytes")))
                }
            };
            let client = connect(&cli).await?;
            let updates = client.updates(qid).await?;
            for u in &updates {
                u.named
                    .verify()
                    .map_err(|e| anyhow!("an update does not verify: {e}"))?;
            }
            if cli.json {
                print_json(json!({"updates": updates.iter().map(|u| {
                    let mut v = named_json(&u.named);
                    v["query_id"] = json!(u.query_id.to_hex());
                    v["received_at"] = json!(u.received_at);
                    v
                }).collect::<Vec<_>>()}));
            } else if updates.is_empty() {
                println!("No late answers.");
            } else {
                for u in &updates {
                    println!(
                        "{}  {}  (ask {})",
                        date_time(u.received_at),
                        named_line(&u.named),
                        u.query_id.to_hex()
                    );
                }
            }
            client.close().await;
        }
        Command::Settings(command) => {
            let client = connect(&cli).await?;
            let out = cmd::settings::run(&client, command).await?;
            cmd::emit(cli.json, &out);
            client.close().await;
        }
        Command::Audit {
            limit,
            before,
            contact,
            item,
        } => {
            let client = connect(&cli).await?;
            let entries = client
                .audit_page(*before, contact.clone(), item.clone(), *limit)
                .await?;
            // A full page may have more behind it.
            let next = (entries.len() as u32 == *limit)
                .then(|| entries.last().map(|a| a.id))
                .flatten();
            if cli.json {
                print_json(json!({"entries": entries.iter().map(|a| json!({
                    "id": a.id, "at": a.at, "event": a.event, "peer": a.peer.map(|p| p.to_hex()),
                    "peer_name": a.peer_name, "item": a.item, "detail": a.detail,
                })).collect::<Vec<_>>(), "next_before": next}));
            } else if entries.is_empty() {
                println!(
                    "No audit entries{}.",
                    if before.is_some() || contact.is_some() || item.is_some() {
                        " match"
                    } else {
                        " yet"
                    }
                );
            } else {
                for a in &entries {
                    let who = a.peer_name.clone().unwrap_or_else(|| "-".into());
                    println!(
                        "{:>6}  {}  {:<14} {:<16} {:<28} {}",
                        a.id,
                        date_time(a.at),
                        a.event,
                        who,
                        a.item.as_deref().unwrap_or("-"),
                        a.detail
                    );
                }
                if let Some(id) = next {
                    println!("(more: kith audit --before {id})");
                }
            }
            client.close().await;
        }
        Command::Apps(cmd) => {
            let client = connect(&cli).await?;
            match cmd {
                AppsCommand::Pair(p) => {
                    let scope = AppScope {
                        ask: p.scopes.clone(),
                        named: p.named,
                        daily_limit: (!p.no_daily_limit).then_some(p.daily_limit),
                    };
                    let created = client.create_pairing(&p.name, scope).await?;
                    if cli.json {
                        print_json(json!({
                            "name": created.name, "code": created.code.0,
                            "expires_at": created.expires_at,
                        }));
                    } else {
                        // The code alone on stdout, so that scripts can capture it.
                        println!("{}", created.code.0);
                        eprintln!(
                            "Give this code to {} once; it pairs until {}.",
                            created.name,
                            date_time(created.expires_at)
                        );
                    }
                }
                AppsCommand::List => {
                    let apps = client.apps().await?;
                    let waiting = client.pairings().await?;
                    if cli.json {
                        print_json(json!({
                            "apps": apps.iter().map(app_json).collect::<Vec<_>>(),
                            "pairing_codes": waiting.iter().map(|p| json!({
                                "name": p.name, "scope": scope_text(&p.scope),
                                "created_at": p.created_at, "expires_at": p.expires_at,
                            })).collect::<Vec<_>>(),
                        }));
                    } else if apps.is_empty() && waiting.is_empty() {
                        println!("No apps are paired. Pair one with `kith apps pair`.");
                    } else {
                        for a in &apps {
                            println!("{}", app_line(a));
                        }
                        for p in &waiting {
                            println!(
                                "{:<16} pairing code not yet used (until {}); {}; cancel: kith apps revoke {}",
                                p.name,
                                date_time(p.expires_at),
                                scope_text(&p.scope),
                                p.name
                            );
                        }
                    }
                }
                AppsCommand::Revoke { name } => {
                    // A paired app, or else a pairing code not yet used.
                    match client.revoke_app(name).await {
                        Ok(a) => {
                            if cli.json {
                                print_json(app_json(&a));
                            } else {
                                println!("Revoked {}; its connections are closed.", a.name);
                            }
                        }
                        Err(ClientError::Node {
                            code: AppErrorCode::NotFound,
                            ..
                        }) if client.cancel_pairing(name).await? => {
                            if cli.json {
                                print_json(json!({"cancelled_pairing": name}));
                            } else {
                                println!(
                                    "Cancelled the pairing code for {name}: it no longer works."
                                );
                            }
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            client.close().await;
        }
        Command::Demo { nodes } => crate::demo::run(usize::from(*nodes)).await?,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "kith", &mut std::io::stdout());
        }
    }
    Ok(())
}

async fn run_daemon(cli: &Cli, listen: Option<SocketAddr>, api: Option<SocketAddr>) -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("KITH_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let dir = data_dir(cli)?;
    let options = kith_node::NodeOptions {
        api,
        ..Default::default()
    };
    let node = Node::start_with(&dir, listen, options).await?;
    eprintln!(
        "kith: node {} ({}) running; peers at {}, apps at {}. Ctrl-C stops it.",
        node.name(),
        node.node_id().short(),
        node.peer_addr(),
        node.api_addr()
    );
    wait_for_signal().await?;
    eprintln!("kith: shutting down");
    node.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<()> {
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
}

fn contact_json(c: &kith_protocol::app::ContactInfo) -> serde_json::Value {
    json!({"name": c.name, "node": c.node_id.to_hex(), "circle": c.circle, "addresses": c.addresses, "added_at": c.added_at})
}

fn endorsement_json(e: &kith_protocol::Endorsement) -> serde_json::Value {
    json!({"item": e.item.to_string(), "count": e.count, "rating": e.rating, "note": e.note, "since": e.since})
}

fn subject_text(e: &PolicyEntry) -> String {
    match &e.subject {
        Subject::Circle(c) => format!("circle {c}"),
        Subject::Contact(id) => format!(
            "contact {}",
            e.contact_name.clone().unwrap_or_else(|| id.short())
        ),
    }
}

fn policy_json(e: &PolicyEntry) -> serde_json::Value {
    let (kind, value) = match &e.subject {
        Subject::Circle(c) => ("circle", c.clone()),
        Subject::Contact(id) => ("contact", id.to_hex()),
    };
    json!({"subject": kind, kind: value, "contact_name": e.contact_name, "items": e.items.to_string(), "share": e.share.as_str()})
}

fn scope_text(scope: &AppScope) -> String {
    let items: Vec<String> = scope.ask.iter().map(|p| format!("ask:{p}")).collect();
    let names = if scope.named { "named" } else { "counts only" };
    let limit = scope
        .daily_limit
        .map(|l| format!(", {l} asks a day"))
        .unwrap_or_default();
    format!("{} ({names}{limit})", items.join(" "))
}

fn app_line(a: &AppInfo) -> String {
    let state = match a.revoked_at {
        Some(t) => format!("revoked {}", date(t)),
        None => format!(
            "{} asks in 24 h, last used {}",
            a.asks_24h,
            a.last_used_at
                .map(date_time)
                .unwrap_or_else(|| "never".into())
        ),
    };
    format!("{:<16} {}  {state}", a.name, scope_text(&a.scope))
}

fn app_json(a: &AppInfo) -> serde_json::Value {
    json!({
        "name": a.name,
        "key": a.key.to_hex(),
        "scope": {
            "ask": a.scope.ask.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "named": a.scope.named,
            "daily_limit": a.scope.daily_limit,
        },
        "paired_at": a.paired_at,
        "last_used_at": a.last_used_at,
        "asks_24h": a.asks_24h,
        "revoked_at": a.revoked_at,
    })
}
