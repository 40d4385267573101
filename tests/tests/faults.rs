//! Faults on real nodes (issue: proof under faults): responders dying at every round,
//! slow responders past the deadline, a cohort shrinking below its threshold, an asker
//! killed mid-query, and a node process killed while writing.
//!
//! Run: `cargo test -p kith-tests --test faults`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kith_node::store::Store;
use kith_node::{DataDir, Node, NodeOptions};
use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::messages::{AbortReason, AggResponse};
use kith_protocol::app::SubjectRef;
use kith_protocol::frame::MAX_PEER_FRAME;
use kith_protocol::wire::decode_message;
use kith_protocol::{ItemKey, ItemPattern, NodeId, PeerResponse, QueryId, Share};
use kith_tests::stand_in::{Death, StandIn};
use kith_tests::{raw_asker, raw_peer, TestNode};

fn item(s: &str) -> ItemKey {
    ItemKey::parse(s).unwrap()
}

/// A responder keeps an aggregation's secrets this long in these tests.
const SHORT_LIFETIME: Duration = Duration::from_secs(2);

/// An asker and `n` contacts with noise off, whose responder sessions last `lifetime`.
async fn federation(n: usize, lifetime: Duration) -> (TestNode, Vec<TestNode>) {
    let options = NodeOptions {
        session_lifetime: lifetime,
        ..NodeOptions::default()
    };
    kith_tests::federation(n, options).await
}

/// Wait (bounded) until no member holds an aggregation's secrets.
async fn all_wiped(members: &[&TestNode], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if members.iter().all(|m| m.node().open_aggregations() == 0) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn owner(units: u32) -> Contribution {
    Contribution {
        owns: true,
        units,
        best_rating: None,
    }
}

/// One member dies at each round, 0 to 4, some by closing (a killed process), some by
/// falling silent past the round's deadline (a slow or cut-off machine). Those gone
/// before sending their masked input (rounds 0–2) are out of the sum; those gone after
/// (rounds 3–4) are in it, their masks rebuilt from the others' shares.
#[tokio::test]
async fn responders_dying_at_every_round_leave_the_sum_exact() {
    // Two silent rounds of 1 s each: sessions must outlive them.
    let (ana, mut friends) = federation(16, Duration::from_secs(30)).await;
    for f in &friends[5..8] {
        f.endorse("tag:vehicle/subaru", 1, None, None).await;
    }
    let deaths = [
        (0, Death::Close),
        (1, Death::Silence),
        (2, Death::Close),
        (3, Death::Silence),
        (4, Death::Close),
    ];
    let mut dying = Vec::new();
    for (i, (round, death)) in deaths.into_iter().enumerate() {
        let units = round as u32 + 1;
        dying.push(StandIn::dying(&mut friends[i], owner(units), round, death).await);
    }
    let r = ana
        .client
        .ask(
            kith_client::Query::new(item("tag:vehicle/subaru"))
                .timeout(Duration::from_secs(5))
                .detail(),
        )
        .await
        .unwrap();
    for d in &dying {
        assert!(d.died_within(Duration::from_secs(1)).await);
    }
    // Cohort: 15 advertised; 13 sent their masked input; t = 11 of 15.
    assert_eq!((r.asked, r.cohort, r.survivors), (16, 15, 13), "{r:?}");
    let sum = r
        .aggregate
        .unwrap_or_else(|| panic!("11 unmaskers remain for t = 11: {r:?}"));
    assert_eq!(
        sum.owners,
        3 + 2,
        "three live owners and the two that died after masking"
    );
    assert_eq!(sum.units, Some(3 + 4 + 5));
    // Finished sessions are wiped at once.
    let live: Vec<&TestNode> = friends[5..].iter().collect();
    assert!(all_wiped(&live, Duration::from_secs(3)).await);
}

/// Members dying after sharing leave fewer survivors than the threshold: the aggregate is
/// withheld, nothing partial is released, and the rest wipe their secrets by the deadline.
#[tokio::test]
async fn a_cohort_shrinking_below_the_threshold_is_withheld() {
    let (ana, mut friends) = federation(8, SHORT_LIFETIME).await;
    for f in &friends[3..] {
        f.endorse("tag:vehicle/subaru", 1, None, None).await;
    }
    let mut dying = Vec::new();
    for f in &mut friends[..3] {
        dying.push(StandIn::dying(f, owner(1), 2, Death::Close).await);
    }
    let r = ana
        .client
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(r.cohort, 8, "{r:?}");
    assert!(r.aggregate.is_none(), "{r:?}");
    let why = r.withheld.expect("withheld, with a reason");
    assert!(
        why.contains('5') && why.contains('6'),
        "5 survivors of the 6 needed: {why}"
    );
    let live: Vec<&TestNode> = friends[3..].iter().collect();
    assert!(all_wiped(&live, SHORT_LIFETIME + Duration::from_secs(3)).await);
}

/// An asker killed after round 1: its contacts hold secrets only until their deadline,
/// then wipe them, and the round-2 request it would have sent is refused afterwards.
#[tokio::test]
async fn an_asker_killed_mid_query_leaves_nothing_behind() {
    let (ana, friends) = federation(5, SHORT_LIFETIME).await;
    for f in &friends {
        f.endorse("tag:vehicle/subaru", 1, None, None).await;
    }
    let members: Vec<&TestNode> = friends.iter().collect();
    let unsent = raw_asker::ask_until(
        &ana.identity(),
        &members,
        &item("tag:vehicle/subaru"),
        QueryId([7; 16]),
        2,
    )
    .await;
    assert_eq!(unsent.len(), 5, "round 2 was due for every member");
    for m in &members {
        assert_eq!(
            m.node().open_aggregations(),
            1,
            "{} holds the session",
            m.name
        );
    }
    assert!(all_wiped(&members, SHORT_LIFETIME + Duration::from_secs(3)).await);
    // The asker comes back and sends round 2 late: refused, nothing is revealed.
    let late = &unsent[0];
    let target = members.iter().find(|m| m.id() == late.to).unwrap();
    let (_endpoint, conn) = raw_peer(target, &ana.identity()).await;
    let reply =
        kith_client::transport::exchange(&conn, &late.payload, MAX_PEER_FRAME, MAX_PEER_FRAME)
            .await
            .unwrap();
    assert_eq!(
        decode_message::<PeerResponse>(&reply).unwrap(),
        PeerResponse::Aggregate(AggResponse::Abort(AbortReason::UnexpectedRound))
    );
    for m in &members {
        let answered = m.client.audit(50).await.unwrap();
        assert_eq!(
            answered.iter().filter(|e| e.event == "answered").count(),
            1,
            "{}: one ask, one audit entry",
            m.name
        );
    }
}

/// Where the crash child writes, and that it should run.
const CRASH_DIR: &str = "KITH_CRASH_DIR";

/// Not a test on its own: the child process of
/// `a_node_killed_while_writing_loses_nothing`. It runs a node and writes endorsements,
/// consent rules and audit entries (asks) through the app API as fast as it can, printing
/// `ack <kind> <i>` after the node confirmed each, until it is killed.
#[test]
#[ignore = "run by a_node_killed_while_writing_loses_nothing"]
fn crash_child_writes_until_killed() {
    let Some(root) = std::env::var_os(CRASH_DIR) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let dir = DataDir::new(root);
        let node = Node::start(&dir, None).await.unwrap();
        let client = kith_client::Client::connect_with(&dir.load_owner_credential().unwrap())
            .await
            .unwrap();
        for i in 0..100_000u32 {
            let item = item(&format!("tag:crash/{i}"));
            client
                .endorse(item.clone(), i % 5 + 1, None, None)
                .await
                .unwrap();
            println!("ack endorse {i}");
            if i % 3 == 0 {
                client
                    .set_policy(
                        SubjectRef::Circle("friends".into()),
                        ItemPattern::parse(&format!("tag:crash/{i}")).unwrap(),
                        Share::Name,
                    )
                    .await
                    .unwrap();
                println!("ack policy {i}");
            }
            client
                .ask(kith_client::Query::new(item).timeout(Duration::from_millis(100)))
                .await
                .unwrap();
            println!("ack ask {i}");
        }
        drop(node);
    });
}

/// A node process killed with SIGKILL in the middle of writing: after a restart every
/// write it confirmed is there, whole, and the database passes SQLite's integrity check.
#[test]
fn a_node_killed_while_writing_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = DataDir::new(tmp.path().join("node"));
    kith_node::init(&dir, "Crashy", "127.0.0.1:0".parse().unwrap(), vec![]).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_writes_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CRASH_DIR, &dir.root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = (Vec::new(), Vec::new(), 0usize);
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines {
        let line = line.unwrap();
        let mut words = line.split_whitespace();
        match (
            words.next(),
            words.next(),
            words.next().and_then(|w| w.parse::<u32>().ok()),
        ) {
            (Some("ack"), Some("endorse"), Some(i)) => acked.0.push(i),
            (Some("ack"), Some("policy"), Some(i)) => acked.1.push(i),
            (Some("ack"), Some("ask"), Some(_)) => acked.2 += 1,
            _ => {}
        }
        // Kill it mid-stream, at a point that varies from run to run.
        if acked.0.len() >= 40 + (std::process::id() % 20) as usize || Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(acked.0.len() >= 40, "the child wrote: {acked:?}");

    let store = Store::open(&dir.database()).unwrap();
    store.integrity_check().unwrap();
    let shelf = store.endorsements().unwrap();
    for i in &acked.0 {
        let e = shelf
            .iter()
            .find(|e| e.item.to_string() == format!("tag:crash/{i}"))
            .unwrap_or_else(|| panic!("confirmed endorsement {i} lost"));
        assert_eq!(e.count, i % 5 + 1);
    }
    let policy = store.policy().unwrap();
    for i in &acked.1 {
        let share = policy.evaluate(
            &NodeId([9; 32]),
            "friends",
            &item(&format!("tag:crash/{i}")),
        );
        assert_eq!(share, Share::Name, "confirmed consent rule {i} lost");
    }
    let asked = store
        .audit_log(100_000)
        .unwrap()
        .iter()
        .filter(|e| e.event == "asked")
        .count();
    assert!(
        asked >= acked.2,
        "{asked} asks audited, {} confirmed",
        acked.2
    );
    drop(store);

    // And the node itself starts from what the crash left.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let node = Node::start(&dir, None).await.unwrap();
        let client = kith_client::Client::connect_with(&dir.load_owner_credential().unwrap())
            .await
            .unwrap();
        assert_eq!(client.endorsements().await.unwrap().len(), shelf.len());
        node.shutdown().await;
    });
}

/// An answer that cannot be recorded (a full disk, here a trigger that fails the insert) is
/// not given: the budget counts `answered` entries, so an answer given without one would
/// not be counted and the budget would fail open. Both paths: the named `Ask` and an
/// aggregation's `Advertise`.
#[tokio::test]
async fn an_answer_that_cannot_be_recorded_is_not_given() {
    let ana = TestNode::start("Ana").await;
    let mut bo = TestNode::start("Bo").await;
    kith_tests::link(&ana, &bo).await;
    bo.endorse("tag:x", 1, None, None).await;
    bo.share_with_friends("*", Share::Name).await;
    let listen = bo.peer_addr();
    bo.stop().await;
    rusqlite::Connection::open(bo.dir.database())
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER disk_full BEFORE INSERT ON audit WHEN NEW.event = {}
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            kith_node::store::Event::Answered.code()
        ))
        .unwrap();
    bo.restart(listen).await;

    let (_endpoint, conn) = raw_peer(&bo, &ana.identity()).await;
    let ask = kith_protocol::PeerRequest::Ask(kith_protocol::Query {
        query_id: QueryId([7; 16]),
        item: item("tag:x"),
    });
    let frame =
        kith_protocol::encode_frame(&kith_protocol::encode_message(&ask), MAX_PEER_FRAME).unwrap();
    let reply = kith_tests::send_raw(&conn, &frame).await.unwrap();
    assert_eq!(
        decode_message::<PeerResponse>(&reply).unwrap(),
        PeerResponse::Refused(kith_protocol::Refusal::Internal)
    );

    let asked = ana
        .client
        .ask_with_epsilon(item("tag:x"), Duration::from_secs(5), None)
        .await
        .unwrap();
    assert!(asked.named.is_empty(), "{asked:?}");
    assert_eq!(asked.declined.len(), 1, "{asked:?}");
    assert_eq!(
        asked.declined[0].reason,
        kith_protocol::app::DeclineReason::Refused
    );
    assert!(bo
        .client
        .audit(100)
        .await
        .unwrap()
        .iter()
        .all(|e| e.event != "answered"));
}

/// A node shutting down stops every connection's task at once (the router's cancellation
/// token, and the endpoint's close), so a stranger's idle connection, which a running node
/// gives 10 s to open its stream, cannot keep the port bound: the node restarts on it at
/// once.
#[tokio::test]
async fn shutdown_is_not_held_by_an_idle_stranger() {
    let mut ana = TestNode::start("Ana").await;
    let listen = ana.peer_addr();
    let stranger = kith_protocol::Identity::generate(&mut rand_core::OsRng);
    // Connected, and never opening its one stream.
    let (_endpoint, _conn) = raw_peer(&ana, &stranger).await;
    let started = Instant::now();
    ana.stop().await;
    let stopped_in = started.elapsed();
    assert!(
        std::net::UdpSocket::bind(listen).is_ok(),
        "port still bound after shutdown"
    );
    assert!(
        stopped_in < Duration::from_secs(5),
        "shutdown took {stopped_in:?}"
    );
    ana.restart(listen).await;
    assert_eq!(
        ana.client.status().await.unwrap().peer_addr,
        listen.to_string()
    );
}
