//! `kith stop`: ask the daemon running on this data directory to shut down, and wait until
//! it has.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kith_node::DataDir;
use serde::Serialize;

/// How long `stop` waits for the daemon to let go of its data directory.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize)]
pub struct Stopped {
    /// Whether a daemon was running when `stop` was called.
    pub was_running: bool,
    /// Its process id.
    pub pid: Option<u32>,
}

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.was_running, self.pid) {
            (true, Some(pid)) => write!(f, "stopped the node (pid {pid})"),
            _ => write!(f, "the node is not running"),
        }
    }
}

pub async fn run(dir: &DataDir) -> Result<Stopped> {
    let Some(pid) = dir.running_pid() else {
        return Ok(Stopped {
            was_running: false,
            pid: None,
        });
    };
    terminate(pid)?;
    let deadline = Instant::now() + WAIT;
    while dir.running_pid().is_some() {
        if Instant::now() >= deadline {
            bail!(
                "the node (pid {pid}) did not stop within {} s; try again, or `kill {pid}`",
                WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Stopped {
        was_running: true,
        pid: Some(pid),
    })
}

/// SIGTERM, which the daemon handles like Ctrl-C: a clean shutdown.
#[cfg(unix)]
fn terminate(pid: u32) -> Result<()> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        bail!("the lock file names an impossible pid {pid}");
    };
    // SAFETY: kill(2) with a plain pid and signal number has no memory-safety preconditions.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let e = std::io::Error::last_os_error();
        bail!("cannot signal the node (pid {pid}): {e}");
    }
    Ok(())
}

#[cfg(not(unix))]
fn terminate(pid: u32) -> Result<()> {
    bail!("`kith stop` needs a Unix system here; stop the node (pid {pid}) with Ctrl-C")
}
