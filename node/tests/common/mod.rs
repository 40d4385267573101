//! Shared by the CLI tests: run the real `kith` binary, and daemons that die with the test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KITH: &str = env!("CARGO_BIN_EXE_kith");

pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn kith(dir: &Path, args: &[&str]) -> Output {
    Command::new(KITH)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kith")
}

pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = kith(dir, args);
    assert!(
        out.status.success(),
        "kith {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(dir, &a)).expect("valid JSON")
}

pub fn start(root: &Path, name: &str) -> Daemon {
    let dir = root.join(name);
    ok(&dir, &["init", "--name", name, "--listen", "127.0.0.1:0"]);
    start_existing(&dir)
}

/// Run the node already made in `dir`, and wait until it answers.
pub fn start_existing(dir: &Path) -> Daemon {
    let child = Command::new(KITH)
        .arg("--data-dir")
        .arg(dir)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kith run");
    let daemon = Daemon {
        child,
        dir: dir.to_path_buf(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if kith(&daemon.dir, &["status"]).status.success() {
            return daemon;
        }
        assert!(Instant::now() < deadline, "{} did not start", dir.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}
