//! The vertical slice over real nodes: invites, named answers, consent, strangers.

use std::time::Duration;

use kith_client::ClientError;
use kith_protocol::app::AppErrorCode;
use kith_protocol::frame::{encode_frame, MAX_PEER_FRAME};
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::*;
use kith_tests::{link, raw_peer, send_raw, TestNode};
use rand_core::OsRng;

fn item(s: &str) -> ItemKey {
    ItemKey::parse(s).unwrap()
}

#[tokio::test]
async fn four_friends_and_a_stranger() {
    let ana = TestNode::start("Ana").await;
    let chloe = TestNode::start("Chloe").await;
    let bruno = TestNode::start("Bruno").await;
    let dev = TestNode::start("Dev").await;
    let stranger = TestNode::start("Stranger").await;
    for friend in [&chloe, &bruno, &dev] {
        link(&ana, friend).await;
    }
    assert_eq!(ana.client.contacts().await.unwrap().len(), 3);
    let back = chloe.client.contacts().await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].name, "Ana");
    assert_eq!(back[0].circle, "friends");

    chloe
        .endorse(
            "tag:vehicle/subaru/outback",
            2,
            Some(5),
            Some("Great in snow"),
        )
        .await;
    bruno
        .endorse("tag:vehicle/subaru/forester", 1, None, None)
        .await;
    dev.endorse("isbn:0-441-01359-7", 1, Some(4), None).await;
    for friend in [&chloe, &bruno, &dev] {
        friend.share_with_friends("*", Share::Name).await;
    }

    let answer = ana
        .client
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(answer.asked, 3);
    assert_eq!(answer.answered, 3);
    let mut named: Vec<_> = answer
        .named
        .iter()
        .map(|n| {
            (
                n.name.as_str(),
                n.endorsement.item.to_string(),
                n.endorsement.count,
                n.endorsement.rating,
                n.endorsement.note.clone(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        vec![
            (
                "Bruno",
                "tag:vehicle/subaru/forester".to_string(),
                1,
                None,
                None
            ),
            (
                "Chloe",
                "tag:vehicle/subaru/outback".to_string(),
                2,
                Some(5),
                Some("Great in snow".to_string())
            ),
        ]
    );
    for n in &answer.named {
        n.verify().expect("endorser signature");
        assert!(n.node == chloe.id() || n.node == bruno.id());
    }

    // The stranger has nobody to ask...
    let lonely = stranger
        .client
        .ask(kith_client::Query::new(item("tag:vehicle/subaru")).timeout(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!((lonely.asked, lonely.named.len()), (0, 0));
    // ...and asking Chloe's node directly is refused, revealing nothing.
    let (_ep, conn) = raw_peer(&chloe, &stranger.identity()).await;
    let ask = encode_message(&PeerRequest::Ask(Query {
        query_id: QueryId([1; 16]),
        item: item("tag:vehicle/subaru"),
    }));
    let reply = send_raw(&conn, &encode_frame(&ask, MAX_PEER_FRAME).unwrap())
        .await
        .unwrap();
    assert_eq!(
        decode_message::<PeerResponse>(&reply).unwrap(),
        PeerResponse::Refused(Refusal::NotAContact)
    );

    // Each responder audited the query with what it disclosed; Dev disclosed nothing.
    let audit = chloe.client.audit(10).await.unwrap();
    assert!(audit.iter().any(|a| a.event == "answered"
        && a.peer_name.as_deref() == Some("Ana")
        && a.detail.contains("named tag:vehicle/subaru/outback")));
    let audit = dev.client.audit(10).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.event == "answered" && a.detail.starts_with("nothing")));
    assert!(!audit.iter().any(|a| a.detail.contains("Great in snow")));
}

#[tokio::test]
async fn refusals_look_exactly_like_owning_nothing() {
    let ana = TestNode::start("Ana").await;
    let shares = [Share::Count, Share::None, Share::Ask];
    let mut responders = Vec::new();
    for (i, share) in shares.iter().enumerate() {
        let r = TestNode::start(&format!("R{i}")).await;
        link(&ana, &r).await;
        r.endorse("tag:vehicle/subaru", 1, Some(5), Some("secret"))
            .await;
        r.share_with_friends("*", *share).await;
        responders.push(r);
    }
    let owns_nothing = TestNode::start("Nobody").await;
    link(&ana, &owns_nothing).await;
    owns_nothing.share_with_friends("*", Share::Name).await;
    responders.push(owns_nothing);

    // Ask each responder directly, as Ana, with the same query id: the bytes must match.
    let ana_id = ana.identity();
    let ask = encode_message(&PeerRequest::Ask(Query {
        query_id: QueryId([7; 16]),
        item: item("tag:vehicle"),
    }));
    let frame = encode_frame(&ask, MAX_PEER_FRAME).unwrap();
    let mut replies = Vec::new();
    for r in &responders {
        let (_ep, conn) = raw_peer(r, &ana_id).await;
        replies.push(send_raw(&conn, &frame).await.unwrap());
    }
    assert!(
        replies.windows(2).all(|w| w[0] == w[1]),
        "answers differ: {replies:?}"
    );
    let answer = ana
        .client
        .ask(kith_client::Query::new(item("tag:vehicle")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(
        (answer.asked, answer.answered, answer.named.len()),
        (4, 4, 0)
    );
}

#[tokio::test]
async fn invite_codes_are_single_use_and_errors_are_distinct() {
    let ana = TestNode::start("Ana").await;
    let bob = TestNode::start("Bob").await;
    let eve = TestNode::start("Eve").await;
    let invite = ana.client.create_invite(Some("work".into())).await.unwrap();
    let c = bob
        .client
        .accept_invite(invite.code.0.clone(), None)
        .await
        .unwrap();
    assert_eq!(c.name, "Ana");
    assert_eq!(ana.client.contacts().await.unwrap()[0].circle, "work");

    let code_of = |r: Result<_, ClientError>| match r {
        Err(ClientError::Node { code, .. }) => code,
        other => panic!("expected a node error, got {other:?}"),
    };
    assert_eq!(
        code_of(eve.client.accept_invite(invite.code.0.clone(), None).await),
        AppErrorCode::InviteUsed
    );
    assert_eq!(
        code_of(eve.client.accept_invite("KITH1NOTACODE".into(), None).await),
        AppErrorCode::InviteMalformed
    );
    let own = ana.client.create_invite(None).await.unwrap();
    assert_eq!(
        code_of(ana.client.accept_invite(own.code.0, None).await),
        AppErrorCode::BadRequest
    );

    // An expired invite, validly signed by Ana's key, is refused before any network use.
    let ana_id = ana.identity();
    let card = ContactCard::new(
        &ana_id,
        "Ana",
        vec![ana.peer_addr().to_string()],
        1_000,
        1 << 40,
    )
    .unwrap()
    .sign(&ana_id);
    let expired = Invite::generate(&mut OsRng, card.clone(), 1_000, 60);
    assert_eq!(
        code_of(eve.client.accept_invite(expired.to_code(), None).await),
        AppErrorCode::InviteExpired
    );
    // A well-formed invite Ana's node never issued.
    let unknown = Invite::generate(&mut OsRng, card, kith_node::unix_now(), 600);
    assert_eq!(
        code_of(eve.client.accept_invite(unknown.to_code(), None).await),
        AppErrorCode::InviteUnknown
    );
    assert_eq!(ana.client.contacts().await.unwrap().len(), 1);
}

#[tokio::test]
async fn restart_keeps_everything() {
    let ana = TestNode::start("Ana").await;
    let mut bob = TestNode::start("Bob").await;
    link(&ana, &bob).await;
    bob.endorse("tag:vehicle/subaru/outback", 2, Some(5), Some("snow"))
        .await;
    bob.share_with_friends("tag:vehicle/*", Share::Name).await;
    let first = ana
        .client
        .ask(kith_client::Query::new(item("tag:vehicle")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(first.named.len(), 1);
    let before = (
        bob.client.contacts().await.unwrap(),
        bob.client.endorsements().await.unwrap(),
        bob.client.policy().await.unwrap(),
        bob.client.audit(100).await.unwrap(),
    );
    let addr = bob.peer_addr();
    bob.restart(addr).await;
    let after = (
        bob.client.contacts().await.unwrap(),
        bob.client.endorsements().await.unwrap(),
        bob.client.policy().await.unwrap(),
        bob.client.audit(100).await.unwrap(),
    );
    assert_eq!(before, after);
    // Ana's cached connection died with Bob's old process; a new one is made.
    let again = ana
        .client
        .ask(kith_client::Query::new(item("tag:vehicle")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(again.named.len(), 1);
    assert_eq!(again.named[0].endorsement, first.named[0].endorsement);
}

#[tokio::test]
async fn a_contact_cannot_move_itself_to_another_circle() {
    let ana = TestNode::start("Ana").await;
    let bob = TestNode::start("Bob").await;
    let first = ana
        .client
        .create_invite(Some("acquaintances".into()))
        .await
        .unwrap();
    bob.client.accept_invite(first.code.0, None).await.unwrap();
    // Bob obtains a second code meant for close friends and redeems it too.
    let second = ana
        .client
        .create_invite(Some("close".into()))
        .await
        .unwrap();
    bob.client.accept_invite(second.code.0, None).await.unwrap();
    let contacts = ana.client.contacts().await.unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].circle, "acquaintances");
    // Bob's own explicit choice does move Ana.
    let third = ana.client.create_invite(None).await.unwrap();
    bob.client
        .accept_invite(third.code.0, Some("family".into()))
        .await
        .unwrap();
    assert_eq!(bob.client.contacts().await.unwrap()[0].circle, "family");
}
