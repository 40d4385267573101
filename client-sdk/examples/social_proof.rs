//! Social proof for one item, the way a shop or a reader would show it.
//!
//! ```text
//! kith apps pair --name shop --scope 'ask:tag:vehicle/*' --named      # on the node
//! cargo run -p kith-client --example social_proof -- \
//!     --node 127.0.0.1:7400 --pair KITHAPP1... --item tag:vehicle/subaru
//! ```
//!
//! Pairs once (saving the credential to `--credential FILE` if given; later runs pass
//! `--credential FILE` instead of `--pair`), asks the node, checks every name's signature,
//! and prints one sentence. Any error: one line on stderr, exit status 1.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use kith_client::{social_proof, Client, Credential};
use kith_protocol::ItemKey;

struct Args {
    node: Option<SocketAddr>,
    pair: Option<String>,
    credential: Option<PathBuf>,
    item: ItemKey,
}

const USAGE: &str =
    "usage: social_proof --node API_ADDR (--pair CODE | --credential FILE) --item ITEM";

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut node, mut pair, mut credential, mut item) = (None, None, None, None);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value; {USAGE}"));
        match flag.as_str() {
            "--node" => {
                let v = value()?;
                node = Some(
                    v.parse()
                        .map_err(|_| format!("{v:?} is not an address like 127.0.0.1:7400"))?,
                )
            }
            "--pair" => pair = Some(value()?),
            "--credential" => credential = Some(PathBuf::from(value()?)),
            "--item" => {
                let v = value()?;
                item = Some(ItemKey::parse(&v).map_err(|e| format!("{v:?}: {e}"))?)
            }
            other => return Err(format!("unknown argument {other:?}; {USAGE}")),
        }
    }
    let item = item.ok_or(USAGE)?;
    if pair.is_none() && credential.is_none() {
        return Err(USAGE.into());
    }
    Ok(Args {
        node,
        pair,
        credential,
        item,
    })
}

async fn run(args: Args) -> Result<String, String> {
    let client = match (&args.pair, &args.credential) {
        (Some(code), save) => {
            let node = args.node.ok_or("--pair needs --node API_ADDR")?;
            let (client, credential, _) =
                Client::pair(node, code).await.map_err(|e| e.to_string())?;
            if let Some(path) = save {
                credential.save(path).map_err(|e| e.to_string())?;
            }
            client
        }
        (None, Some(path)) => {
            let mut credential = Credential::load(path).map_err(|e| e.to_string())?;
            if let Some(node) = args.node {
                credential.api_addr = node;
            }
            Client::connect_with(&credential)
                .await
                .map_err(|e| e.to_string())?
        }
        (None, None) => return Err(USAGE.into()),
    };
    let mut answer = client
        .ask(kith_client::Query::new(args.item).timeout(Duration::from_secs(10)))
        .await
        .map_err(|e| e.to_string())?;
    // Never show a name whose signature does not check out.
    answer.named.retain(|n| n.verify().is_ok());
    client.close().await;
    Ok(social_proof(&answer))
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match parse_args() {
        Ok(args) => run(args).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(sentence) => {
            println!("{sentence}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("social_proof: {e}");
            ExitCode::FAILURE
        }
    }
}
