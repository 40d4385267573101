//! `kith run`: the node in the foreground until SIGINT or SIGTERM, logging to standard
//! error (`KITH_LOG` filters it); `--background` hands over to [`super::background`].

use std::net::SocketAddr;

use anyhow::{Context, Result};
use kith_node::{DataDir, Node};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen here instead of the address given at init.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Serve the owner/app API here instead of the address given at init.
    #[arg(long, value_name = "ADDR")]
    pub api: Option<SocketAddr>,
    /// Start the node in the background and return once it answers; its log goes to
    /// kith.log in the data directory. Stop it with `kith stop`.
    #[arg(long)]
    pub background: bool,
}

/// Run the node until a signal; progress lines go to standard error.
pub async fn foreground(dir: &DataDir, args: &Args) -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("KITH_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    let options = kith_node::NodeOptions {
        api: args.api,
        ..Default::default()
    };
    let node = Node::start_with(dir, args.listen, options).await?;
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
