//! Attacks on real nodes over QUIC on 127.0.0.1 (issue: proof under attack). Each attack is
//! either refused with a typed error, or — where the protocol allows it by design — the
//! test shows exactly what it achieves, as spec §11 says.
//!
//! Run: `cargo test -p kith-tests --test adversarial`.
//!
//! | attacker | attack | outcome | spec |
//! | --- | --- | --- | --- |
//! | asker | survivor list that differs between members | the deceived member's signature fails; it reveals nothing; no mask-key share is ever released | §9.8.2, §11.13 |
//! | asker | a member twice in the roster, a neighbour's advertisement twice, one signer twice in round 4 | `Abort(Inconsistent)`, nothing revealed | §9.8.2 |
//! | asker | replayed round messages, within and across sessions | exact retry: the stored reply, no new work; otherwise `Abort(UnexpectedRound)` or `Abort(Inconsistent)` | §9.8.2, §11.3 |
//! | asker | over `asks-per-day`, or more than 4 sessions open | `Abort(RateLimited)` (plain `Ask`: `Refused(RateLimited)`); one audit entry per 10 minutes | §9.10, §11.9 |
//! | contact | a ninth connection from one key | its oldest is closed (`0x00`, `too many connections for this key`); at most 8 stay | §4.4 |
//! | responder | shares that do not open | its neighbours abort: the victims drop out, or the aggregate is withheld | §11.15 |
//! | responder | shares of the wrong length | left out by the asker in round 1; the sum stays exact | §9.8.4 |
//! | responder | bad advertisement or consistency signature | left out of the cohort / of round 4; the sum stays exact | §9.8.4 |
//! | responder | masked vector of the wrong length; incomplete unmask reply | left out; the sum stays exact | §9.8.4, §9.8.5 |
//! | responder | inflated input | moves the sum by exactly what it added, undetected (no range proofs) | §11.15 |
//! | stranger | asks, aggregates | `Refused(NotAContact)`, connection closed | §4.3 |
//! | app | unknown, mis-pinned or revoked credential | `NotPaired` / handshake failure / `Revoked` | §10.1 |
//! | anyone | tampered, truncated, oversized, garbage frames | `Refused(Malformed)` or `Refused(UnsupportedVersion)`; the node keeps serving | §5.1 |
//! | anyone | garbage UDP datagrams | dropped by QUIC; the node keeps serving | §4.4 |
//! | anyone | QUIC DATAGRAM frames | not advertised, so refused by the sender's own stack; a frame sent anyway breaks the connection | §4.1, §4.4 |

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kith_client::ClientError;
use kith_node::NodeOptions;
use kith_protocol::aggregation::estimate::AggregateSum;
use kith_protocol::aggregation::input::Contribution;
use kith_protocol::aggregation::messages::{AbortReason, AggRequest, AggResponse};
use kith_protocol::frame::{encode_frame, MAX_PEER_FRAME};
use kith_protocol::wire::{decode_message, encode_message};
use kith_protocol::*;
use kith_tests::raw_asker::{self, Intercept, RawAsk, Seen};
use kith_tests::stand_in::StandIn;
use kith_tests::{raw_peer, send_raw, TestNode};
use rand_core::OsRng;

const ITEM: &str = "tag:vehicle/subaru";

fn item(s: &str) -> ItemKey {
    ItemKey::parse(s).unwrap()
}

/// Ana and seven contacts (default minimum cohort 5, so t = 5 of 7); F1..F3 own one unit
/// each of [`ITEM`].
async fn seven() -> (TestNode, Vec<TestNode>) {
    let (ana, friends) = kith_tests::federation(7, NodeOptions::default()).await;
    for f in &friends[1..4] {
        f.endorse(ITEM, 1, None, None).await;
    }
    (ana, friends)
}

/// An exact aggregate (noise is off in these federations), asked with detail.
fn sum(owners: u32, units: u32) -> AggregateSum {
    AggregateSum {
        owners,
        owners_low: owners,
        owners_high: owners,
        units: Some(units),
        ratings: Some([0; 5]),
    }
}

fn aborted(reason: AbortReason) -> Result<PeerResponse, String> {
    Ok(PeerResponse::Aggregate(AggResponse::Abort(reason)))
}

/// A raw ask by Ana among `friends`, every request passed through `hook`.
async fn raw_ask(
    ana: &TestNode,
    friends: &[TestNode],
    query: u8,
    hook: impl FnMut(&Seen, &NodeId, &mut AggRequest) -> Intercept,
) -> RawAsk {
    let members: Vec<&TestNode> = friends.iter().collect();
    raw_asker::ask_with(
        &ana.identity(),
        &members,
        &item(ITEM),
        QueryId([query; 16]),
        hook,
    )
    .await
}

fn honest(_: &Seen, _: &NodeId, _: &mut AggRequest) -> Intercept {
    Intercept::Send
}

/// The reply `to` sent in `round`.
fn reply_of(ask: &RawAsk, to: &NodeId, round: u8) -> Result<PeerResponse, String> {
    ask.seen
        .log
        .iter()
        .find(|e| e.to == *to && e.round == round)
        .unwrap_or_else(|| panic!("no round-{round} exchange with {}", to.short()))
        .reply
        .clone()
}

/// The request body sent to `to` in `round`.
fn request_to(ask: &RawAsk, to: &NodeId, round: u8) -> Vec<u8> {
    ask.seen
        .log
        .iter()
        .find(|e| e.to == *to && e.round == round)
        .expect("request sent")
        .request
        .clone()
}

/// A framed plain `Ask` for `ITEM` with query id `[q; 16]`.
fn ask_frame(q: u8) -> Vec<u8> {
    let r = PeerRequest::Ask(Query {
        query_id: QueryId([q; 16]),
        item: item(ITEM),
    });
    encode_frame(&encode_message(&r), MAX_PEER_FRAME).unwrap()
}

/// A framed `Advertise` for `ITEM` with query id `[q; 16]`, no ε, owners only.
fn advertise_frame(q: u8) -> Vec<u8> {
    let r = PeerRequest::Aggregate(AggRequest::Advertise {
        query_id: QueryId([q; 16]),
        item: item(ITEM),
        epsilon: None,
        detail: false,
    });
    encode_frame(&encode_message(&r), MAX_PEER_FRAME).unwrap()
}

/// Send `frame` on `conn` and decode the reply.
async fn exchange(conn: &quinn::Connection, frame: &[u8]) -> PeerResponse {
    decode_message::<PeerResponse>(&send_raw(conn, frame).await.unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// A malicious asker, built on kith-protocol's own `AggAsker`.
// ---------------------------------------------------------------------------------------

/// The asker tells F0 that F6 dropped out while telling everyone else it survived, hoping
/// to collect F6's mask-key share from F0 and its self-mask share from the rest (which
/// together would unmask F6's input). F0 signs the list it was shown; that signature does
/// not verify over the others' list, and the others' signatures do not verify over F0's,
/// so F0 reveals nothing at all and the others reveal only self-mask shares.
#[tokio::test]
async fn an_asker_lying_about_survivors_learns_nothing_more() {
    let (ana, friends) = seven().await;
    let (f0, f6) = (friends[0].id(), friends[6].id());
    let ask = raw_ask(&ana, &friends, 1, |seen, to, r| {
        if matches!(r, AggRequest::Close { .. }) {
            // Keep F0's session open, to show it below the round-4 request it never got.
            return Intercept::Hold;
        }
        if let AggRequest::Consistency { survivors, .. } = r {
            if *to == f0 {
                let p = seen.position_of(&f6).expect("F6 in the roster");
                survivors[p as usize / 8] &= !(1 << (p % 8));
            }
        }
        Intercept::Send
    })
    .await;
    // F0 signed the lie; the asker's own check of that signature over the true list fails.
    assert!(matches!(
        reply_of(&ask, &f0, 3),
        Ok(PeerResponse::Aggregate(AggResponse::Consistent { .. }))
    ));
    assert!(
        ask.replies(4).iter().all(|(v, _)| *v != f0),
        "F0 is not asked to unmask"
    );
    // Shown t signatures over the true list, F0 refuses: they are not over what it signed.
    let unmask = request_to(&ask, &friends[1].id(), 4);
    assert_eq!(
        ask.send(&f0, &unmask).await,
        aborted(AbortReason::Inconsistent)
    );
    // Nobody released a mask-key share, so no input was ever unmasked alone.
    for (v, reply) in ask.replies(4) {
        match reply {
            AggResponse::Unmasked(u) => assert!(u.mask_seed_shares.is_empty(), "{}", v.short()),
            other => panic!("{}: {other:?}", v.short()),
        }
    }
    // The lie bought nothing: the aggregate is the honest one.
    assert_eq!(ask.outcome.aggregate, Ok(sum(3, 3)));
}

/// Duplicated members: a roster listing one advertisement twice (to make the cohort look
/// larger), a neighbour's advertisement sent twice in place of another, and one member's
/// consistency signature counted twice towards the threshold t. Each is refused.
#[tokio::test]
async fn an_asker_duplicating_members_is_refused() {
    let (ana, friends) = seven().await;
    let (f0, f1, f2) = (friends[0].id(), friends[1].id(), friends[2].id());
    let ask = raw_ask(&ana, &friends, 2, |_, to, r| {
        match r {
            AggRequest::ShareKeys { roster, .. } if *to == f0 => {
                let first = roster[0];
                roster.insert(1, first);
            }
            AggRequest::ShareKeys { neighbours, .. } if *to == f1 => {
                neighbours[1] = neighbours[0].clone();
            }
            _ => {}
        }
        Intercept::Send
    })
    .await;
    assert_eq!(reply_of(&ask, &f0, 1), aborted(AbortReason::Inconsistent));
    assert_eq!(reply_of(&ask, &f1, 1), aborted(AbortReason::Inconsistent));
    for f in &friends[..2] {
        assert_eq!(
            f.node().open_aggregations(),
            0,
            "{} wiped its session",
            f.name
        );
    }

    let ask = raw_ask(&ana, &friends, 3, |_, to, r| {
        if let AggRequest::Unmask { signatures, .. } = r {
            if *to == f2 {
                signatures[1] = signatures[0];
            }
        }
        Intercept::Send
    })
    .await;
    assert_eq!(reply_of(&ask, &f2, 4), aborted(AbortReason::Inconsistent));
    // The other six unmask honestly and the aggregate is exact without F2's help.
    assert_eq!(ask.outcome.aggregate, Ok(sum(3, 3)));
}

/// Replays. Within a session, an exact copy of any request it answered is a retry: it gets
/// the stored reply and costs the member no new work, until the session's deadline, even
/// after it finished; any other old message aborts it. Signatures from one session do not
/// verify in another (they bind the query id and the cohort digest).
#[tokio::test]
async fn replayed_round_messages_are_refused() {
    let (ana, friends) = seven().await;
    let f0 = friends[0].id();
    let first = raw_ask(&ana, &friends, 4, honest).await;
    assert_eq!(first.outcome.aggregate, Ok(sum(3, 3)));

    // An exact retry of round 4, after the sweeps of the next seconds: the same reply (a
    // finished session is kept until its deadline), no new public-key work.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let work = friends[0].node().aggregation_work();
    let unmask = request_to(&first, &f0, 4);
    assert_eq!(first.send(&f0, &unmask).await, reply_of(&first, &f0, 4));
    assert_eq!(friends[0].node().aggregation_work(), work);
    // Its Advertise again: a finished session is kept until its deadline (so that a copy of
    // a lost Unmasked still gets its reply), and a copy of its Advertise gets the first
    // reply, with no new session and no new work.
    assert_eq!(
        first.send(&f0, &request_to(&first, &f0, 0)).await,
        reply_of(&first, &f0, 0)
    );
    assert_eq!(friends[0].node().aggregation_work(), work);
    // In a session still open (stopped before round 4), exact copies of every earlier
    // request are retries too (a first copy delayed past the asker's retry arrives after
    // the next round, §4.5): each gets the reply it got then, and nothing changes.
    let stopped = raw_ask(&ana, &friends, 7, |_, _, r| match r {
        AggRequest::Unmask { .. } => Intercept::Hold,
        _ => Intercept::Send,
    })
    .await;
    let work = friends[0].node().aggregation_work();
    for round in [0, 1, 2, 3] {
        let old = request_to(&stopped, &f0, round);
        assert_eq!(
            stopped.send(&f0, &old).await,
            reply_of(&stopped, &f0, round),
            "round {round} copied"
        );
    }
    assert_eq!(friends[0].node().aggregation_work(), work);
    // Anything else old aborts it: round 3's request with another bitmap.
    let mut other = decode_message::<PeerRequest>(&request_to(&stopped, &f0, 3)).unwrap();
    if let PeerRequest::Aggregate(AggRequest::Consistency { survivors, .. }) = &mut other {
        survivors[0] ^= 1;
    }
    assert_eq!(
        stopped.send(&f0, &encode_message(&other)).await,
        aborted(AbortReason::UnexpectedRound)
    );

    // A copy of round 0 delayed until the member is in round 2 (the stale-connection race
    // under load): the member answers it as before and its session goes on.
    let paused = raw_ask(&ana, &friends, 6, |_, _, r| match r {
        AggRequest::MaskInput { .. } => Intercept::Hold,
        _ => Intercept::Send,
    })
    .await;
    let round_0 = request_to(&paused, &f0, 0);
    assert_eq!(paused.send(&f0, &round_0).await, reply_of(&paused, &f0, 0));
    let mask_input = paused
        .held
        .iter()
        .find(|t| t.to == f0)
        .expect("round 2 held")
        .payload
        .clone();
    let reply = paused.send(&f0, &mask_input).await;
    assert!(
        matches!(reply, Ok(PeerResponse::Aggregate(AggResponse::Masked(_)))),
        "{reply:?}"
    );

    // A second session, stopped before round 4; the first session's round-4 signatures
    // replayed into it, as they were and under the new query id.
    let second = raw_ask(&ana, &friends, 5, |_, _, r| match r {
        AggRequest::Unmask { .. } => Intercept::Hold,
        _ => Intercept::Send,
    })
    .await;
    let f1 = friends[1].id();
    let old = request_to(&first, &f1, 4);
    // As it was, it names the first query, whose finished session is kept until its
    // deadline: a copy, answered with the reply it got then and nothing more.
    assert_eq!(second.send(&f1, &old).await, reply_of(&first, &f1, 4));
    let Ok(PeerRequest::Aggregate(AggRequest::Unmask { signatures, .. })) =
        decode_message::<PeerRequest>(&old)
    else {
        panic!("a round-4 request")
    };
    let moved = encode_message(&PeerRequest::Aggregate(AggRequest::Unmask {
        query_id: QueryId([5; 16]),
        signatures,
    }));
    assert_eq!(
        second.send(&f1, &moved).await,
        aborted(AbortReason::Inconsistent)
    );
}

/// Budgets: a member set to two asks a day declines the third; a member keeps at most
/// four of one asker's sessions open at once. Each decline is audited.
#[tokio::test]
async fn an_asker_over_its_budget_is_declined() {
    let (ana, friends) = kith_tests::federation(2, NodeOptions::default()).await;
    friends[0]
        .client
        .set_setting("asks-per-day", "2")
        .await
        .unwrap();
    let (_endpoint, conn) = raw_peer(&friends[0], &ana.identity()).await;
    let (_endpoint1, conn1) = raw_peer(&friends[1], &ana.identity()).await;
    let advertise = advertise_frame;
    let reply = |bytes: Vec<u8>| match decode_message::<PeerResponse>(&bytes).unwrap() {
        PeerResponse::Aggregate(AggResponse::Abort(r)) => Err(r),
        PeerResponse::Aggregate(AggResponse::Advertised { .. }) => Ok(()),
        other => panic!("{other:?}"),
    };
    for q in 0..2 {
        assert_eq!(reply(send_raw(&conn, &advertise(q)).await.unwrap()), Ok(()));
    }
    assert_eq!(
        reply(send_raw(&conn, &advertise(2)).await.unwrap()),
        Err(AbortReason::RateLimited)
    );
    // Plain asks count against the same budget.
    let ask = PeerRequest::Ask(Query {
        query_id: QueryId([3; 16]),
        item: item(ITEM),
    });
    let frame = encode_frame(&encode_message(&ask), MAX_PEER_FRAME).unwrap();
    assert_eq!(
        decode_message::<PeerResponse>(&send_raw(&conn, &frame).await.unwrap()).unwrap(),
        PeerResponse::Refused(Refusal::RateLimited)
    );
    // F1 (20 a day): four sessions open, the fifth declined until one ends — or until the
    // asker closes one.
    for q in 10..14 {
        assert_eq!(
            reply(send_raw(&conn1, &advertise(q)).await.unwrap()),
            Ok(())
        );
    }
    assert_eq!(
        reply(send_raw(&conn1, &advertise(14)).await.unwrap()),
        Err(AbortReason::TooManyOpen)
    );
    let close = encode_frame(
        &encode_message(&PeerRequest::Aggregate(AggRequest::Close {
            query_id: QueryId([10; 16]),
        })),
        MAX_PEER_FRAME,
    )
    .unwrap();
    assert_eq!(
        decode_message::<PeerResponse>(&send_raw(&conn1, &close).await.unwrap()).unwrap(),
        PeerResponse::Aggregate(AggResponse::Closed)
    );
    assert_eq!(
        reply(send_raw(&conn1, &advertise(15)).await.unwrap()),
        Ok(())
    );
    // One audit entry each: later declines within 10 minutes are counted in the next one,
    // so that a flood cannot fill the log.
    for f in &friends {
        let audit = f.client.audit(50).await.unwrap();
        let declined = audit.iter().filter(|e| e.event == "rate-limited").count();
        assert_eq!(declined, 1, "{}: {audit:#?}", f.name);
    }
}

/// One key holds at most 8 connections to a node: a ninth closes the oldest (a peer that
/// reconnects is never locked out by its own stale connections), and the rest work.
#[tokio::test]
async fn a_ninth_connection_from_one_key_closes_the_oldest() {
    let (ana, friends) = kith_tests::federation(1, NodeOptions::default()).await;
    // Ana's node already holds one connection to F0 (from the invite); nine more follow.
    let mut conns = Vec::new();
    for _ in 0..9 {
        conns.push(raw_peer(&friends[0], &ana.identity()).await);
    }
    // Of the ten, the two oldest are closed: Ana's node's own and the first raw one.
    let (_, first) = conns.remove(0);
    let closed = tokio::time::timeout(Duration::from_secs(5), first.closed())
        .await
        .expect("the oldest raw connection is closed");
    assert!(
        matches!(&closed, quinn::ConnectionError::ApplicationClosed(c) if c.reason.as_ref() == b"too many connections for this key"),
        "{closed:?}"
    );
    let ask = PeerRequest::Ask(Query {
        query_id: QueryId([1; 16]),
        item: item(ITEM),
    });
    let frame = encode_frame(&encode_message(&ask), MAX_PEER_FRAME).unwrap();
    for (_, conn) in &conns {
        let reply = decode_message::<PeerResponse>(&send_raw(conn, &frame).await.unwrap());
        assert!(matches!(reply, Ok(PeerResponse::Answer(_))), "{reply:?}");
    }
    // Ana's node reconnects on its next ask (closing the oldest raw one in turn).
    let r = ana
        .client
        .ask(kith_client::Query::new(item(ITEM)).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(r.answered, 1, "{r:?}");
}

// ---------------------------------------------------------------------------------------
// A dishonest responder: a stand-in for F0 running kith-protocol's `AggResponder` and
// tampering with its replies, in Ana's real node's aggregations.
// ---------------------------------------------------------------------------------------

/// F0 owns 5 units; F1..F3 one each.
fn f0_input() -> Contribution {
    Contribution {
        owns: true,
        units: 5,
        best_rating: None,
    }
}

async fn ask(ana: &TestNode) -> app::AskResult {
    ana.client
        .ask(
            kith_client::Query::new(item(ITEM))
                .timeout(Duration::from_secs(5))
                .detail(),
        )
        .await
        .unwrap()
}

/// Shares that do not open. Sent to one neighbour, that neighbour aborts in round 2 and
/// drops out (its own shares already went out, so the sum is exact without it); sent to
/// all, every neighbour aborts and the aggregate is withheld — a denial any one member
/// can cause (spec §11.15).
#[tokio::test]
async fn bad_shares_cost_their_victims_or_the_whole_aggregate() {
    let (ana, mut friends) = seven().await;
    let all = Arc::new(AtomicU8::new(0));
    let mode = all.clone();
    let _f0 = StandIn::tampering(&mut friends[0], f0_input(), move |round, reply| {
        if let (1, AggResponse::Shares { pairs: shares, .. }) = (round, reply) {
            // In roster order of F0's neighbours: the first is whoever comes first.
            let victims = if mode.load(Ordering::SeqCst) == 1 {
                shares.len()
            } else {
                1
            };
            for s in shares.iter_mut().take(victims) {
                s[0] ^= 1;
            }
        }
    })
    .await;
    let r = ask(&ana).await;
    assert_eq!((r.cohort, r.survivors), (7, 6), "{r:?}");
    // The victim is F1, F2 or F3 (one owner, one unit) or another (nothing).
    let sum_without = |owners: u32, units: u32| Some(sum(4 - owners, 8 - units));
    assert!(
        r.aggregate == sum_without(1, 1) || r.aggregate == sum_without(0, 0),
        "one victim dropped out: {r:?}"
    );

    all.store(1, Ordering::SeqCst);
    let r = ask(&ana).await;
    assert_eq!(r.aggregate, None, "{r:?}");
    assert!(
        r.withheld.as_deref().unwrap_or("").contains("round 2"),
        "{r:?}"
    );
}

/// Shares of the wrong length are caught by the asker in round 1: the member is left out
/// before any neighbour could abort over them, and the sum is exact without it.
#[tokio::test]
async fn wrong_length_shares_leave_the_sender_out() {
    let (ana, mut friends) = seven().await;
    let _f0 = StandIn::tampering(&mut friends[0], f0_input(), |round, reply| {
        if let (1, AggResponse::Shares { pairs: shares, .. }) = (round, reply) {
            shares[0].pop();
        }
    })
    .await;
    let r = ask(&ana).await;
    assert_eq!((r.cohort, r.survivors), (7, 6), "{r:?}");
    assert_eq!(r.aggregate, Some(sum(3, 3)), "{r:?}");
}

/// What the stand-in forges in `wrong_signatures_leave_the_forger_out`.
const FORGE_ADVERTISEMENT: u8 = 0;
const FORGE_STATEMENT: u8 = 1;
const FORGE_CONSISTENCY: u8 = 3;

/// Wrong signatures: a forged advertisement, or a named statement in its answer signed by
/// another key, leaves F0 out of the cohort in round 0 (and shows no name); a forged
/// consistency signature leaves it out of round 4, but its masked input is already in the
/// sum, and the others' shares remove its self-mask. Either way the sum is exact.
#[tokio::test]
async fn wrong_signatures_leave_the_forger_out() {
    let (ana, mut friends) = seven().await;
    let (f0, ana_id) = (friends[0].id(), ana.id());
    let forge = Arc::new(AtomicU8::new(FORGE_ADVERTISEMENT));
    let what = forge.clone();
    let other = Identity::generate(&mut OsRng);
    let _f0 = StandIn::tampering(&mut friends[0], f0_input(), move |round, reply| {
        match (what.load(Ordering::SeqCst), round, reply) {
            (FORGE_ADVERTISEMENT, 0, AggResponse::Advertised { advertisement, .. }) => {
                advertisement.signature.0[0] ^= 1
            }
            (FORGE_STATEMENT, 0, AggResponse::Advertised { answer, .. }) => {
                let statement = EndorsementStatement {
                    version: 1,
                    endorser: f0,
                    audience: ana_id,
                    query_id: answer.query_id,
                    endorsement: Endorsement::new(item(ITEM), 1, None, None, 0).unwrap(),
                    issued_at: 0,
                };
                let body = wire::encode_value(&statement);
                answer.named.push(SignedEndorsement {
                    signature: other.sign(SigningLabel::Endorsement, &body),
                    statement: body,
                });
            }
            (FORGE_CONSISTENCY, 3, AggResponse::Consistent { signature, .. }) => {
                signature.0[0] ^= 1
            }
            _ => {}
        }
    })
    .await;
    let r = ask(&ana).await;
    assert_eq!((r.answered, r.cohort), (6, 6), "{r:?}");
    assert_eq!(r.aggregate, Some(sum(3, 3)), "F0 left out");

    forge.store(FORGE_STATEMENT, Ordering::SeqCst);
    let r = ask(&ana).await;
    assert_eq!((r.answered, r.cohort), (6, 6), "{r:?}");
    assert!(r.named.is_empty(), "{r:?}");
    assert_eq!(r.aggregate, Some(sum(3, 3)), "F0 left out");

    forge.store(FORGE_CONSISTENCY, Ordering::SeqCst);
    let r = ask(&ana).await;
    assert_eq!((r.cohort, r.survivors), (7, 7), "{r:?}");
    assert_eq!(r.aggregate, Some(sum(4, 8)), "F0's input counted");
}

/// Wrong lengths: a masked vector of 6 or 8 cells leaves F0 out of the survivors, its
/// pairwise masks removed through its mask-key shares; an unmask reply missing a share is
/// not used, and the other holders suffice.
#[tokio::test]
async fn wrong_length_vectors_and_share_lists_are_not_used() {
    let (ana, mut friends) = seven().await;
    let cells = Arc::new(AtomicU8::new(6));
    let length = cells.clone();
    let _f0 = StandIn::tampering(&mut friends[0], f0_input(), move |round, reply| {
        match (round, reply) {
            (2, AggResponse::Masked(y)) => y.resize(length.load(Ordering::SeqCst) as usize, 9),
            (4, AggResponse::Unmasked(u)) => {
                u.self_seed_shares.pop();
            }
            _ => {}
        }
    })
    .await;
    for n in [6, 8] {
        cells.store(n, Ordering::SeqCst);
        let r = ask(&ana).await;
        assert_eq!((r.cohort, r.survivors), (7, 6), "{n} cells: {r:?}");
        assert_eq!(r.aggregate, Some(sum(3, 3)), "{n} cells");
    }
    // The right length, but an incomplete unmask reply: F0 counted, its reply ignored.
    cells.store(7, Ordering::SeqCst);
    let r = ask(&ana).await;
    assert_eq!(r.aggregate, Some(sum(4, 8)), "{r:?}");
}

/// An inflated input, allowed by design until inputs are validated (spec §11.15): F0 adds
/// to the owners cell of its masked vector. The aggregate is released, moved by exactly
/// what it added, and nothing marks it; only the release's clamp to `[0, survivors]`
/// bounds it (§9.6.4).
#[tokio::test]
async fn an_inflating_member_moves_the_sum_by_what_it_adds() {
    let (ana, mut friends) = seven().await;
    let extra = Arc::new(AtomicU8::new(2));
    let added = extra.clone();
    let _f0 = StandIn::tampering(&mut friends[0], f0_input(), move |round, reply| {
        if let (2, AggResponse::Masked(y)) = (round, reply) {
            y[0] = y[0].wrapping_add(added.load(Ordering::SeqCst) as u32);
        }
    })
    .await;
    let r = ask(&ana).await;
    assert_eq!(r.survivors, 7);
    assert_eq!(r.aggregate, Some(sum(4 + 2, 8)));
    assert_eq!(r.withheld, None);
    extra.store(200, Ordering::SeqCst);
    let r = ask(&ana).await;
    assert_eq!(r.aggregate, Some(sum(7, 8)), "clamped to the survivors");
}

// ---------------------------------------------------------------------------------------
// Strangers, apps, frames and datagrams.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stranger_gets_one_request_then_the_connection_closes() {
    let ana = TestNode::start("Ana").await;
    let stranger = Identity::generate(&mut OsRng);
    for request in [
        PeerRequest::Ask(Query {
            query_id: QueryId([3; 16]),
            item: item("tag:x"),
        }),
        PeerRequest::Aggregate(AggRequest::Advertise {
            query_id: QueryId([4; 16]),
            item: item("tag:x"),
            epsilon: None,
            detail: false,
        }),
    ] {
        let (_ep, conn) = raw_peer(&ana, &stranger).await;
        let frame = encode_frame(&encode_message(&request), MAX_PEER_FRAME).unwrap();
        let reply = send_raw(&conn, &frame).await.unwrap();
        assert_eq!(
            decode_message::<PeerResponse>(&reply).unwrap(),
            PeerResponse::Refused(Refusal::NotAContact)
        );
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed())
            .await
            .expect("node closes a stranger's connection");
        assert!(
            matches!(closed, quinn::ConnectionError::ApplicationClosed(ref c) if c.error_code == quinn::VarInt::from_u32(kith_client::transport::CLOSE_UNAUTHORIZED)),
            "{closed:?}"
        );
    }
    // Strangers leave no trace in the owner's audit log (they could fill it).
    let audit = ana.client.audit(50).await.unwrap();
    assert!(audit.iter().all(|e| e.event != "answered"), "{audit:#?}");
}

#[tokio::test]
async fn unknown_mispinned_and_revoked_app_credentials_are_refused() {
    let ana = TestNode::start("Ana").await;
    let mut cred = ana.dir.load_owner_credential().unwrap();
    cred.identity = Identity::generate(&mut OsRng);
    let client = kith_client::Client::connect_with(&cred)
        .await
        .expect("handshake completes");
    assert!(matches!(client.status().await, Err(ClientError::NotPaired)));
    // Pinning: a credential expecting another node key fails the handshake.
    let mut wrong = ana.dir.load_owner_credential().unwrap();
    wrong.node = Identity::generate(&mut OsRng).node_id();
    assert!(matches!(
        kith_client::Client::connect_with(&wrong).await,
        Err(ClientError::WrongNode { .. })
    ));
    // A revoked app: refused on the app port, and a stranger on the peer port.
    let scope = kith_protocol::pairing::AppScope {
        ask: vec![ItemPattern::parse("*").unwrap()],
        named: false,
        daily_limit: None,
    };
    let pairing = ana.client.create_pairing("shop", scope).await.unwrap();
    let api = ana.node().api_addr();
    let (shop, credential, _) = kith_client::Client::pair(api, &pairing.code.0)
        .await
        .unwrap();
    ana.client.revoke_app("shop").await.unwrap();
    assert!(matches!(shop.status().await, Err(ClientError::Revoked)));
    let again = kith_client::Client::connect(api, &credential)
        .await
        .unwrap();
    assert!(matches!(again.status().await, Err(ClientError::Revoked)));
    let (_ep, conn) = raw_peer(&ana, &credential.identity).await;
    let ask = PeerRequest::Ask(Query {
        query_id: QueryId([1; 16]),
        item: item("tag:x"),
    });
    let reply = send_raw(
        &conn,
        &encode_frame(&encode_message(&ask), MAX_PEER_FRAME).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        decode_message::<PeerResponse>(&reply).unwrap(),
        PeerResponse::Refused(Refusal::NotAContact)
    );
}

/// Ana and Bob, who names his Dune to friends; many asks below are valid asks, so Bob's
/// budget is raised to keep them all within it.
async fn ana_and_bob() -> (TestNode, Vec<TestNode>) {
    let (ana, friends) = kith_tests::federation(1, NodeOptions::default()).await;
    let bob = &friends[0];
    bob.endorse("tag:book/dune", 1, Some(5), None).await;
    bob.share_with_friends("*", Share::Name).await;
    bob.client
        .set_setting("asks-per-day", "1000")
        .await
        .unwrap();
    (ana, friends)
}

/// After an attack: Ana's ask still names Bob's Dune, and Bob still has one contact.
async fn bob_still_answers(ana: &TestNode, bob: &TestNode) {
    let answer = ana
        .client
        .ask(kith_client::Query::new(item("tag:book")).timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(answer.named.len(), 1);
    assert_eq!(bob.client.status().await.unwrap().contacts, 1);
}

#[tokio::test]
async fn bad_frames_are_rejected_and_the_node_keeps_serving() {
    let (ana, friends) = ana_and_bob().await;
    let bob = &friends[0];
    let (_ep, conn) = raw_peer(bob, &ana.identity()).await;
    let refused = |bytes: Vec<u8>| decode_message::<PeerResponse>(&bytes).unwrap();
    let malformed = PeerResponse::Refused(Refusal::Malformed);

    // Oversize: the header announces 4 GiB, or one byte over the cap; the node answers
    // without reading the body.
    let reply = send_raw(&conn, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    assert_eq!(refused(reply), malformed);
    let mut over = (MAX_PEER_FRAME + 1).to_be_bytes().to_vec();
    over.extend(std::iter::repeat_n(0u8, 1000));
    assert_eq!(refused(send_raw(&conn, &over).await.unwrap()), malformed);
    // Garbage body.
    let reply = send_raw(
        &conn,
        &encode_frame(b"\x02\x09garbage", MAX_PEER_FRAME).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(refused(reply), malformed);
    // Unknown protocol version.
    let reply = send_raw(&conn, &encode_frame(&[0x03, 0x01], MAX_PEER_FRAME).unwrap())
        .await
        .unwrap();
    assert_eq!(
        refused(reply),
        PeerResponse::Refused(Refusal::UnsupportedVersion)
    );
    // Truncated: the header promises more than is sent before the stream ends.
    let reply = send_raw(&conn, &[0, 0, 0, 50, 1, 1]).await.unwrap();
    assert_eq!(refused(reply), malformed);
    // Tampered: every single-byte change of a valid ask is answered — refused, or read as
    // another (valid) ask — and never breaks the connection.
    let body = encode_message(&PeerRequest::Ask(Query {
        query_id: QueryId([9; 16]),
        item: item("tag:book"),
    }));
    for i in 0..body.len() {
        let mut tampered = body.clone();
        tampered[i] ^= 0x80;
        let reply = refused(
            send_raw(&conn, &encode_frame(&tampered, MAX_PEER_FRAME).unwrap())
                .await
                .unwrap(),
        );
        assert!(
            matches!(
                reply,
                PeerResponse::Answer(_)
                    | PeerResponse::Refused(Refusal::Malformed | Refusal::UnsupportedVersion)
            ),
            "byte {i}: {reply:?}"
        );
    }

    bob_still_answers(&ana, bob).await;
}

/// Datagrams that are not QUIC, or that look like QUIC (long-header Initials with unknown
/// versions or random connection ids, short headers for connections that do not exist),
/// are dropped; the node answers its contacts as before.
#[tokio::test]
async fn garbage_datagrams_on_the_udp_port_are_dropped() {
    let (ana, friends) = ana_and_bob().await;
    let bob = &friends[0];
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    for i in 0..2000u32 {
        let len = [0, 1, 20, 1200, 1252, 1500][i as usize % 6];
        let mut d: Vec<u8> = (0..len).map(|_| next()).collect();
        if len >= 20 {
            match i % 4 {
                // Long header, version 1 (an Initial with garbage inside).
                0 => d[..5].copy_from_slice(&[0xc0, 0, 0, 0, 1]),
                // Long header, an unknown version (asks for version negotiation).
                1 => d[..5].copy_from_slice(&[0xc0, 0x0a, 0x0a, 0x0a, 0x0a]),
                // Short header for a connection that does not exist (stateless reset).
                2 => d[0] = 0x40 | (d[0] & 0x3f),
                _ => {}
            }
        }
        let _ = sock.send_to(&d, bob.peer_addr());
    }
    bob_still_answers(&ana, bob).await;
}

/// Nodes advertise no QUIC datagram support (spec §4.1, §4.4), so no peer can make a node
/// buffer DATAGRAM frames outside flow control: sending one is a protocol violation.
#[tokio::test]
async fn nodes_take_no_quic_datagrams() {
    let node = TestNode::start("Ana").await;
    let stranger = Identity::generate(&mut OsRng);
    let (_endpoint, conn) = raw_peer(&node, &stranger).await;
    assert_eq!(conn.max_datagram_size(), None);
    let sent = conn.send_datagram(vec![0u8; 8].into());
    assert!(
        sent.is_err(),
        "a datagram was accepted for sending: {sent:?}"
    );
}

/// Session bookkeeping that used to fail (#15): a finished session's replies are kept until
/// its deadline, not swept within a second; an asker's `Advertise`s sent at once are counted
/// against its four open sessions by what was admitted, not by what was merely reserved;
/// and a query id stays used across a restart of the member.
#[tokio::test]
async fn sessions_keep_replies_count_what_is_open_and_remember_query_ids() {
    let (ana, mut friends) = kith_tests::federation(1, NodeOptions::default()).await;
    let (_endpoint, conn) = raw_peer(&friends[0], &ana.identity()).await;
    let advertise = advertise_frame;
    let send = |frame: Vec<u8>| {
        let conn = conn.clone();
        async move { decode_message::<PeerResponse>(&send_raw(&conn, &frame).await.unwrap()).unwrap() }
    };
    // Six Advertises at once: four admitted, two declined, whatever the interleaving.
    let mut at_once = tokio::task::JoinSet::new();
    for q in 20u8..26 {
        let reply = send(advertise(q));
        at_once.spawn(async move { (q, reply.await) });
    }
    let mut replies: Vec<(u8, PeerResponse)> = at_once.join_all().await;
    replies.sort_by_key(|(q, _)| *q);
    let replies: Vec<PeerResponse> = replies.into_iter().map(|(_, r)| r).collect();
    let admitted = replies
        .iter()
        .filter(|r| matches!(r, PeerResponse::Aggregate(AggResponse::Advertised { .. })))
        .count();
    let declined = replies
        .iter()
        .filter(|r| **r == PeerResponse::Aggregate(AggResponse::Abort(AbortReason::TooManyOpen)))
        .count();
    assert_eq!((admitted, declined), (4, 2), "{replies:?}");

    // A copy of an Advertise answered two sweeps ago still gets its first reply.
    let first = replies
        .iter()
        .zip(20u8..)
        .find(|(r, _)| matches!(r, PeerResponse::Aggregate(AggResponse::Advertised { .. })))
        .map(|(r, q)| (r.clone(), q))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(send(advertise(first.1)).await, first.0);

    // After a restart, the query id is still used: its Advertise opens no second session.
    let listen = friends[0].peer_addr();
    friends[0].restart(listen).await;
    let (_endpoint, conn) = raw_peer(&friends[0], &ana.identity()).await;
    let reply =
        decode_message::<PeerResponse>(&send_raw(&conn, &advertise(first.1)).await.unwrap())
            .unwrap();
    assert_eq!(
        reply,
        PeerResponse::Aggregate(AggResponse::Abort(AbortReason::UnexpectedRound))
    );
}

/// A plain `Ask` sent several times (a retry, or the stale-connection race of §4.5, whose
/// copies can be in flight at once) is answered alike and counted once against the
/// asker's budget.
#[tokio::test]
async fn a_copied_plain_ask_counts_once() {
    let (ana, friends) = kith_tests::federation(1, NodeOptions::default()).await;
    friends[0]
        .client
        .set_setting("asks-per-day", "2")
        .await
        .unwrap();
    let (_endpoint, conn) = raw_peer(&friends[0], &ana.identity()).await;
    // Two copies at once, on two connections (the stale-connection race), then a third.
    let (_endpoint2, conn2) = raw_peer(&friends[0], &ana.identity()).await;
    let frame = ask_frame(1);
    let (a, b) = tokio::join!(exchange(&conn, &frame), exchange(&conn2, &frame));
    assert!(matches!(a, PeerResponse::Answer(_)), "{a:?}");
    assert_eq!(a, b);
    let first = a;
    assert_eq!(exchange(&conn, &ask_frame(1)).await, first);
    assert!(matches!(
        exchange(&conn, &ask_frame(2)).await,
        PeerResponse::Answer(_)
    ));
    assert_eq!(
        exchange(&conn, &ask_frame(3)).await,
        PeerResponse::Refused(Refusal::RateLimited)
    );
}

/// Declines coalesced into the next `rate-limited` entry are written when the node stops,
/// not lost with its memory.
#[tokio::test]
async fn coalesced_declines_survive_a_restart() {
    let (ana, mut friends) = kith_tests::federation(1, NodeOptions::default()).await;
    friends[0]
        .client
        .set_setting("asks-per-day", "0")
        .await
        .unwrap();
    let (_endpoint, conn) = raw_peer(&friends[0], &ana.identity()).await;
    for q in 0..3u8 {
        assert_eq!(
            exchange(&conn, &ask_frame(q)).await,
            PeerResponse::Refused(Refusal::RateLimited)
        );
    }
    let entries = |audit: Vec<kith_protocol::app::AuditEntry>| -> Vec<String> {
        audit
            .into_iter()
            .filter(|e| e.event == "rate-limited")
            .map(|e| e.detail)
            .collect()
    };
    assert_eq!(entries(friends[0].client.audit(50).await.unwrap()).len(), 1);
    let listen = friends[0].peer_addr();
    friends[0].restart(listen).await;
    let after = entries(friends[0].client.audit(50).await.unwrap());
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after[0].contains("2 declined since the previous entry"),
        "{after:?}"
    );
}

/// A contact's retry of its redemption is welcomed again — unless the owner removed it
/// since: replaying the old redemption must not give a removed contact the node's current
/// card (and so where it moved to).
#[tokio::test]
async fn a_removed_contact_cannot_replay_its_redemption() {
    let ana = TestNode::start("Ana").await;
    let bo = TestNode::start("Bo").await;
    let code = ana.client.create_invite(None).await.unwrap().code.0;
    bo.client.accept_invite(code.clone(), None).await.unwrap();
    let now = kith_node::unix_now();
    let invite = Invite::from_code(&code, now).unwrap().invite;
    let me = bo.identity();
    let redeem = PeerRequest::Redeem(InviteRedemption {
        invite_id: invite.id,
        proof: invite.redemption_proof(&ana.id(), &me.node_id()),
        card: ContactCard::new(&me, "Bo", vec![bo.peer_addr().to_string()], now, 3600)
            .unwrap()
            .sign(&me),
    });
    let frame = encode_frame(&encode_message(&redeem), MAX_PEER_FRAME).unwrap();
    let send = |conn: quinn::Connection, frame: Vec<u8>| async move {
        decode_message::<PeerResponse>(&send_raw(&conn, &frame).await.unwrap()).unwrap()
    };
    let (_endpoint, conn) = raw_peer(&ana, &me).await;
    assert!(matches!(
        send(conn, frame.clone()).await,
        PeerResponse::Welcome(_)
    ));
    ana.client.remove_contact("Bo").await.unwrap();
    let (_endpoint, conn) = raw_peer(&ana, &me).await;
    assert_eq!(
        send(conn, frame).await,
        PeerResponse::Refused(Refusal::InviteUsed)
    );
}
