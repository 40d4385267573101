//! The endpoint's rules, each against an in-memory [`NodeState`]: no store, no sockets.

use std::cell::Cell;
use std::collections::HashMap;

use rand_core::OsRng;

use super::*;
use crate::aggregation::messages::AggRequest;
use crate::budget::{Limits, OverBudget, Usage};
use crate::card::{ContactCard, MAX_MOVES_PER_DAY};
use crate::consent::{PolicyRule, Share, Subject};
use crate::endorsement::{EndorsementStatement, STATEMENT_VERSION};
use crate::invite::Invite;
use crate::item::ItemPattern;
use crate::message::InviteRedemption;

const NOW: u64 = 1_800_000_000;
const LIMITS: Limits = Limits {
    asks_per_day: 3,
    epsilon_per_day: 4000,
};

/// What a node knows, as tables; `fail` makes every read fail, `shelf_reads` counts.
#[derive(Default)]
struct Tables {
    contacts: HashMap<NodeId, Contact>,
    endorsements: Vec<Endorsement>,
    rules: Vec<PolicyRule>,
    usage: HashMap<NodeId, Usage>,
    invites: HashMap<InviteId, HeldInvite>,
    asks: HashMap<QueryId, (ItemKey, u64)>,
    moves: HashMap<NodeId, u32>,
    fail: bool,
    shelf_reads: Cell<u32>,
}

#[derive(Debug, PartialEq, Eq)]
struct Failed;

impl Tables {
    fn check(&self) -> Result<(), Failed> {
        if self.fail {
            Err(Failed)
        } else {
            Ok(())
        }
    }
}

impl NodeState for Tables {
    type Error = Failed;
    fn contact(&self, key: &NodeId) -> Result<Option<Contact>, Failed> {
        self.check()?;
        Ok(self.contacts.get(key).cloned())
    }
    fn shelf(&self) -> Result<Shelf, Failed> {
        self.check()?;
        self.shelf_reads.set(self.shelf_reads.get() + 1);
        Ok(Shelf {
            endorsements: self.endorsements.clone(),
            policy: ConsentPolicy::new(self.rules.clone()),
            limits: LIMITS,
        })
    }
    fn usage(&self, asker: &NodeId, _since: u64) -> Result<Usage, Failed> {
        self.check()?;
        Ok(self.usage.get(asker).copied().unwrap_or_default())
    }
    fn invite(&self, id: &InviteId) -> Result<Option<HeldInvite>, Failed> {
        self.check()?;
        Ok(self.invites.get(id).cloned())
    }
    fn ask_record(&self, query_id: &QueryId) -> Result<Option<(ItemKey, u64)>, Failed> {
        self.check()?;
        Ok(self.asks.get(query_id).cloned())
    }
    fn moves_since(&self, contact: &NodeId, _since: u64) -> Result<u32, Failed> {
        self.check()?;
        Ok(self.moves.get(contact).copied().unwrap_or(0))
    }
}

/// A node, its card, and one contact of it (Bo), with the tables that know Bo.
struct World {
    me: Identity,
    my_card: SignedCard,
    bo: Identity,
    tables: Tables,
}

fn card(id: &Identity, name: &str, address: &str, issued_at: u64) -> SignedCard {
    ContactCard::new(id, name, vec![address.into()], issued_at, 1 << 30)
        .unwrap()
        .sign(id)
}

fn item(text: &str) -> ItemKey {
    ItemKey::parse(text).unwrap()
}

fn world() -> World {
    let me = Identity::generate(&mut OsRng);
    let bo = Identity::generate(&mut OsRng);
    let my_card = card(&me, "Ana", "127.0.0.1:7000", NOW - 10);
    let mut tables = Tables::default();
    let contact = Contact {
        node_id: bo.node_id(),
        name: "Bo".into(),
        circle: "friends".into(),
        card: card(&bo, "Bo", "127.0.0.1:7001", NOW - 100),
        added_at: NOW - 100,
    };
    tables.contacts.insert(bo.node_id(), contact);
    World {
        me,
        my_card,
        bo,
        tables,
    }
}

impl World {
    fn decide(&self, sender: NodeId, request: PeerRequest) -> Reply {
        match Endpoint::new(&self.me, &self.my_card)
            .decide(&self.tables, sender, &request, NOW)
            .unwrap()
        {
            Decision::Reply(reply) => *reply,
            Decision::Aggregate => panic!("routed to a session: {request:?}"),
        }
    }

    fn endorse(&mut self, key: &str, share: Share) {
        self.tables
            .endorsements
            .push(Endorsement::new(item(key), 1, None, None, NOW - 1000).unwrap());
        self.tables.rules.push(PolicyRule {
            subject: Subject::Circle("friends".into()),
            items: ItemPattern::parse(key).unwrap(),
            share,
        });
    }

    /// Bo's asks answered in the last 24 hours.
    fn answered_today(&mut self, answered: u32) {
        let usage = Usage { answered, spent: 0 };
        self.tables.usage.insert(self.bo.node_id(), usage);
    }

    fn ask(&self, sender: NodeId, key: &str) -> Reply {
        let query = Query {
            query_id: QueryId([7; 16]),
            item: item(key),
        };
        self.decide(sender, PeerRequest::Ask(query))
    }
}

#[test]
fn a_stranger_is_refused_everything_but_a_redemption_before_the_shelf_is_read() {
    let w = world();
    let stranger = Identity::generate(&mut OsRng).node_id();
    let query = Query {
        query_id: QueryId([1; 16]),
        item: item("tag:bike/a"),
    };
    let requests = [
        PeerRequest::Ask(query),
        PeerRequest::Aggregate(AggRequest::Close {
            query_id: QueryId([1; 16]),
        }),
        PeerRequest::UpdateCard(card(&w.bo, "Bo", "127.0.0.1:9", NOW)),
    ];
    for request in requests {
        assert_eq!(
            w.decide(stranger, request),
            Reply::refused(Refusal::NotAContact)
        );
    }
    assert_eq!(w.tables.shelf_reads.get(), 0);
}

#[test]
fn a_contacts_aggregation_round_goes_to_its_session() {
    let w = world();
    let close = AggRequest::Close {
        query_id: QueryId([1; 16]),
    };
    let decision = Endpoint::new(&w.me, &w.my_card)
        .decide(
            &w.tables,
            w.bo.node_id(),
            &PeerRequest::Aggregate(close),
            NOW,
        )
        .unwrap();
    assert_eq!(decision, Decision::Aggregate);
}

#[test]
fn an_answer_is_charged_before_it_is_sent_and_ask_items_wait_for_the_owner() {
    let mut w = world();
    w.endorse("tag:bike/a", Share::Name);
    w.endorse("tag:bike/b", Share::Ask);
    w.endorse("tag:bike/c", Share::Count);
    let reply = w.ask(w.bo.node_id(), "tag:bike");
    let PeerResponse::Answer(answer) = &reply.response else {
        panic!("{reply:?}");
    };
    assert_eq!(answer.named.len(), 1, "only the `name` item is named");
    let Some(Condition::Charge(charged)) = &reply.condition else {
        panic!("{:?}", reply.condition);
    };
    assert!(reply.effects.is_empty());
    assert_eq!(
        (
            charged.asker,
            charged.cost,
            charged.limits,
            charged.query_id
        ),
        (w.bo.node_id(), 0, LIMITS, None)
    );
    assert_eq!(
        reply.after,
        vec![Effect::RecordPending {
            asker: w.bo.node_id(),
            asker_name: "Bo".into(),
            query: Query {
                query_id: QueryId([7; 16]),
                item: item("tag:bike"),
            },
            items: vec![item("tag:bike/b")],
        }]
    );
    // Nothing shared as `ask`: nothing pending.
    let reply = w.ask(w.bo.node_id(), "tag:bike/c");
    assert!(reply.after.is_empty(), "{reply:?}");
}

#[test]
fn an_asker_over_its_budget_is_declined_visibly_and_the_decline_noted() {
    let mut w = world();
    w.endorse("tag:bike/a", Share::Name);
    w.answered_today(3);
    let reply = w.ask(w.bo.node_id(), "tag:bike/a");
    assert_eq!(reply.response, PeerResponse::Refused(Refusal::RateLimited));
    assert_eq!(
        reply.effects,
        vec![Effect::Declined {
            asker: w.bo.node_id(),
            asker_name: "Bo".into(),
            item: item("tag:bike/a"),
            over: OverBudget::Daily { asked: 3, limit: 3 },
        }]
    );
}

#[test]
fn a_charge_that_lost_its_race_is_decided_again_as_a_decline() {
    let mut w = world();
    w.endorse("tag:bike/a", Share::Name);
    w.answered_today(2);
    let first = w.ask(w.bo.node_id(), "tag:bike/a");
    assert!(matches!(first.condition, Some(Condition::Charge(_))));
    // A concurrent ask took the last slot before this one's charge was written.
    w.tables.usage.get_mut(&w.bo.node_id()).unwrap().answered = 3;
    let again = w.ask(w.bo.node_id(), "tag:bike/a");
    assert_eq!(again.response, PeerResponse::Refused(Refusal::RateLimited));
}

/// An invite Ana issued, and Bo's redemption of it.
fn issue(w: &mut World, acceptor: &Identity, expires_at: u64) -> InviteRedemption {
    let invite = Invite::generate(&mut OsRng, w.my_card.clone(), NOW - 100, 1 << 20);
    w.tables.invites.insert(
        invite.id,
        HeldInvite {
            id: invite.id,
            secret: invite.secret.clone(),
            circle: "family".into(),
            expires_at,
            used: None,
        },
    );
    InviteRedemption {
        invite_id: invite.id,
        proof: invite.redemption_proof(&w.me.node_id(), &acceptor.node_id()),
        card: card(acceptor, "Cy", "127.0.0.1:7002", NOW - 5),
    }
}

#[test]
fn a_redemption_is_checked_in_order_and_adds_the_contact_once() {
    let mut w = world();
    let cy = Identity::generate(&mut OsRng);
    let unknown = InviteRedemption {
        invite_id: InviteId([9; 16]),
        proof: [0; 32],
        card: card(&cy, "Cy", "127.0.0.1:7002", NOW),
    };
    let redeem =
        |w: &World, r: &InviteRedemption| w.decide(cy.node_id(), PeerRequest::Redeem(r.clone()));
    assert_eq!(redeem(&w, &unknown), Reply::refused(Refusal::InviteUnknown));

    let r = issue(&mut w, &cy, NOW + 1000);
    let mut bad = r.clone();
    bad.proof[0] ^= 1;
    assert_eq!(redeem(&w, &bad), Reply::refused(Refusal::InviteInvalid));

    let reply = redeem(&w, &r);
    assert_eq!(reply.response, PeerResponse::Welcome(w.my_card.clone()));
    assert_eq!(reply.after, vec![Effect::KeepConnection]);
    let Some(Condition::AddContact { invite, contact }) = &reply.condition else {
        panic!("{reply:?}");
    };
    assert_eq!(*invite, r.invite_id);
    assert_eq!(
        (contact.node_id, &contact.name[..], &contact.circle[..]),
        (cy.node_id(), "Cy", "family")
    );

    // A copy of it won the race: the invite is used by Cy, now a contact. Decided again,
    // Cy is welcomed with nothing more to write.
    w.tables.contacts.insert(cy.node_id(), contact.clone());
    w.tables.invites.get_mut(&r.invite_id).unwrap().used = Some(Some(cy.node_id()));
    let again = redeem(&w, &r);
    assert_eq!(again.response, PeerResponse::Welcome(w.my_card.clone()));
    assert_eq!(again.condition, None);
    assert!(again.effects.is_empty());

    // Removed by the owner since: its replay does not learn the current card.
    w.tables.contacts.remove(&cy.node_id());
    assert_eq!(redeem(&w, &r), Reply::refused(Refusal::InviteUsed));

    // Someone else cannot use it at all.
    let dee = Identity::generate(&mut OsRng);
    let mut theirs = r.clone();
    theirs.proof = Invite::generate(&mut OsRng, w.my_card.clone(), NOW, 1)
        .redemption_proof(&w.me.node_id(), &dee.node_id());
    assert_eq!(
        w.decide(dee.node_id(), PeerRequest::Redeem(theirs)),
        Reply::refused(Refusal::InviteInvalid)
    );
}

#[test]
fn an_expired_invite_is_refused() {
    let mut w = world();
    let cy = Identity::generate(&mut OsRng);
    let r = issue(&mut w, &cy, NOW);
    assert_eq!(
        w.decide(cy.node_id(), PeerRequest::Redeem(r)),
        Reply::refused(Refusal::InviteExpired)
    );
}

fn statement(w: &World, audience: NodeId, query_id: QueryId, key: &str) -> SignedEndorsement {
    EndorsementStatement {
        version: STATEMENT_VERSION,
        endorser: w.bo.node_id(),
        audience,
        query_id,
        endorsement: Endorsement::new(item(key), 1, None, None, NOW - 50).unwrap(),
        issued_at: NOW - 10,
    }
    .sign(&w.bo)
}

#[test]
fn a_late_endorsement_is_kept_only_for_an_ask_of_ours_in_its_window() {
    let mut w = world();
    let query_id = QueryId([3; 16]);
    let me = w.me.node_id();
    let deliver =
        |w: &World, s: SignedEndorsement| w.decide(w.bo.node_id(), PeerRequest::Deliver(s));
    // No such ask here.
    let signed = statement(&w, me, query_id, "tag:bike/a");
    assert_eq!(
        deliver(&w, signed.clone()),
        Reply::refused(Refusal::Malformed)
    );
    w.tables
        .asks
        .insert(query_id, (item("tag:bike"), NOW - 3600));
    let reply = deliver(&w, signed.clone());
    assert_eq!(reply.response, PeerResponse::Received);
    assert_eq!(
        reply.effects,
        vec![Effect::KeepLate {
            query_id,
            from: w.bo.node_id(),
            from_name: "Bo".into(),
            signed,
            item: item("tag:bike/a"),
        }]
    );
    // For another node, or outside the item asked about.
    let other = Identity::generate(&mut OsRng).node_id();
    let wrong = [
        statement(&w, other, query_id, "tag:bike/a"),
        statement(&w, me, query_id, "tag:car"),
    ];
    for signed in wrong {
        assert_eq!(deliver(&w, signed), Reply::refused(Refusal::Malformed));
    }
}

#[test]
fn a_card_update_moves_a_contact_at_most_so_often_and_never_backwards() {
    let mut w = world();
    let bo = w.bo.node_id();
    let update = |w: &World, c: SignedCard| w.decide(bo, PeerRequest::UpdateCard(c));
    let held = w.tables.contacts[&bo].card.clone();
    // Same addresses, newer card: stored in place of the one held, no move recorded.
    let same = card(&w.bo, "Bo", "127.0.0.1:7001", NOW - 50);
    let reply = update(&w, same.clone());
    assert_eq!(reply.response, PeerResponse::CardUpdated);
    assert_eq!(
        reply.condition,
        Some(Condition::ReplaceCard {
            contact: bo,
            held: held.clone(),
            card: same,
            moved: None,
        })
    );
    assert_eq!(reply.after, vec![Effect::OfferCard { contact: bo }]);
    // A move.
    let moved = card(&w.bo, "Bo", "127.0.0.1:9000", NOW - 50);
    let reply = update(&w, moved.clone());
    assert_eq!(
        reply.condition,
        Some(Condition::ReplaceCard {
            contact: bo,
            held,
            card: moved.clone(),
            moved: Some(Moved {
                name: "Bo".into(),
                addresses: vec!["127.0.0.1:9000".into()],
            }),
        })
    );
    // Over the day's moves.
    w.tables.moves.insert(bo, MAX_MOVES_PER_DAY);
    assert_eq!(
        update(&w, moved.clone()),
        Reply::refused(Refusal::RateLimited)
    );
    // A concurrent update stored a later card: this one, decided again, stores nothing,
    // and the sender is still offered our card.
    w.tables.contacts.get_mut(&bo).unwrap().card = card(&w.bo, "Bo", "127.0.0.1:9001", NOW - 20);
    let reply = update(&w, moved);
    assert_eq!(reply.response, PeerResponse::CardUpdated);
    assert_eq!(reply.condition, None);
    assert!(reply.effects.is_empty());
    assert_eq!(reply.after, vec![Effect::OfferCard { contact: bo }]);
    // Someone else's card, sent by Bo.
    let other = Identity::generate(&mut OsRng);
    assert_eq!(
        update(&w, card(&other, "Bo", "127.0.0.1:1", NOW)),
        Reply::refused(Refusal::Malformed)
    );
}

#[test]
fn a_failed_read_fails_the_request() {
    let mut w = world();
    w.tables.fail = true;
    let query = Query {
        query_id: QueryId([1; 16]),
        item: item("tag:bike/a"),
    };
    let decided = Endpoint::new(&w.me, &w.my_card).decide(
        &w.tables,
        w.bo.node_id(),
        &PeerRequest::Ask(query),
        NOW,
    );
    assert_eq!(decided, Err(Failed));
}

#[test]
fn undecodable_requests_are_refused_by_kind() {
    use crate::error::{Incompatible, PeerMisbehaved};
    assert_eq!(
        refusal_for(&WireError::Incompatible(Incompatible::UnsupportedVersion(
            9
        ))),
        Refusal::UnsupportedVersion
    );
    assert_eq!(
        refusal_for(&WireError::PeerMisbehaved(PeerMisbehaved::Malformed("x"))),
        Refusal::Malformed
    );
}
