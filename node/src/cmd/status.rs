//! `kith status`: whether the node runs, its process id, and where contacts and apps reach
//! it. Exits 0 only if the node answers.

use std::fmt;

use anyhow::Result;
use kith_node::DataDir;
use kith_protocol::app::NodeStatus;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Status {
    pub running: bool,
    /// The daemon's process id, when it holds the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub node: Option<Answering>,
    /// How to start it, for people.
    #[serde(skip)]
    start_hint: String,
}

/// What a running node says about itself.
#[derive(Debug, Serialize)]
pub struct Answering {
    pub name: String,
    pub node_id: String,
    pub peer_addr: String,
    pub api_addr: String,
    pub contacts: u32,
    pub endorsements: u32,
    pub software: String,
    pub uptime_secs: u64,
}

impl From<NodeStatus> for Answering {
    fn from(s: NodeStatus) -> Self {
        Answering {
            name: s.name,
            node_id: s.node_id.to_hex(),
            peer_addr: s.peer_addr,
            api_addr: s.api_addr,
            contacts: s.contacts,
            endorsements: s.endorsements,
            software: s.software,
            uptime_secs: s.uptime_secs,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(s) = &self.node else {
            return write!(f, "the node is not running; {}", self.start_hint);
        };
        writeln!(f, "{} is running ({})", s.name, s.software)?;
        if let Some(pid) = self.pid {
            writeln!(f, "  pid        {pid}")?;
        }
        writeln!(f, "  node id    {}", s.node_id)?;
        writeln!(f, "  peers at   {}", s.peer_addr)?;
        writeln!(f, "  apps at    {}", s.api_addr)?;
        writeln!(f, "  contacts   {}", s.contacts)?;
        writeln!(f, "  endorsements {}", s.endorsements)?;
        write!(f, "  up for     {} s", s.uptime_secs)
    }
}

/// The node's status; `running: false` (not an error) when no daemon holds the directory.
pub async fn run(dir: &DataDir, connect: impl AsyncConnect) -> Result<Status> {
    let start_hint = format!("start it with `kith --data-dir {} run`", dir.root.display());
    // The daemon holds its directory's lock while it runs: without a holder, an api.addr
    // left behind (a killed daemon) says nothing.
    let pid = dir.running_pid();
    if pid.is_none() && (!dir.api_addr_file().exists() || dir.lock_file().exists()) {
        // Still report a directory that holds no node as the error it is.
        dir.load_owner_credential()?;
        return Ok(Status {
            running: false,
            pid: None,
            node: None,
            start_hint,
        });
    }
    let client = connect.connect().await?;
    let s = client.status().await?;
    client.close().await;
    Ok(Status {
        running: true,
        pid,
        node: Some(s.into()),
        start_hint,
    })
}

/// How a command reaches its node (the CLI's `connect`).
pub trait AsyncConnect {
    fn connect(self) -> impl std::future::Future<Output = Result<kith_client::Client>>;
}
