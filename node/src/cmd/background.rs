//! `kith run --background`: start the daemon as a detached process of its own, logging to
//! `kith.log` in the data directory, and return once it answers (or say why it did not).

use std::fmt;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kith_node::DataDir;
use serde::Serialize;

/// How long to wait for the daemon to hold its directory and write its API address.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize)]
pub struct Started {
    pub pid: u32,
    /// Where its log goes.
    pub log: String,
    /// Where the owner and apps reach it.
    pub api_addr: String,
}

impl fmt::Display for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the node is running in the background (pid {}); apps at {}, log in {}. \
             Stop it with `kith stop`.",
            self.pid, self.api_addr, self.log
        )
    }
}

pub async fn run(
    dir: &DataDir,
    listen: Option<SocketAddr>,
    api: Option<SocketAddr>,
) -> Result<Started> {
    if let Some(pid) = dir.running_pid() {
        bail!(
            "a kith node is already running on {} (pid {pid}); stop it with `kith stop`",
            dir.root.display()
        );
    }
    // The same checks as a foreground start would make, before anything is spawned.
    dir.load_identity()?;
    let log_path = dir.root.join("kith.log");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let log = options
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut command = Command::new(std::env::current_exe().context("finding the kith binary")?);
    command
        .arg("--data-dir")
        .arg(&dir.root)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(a) = listen {
        command.arg("--listen").arg(a.to_string());
    }
    if let Some(a) = api {
        command.arg("--api").arg(a.to_string());
    }
    #[cfg(unix)]
    {
        // Its own session: closing this terminal does not stop it.
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    let mut child = command.spawn().context("starting the node")?;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(exit) = child.try_wait()? {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = tail
                .lines()
                .rev()
                .find(|l| l.starts_with("kith:"))
                .unwrap_or("see the log");
            bail!("the node did not start ({exit}): {last}");
        }
        if dir.running_pid() == Some(child.id()) {
            if let Ok(addr) = std::fs::read_to_string(dir.api_addr_file()) {
                return Ok(Started {
                    pid: child.id(),
                    log: log_path.display().to_string(),
                    api_addr: addr.trim().to_string(),
                });
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "the node (pid {}) did not start within {} s; see {}",
                child.id(),
                WAIT.as_secs(),
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
