//! The CLI story with five separate `kith run` processes on loopback: an asker,
//! three contacts and a stranger, driven only through the `kith` command.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::*;

#[test]
fn five_processes_tell_the_story() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // Before anything runs: clear one-line errors, non-zero exits.
    let out = kith(&root.join("nobody"), &["status"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("kith init"), "{err}");

    let ana = start(root, "Ana");
    let chloe = start(root, "Chloe");
    let bruno = start(root, "Bruno");
    let dev = start(root, "Dev");
    let stranger = start(root, "Stranger");

    let status = json(&ana.dir, &["status"]);
    assert_eq!(status["name"], "Ana");
    assert!(status["peer_addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(status["api_addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));

    for friend in [&chloe, &bruno, &dev] {
        let code = ok(&ana.dir, &["invite"]);
        assert_eq!(
            code.trim().lines().count(),
            1,
            "invite prints only the code"
        );
        ok(&friend.dir, &["accept", code.trim()]);
    }
    let contacts = json(&ana.dir, &["contacts"]);
    assert_eq!(contacts["contacts"].as_array().unwrap().len(), 3);

    ok(
        &chloe.dir,
        &[
            "endorse",
            "tag:vehicle/subaru/outback",
            "--count",
            "2",
            "--rating",
            "5",
        ],
    );
    ok(&bruno.dir, &["endorse", "tag: Vehicle/Subaru/Forester"]);
    ok(
        &dev.dir,
        &["endorse", "isbn:0-441-01359-7", "--rating", "4"],
    );
    for friend in [&chloe, &bruno, &dev] {
        ok(
            &friend.dir,
            &[
                "policy", "set", "--circle", "friends", "--items", "*", "--share", "name",
            ],
        );
    }
    let rules = json(&chloe.dir, &["policy", "list"]);
    assert_eq!(rules["rules"][0]["share"], "name");

    let answer = json(&ana.dir, &["ask", "tag:vehicle/subaru"]);
    assert_eq!(answer["item"], "tag:vehicle/subaru");
    assert_eq!(answer["asked"], 3);
    let mut named: Vec<(String, String, u64)> = answer["named"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().into(),
                n["item"].as_str().unwrap().into(),
                n["count"].as_u64().unwrap(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        vec![
            ("Bruno".into(), "tag:vehicle/subaru/forester".into(), 1),
            ("Chloe".into(), "tag:vehicle/subaru/outback".into(), 2)
        ]
    );
    for n in answer["named"].as_array().unwrap() {
        assert_eq!(n["node"].as_str().unwrap().len(), 64);
        assert!(n.get("rating").is_some() && n.get("note").is_some());
    }

    // With a minimum cohort of 3 Ana gets a count of her three friends: a number people
    // can read, with its 90 % range, never below 0 or above the cohort; units and ratings
    // only when asked for.
    ok(&ana.dir, &["settings", "set", "min-cohort", "3"]);
    // Each ask costs every friend ε 1 of the 4 it grants Ana a day; this story asks more.
    for friend in [&chloe, &bruno, &dev] {
        ok(&friend.dir, &["settings", "set", "epsilon-per-day", "10"]);
    }
    let counted = json(&ana.dir, &["ask", "tag:vehicle/subaru"]);
    let a = &counted["aggregate"];
    let (low, owners, high) = (
        a["owners_low"].as_u64().unwrap(),
        a["owners"].as_u64().unwrap(),
        a["owners_high"].as_u64().unwrap(),
    );
    assert!(low <= owners && owners <= high && high <= 3, "{counted}");
    assert!(a["units"].is_null() && a["ratings"].is_null(), "{counted}");
    let detailed = json(&ana.dir, &["ask", "tag:vehicle/subaru", "--detail"]);
    assert!(detailed["aggregate"]["units"].is_u64(), "{detailed}");
    assert_eq!(
        detailed["aggregate"]["ratings"].as_array().unwrap().len(),
        5
    );
    let text = ok(&ana.dir, &["ask", "tag:vehicle/subaru"]);
    assert!(text.contains("of your 3 contacts"), "{text}");

    // A friend whose privacy budget Ana used up says so, by name, in JSON and in text; the
    // aggregate is withheld below Ana's minimum cohort, and says why.
    ok(&dev.dir, &["settings", "set", "epsilon-per-day", "0"]);
    let dev_id = json(&dev.dir, &["status"])["node_id"].clone();
    let declined = json(&ana.dir, &["ask", "tag:vehicle/subaru"]);
    assert_eq!(
        declined["declined"],
        serde_json::json!([{
            "contact": "Dev", "node": dev_id, "reason": "privacy-budget", "round": 0,
        }]),
        "{declined}"
    );
    assert_eq!(declined["cohort"], 2);
    let text = ok(&ana.dir, &["ask", "tag:vehicle/subaru"]);
    assert!(
        text.contains("Not counted:")
            && text.contains("Dev: you used up the privacy budget it allows you per day"),
        "{text}"
    );
    assert!(
        text.contains("fewer than your minimum cohort of 3")
            && text.contains("kith settings set min-cohort 2"),
        "{text}"
    );
    ok(&dev.dir, &["settings", "set", "epsilon-per-day", "10"]);

    // The stranger is nobody's contact: its ask reaches no one and names no one.
    let lonely = json(
        &stranger.dir,
        &["ask", "tag:vehicle/subaru", "--timeout", "2"],
    );
    assert_eq!(lonely["asked"], 0);
    assert_eq!(lonely["named"].as_array().unwrap().len(), 0);

    // Chloe's audit log records Ana's question and what was disclosed.
    let audit = json(&chloe.dir, &["audit"]);
    let answered = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "answered")
        .expect("audited");
    assert_eq!(answered["peer_name"], "Ana");
    assert_eq!(answered["item"], "tag:vehicle/subaru");
    // Counted, in so many words, only where the aggregate was released.
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "counted" && e["peer_name"] == "Ana"),
        "{audit}"
    );

    // Bad input: one line, non-zero exit, no panic.
    for bad in [
        vec!["endorse", "car:subaru"],
        vec!["endorse", "tag:x", "--rating", "9"],
        vec!["accept", "KITH1XXXX"],
        vec![
            "policy",
            "set",
            "--contact",
            "Zed",
            "--items",
            "*",
            "--share",
            "name",
        ],
        vec![
            "policy",
            "set",
            "--circle",
            "friends",
            "--items",
            "*",
            "--share",
            "everything",
        ],
        vec!["ask", "isbn:123"],
        vec!["unendorse", "tag:not/there"],
    ] {
        let out = kith(&ana.dir, &bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad:?} should fail");
        assert_eq!(err.trim().lines().count(), 1, "{bad:?}: {err}");
        assert!(!err.contains("panicked"), "{bad:?}: {err}");
    }

    // Chloe's node crashes (SIGKILL: no goodbye to Ana) and comes back on the same address.
    // Ana's cached connection is dead; the next ask must notice and reconnect.
    #[cfg(unix)]
    let chloe = {
        let mut c = chloe;
        let addr = json(&c.dir, &["status"])["peer_addr"]
            .as_str()
            .unwrap()
            .to_string();
        c.child.kill().unwrap();
        c.child.wait().unwrap();
        let dir = c.dir.clone();
        drop(c);
        // Its log is kept, to say why if it does not come back (seen once in a fresh-clone
        // run; not reproduced since).
        let log_path = dir.join("restart.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(KITH)
            .arg("--data-dir")
            .arg(&dir)
            .args(["run", "--listen", &addr])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut d = Daemon { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !kith(&d.dir, &["status"]).status.success() {
            let exited = d.child.try_wait().unwrap();
            assert!(
                Instant::now() < deadline && exited.is_none(),
                "Chloe did not restart ({exited:?}): {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let again = json(&ana.dir, &["ask", "tag:vehicle/subaru/outback"]);
        assert_eq!(again["named"][0]["name"], "Chloe", "{again}");
        d
    };
    drop(chloe);

    // SIGTERM stops a daemon cleanly.
    #[cfg(unix)]
    {
        let mut d = stranger;
        let pid = d.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = d.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "clean exit on SIGTERM");
        assert!(!kith(&d.dir, &["status"]).status.success());
    }
}

/// `kith apps`: pair prints the code alone, list shows scope and use, revoke cuts it off;
/// bad scopes are one-line errors.
#[test]
fn apps_are_paired_listed_and_revoked_from_the_command_line() {
    let root = tempfile::tempdir().unwrap();
    let ana = start(root.path(), "ana");
    let code = ok(
        &ana.dir,
        &[
            "apps",
            "pair",
            "--name",
            "shop",
            "--scope",
            "ask:tag:vehicle/*",
            "--scope",
            "ask:isbn:*",
            "--daily-limit",
            "5",
        ],
    );
    assert_eq!(code.trim().lines().count(), 1, "the code alone: {code}");
    assert!(code.trim().starts_with("KITHAPP1"), "{code}");
    // The app redeems the code with the client library, at the address `status` gives.
    let api: std::net::SocketAddr = json(&ana.dir, &["status"])["api_addr"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let paired = runtime.block_on(kith_client::Client::pair(api, code.trim()));
    let (client, _credential, _) = paired.expect("paired");
    runtime.block_on(client.close());
    let list = json(&ana.dir, &["apps", "list"]);
    let app = &list["apps"][0];
    assert_eq!(app["name"], "shop");
    assert_eq!(
        app["scope"]["ask"],
        serde_json::json!(["tag:vehicle/*", "isbn:*"])
    );
    assert_eq!(app["scope"]["named"], false);
    assert_eq!(app["scope"]["daily_limit"], 5);
    assert!(app["revoked_at"].is_null());
    assert!(ok(&ana.dir, &["apps", "list"]).contains("shop"));
    ok(&ana.dir, &["apps", "revoke", "shop"]);
    let list = json(&ana.dir, &["apps", "list"]);
    assert!(list["apps"][0]["revoked_at"].is_u64(), "{list}");
    for bad in [
        vec!["apps", "pair", "--name", "x", "--scope", "tag:vehicle/*"],
        vec!["apps", "pair", "--name", "x", "--scope", "ask:tag:veh*cle"],
        vec![
            "apps",
            "pair",
            "--name",
            "x",
            "--scope",
            "ask:*",
            "--named",
            "--counts-only",
        ],
        vec!["apps", "revoke", "nobody"],
    ] {
        let out = kith(&ana.dir, &bad);
        assert!(!out.status.success(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{bad:?}: {err}");
    }
}
