//! Credentials: what an app (or the `kith` CLI) needs to reach its node (spec §10.1) — the
//! node's key to pin, the API address, and the app's own Ed25519 key.
//!
//! The file form is text, one `key=value` per line; the secret is a checksummed base32
//! string. Files are written mode 0600 by whoever creates them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use kith_protocol::text_code;
use kith_protocol::{Identity, NodeId};
use zeroize::Zeroizing;

use crate::error::ClientError;

const SECRET_PREFIX: &str = "KITHKEY1";
const HEADER: &str = "# kith credential: this file is a secret key. Keep it mode 0600.";

/// An app's (or the owner's) credential for one node.
pub struct Credential {
    /// The node's identity key, pinned when connecting.
    pub node: NodeId,
    /// The node's API address.
    pub api_addr: SocketAddr,
    /// The app's own key.
    pub identity: Identity,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("node", &self.node)
            .field("api_addr", &self.api_addr)
            .field("identity", &self.identity)
            .finish()
    }
}

impl Credential {
    /// The text form. Contains the secret key: write it only to a 0600 file.
    pub fn to_text(&self) -> Zeroizing<String> {
        let secret = text_code::encode(SECRET_PREFIX, &self.identity.to_secret_bytes());
        Zeroizing::new(format!(
            "{HEADER}\nnode={}\napi={}\nkey={}\n",
            self.node.to_hex(),
            self.api_addr,
            secret
        ))
    }

    /// Parse the text form.
    pub fn from_text(text: &str) -> Result<Self, ClientError> {
        let bad = |what: &str| ClientError::Credential(format!("credential file: {what}"));
        let (mut node, mut api, mut key) = (None, None, None);
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| bad("line without '='"))?;
            match k.trim() {
                "node" => {
                    node = Some(NodeId::from_hex(v.trim()).ok_or_else(|| bad("bad node key"))?)
                }
                "api" => {
                    api = Some(
                        v.trim()
                            .parse::<SocketAddr>()
                            .map_err(|_| bad("bad api address"))?,
                    )
                }
                "key" => {
                    let bytes = Zeroizing::new(
                        text_code::decode(SECRET_PREFIX, v.trim(), 400)
                            .map_err(|_| bad("bad secret key"))?,
                    );
                    key = Some(
                        Identity::from_secret_bytes(&bytes)
                            .ok_or_else(|| bad("bad secret key length"))?,
                    );
                }
                _ => {}
            }
        }
        Ok(Self {
            node: node.ok_or_else(|| bad("missing node="))?,
            api_addr: api.ok_or_else(|| bad("missing api="))?,
            identity: key.ok_or_else(|| bad("missing key="))?,
        })
    }

    /// Load a credential file and, if a file `api.addr` sits next to it (a node's data
    /// directory, spec §10.1), take the running node's API address from it: a node told to
    /// listen on port 0 learns its port only when it starts.
    pub fn load_local(path: &Path) -> Result<Self, ClientError> {
        let mut credential = Self::load(path)?;
        let api_file = path.with_file_name("api.addr");
        if let Ok(text) = std::fs::read_to_string(api_file) {
            if let Ok(addr) = text.trim().parse() {
                credential.api_addr = addr;
            }
        }
        Ok(credential)
    }

    /// Save to `path` with mode 0600, atomically (spec §10.1): after pairing, an app saves
    /// its credential and connects with it from then on.
    pub fn save(&self, path: &Path) -> Result<(), ClientError> {
        write_private(path, self.to_text().as_bytes()).map_err(|e| {
            ClientError::Credential(format!("cannot write credential {}: {e}", path.display()))
        })
    }

    /// Load from a file. On Unix the file must not be readable by group or others.
    pub fn load(path: &Path) -> Result<Self, ClientError> {
        let unreadable = |e: std::io::Error| {
            ClientError::Credential(format!("cannot read credential {}: {e}", path.display()))
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(unreadable)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(ClientError::Credential(format!(
                    "credential {} is readable by others (mode {:o}); run: chmod 600 {}",
                    path.display(),
                    mode & 0o777,
                    path.display()
                )));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(unreadable)?);
        Self::from_text(&text)
    }
}

/// Write a secret file atomically with mode 0600: a fresh temp file (never reusing one a
/// crash left behind, whose mode could be anything), fsync, rename, fsync the directory.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    // `<name>.tmp` next to it: never another file that merely shares the stem.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn round_trip_and_debug_hides_secret() {
        let c = Credential {
            node: Identity::generate(&mut OsRng).node_id(),
            api_addr: "127.0.0.1:7400".parse().unwrap(),
            identity: Identity::generate(&mut OsRng),
        };
        let text = c.to_text();
        let back = Credential::from_text(&text).unwrap();
        assert_eq!(back.node, c.node);
        assert_eq!(back.api_addr, c.api_addr);
        assert_eq!(back.identity.node_id(), c.identity.node_id());
        let key_line = text.lines().find(|l| l.starts_with("key=")).unwrap();
        assert!(!format!("{c:?}").contains(&key_line[4..]));
        assert!(Credential::from_text("node=zz").is_err());
    }
}
