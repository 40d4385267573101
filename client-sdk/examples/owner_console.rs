//! The owner's console: pending approvals and the latest audit entries.
//!
//! ```text
//! cargo run -p kith-client --example owner_console -- --credential ~/.local/share/kith/owner.credential
//! ```
//!
//! Uses the owner credential the node wrote at `kith init` (only the owner may read these).
//! Any error: one line on stderr, exit status 1.

use std::path::PathBuf;
use std::process::ExitCode;

use kith_client::{Client, Credential};

async fn run(path: PathBuf) -> Result<(), String> {
    let credential = Credential::load_local(&path).map_err(|e| e.to_string())?;
    let client = Client::connect_with(&credential)
        .await
        .map_err(|e| e.to_string())?;
    let pending = client.pending().await.map_err(|e| e.to_string())?;
    let waiting: Vec<_> = pending
        .iter()
        .filter(|p| p.status == kith_protocol::app::PendingStatus::Pending)
        .collect();
    println!("Waiting for your approval: {}", waiting.len());
    for p in waiting {
        println!(
            "  #{:<4} {} would learn that you own {} (asked about {})",
            p.id, p.asker_name, p.item, p.asked
        );
    }
    let audit = client.audit(20).await.map_err(|e| e.to_string())?;
    println!("Latest audit entries:");
    for a in audit {
        println!(
            "  {:<12} {:<18} {:<16} {:<28} {}",
            a.at,
            a.event,
            a.peer_name.as_deref().unwrap_or("-"),
            a.item.as_deref().unwrap_or("-"),
            a.detail
        );
    }
    client.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let path = match (args.next().as_deref(), args.next()) {
        (Some("--credential"), Some(p)) => PathBuf::from(p),
        _ => {
            match std::env::var_os("KITH_DATA_DIR") {
                Some(dir) => PathBuf::from(dir).join("owner.credential"),
                None => {
                    eprintln!("owner_console: usage: owner_console --credential FILE (or set KITH_DATA_DIR)");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    match run(path).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("owner_console: {e}");
            ExitCode::FAILURE
        }
    }
}
