//! Command-line parsing and the commands. Everything that needs the running daemon goes
//! through kith-client, exactly as any app would.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Result};
use clap::{Parser, Subcommand};
use kith_client::{Client, ClientError};
use kith_node::DataDir;

use crate::cmd;

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
    Init(cmd::init::Args),
    /// Run the node in the foreground until SIGINT or SIGTERM.
    Run(cmd::run::Args),
    /// Show whether the node is running; exits 0 only if it answers.
    Status,
    /// Stop the node running on this data directory, and wait until it has.
    Stop,
    /// Make a one-time invite code (valid 7 days) and print only the code; `invite list`,
    /// `invite revoke ID`.
    Invite(cmd::invite::Args),
    /// Accept an invite code ("-" reads it from standard input).
    Accept(cmd::accept::Args),
    /// List your contacts; `contacts remove NAME`, `contacts rename NAME NEW`.
    Contacts(cmd::contacts::Args),
    /// Record that you own (or recommend) an item; on one you endorse already, change only
    /// what you give.
    Endorse(cmd::endorse::Args),
    /// List your endorsements.
    Endorsements,
    /// Remove an endorsement.
    Unendorse(cmd::endorsements::UnendorseArgs),
    /// Consent rules: who may learn what.
    #[command(subcommand)]
    Policy(cmd::policy::Command),
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
    Updates(cmd::updates::Args),
    /// Show the audit log: who asked what and what was disclosed.
    Audit(cmd::audit::Args),
    /// Apps paired with this node: pair, list, revoke.
    #[command(subcommand)]
    Apps(cmd::apps::Command),
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

async fn run(cli: Cli) -> Result<()> {
    let json = cli.json;
    match &cli.command {
        Command::Init(args) => cmd::emit(json, &cmd::init::run(&data_dir(&cli)?, args)?),
        Command::Run(args) if args.background => {
            let started = cmd::background::run(&data_dir(&cli)?, args.listen, args.api).await?;
            cmd::emit(json, &started);
        }
        Command::Run(args) => cmd::run::foreground(&data_dir(&cli)?, args).await?,
        Command::Status => {
            let status = cmd::status::run(&data_dir(&cli)?, Connector(&cli)).await?;
            cmd::emit(json, &status);
            if !status.running {
                return Err(cmd::Reported.into());
            }
        }
        Command::Stop => cmd::emit(json, &cmd::stop::run(&data_dir(&cli)?).await?),
        Command::Demo { nodes } => crate::demo::run(usize::from(*nodes)).await?,
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "kith", &mut std::io::stdout());
        }
        command => {
            let client = connect(&cli).await?;
            with_node(&client, command, json).await?;
            client.close().await;
        }
    }
    Ok(())
}

/// The commands that talk to the running node, each in its file in `cmd/`.
async fn with_node(client: &Client, command: &Command, json: bool) -> Result<()> {
    match command {
        Command::Invite(args) => cmd::emit(json, &cmd::invite::run(client, args, json).await?),
        Command::Accept(args) => cmd::emit(json, &cmd::accept::run(client, args).await?),
        Command::Contacts(args) => cmd::emit(json, &cmd::contacts::run(client, args).await?),
        Command::Endorse(args) => cmd::emit(json, &cmd::endorse::run(client, args).await?),
        Command::Endorsements => cmd::emit(json, &cmd::endorsements::list(client).await?),
        Command::Unendorse(args) => cmd::emit(
            json,
            &cmd::endorsements::unendorse(client, args, json).await?,
        ),
        Command::Policy(command) => {
            cmd::emit(json, &cmd::policy::run(client, command, json).await?)
        }
        Command::Ask(args) => cmd::emit(json, &cmd::ask::run(client, args).await?),
        Command::Settings(command) => cmd::emit(json, &cmd::settings::run(client, command).await?),
        Command::Pending(args) => cmd::emit(json, &cmd::pending::list(client, args).await?),
        Command::Approve(args) | Command::Deny(args) => {
            let approve = matches!(command, Command::Approve(_));
            let decided = cmd::pending::decide(client, args, approve).await?;
            if json && args.id.is_some() {
                // One request: the object itself, as before.
                cmd::emit_json(&decided.decided[0]);
            } else {
                cmd::emit(json, &decided);
            }
        }
        Command::Updates(args) => cmd::emit(json, &cmd::updates::run(client, args).await?),
        Command::Audit(args) => cmd::emit(json, &cmd::audit::run(client, args).await?),
        Command::Apps(command) => cmd::emit(json, &cmd::apps::run(client, command, json).await?),
        Command::Init(_)
        | Command::Run(_)
        | Command::Status
        | Command::Stop
        | Command::Demo { .. }
        | Command::Completions { .. } => unreachable!("handled without a connection"),
    }
    Ok(())
}
