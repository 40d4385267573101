//! The first hour of a new owner, with real `kith` processes: each test is one item of the
//! issue "The first hour: a node that explains itself and that its owner cannot break", and
//! fails without its fix.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

/// Safety bug 1: a second daemon on the same data directory used to start, overwrite
/// `api.addr` and delete it when it stopped, leaving the first unreachable from the CLI.
/// Now the directory is locked: the second says who holds it, the first keeps serving,
/// `status` shows its pid, and `kith stop` stops it.
#[test]
fn one_daemon_per_data_directory_and_kith_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ana = start(tmp.path(), "Ana");
    let pid = ana.child.id();
    let status = json(&ana.dir, &["status"]);
    assert_eq!(status["running"], true);
    assert_eq!(status["pid"], pid);
    assert!(ok(&ana.dir, &["status"]).contains(&format!("pid        {pid}")));
    let api_addr = std::fs::read_to_string(ana.dir.join("api.addr")).unwrap();

    // A second daemon on another port: refused at once, naming the first.
    let mut second = Command::new(KITH)
        .arg("--data-dir")
        .arg(&ana.dir)
        .args(["run", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = second.try_wait().unwrap() {
            break Some(exit);
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let exit = exit.expect("a second `kith run` on the same directory must refuse to start");
    assert!(!exit.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("already running") && stderr.contains(&format!("pid {pid}")),
        "{stderr}"
    );
    assert!(stderr.contains("kith stop"), "{stderr}");
    // The first is untouched and still answers.
    assert_eq!(
        std::fs::read_to_string(ana.dir.join("api.addr")).unwrap(),
        api_addr
    );
    assert_eq!(json(&ana.dir, &["status"])["running"], true);

    // `kith stop` stops it cleanly; then status says so, in JSON too, and exits 1.
    let stopped = json(&ana.dir, &["stop"]);
    assert_eq!(stopped["was_running"], true);
    assert_eq!(stopped["pid"], pid);
    let exit = ana.child.wait().unwrap();
    assert!(exit.success(), "SIGTERM is a clean shutdown: {exit:?}");
    assert!(!ana.dir.join("api.addr").exists());
    let out = kith(&ana.dir, &["status", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"running": false}));
    let out = kith(&ana.dir, &["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));
    // Stopping a stopped node is not an error.
    assert!(ok(&ana.dir, &["stop"]).contains("not running"));
}

/// Safety bug 2: commands that fail inside the node, and a CLI killed by a broken pipe,
/// used to leave their connections open; after about 8 the owner was refused ("too many
/// connections for this credential") for up to a minute. Now every path closes, a broken
/// pipe ends the CLI quietly, and the owner's newest connection replaces its oldest.
#[test]
fn the_owner_cannot_lock_themself_out() {
    let tmp = tempfile::tempdir().unwrap();
    let ana = start(tmp.path(), "Ana");
    for _ in 0..12 {
        let out = kith(&ana.dir, &["approve", "999"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("too many connections"), "{err}");
    }
    for _ in 0..12 {
        // Standard output closed before the CLI writes: a broken pipe.
        let mut child = Command::new(KITH)
            .arg("--data-dir")
            .arg(&ana.dir)
            .arg("status")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(101), "a panic: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let status = json(&ana.dir, &["status"]);
    assert_eq!(status["running"], true);
}

/// Ana and Bo running, Bo a contact of Ana's (and Ana of Bo's) through an invite.
fn ana_and_bo(root: &std::path::Path) -> (Daemon, Daemon) {
    let ana = start(root, "Ana");
    let bo = start(root, "Bo");
    let code = ok(&ana.dir, &["invite"]);
    ok(&bo.dir, &["accept", code.trim()]);
    (ana, bo)
}

/// `kith run` once, expecting it to refuse to start; returns its standard error.
fn refused_run(dir: &std::path::Path) -> String {
    let mut child = Command::new(KITH)
        .arg("--data-dir")
        .arg(dir)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(!exit.success());
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`kith run` started where it must refuse");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Safety bug 3: any 64 bytes are a valid key, so a flipped bit in `identity.key` used to
/// start the node under a new node id against the old database, and after a deleted key
/// `init` made a new identity next to the old database. The database is now bound to its
/// node id, and `init` refuses a directory that holds a database.
#[test]
fn a_damaged_or_missing_identity_key_never_changes_who_the_node_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ana");
    ok(&dir, &["init", "--name", "Ana", "--listen", "127.0.0.1:0"]);
    let key = dir.join("identity.key");
    let good = std::fs::read(&key).unwrap();
    let mut flipped = good.clone();
    flipped[3] ^= 0x10;
    std::fs::write(&key, &flipped).unwrap();
    let err = refused_run(&dir);
    assert!(
        err.contains("not the key of the node") && err.contains("backup"),
        "{err}"
    );
    // The right key back: it runs.
    std::fs::write(&key, &good).unwrap();
    {
        let _ana = start_existing(&dir);
    }
    // A deleted key: init refuses to make a new identity beside the old database.
    std::fs::remove_file(&key).unwrap();
    let out = kith(&dir, &["init", "--name", "Ana", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("kith.db") && err.contains("identity.key"),
        "{err}"
    );
    assert!(!key.exists(), "no new identity was written");
}

/// Safety bug 4: only `identity.key` had its mode checked; an owner credential or a
/// database readable by others ran without a word. Each is refused, with the fix.
#[cfg(unix)]
#[test]
fn secrets_readable_by_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ana");
    ok(&dir, &["init", "--name", "Ana", "--listen", "127.0.0.1:0"]);
    for (file, mode) in [("owner.credential", 0o644), ("kith.db", 0o666)] {
        let path = dir.join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = refused_run(&dir);
        assert!(
            err.contains(file) && err.contains("chmod 600"),
            "{file}: {err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let _ana = start_existing(&dir);
}

/// Safety bug 5: the owner/app API used to share the peer endpoint, so `--listen
/// 0.0.0.0:7400` exposed it on the public port. It now has its own endpoint, on 127.0.0.1
/// by default, kept across restarts; `status` shows both.
#[test]
fn the_api_listens_on_this_machine_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ana");
    let init = json(
        &dir,
        &[
            "init",
            "--name",
            "Ana",
            "--listen",
            "0.0.0.0:0",
            "--advertise",
            "192.0.2.10:7400",
        ],
    );
    assert_eq!(init["api"], "127.0.0.1:0");
    let api_of = |status: &serde_json::Value| -> std::net::SocketAddr {
        status["api_addr"].as_str().unwrap().parse().unwrap()
    };
    let peer_of = |status: &serde_json::Value| -> std::net::SocketAddr {
        status["peer_addr"].as_str().unwrap().parse().unwrap()
    };
    let first = {
        let _ana = start_existing(&dir);
        let status = json(&dir, &["status"]);
        let (api, peer) = (api_of(&status), peer_of(&status));
        assert!(api.ip().is_loopback(), "{status}");
        assert!(peer.ip().is_unspecified(), "{status}");
        assert_ne!(api.port(), peer.port(), "{status}");
        assert!(ok(&dir, &["status"]).contains(&format!("apps at    {api}")));
        ok(&dir, &["stop"]);
        api
    };
    // Restarted, the API is where paired apps expect it.
    let _ana = start_existing(&dir);
    assert_eq!(api_of(&json(&dir, &["status"])), first);
    // `--api` moves it.
    ok(&dir, &["stop"]);
    let moved = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let mut child = Command::new(KITH)
        .arg("--data-dir")
        .arg(&dir)
        .args(["run", "--api", &moved.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        let out = kith(&dir, &["status", "--json"]);
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "did not start with --api");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(api_of(&status), moved);
    ok(&dir, &["stop"]);
    let _ = child.wait();
}

/// Safety bug 6: with a wildcard `--listen` and no `--advertise`, invites silently carried
/// 127.0.0.1. `init` now asks where contacts reach the node, and says what invites carry.
#[test]
fn a_wildcard_listen_needs_an_advertised_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ana");
    let out = kith(&dir, &["init", "--name", "Ana", "--listen", "0.0.0.0:7400"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--advertise"), "{err}");
    assert!(!dir.join("identity.key").exists());
    let text = ok(
        &dir,
        &[
            "init",
            "--name",
            "Ana",
            "--listen",
            "0.0.0.0:7400",
            "--advertise",
            "192.0.2.10:7400",
        ],
    );
    assert!(
        text.contains("invites will tell contacts to reach it at 192.0.2.10:7400"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:7401"), "{text}");
}

/// Item 11: the command line's own mistakes name the argument, suggest the near miss, give
/// ranges, and point at the right help; `kith` alone is not a success; completions exist.
#[test]
fn command_line_mistakes_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nobody");
    let err_of = |args: &[&str]| {
        let out = kith(&dir, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        err
    };
    let err = err_of(&["init", "--listen", "127.0.0.1:0"]);
    assert!(
        err.contains("--name <NAME> is required") && err.contains("see `kith init --help`"),
        "{err}"
    );
    let err = err_of(&["endorse", "tag:x", "--cont", "3"]);
    assert!(err.contains("did you mean --count?"), "{err}");
    let err = err_of(&["endorse", "tag:x", "--count", "-1"]);
    assert!(err.contains("-1 is not in 1..=1000000"), "{err}");
    let err = err_of(&["endorse", "tag:x", "--rating", "7"]);
    assert!(err.contains("7 is not in 1..=5"), "{err}");
    let err = err_of(&["polcy", "list"]);
    assert!(err.contains("did you mean policy?"), "{err}");
    // `kith` alone prints the help, and fails; with only a data directory, says so.
    let out = Command::new(KITH).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: kith"));
    let err = err_of(&[]);
    assert!(err.contains("requires a subcommand"), "{err}");
    // Every argument says what it is and its limits.
    let help = ok(&dir, &["endorse", "--help"]);
    assert!(
        help.contains("1 to 1 000 000") && help.contains("280 characters"),
        "{help}"
    );
    assert!(help.contains("1 to 5 stars"), "{help}");
    // Completions.
    let bash = ok(&dir, &["completions", "bash"]);
    assert!(
        bash.contains("complete") && bash.contains("endorse"),
        "{bash}"
    );
}

/// Item 13: errors name their cause once. A port in use is said once, with the flag that
/// changes it; a data directory whose `api.addr` leads to another node says that the node
/// there is not yours, rather than "not running".
#[test]
fn errors_name_their_cause_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ana = start(tmp.path(), "Ana");
    let status = json(&ana.dir, &["status"]);
    let peer = status["peer_addr"].as_str().unwrap().to_string();
    let bo = tmp.path().join("bo");
    ok(&bo, &["init", "--name", "Bo", "--listen", &peer]);
    let err = refused_run(&bo);
    assert_eq!(err.matches("already in use").count(), 1, "{err}");
    assert!(err.contains("--listen"), "{err}");
    assert!(!err.contains("os error"), "{err}");

    // Bo's directory pointing at Ana's API.
    std::fs::copy(ana.dir.join("api.addr"), bo.join("api.addr")).unwrap();
    let out = kith(&bo, &["contacts"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not yours"), "{err}");
}

/// Item 14: several nodes in one terminal: `kith run --background` returns once the node
/// answers, and says why when it cannot start.
#[test]
fn run_in_the_background() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ana");
    ok(&dir, &["init", "--name", "Ana", "--listen", "127.0.0.1:0"]);
    let started = json(&dir, &["run", "--background"]);
    let pid = started["pid"].as_u64().unwrap();
    assert_eq!(json(&dir, &["status"])["pid"], pid);
    // A second one is refused, naming the first.
    let out = kith(&dir, &["run", "--background"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("pid {pid}")));
    assert_eq!(json(&dir, &["stop"])["pid"], pid);
    assert!(std::fs::read_to_string(dir.join("kith.log"))
        .unwrap()
        .contains("running"));
}

/// Item 12: warnings where a typo or a choice silently protects nothing: a rule for a
/// circle nobody is in, two contacts with one name, and `epsilon off`.
#[test]
fn warnings_where_a_typo_protects_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ana = start(tmp.path(), "Ana");
    // Two contacts who both call themselves Bo.
    let twin_a = start(&tmp.path().join("a"), "Bo");
    let twin_b = start(&tmp.path().join("b"), "Bo");
    let mut warned = String::new();
    for t in [&twin_a, &twin_b] {
        let code = ok(&t.dir, &["invite"]);
        let out = kith(&ana.dir, &["accept", code.trim()]);
        assert!(out.status.success());
        warned.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        warned.contains("warning: you now have more than one contact named \"Bo\""),
        "{warned}"
    );
    let out = kith(&ana.dir, &["contacts"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than one contact is named \"Bo\""));

    let out = kith(
        &ana.dir,
        &[
            "policy", "set", "--circle", "frends", "--items", "*", "--share", "name",
        ],
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no contact is in circle \"frends\"") && err.contains("friends"),
        "{err}"
    );

    let out = kith(&ana.dir, &["settings", "set", "epsilon", "off"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("adds no noise"));
}

/// Item 10: `kith endorse` on an item already endorsed changes only the fields given, and
/// says what it replaced (it used to reset the count to 1 and drop the note).
#[test]
fn endorse_changes_only_what_is_given() {
    let tmp = tempfile::tempdir().unwrap();
    let ana = start(tmp.path(), "Ana");
    ok(
        &ana.dir,
        &[
            "endorse",
            "tag:vehicle/subaru",
            "--count",
            "2",
            "--note",
            "snow",
        ],
    );
    let text = ok(
        &ana.dir,
        &["endorse", "tag:vehicle/subaru", "--rating", "4"],
    );
    assert!(
        text.contains("Updated tag:vehicle/subaru: rating none → ★★★★☆;"),
        "{text}"
    );
    let e = json(&ana.dir, &["endorse", "tag:vehicle/subaru", "--clear-note"]);
    assert_eq!(
        (e["count"].clone(), e["rating"].clone(), e["note"].clone()),
        (2.into(), 4.into(), serde_json::Value::Null),
        "{e}"
    );
    assert_eq!(e["replaced"]["note"], "snow");
    let fresh = json(&ana.dir, &["endorse", "isbn:9780441013593"]);
    assert_eq!(fresh["count"], 1);
    assert!(fresh["replaced"].is_null());
}

/// Item 10: `kith pending` groups the repeats of one contact and item and hides decided
/// requests; `kith approve --all-from NAME` decides them all.
#[test]
fn pending_requests_are_grouped_and_decided_together() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(tmp.path());
    ok(&bo.dir, &["endorse", "tag:vehicle/subaru"]);
    ok(
        &bo.dir,
        &[
            "policy", "set", "--circle", "friends", "--items", "*", "--share", "ask",
        ],
    );
    for _ in 0..3 {
        ok(&ana.dir, &["ask", "tag:vehicle", "--timeout", "2"]);
    }
    let pending = json(&bo.dir, &["pending"]);
    let groups = pending["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{pending}");
    assert_eq!(groups[0]["ids"].as_array().unwrap().len(), 3, "{pending}");
    let text = ok(&bo.dir, &["pending"]);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert!(text.contains("(3 times"), "{text}");
    let decided = json(&bo.dir, &["approve", "--all-from", "Ana"]);
    assert_eq!(decided["decided"].as_array().unwrap().len(), 3, "{decided}");
    assert!(ok(&bo.dir, &["pending"]).contains("No requests waiting"));
    let all = json(&bo.dir, &["pending", "--all"]);
    assert_eq!(all["groups"][0]["status"], "approved", "{all}");
    let out = kith(&bo.dir, &["deny", "--all-from", "Nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no request from \"Nobody\""));
}

/// Item 10: contacts can be renamed and removed, and rules removed.
#[test]
fn contacts_and_rules_can_be_renamed_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(tmp.path());
    let renamed = json(&ana.dir, &["contacts", "rename", "Bo", "Bobby"]);
    assert_eq!(renamed["name"], "Bobby");
    ok(
        &ana.dir,
        &[
            "policy",
            "set",
            "--contact",
            "Bobby",
            "--items",
            "tag:*",
            "--share",
            "name",
        ],
    );
    let removed = json(
        &ana.dir,
        &["policy", "remove", "--contact", "Bobby", "--items", "tag:*"],
    );
    assert_eq!(removed["removed"], true);
    let out = kith(
        &ana.dir,
        &["policy", "remove", "--contact", "Bobby", "--items", "tag:*"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such rule"));
    assert!(ok(&ana.dir, &["contacts", "remove", "Bobby"]).contains("no longer a contact"));
    assert_eq!(
        json(&ana.dir, &["contacts"])["contacts"],
        serde_json::json!([])
    );
    // Ana no longer asks Bo, and Bo's asks reach no contact of Ana's.
    assert_eq!(
        json(&ana.dir, &["ask", "tag:x", "--timeout", "2"])["asked"],
        0
    );
    let from_bo = json(&bo.dir, &["ask", "tag:x", "--timeout", "2"]);
    assert_eq!(
        from_bo["declined"][0]["reason"], "not-a-contact",
        "{from_bo}"
    );
}

/// Item 10: `kith audit` pages instead of stopping silently at its limit, and filters by
/// contact and item.
#[test]
fn the_audit_log_pages_and_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(tmp.path());
    for item in [
        "tag:vehicle/subaru",
        "tag:vehicle/volvo",
        "isbn:9780441013593",
    ] {
        ok(&ana.dir, &["ask", item, "--timeout", "2"]);
    }
    // Bo's log: the contact added, and an answer per ask.
    let first = json(&bo.dir, &["audit", "--limit", "2"]);
    let next = first["next_before"]
        .as_u64()
        .expect("a full page says where to go on");
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    let second = json(
        &bo.dir,
        &["audit", "--limit", "2", "--before", &next.to_string()],
    );
    let ids = |v: &serde_json::Value| -> Vec<u64> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_u64().unwrap())
            .collect()
    };
    assert!(ids(&second).iter().all(|id| *id < next), "{second}");
    let text = ok(&bo.dir, &["audit", "--limit", "2"]);
    assert!(
        text.contains(&format!("(more: kith audit --before {next})")),
        "{text}"
    );
    let vehicles = json(&bo.dir, &["audit", "--item", "tag:vehicle"]);
    let items: Vec<&str> = vehicles["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["item"].as_str().unwrap())
        .collect();
    assert_eq!(items.len(), 2, "{vehicles}");
    assert!(
        items.iter().all(|i| i.starts_with("tag:vehicle/")),
        "{vehicles}"
    );
    let from_ana = json(&bo.dir, &["audit", "--contact", "Ana"]);
    assert!(from_ana["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["peer_name"] == "Ana"));
}

/// Item 10: the invites you made can be listed (never their codes) and revoked.
#[test]
fn invites_can_be_listed_and_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let ana = start(tmp.path(), "Ana");
    let bo = start(tmp.path(), "Bo");
    let used = ok(&ana.dir, &["invite"]);
    ok(&bo.dir, &["accept", used.trim()]);
    let open = ok(&ana.dir, &["invite", "--circle", "family"]);
    let list = json(&ana.dir, &["invite", "list"]);
    let invites = list["invites"].as_array().unwrap();
    assert_eq!(invites.len(), 2, "{list}");
    let family = invites.iter().find(|i| i["circle"] == "family").unwrap();
    assert!(family["state"].as_str().unwrap().starts_with("open until"));
    let friends = invites.iter().find(|i| i["circle"] == "friends").unwrap();
    assert_eq!(friends["state"], "used by Bo");
    assert!(
        !list.to_string().contains(open.trim()),
        "codes are never listed"
    );
    let id = family["id"].as_str().unwrap()[..8].to_string();
    assert!(ok(&ana.dir, &["invite", "revoke", &id]).contains("Revoked"));
    let cai = start(tmp.path(), "Cai");
    let out = kith(&cai.dir, &["accept", open.trim()]);
    assert!(!out.status.success(), "a revoked code no longer works");
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));
    let out = kith(&ana.dir, &["invite", "revoke", &id]);
    assert!(!out.status.success());
}

/// Item 10: `kith apps list` shows pairing codes not yet used, and `kith apps revoke`
/// cancels one.
#[test]
fn unused_pairing_codes_are_listed_and_cancelled() {
    let tmp = tempfile::tempdir().unwrap();
    let ana = start(tmp.path(), "Ana");
    ok(
        &ana.dir,
        &[
            "apps",
            "pair",
            "--name",
            "garage",
            "--scope",
            "ask:tag:vehicle/*",
        ],
    );
    let list = json(&ana.dir, &["apps", "list"]);
    assert_eq!(list["pairing_codes"][0]["name"], "garage", "{list}");
    assert!(ok(&ana.dir, &["apps", "list"]).contains("pairing code not yet used"));
    assert!(ok(&ana.dir, &["apps", "revoke", "garage"]).contains("Cancelled the pairing code"));
    let list = json(&ana.dir, &["apps", "list"]);
    assert_eq!(list["pairing_codes"], serde_json::json!([]), "{list}");
    let out = kith(&ana.dir, &["apps", "revoke", "garage"]);
    assert!(!out.status.success());
}

/// The peer port of the running node in `dir`, from `kith status`.
fn peer_port(dir: &std::path::Path) -> String {
    let status = json(dir, &["status"]);
    let addr = status["peer_addr"].as_str().unwrap();
    addr.rsplit_once(':').unwrap().1.to_string()
}

/// Where `contact` (by name) is reached, according to the node in `dir`.
fn addresses_of(dir: &std::path::Path, contact: &str) -> serde_json::Value {
    let contacts = json(dir, &["contacts"]);
    contacts["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == contact)
        .unwrap_or_else(|| panic!("no contact {contact}: {contacts}"))["addresses"]
        .clone()
}

/// Wait (bounded) until the node in `dir` reaches `contact` at `expected`.
fn await_addresses(dir: &std::path::Path, contact: &str, expected: serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = addresses_of(dir, contact);
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{contact} still at {now}, not {expected}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Safety bug 6, later part: the advertised address can change after `init`. New invites
/// carry it, and contacts are sent the new card (spec §8.6) — at once, when the node starts
/// somewhere else, and when a contact that was away comes back.
#[test]
fn contacts_follow_a_node_that_moves() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(tmp.path());
    // Ana restarts on another port (her listen address has port 0): Bo learns the new one,
    // and can ask her. Before card updates Bo kept the old port and Ana was unreachable.
    drop(ana);
    let ana = start_existing(&tmp.path().join("Ana"));
    let port = peer_port(&ana.dir);
    await_addresses(
        &bo.dir,
        "Ana",
        serde_json::json!([format!("127.0.0.1:{port}")]),
    );
    let asked = json(&bo.dir, &["ask", "tag:x", "--timeout", "5"]);
    assert_eq!(asked["answered"], 1, "{asked}");
    let moved = json(&bo.dir, &["audit", "--contact", "Ana"]);
    assert!(moved.to_string().contains("contact-moved"), "{moved}");

    // The owner changes the advertised address: the output says who has the new card.
    let by_name = format!("localhost:{port}");
    let set = json(&ana.dir, &["settings", "set", "advertise", &by_name]);
    assert_eq!(set["addresses"], serde_json::json!([by_name]));
    assert_eq!(set["delivered"], serde_json::json!(["Bo"]), "{set}");
    assert_eq!(addresses_of(&bo.dir, "Ana"), serde_json::json!([by_name]));
    assert_eq!(json(&ana.dir, &["settings", "list"])["advertise"], by_name);
    // New invites carry it.
    let cai = start(tmp.path(), "Cai");
    let code = ok(&ana.dir, &["invite"]);
    ok(&cai.dir, &["accept", code.trim()]);
    assert_eq!(addresses_of(&cai.dir, "Ana"), serde_json::json!([by_name]));

    // Addresses contacts cannot use are refused, with what to give instead.
    for bad in ["0.0.0.0:7400", "nonsense", "192.0.2.7:99999", ""] {
        let out = kith(&ana.dir, &["settings", "set", "advertise", bad]);
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("HOST:PORT") || err.contains("reach"),
            "{bad}: {err}"
        );
    }

    // Bo is away when Ana changes it: the output says so, and Bo gets the card when he is
    // back (his own restart on a new port tells Ana where he is, and she answers with hers).
    drop(bo);
    let back = format!("127.0.0.1:{port}");
    let text = ok(&ana.dir, &["settings", "set", "advertise", &back]);
    assert!(text.contains("Bo does not have it yet"), "{text}");
    assert!(text.contains("Cai"), "{text}");
    let bo = start_existing(&tmp.path().join("Bo"));
    await_addresses(&bo.dir, "Ana", serde_json::json!([back]));
}

/// A contact that removed you is not sent your card again and again, and a contact cannot
/// fill your audit log by moving: at most 24 address changes a day are taken from it.
#[test]
fn card_updates_stop_where_they_must() {
    let tmp = tempfile::tempdir().unwrap();
    let (ana, bo) = ana_and_bo(tmp.path());
    let port = peer_port(&ana.dir);
    let addresses = [format!("localhost:{port}"), format!("127.0.0.1:{port}")];
    for n in 0..24 {
        let set = json(
            &ana.dir,
            &["settings", "set", "advertise", &addresses[n % 2]],
        );
        assert_eq!(
            set["delivered"],
            serde_json::json!(["Bo"]),
            "move {n}: {set}"
        );
    }
    let over = json(&ana.dir, &["settings", "set", "advertise", &addresses[0]]);
    assert_eq!(over["unreached"][0]["name"], "Bo", "{over}");
    let reason = over["unreached"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("no more address changes"), "{reason}");
    assert_eq!(
        addresses_of(&bo.dir, "Ana"),
        serde_json::json!([addresses[1]])
    );
    let moves = json(&bo.dir, &["audit", "--contact", "Ana", "--limit", "1000"]);
    let count = moves["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "contact-moved")
        .count();
    assert_eq!(count, 24);

    // Bo removes Ana: her next change tells her so, once.
    ok(&bo.dir, &["contacts", "remove", "Ana"]);
    let set = json(&ana.dir, &["settings", "set", "advertise", &addresses[1]]);
    let reason = set["unreached"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("no longer has you as a contact"), "{set}");
    // Not sent again, and the owner is told why at each change.
    let again = json(&ana.dir, &["settings", "set", "advertise", &addresses[0]]);
    assert_eq!(again["unreached"].as_array().unwrap().len(), 1, "{again}");
    let reason = again["unreached"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("not sent"), "{again}");
}

/// Item 13: a data directory the user cannot read is "permission denied", with what to do,
/// not "no kith node". As root (CI), the command runs as `nobody` through `setpriv`;
/// otherwise the directory is made unreadable.
#[test]
fn an_unreadable_data_directory_is_permission_denied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ana");
    ok(&dir, &["init", "--name", "Ana", "--listen", "127.0.0.1:0"]);
    let root = unsafe { libc::geteuid() } == 0;
    let run = |args: &[&str]| -> std::process::Output {
        if root {
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", KITH])
                .arg("--data-dir")
                .arg(&dir)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run setpriv")
        } else {
            kith(&dir, args)
        }
    };
    if root {
        if Command::new("setpriv").arg("--version").output().is_err() {
            eprintln!("skipped: needs setpriv (util-linux) to run as another user");
            return;
        }
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    for args in [&["status"][..], &["contacts"][..], &["run"][..]] {
        let out = run(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.matches("permission denied").count(),
            1,
            "{args:?}: {err}"
        );
        assert!(!err.contains("not running"), "{args:?}: {err}");
    }
    if !root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
