//! Consent `ask` over real nodes (spec §8.5): the answer looks like `count`, the owner is
//! asked, an approval delivers a signed endorsement the asker records as an update, a
//! denial sends nothing, and deliveries for asks that never happened are refused.

use std::time::Duration;

use kith_client::ClientError;
use kith_protocol::app::{AppErrorCode, PendingStatus};
use kith_protocol::endorsement::STATEMENT_VERSION;
use kith_protocol::frame::{encode_frame, MAX_PEER_FRAME};
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::*;
use kith_tests::{link, raw_peer, send_raw, TestNode};

/// Pending requests are recorded just after the reply (spec §8.5.1); wait for them, bounded.
async fn pending_of(node: &TestNode, count: usize) -> Vec<kith_protocol::app::PendingRequest> {
    for _ in 0..200 {
        let p = node.client.pending().await.unwrap();
        if p.len() >= count {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} pending request(s) never appeared", count);
}

#[tokio::test]
async fn approve_delivers_deny_does_not() {
    let ana = TestNode::start("Ana").await;
    let bob = TestNode::start("Bob").await;
    let cleo = TestNode::start("Cleo").await;
    for f in [&bob, &cleo] {
        link(&ana, f).await;
        f.share_with_friends("tag:vehicle/*", Share::Ask).await;
    }
    bob.endorse("tag:vehicle/subaru/outback", 2, Some(5), Some("ask me"))
        .await;
    cleo.endorse("tag:vehicle/subaru/forester", 1, None, None)
        .await;

    let asked = ana
        .client
        .ask(
            kith_client::Query::new(ItemKey::parse("tag:vehicle/subaru").unwrap())
                .timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert!(
        asked.named.is_empty(),
        "ask behaves like count until approved"
    );
    assert!(ana.client.updates(None).await.unwrap().is_empty());

    let pending = pending_of(&bob, 1).await;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].asker_name.as_str(), pending[0].status.as_str()),
        ("Ana", "pending")
    );
    assert_eq!(pending[0].query_id, asked.query_id);
    let approved = bob.client.approve(pending[0].id).await.unwrap();
    assert_eq!(approved.status, PendingStatus::Approved);
    match bob.client.approve(pending[0].id).await {
        Err(ClientError::Node {
            code: AppErrorCode::Conflict,
            ..
        }) => {}
        other => panic!("second approval must conflict: {other:?}"),
    }

    let cleo_req = pending_of(&cleo, 1).await;
    assert_eq!(
        cleo.client.deny(cleo_req[0].id).await.unwrap().status,
        PendingStatus::Denied
    );

    let updates = ana.client.updates(Some(asked.query_id)).await.unwrap();
    assert_eq!(
        updates.len(),
        1,
        "Bob's approval arrived; Cleo's denial sent nothing"
    );
    let u = &updates[0];
    assert_eq!(u.named.name, "Bob");
    assert_eq!(
        u.named.endorsement.item.to_string(),
        "tag:vehicle/subaru/outback"
    );
    assert_eq!(u.named.endorsement.note.as_deref(), Some("ask me"));
    let st = u.named.verify().expect("endorser's signature");
    assert_eq!((st.audience, st.query_id), (ana.id(), asked.query_id));
}

#[tokio::test]
async fn deliveries_for_asks_that_never_happened_are_refused() {
    let ana = TestNode::start("Ana").await;
    let mallory = TestNode::start("Mallory").await;
    link(&ana, &mallory).await;
    let m = mallory.identity();
    let statement = EndorsementStatement {
        version: STATEMENT_VERSION,
        endorser: m.node_id(),
        audience: ana.id(),
        query_id: QueryId([9; 16]),
        endorsement: Endorsement::new(ItemKey::parse("tag:spam").unwrap(), 1, Some(5), None, 0)
            .unwrap(),
        issued_at: 0,
    };
    let (_ep, conn) = raw_peer(&ana, &m).await;
    let frame = encode_frame(
        &encode_message(&PeerRequest::Deliver(statement.sign(&m))),
        MAX_PEER_FRAME,
    )
    .unwrap();
    let reply = send_raw(&conn, &frame).await.unwrap();
    assert_eq!(
        decode_message::<PeerResponse>(&reply).unwrap(),
        PeerResponse::Refused(Refusal::Malformed)
    );
    assert!(ana.client.updates(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_approval_that_cannot_be_delivered_stays_pending() {
    let mut ana = TestNode::start("Ana").await;
    let bob = TestNode::start("Bob").await;
    link(&ana, &bob).await;
    bob.share_with_friends("*", Share::Ask).await;
    bob.endorse("tag:book/dune", 1, Some(5), None).await;
    ana.client
        .ask(
            kith_client::Query::new(ItemKey::parse("tag:book").unwrap())
                .timeout(Duration::from_secs(3)),
        )
        .await
        .unwrap();
    let id = pending_of(&bob, 1).await[0].id;
    ana.stop().await;
    match bob.client.approve(id).await {
        Err(ClientError::Node {
            code: AppErrorCode::Unreachable,
            ..
        }) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(
        bob.client.pending().await.unwrap()[0].status,
        PendingStatus::Pending
    );
    assert_eq!(
        bob.client.deny(id).await.unwrap().status,
        PendingStatus::Denied
    );
}
