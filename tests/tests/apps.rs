//! Paired apps over real QUIC (spec §10.5): pairing codes are single use, the node enforces
//! each app's scope — items, names, daily limit, owner-only requests — audits every app
//! request under the app's name, and a revocation cuts an open connection at once.

use std::time::Duration;

use kith_client::{Client, ClientError};
use kith_protocol::app::AppScope;
use kith_protocol::{ItemKey, ItemPattern, Share};
use kith_tests::{link, TestNode};

fn item(s: &str) -> ItemKey {
    ItemKey::parse(s).unwrap()
}

fn scope(patterns: &[&str], named: bool, daily_limit: Option<u32>) -> AppScope {
    AppScope {
        ask: patterns
            .iter()
            .map(|p| ItemPattern::parse(p).unwrap())
            .collect(),
        named,
        daily_limit,
    }
}

/// Ana and five contacts; Bruno names his Outback to friends, the rest own nothing.
async fn federation() -> (TestNode, Vec<TestNode>) {
    let ana = TestNode::start("Ana").await;
    let mut friends = Vec::new();
    for i in 0..5 {
        let f = TestNode::start(&format!("F{i}")).await;
        link(&ana, &f).await;
        friends.push(f);
    }
    friends[0]
        .endorse("tag:vehicle/subaru/outback", 1, Some(5), None)
        .await;
    friends[0].share_with_friends("*", Share::Name).await;
    (ana, friends)
}

#[tokio::test]
async fn a_counts_only_app_asks_within_its_scope_and_limit() {
    let (ana, _friends) = federation().await;
    let api = ana.node().api_addr();
    let pairing = ana
        .client
        .create_pairing("shop", scope(&["tag:vehicle/*"], false, Some(2)))
        .await
        .unwrap();
    let (shop, credential, info) = Client::pair(api, &pairing.code.0).await.unwrap();
    assert_eq!(info.name, "shop");
    assert_eq!(credential.node, ana.id());

    // The code is single use.
    let again = Client::pair(api, &pairing.code.0).await;
    assert!(
        matches!(&again, Err(ClientError::PairingRefused(m)) if m.contains("already used")),
        "{again:?}"
    );

    // In scope: the aggregate, but never a name.
    let r = shop
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(r.answered, 5);
    assert!(r.named.is_empty(), "a counts-only app receives no names");
    // The owner, asking the same, sees Bruno's name.
    let owner = ana
        .client
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(owner.named.len(), 1);

    // Out of scope, and owner-only requests.
    let book = shop
        .ask(kith_client::Query::new(item("isbn:9780141439518")).timeout(Duration::from_secs(5)))
        .await;
    assert!(matches!(book, Err(ClientError::OutOfScope(_))), "{book:?}");
    let shelf = shop.endorsements().await;
    assert!(matches!(shelf, Err(ClientError::Unauthorized)), "{shelf:?}");
    let updates = shop.updates(None).await;
    assert!(
        matches!(updates, Err(ClientError::OutOfScope(_))),
        "{updates:?}"
    );
    let status = shop.status().await.unwrap();
    assert_eq!((status.contacts, status.endorsements), (0, 0));

    // The daily limit: one more ask, then refused.
    shop.ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    let third = shop
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await;
    assert!(
        matches!(third, Err(ClientError::RateLimited(_))),
        "{third:?}"
    );

    // The owner sees the app, its use, and every request in the audit log.
    let apps = ana.client.apps().await.unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!((apps[0].asks_24h, apps[0].revoked_at), (2, None));
    let audit = ana.client.audit(200).await.unwrap();
    let by_shop: Vec<&str> = audit
        .iter()
        .filter(|e| e.peer_name.as_deref() == Some("shop"))
        .map(|e| e.event.as_str())
        .collect();
    assert_eq!(by_shop.iter().filter(|e| **e == "app-ask").count(), 2);
    assert!(by_shop.iter().filter(|e| **e == "app-denied").count() >= 4);

    // Revocation cuts the open connection, and the credential is refused from then on.
    ana.client.revoke_app("shop").await.unwrap();
    let after = shop
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await;
    assert!(matches!(after, Err(ClientError::Revoked)), "{after:?}");
    let reconnect = Client::connect(api, &credential)
        .await
        .unwrap()
        .status()
        .await;
    assert!(
        matches!(reconnect, Err(ClientError::Revoked)),
        "{reconnect:?}"
    );
    let gone = ana.client.revoke_app("shop").await;
    assert!(gone.is_err(), "already revoked");
}

#[tokio::test]
async fn a_named_app_gets_names_and_bad_codes_are_refused() {
    let (ana, _friends) = federation().await;
    let api = ana.node().api_addr();
    let pairing = ana
        .client
        .create_pairing("garage", scope(&["tag:vehicle/*"], true, None))
        .await
        .unwrap();
    let (garage, _, _) = Client::pair(api, &pairing.code.0).await.unwrap();
    let r = garage
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(r.named.len(), 1, "a named app sees names");
    r.named[0].verify().unwrap();

    // A node restart is not an app crash: the next request reconnects.
    let mut ana = ana;
    let addr = ana.peer_addr();
    ana.restart(addr).await;
    let again = garage
        .status()
        .await
        .expect("reconnected after the restart");
    assert_eq!(again.node_id, ana.id());

    // A malformed code, and a code for another node.
    let bad = Client::pair(api, "KITHAPP1AAAA").await;
    assert!(
        matches!(bad, Err(ClientError::PairingRefused(_))),
        "{bad:?}"
    );
    let other = TestNode::start("Zed").await;
    let foreign = other
        .client
        .create_pairing("x", scope(&["*"], false, None))
        .await
        .unwrap();
    let wrong = Client::pair(api, &foreign.code.0).await;
    assert!(wrong.is_err(), "a code pins its own node's key: {wrong:?}");
    // A second live app cannot take the same name.
    let twin = ana
        .client
        .create_pairing("garage", scope(&["*"], false, None))
        .await
        .unwrap();
    let taken = Client::pair(api, &twin.code.0).await;
    assert!(
        matches!(&taken, Err(ClientError::PairingRefused(m)) if m.contains("name")),
        "{taken:?}"
    );
    // An empty scope is refused up front.
    let empty = ana
        .client
        .create_pairing("nothing", scope(&[], false, None))
        .await;
    assert!(empty.is_err());
}

/// The update stream of an answer delivers a contact's later approval to the app that
/// asked (spec §8.5, §10.5).
#[tokio::test]
async fn an_app_follows_its_answer_and_receives_a_late_approval() {
    let ana = TestNode::start("Ana").await;
    let bob = TestNode::start("Bob").await;
    link(&ana, &bob).await;
    bob.share_with_friends("tag:vehicle/*", Share::Ask).await;
    bob.endorse("tag:vehicle/subaru/outback", 2, Some(5), None)
        .await;
    let pairing = ana
        .client
        .create_pairing("garage", scope(&["tag:vehicle/*"], true, None))
        .await
        .unwrap();
    let (garage, _, _) = Client::pair(ana.node().api_addr(), &pairing.code.0)
        .await
        .unwrap();
    let r = garage
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert!(
        r.named.is_empty(),
        "`ask` consent answers like `count` at first"
    );
    let mut updates = garage.follow_every(r.query_id, Duration::from_millis(50));

    let mut pending = Vec::new();
    for _ in 0..200 {
        pending = bob.client.pending().await.unwrap();
        if !pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pending.len(), 1, "Bob was asked to approve");
    bob.client.approve(pending[0].id).await.unwrap();

    let update = tokio::time::timeout(Duration::from_secs(10), updates.next())
        .await
        .expect("the approval arrives within 10 s")
        .unwrap();
    assert_eq!(update.query_id, r.query_id);
    assert_eq!(update.named.name, "Bob");
    update.named.verify().unwrap();
    // Each update is yielded once.
    let again = tokio::time::timeout(Duration::from_millis(300), updates.next()).await;
    assert!(again.is_err(), "no second copy of the same update");
}

/// Concurrent asks cannot overrun an app's daily limit: the count and the charge are one
/// transaction (spec §10.5).
#[tokio::test]
async fn concurrent_asks_cannot_overrun_the_daily_limit() {
    let (ana, _friends) = federation().await;
    let pairing = ana
        .client
        .create_pairing("burst", scope(&["tag:vehicle/*"], false, Some(2)))
        .await
        .unwrap();
    let (app, _, _) = Client::pair(ana.node().api_addr(), &pairing.code.0)
        .await
        .unwrap();
    let ask = || {
        app.ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
    };
    let results = tokio::join!(ask(), ask(), ask(), ask(), ask(), ask());
    let all = [
        results.0, results.1, results.2, results.3, results.4, results.5,
    ];
    let passed = all.iter().filter(|r| r.is_ok()).count();
    let limited = all
        .iter()
        .filter(|r| matches!(r, Err(ClientError::RateLimited(_))))
        .count();
    assert_eq!((passed, limited), (2, 4), "{all:?}");
}

/// The peer endpoint does not serve the owner/app API (spec §10.1): the owner's own
/// credential, pointed at the peer address, is refused there; at the API address it works.
#[tokio::test]
async fn the_peer_address_does_not_serve_the_api() {
    let ana = TestNode::start("Ana").await;
    let mut credential = ana.dir.load_owner_credential().unwrap();
    assert_ne!(credential.api_addr, ana.peer_addr());
    assert!(credential.api_addr.ip().is_loopback());
    credential.api_addr = ana.peer_addr();
    let refused = match Client::connect_with(&credential).await {
        Ok(c) => c.status().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(refused.is_err(), "the API answered on the peer port");
    assert!(ana.client.status().await.is_ok());
}
