//! The node's data directory: what is in it, and `kith init`.
//!
//! ```text
//! DATA_DIR/
//!   identity.key       the node's secret keys (Ed25519 seed || X25519 secret), mode 0600
//!   owner.credential   the owner's app-API credential, mode 0600
//!   kith.db            SQLite store (WAL), mode 0600
//!   api.addr           the running daemon's API address (removed at clean shutdown)
//!   node.lock          held (exclusively locked) by the running daemon; holds its pid
//! ```

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kith_client::Credential;
use kith_protocol::card::{validate_address, validate_name};
use kith_protocol::{Identity, NodeId};
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::error::NodeError;
use crate::store::{Setting, Store};
use crate::unix_now;

/// Paths inside a data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn identity_key(&self) -> PathBuf {
        self.root.join("identity.key")
    }
    pub fn owner_credential(&self) -> PathBuf {
        self.root.join("owner.credential")
    }
    pub fn database(&self) -> PathBuf {
        self.root.join("kith.db")
    }
    pub fn api_addr_file(&self) -> PathBuf {
        self.root.join("api.addr")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("node.lock")
    }
    pub fn is_initialized(&self) -> bool {
        self.identity_key().exists()
    }

    /// Whether `path` exists; an unreadable directory is its own error, not "no node".
    fn present(&self, path: &Path) -> Result<bool, NodeError> {
        match fs::metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(NodeError::Config(format!(
                    "cannot read {}: permission denied; run kith as the user who owns it, or \
                     use another --data-dir",
                    self.root.display()
                )))
            }
            Err(e) => Err(NodeError::io(path, e)),
        }
    }

    /// Load the node's identity key.
    pub fn load_identity(&self) -> Result<Identity, NodeError> {
        let path = self.identity_key();
        if !self.present(&path)? {
            return Err(NodeError::NotInitialized(self.root.clone()));
        }
        check_private(&path)?;
        let bytes = Zeroizing::new(fs::read(&path).map_err(|e| NodeError::io(&path, e))?);
        Identity::from_secret_bytes(&bytes).ok_or_else(|| {
            NodeError::Config(format!("{} is not a kith identity key", path.display()))
        })
    }

    /// Load the owner credential, with the API address of the running daemon if known.
    pub fn load_owner_credential(&self) -> Result<Credential, NodeError> {
        let path = self.owner_credential();
        if !self.present(&path)? {
            return Err(NodeError::NotInitialized(self.root.clone()));
        }
        check_private(&path)?;
        Credential::load_local(&path).map_err(|e| NodeError::Config(e.to_string()))
    }
}

/// The running daemon's exclusive hold on its data directory: one daemon per directory.
/// Released when dropped, or by the operating system when the process dies.
#[derive(Debug)]
pub struct DirLock {
    _file: fs::File,
}

impl DataDir {
    fn open_lock_file(&self) -> Result<fs::File, NodeError> {
        let path = self.lock_file();
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path).map_err(|e| NodeError::io(&path, e))
    }

    /// Take the directory for this process, or say which process has it.
    pub fn lock(&self) -> Result<DirLock, NodeError> {
        use std::io::Write;
        let mut file = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => {
                let path = self.lock_file();
                file.set_len(0).map_err(|e| NodeError::io(&path, e))?;
                write!(file, "{}", std::process::id()).map_err(|e| NodeError::io(&path, e))?;
                Ok(DirLock { _file: file })
            }
            Err(fs::TryLockError::WouldBlock) => Err(NodeError::AlreadyRunning {
                dir: self.root.clone(),
                pid: read_pid(&mut file),
            }),
            Err(fs::TryLockError::Error(e)) => Err(NodeError::io(&self.lock_file(), e)),
        }
    }

    /// The pid of the daemon running on this directory, if one is.
    pub fn running_pid(&self) -> Option<u32> {
        if !self.lock_file().exists() {
            return None;
        }
        let mut file = self.open_lock_file().ok()?;
        match file.try_lock() {
            Ok(()) => None, // nobody holds it; our hold ends as `file` drops
            Err(_) => read_pid(&mut file),
        }
    }
}

fn read_pid(file: &mut fs::File) -> Option<u32> {
    use std::io::{Read, Seek};
    let mut text = String::new();
    file.seek(std::io::SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Write a secret file atomically with mode 0600 (see [`kith_client::credential::write_private`]).
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), NodeError> {
    kith_client::credential::write_private(path, data).map_err(|e| NodeError::io(path, e))
}

fn check_private(path: &Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| NodeError::io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(NodeError::Config(format!(
                "{} is readable by others (mode {:o}); run: chmod 600 {}",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<(), NodeError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| NodeError::io(path, e))
}
#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> Result<(), NodeError> {
    Ok(())
}

impl DataDir {
    /// Check that the database in this directory belongs to `identity`, so that a damaged
    /// or replaced `identity.key` (any 64 bytes are a valid key) never starts the node as
    /// someone else. A database made before the binding existed is bound now.
    pub(crate) fn check_binding(
        &self,
        store: &Store,
        identity: &Identity,
    ) -> Result<(), NodeError> {
        let id = identity.node_id();
        match store.setting(Setting::NodeId)? {
            Some(bound) if bound == id.to_hex() => Ok(()),
            Some(bound) => Err(NodeError::Config(format!(
                "{} is not the key of the node in {}: the database belongs to node {}, the key \
                 is node {}. Restore the identity.key made with this database from a backup (a \
                 damaged key cannot be repaired), or move kith.db away to start a new node",
                self.identity_key().display(),
                self.database().display(),
                bound.get(..8).unwrap_or(&bound),
                id.short(),
            ))),
            None => Ok(store.set_setting(Setting::NodeId, &id.to_hex())?),
        }
    }

    /// Refuse to run with a secret readable by others: the owner credential and the
    /// database (with its write-ahead log), like the identity key.
    pub(crate) fn check_secret_modes(&self) -> Result<(), NodeError> {
        let db = self.database();
        let wal = self.root.join("kith.db-wal");
        let shm = self.root.join("kith.db-shm");
        for path in [self.owner_credential(), db, wal, shm] {
            if path.exists() {
                check_private(&path)?;
            }
        }
        Ok(())
    }
}

/// What `kith init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    pub node_id: NodeId,
    pub name: String,
    pub listen: SocketAddr,
    pub advertise: Vec<String>,
    /// Where the owner/app API listens (port 0: chosen at the first start).
    pub api: SocketAddr,
    pub data_dir: PathBuf,
}

/// Where the owner/app API listens unless told otherwise: this machine only (127.0.0.1, or
/// ::1 for an IPv6 peer address), on the port after the peer port — or, when the peer port
/// is chosen at start (0), on a port chosen at the first start and kept from then on.
pub fn default_api_addr(listen: SocketAddr) -> SocketAddr {
    let ip: std::net::IpAddr = if listen.is_ipv6() {
        std::net::Ipv6Addr::LOCALHOST.into()
    } else {
        std::net::Ipv4Addr::LOCALHOST.into()
    };
    let port = match listen.port() {
        0 | u16::MAX => 0,
        p => p + 1,
    };
    SocketAddr::new(ip, port)
}

/// `listen` as reached from this machine: a wildcard address becomes loopback.
pub fn local_api_addr(listen: SocketAddr) -> SocketAddr {
    let mut a = listen;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        });
    }
    a
}

/// Create a node in `dir`: identity key, owner credential, database with settings.
pub fn init(
    dir: &DataDir,
    name: &str,
    listen: SocketAddr,
    advertise: Vec<String>,
) -> Result<InitReport, NodeError> {
    init_with_api(dir, name, listen, advertise, None)
}

/// [`init`] with the owner/app API at `api` instead of [`default_api_addr`].
pub fn init_with_api(
    dir: &DataDir,
    name: &str,
    listen: SocketAddr,
    advertise: Vec<String>,
    api: Option<SocketAddr>,
) -> Result<InitReport, NodeError> {
    let api = api.unwrap_or_else(|| default_api_addr(listen));
    let name = validate_name(name).map_err(|e| NodeError::Config(e.to_string()))?;
    for a in &advertise {
        validate_address(a).map_err(|e| NodeError::Config(e.to_string()))?;
    }
    // A wildcard listen address says nothing about where contacts can reach this node:
    // guessing 127.0.0.1 made invites that only work on this machine.
    if advertise.is_empty() && listen.ip().is_unspecified() {
        return Err(NodeError::Config(format!(
            "--listen {listen} listens on every interface; say where contacts reach you with \
             --advertise HOST:PORT (your LAN or public address and port {})",
            listen.port()
        )));
    }
    // Default: the listen address. A port of 0 there is replaced by the bound port each
    // time the node starts.
    let advertise = if advertise.is_empty() {
        vec![local_api_addr(listen).to_string()]
    } else {
        advertise
    };
    if dir.is_initialized() {
        return Err(NodeError::AlreadyInitialized(dir.root.clone()));
    }
    if dir.database().exists() {
        // A database without its key: making a new identity here would start someone else
        // against this node's contacts and endorsements.
        return Err(NodeError::Config(format!(
            "{} holds a kith database (kith.db) but no identity.key: restore identity.key from \
             a backup, or move kith.db away to make a new node there",
            dir.root.display()
        )));
    }
    fs::create_dir_all(&dir.root).map_err(|e| NodeError::io(&dir.root, e))?;
    restrict(&dir.root, 0o700)?;
    let identity = Identity::generate(&mut OsRng);
    let owner = Identity::generate(&mut OsRng);
    let now = unix_now();

    // Made private before SQLite opens it: its write-ahead log and shared-memory files
    // are created with the database's mode.
    write_private(&dir.database(), b"")?;
    let store = Store::open(&dir.database())?;
    store.set_setting(Setting::NodeId, &identity.node_id().to_hex())?;
    store.set_setting(Setting::Name, &name)?;
    store.set_setting(Setting::Listen, &listen.to_string())?;
    store.set_setting(Setting::Advertise, &advertise.join(","))?;
    store.set_setting(Setting::Api, &api.to_string())?;
    store.add_owner_credential(&owner.node_id(), "owner", now)?;

    let cred = Credential {
        node: identity.node_id(),
        api_addr: local_api_addr(api),
        identity: owner,
    };
    write_private(&dir.owner_credential(), cred.to_text().as_bytes())?;
    // The identity key goes last: its presence marks the directory as initialised.
    write_private(&dir.identity_key(), &identity.to_secret_bytes())?;
    Ok(InitReport {
        node_id: identity.node_id(),
        name,
        listen,
        advertise,
        api,
        data_dir: dir.root.clone(),
    })
}
