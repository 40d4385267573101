//! `kith init`: create a node in the data directory, and say where contacts and apps will
//! reach it.

use std::fmt;
use std::net::SocketAddr;

use anyhow::Result;
use kith_node::DataDir;
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Your display name, as your contacts will see it.
    #[arg(long)]
    pub name: String,
    /// UDP address to listen on, e.g. 0.0.0.0:7400.
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Address contacts should use to reach you (repeatable); default: the listen address.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Vec<String>,
    /// Where the owner and apps reach the node's API; default: 127.0.0.1 on the port
    /// after --listen's (a port chosen at the first start if --listen's is 0).
    #[arg(long, value_name = "ADDR")]
    pub api: Option<SocketAddr>,
}

/// The node just made.
#[derive(Debug, Serialize)]
pub struct Created {
    pub node_id: String,
    pub name: String,
    pub listen: String,
    /// What invites will carry: where contacts reach the node.
    pub advertise: Vec<String>,
    pub api: String,
    pub data_dir: String,
    #[serde(skip)]
    api_port_chosen_later: bool,
    #[serde(skip)]
    short_id: String,
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Created node {:?} ({}) in {}",
            self.name, self.short_id, self.data_dir
        )?;
        writeln!(
            f,
            "  invites will tell contacts to reach it at {}",
            self.advertise.join(", ")
        )?;
        if self.api_port_chosen_later {
            let host = self.api.rsplit_once(':').map_or(&*self.api, |(h, _)| h);
            writeln!(
                f,
                "  you and your apps reach it on {host} (a port chosen at its first start)"
            )?;
        } else {
            writeln!(
                f,
                "  you and your apps reach it at {} (this machine only)",
                self.api
            )?;
        }
        write!(f, "Start it with: kith --data-dir {} run", self.data_dir)
    }
}

pub fn run(dir: &DataDir, args: &Args) -> Result<Created> {
    let r = kith_node::data_dir::init_with_api(
        dir,
        &args.name,
        args.listen,
        args.advertise.clone(),
        args.api,
    )?;
    Ok(Created {
        node_id: r.node_id.to_hex(),
        short_id: r.node_id.short(),
        name: r.name,
        listen: r.listen.to_string(),
        advertise: r.advertise,
        api: r.api.to_string(),
        api_port_chosen_later: r.api.port() == 0,
        data_dir: r.data_dir.display().to_string(),
    })
}
