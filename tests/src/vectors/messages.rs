//! `messages.json`: one vector for every variant of every message enum a node or app sends
//! (spec §8.1, §9.7, §10.2, §10.3), and one for every refusal, abort and app error code
//! (§8.4, §9.9, §10.4). [`variant_counts`] probes the decoder for how many variants each
//! enum has, so that `tests/vectors.rs` fails when a variant is added without a vector.

use kith_protocol::aggregation::cohort::{advert_digest, bitmap, cohort_digest, Params};
use kith_protocol::aggregation::estimate::AggregateSum;
use kith_protocol::aggregation::messages::{
    consistency_message, contact_tag, member_binding, AbortReason, Advertisement, AggRequest,
    AggResponse, NoiseDeclaration, NoiseRelease, SealedShare, SignedAdvertisement,
    SurvivorSignature, Unmasking, ADVERTISEMENT_VERSION, SEALED_PAIR_LEN,
};
use kith_protocol::app::{
    AnswerUpdate, AppError, AppErrorCode, AppInfo, AppRequest, AppResponse, AppScope, AskResult,
    AuditEntry, CardUpdateReport, CardUpdateUnreached, ContactInfo, DeclineReason, Declined,
    InviteCode, InviteCreated, InviteInfo, NamedEndorsement, NodeStatus, PairingCreated,
    PairingInfo, PendingRequest, PendingStatus, PolicyEntry, SubjectRef,
};
use kith_protocol::consent::{Share, Subject};
use kith_protocol::frame::{encode_frame, MAX_APP_FRAME, MAX_PEER_FRAME};
use kith_protocol::pairing::PairingCode;
use kith_protocol::wire::{decode_exact, decode_message, encode_message, encode_value};
use kith_protocol::*;
use rand_core::RngCore;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{card_of, decoded, hex, identity, oversize_frame, statement, VectorRng, NOW};

/// The message enums and code enums whose every variant has a vector, with the number of
/// variants the decoder accepts.
pub fn variant_counts() -> Vec<(&'static str, u32)> {
    vec![
        ("PeerRequest", count::<PeerRequest>()),
        ("PeerResponse", count::<PeerResponse>()),
        ("AggRequest", count::<AggRequest>()),
        ("AggResponse", count::<AggResponse>()),
        ("AppRequest", count::<AppRequest>()),
        ("AppResponse", count::<AppResponse>()),
        ("Refusal", count::<Refusal>()),
        ("AbortReason", count::<AbortReason>()),
        ("AppErrorCode", count::<AppErrorCode>()),
    ]
}

/// Variants are numbered from 0 (§5.2). A known variant index alone either decodes (a unit
/// variant) or runs out of bytes; an unknown one is refused as such.
fn count<T: DeserializeOwned>() -> u32 {
    (0u8..128)
        .take_while(|i| match decode_exact::<T>(&[*i]) {
            Ok(_) => true,
            Err(e) => e.to_string().contains("unexpected end"),
        })
        .count() as u32
}

/// The variant index of an enum value: the first byte of its encoding (every kith enum has
/// fewer than 128 variants, so the varint is one byte).
fn index<T: Serialize>(value: &T) -> u32 {
    u32::from(encode_value(value)[0])
}

/// A vector for one message: its type and variant path, its value as JSON (field names,
/// externally tagged enums, byte arrays as numbers), and its body, message and frame.
fn vector<T: Serialize + std::fmt::Debug>(
    name: &str,
    ty: &str,
    path: Value,
    msg: &T,
    cap: u32,
) -> Value {
    let message = encode_message(msg);
    json!({
        "name": name,
        "type": ty,
        "variants": path,
        "value": serde_json::to_value(msg).expect("JSON value"),
        "body": hex(&encode_value(msg)),
        "message": hex(&message),
        "frame": hex(&encode_frame(&message, cap).expect("under the cap")),
    })
}

fn peer_request(name: &str, msg: PeerRequest) -> Value {
    let mut path = vec![json!({"PeerRequest": index(&msg)})];
    if let PeerRequest::Aggregate(inner) = &msg {
        path.push(json!({"AggRequest": index(inner)}));
    }
    vector(name, "PeerRequest", json!(path), &msg, MAX_PEER_FRAME)
}

fn peer_response(name: &str, msg: PeerResponse) -> Value {
    let mut path = vec![json!({"PeerResponse": index(&msg)})];
    match &msg {
        PeerResponse::Aggregate(inner) => {
            path.push(json!({"AggResponse": index(inner)}));
            if let AggResponse::Abort(reason) = inner {
                path.push(json!({"AbortReason": index(reason)}));
            }
        }
        PeerResponse::Refused(code) => path.push(json!({"Refusal": index(code)})),
        _ => {}
    }
    vector(name, "PeerResponse", json!(path), &msg, MAX_PEER_FRAME)
}

fn app_request(name: &str, msg: AppRequest) -> Value {
    let path = json!([{"AppRequest": index(&msg)}]);
    vector(name, "AppRequest", path, &msg, MAX_APP_FRAME)
}

fn app_response(name: &str, msg: AppResponse) -> Value {
    let mut path = vec![json!({"AppResponse": index(&msg)})];
    if let AppResponse::Error(e) = &msg {
        path.push(json!({"AppErrorCode": index(&e.code)}));
    }
    vector(name, "AppResponse", json!(path), &msg, MAX_APP_FRAME)
}

fn item(s: &str) -> ItemKey {
    ItemKey::parse(s).expect("valid item key")
}

fn pattern(s: &str) -> ItemPattern {
    ItemPattern::parse(s).expect("valid pattern")
}

pub(super) fn messages() -> Value {
    let (ana, _) = identity("kith-vectors/ana");
    let (chloe, _) = identity("kith-vectors/chloe");
    let (bob, _) = identity("kith-vectors/bob");
    let qid = QueryId([0x11; 16]);
    let subaru = item("tag:vehicle/subaru");
    let mut rng = VectorRng::new("kith-vectors/messages");
    let invite = Invite::generate(
        &mut rng,
        card_of(&ana, "Ana", "127.0.0.1:7400").sign(&ana),
        NOW,
        7 * 24 * 3600,
    );
    let invite_code = InviteCode(invite.to_code());
    let pairing_code = InviteCode(
        PairingCode {
            node: ana.node_id(),
            secret: [0x33; 16],
        }
        .to_text(),
    );
    let signed = statement(&chloe, ana.node_id()).sign(&chloe);
    let endorsement = statement(&chloe, ana.node_id()).endorsement;
    let named = NamedEndorsement {
        name: "Chloe".into(),
        node: chloe.node_id(),
        endorsement: endorsement.clone(),
        signed: signed.clone(),
    };
    let scope = AppScope {
        ask: vec![pattern("tag:vehicle/*")],
        named: false,
        daily_limit: Some(20),
    };
    let app_info = AppInfo {
        name: "shop".into(),
        key: NodeId([0x44; 32]),
        scope: scope.clone(),
        paired_at: NOW - 3600,
        last_used_at: Some(NOW - 60),
        asks_24h: 3,
        revoked_at: None,
    };
    let contact = ContactInfo {
        name: "Chloe".into(),
        node_id: chloe.node_id(),
        circle: "friends".into(),
        addresses: vec!["127.0.0.1:7401".into()],
        added_at: NOW - 86_400,
    };
    let rule = PolicyEntry {
        subject: Subject::Contact(chloe.node_id()),
        contact_name: Some("Chloe".into()),
        items: pattern("tag:vehicle/*"),
        share: Share::Name,
    };
    let pending = PendingRequest {
        id: 7,
        asker: ana.node_id(),
        asker_name: "Ana".into(),
        query_id: qid,
        item: item("tag:vehicle/subaru/outback"),
        asked: subaru.clone(),
        created_at: NOW - 600,
        status: PendingStatus::Pending,
    };

    // Aggregation messages: real signatures and digests; the sealed pairs' and shares'
    // bytes are arbitrary here (aggregation.json has them computed).
    // Each member's session key (spec §9.7.1), drawn like every other key here.
    let sessions: Vec<Identity> = (0..3).map(|_| Identity::generate(&mut rng)).collect();
    let advert = |who: &Identity, session: &Identity, epsilon| {
        let member = session.node_id();
        Advertisement {
            version: ADVERTISEMENT_VERSION,
            member,
            contact_tag: contact_tag(&qid, &ana.node_id(), &who.node_id()),
            identity_proof: who.sign(
                kith_protocol::identity::SigningLabel::SecAggMember,
                &member_binding(&qid, &ana.node_id(), &member),
            ),
            share_key: [0x55; 32],
            mask_key: [0x66; 32],
            epsilon,
            min_cohort: 3,
        }
        .sign(session, &qid, &ana.node_id())
    };
    let adverts: Vec<SignedAdvertisement> = vec![
        advert(&chloe, &sessions[0], Some(1000)),
        advert(&bob, &sessions[1], None),
        advert(&ana, &sessions[2], Some(500)),
    ];
    let mut roster: Vec<[u8; 32]> = adverts.iter().map(advert_digest).collect();
    roster.sort();
    let params = Params {
        degree: 2,
        threshold: 3,
        min_survivors: 3,
        epsilon: Some(500),
        detail: false,
    };
    let declared = NoiseDeclaration {
        base_divisor: 3,
        threshold: 3,
    };
    let survivors = bitmap::from_positions(3, [0, 1, 2]);
    let consistency = sessions[0].sign(
        kith_protocol::identity::SigningLabel::SecAggConsistency,
        &consistency_message(
            &qid,
            &ana.node_id(),
            &cohort_digest(&roster, &params),
            &survivors,
            &declared,
        ),
    );
    let mut opaque = |n: usize| {
        let mut b = vec![0u8; n];
        rng.fill_bytes(&mut b);
        b
    };
    let pairs = vec![opaque(SEALED_PAIR_LEN), opaque(SEALED_PAIR_LEN)];
    let sealed: Vec<SealedShare> = [0u32, 2]
        .into_iter()
        .map(|from| SealedShare {
            from,
            ciphertext: opaque(SEALED_PAIR_LEN),
        })
        .collect();
    let share_of = |b: u8| [b; 32];

    let mut v = vec![
        peer_request(
            "PeerRequest 0 Redeem",
            PeerRequest::Redeem(InviteRedemption {
                invite_id: invite.id,
                proof: invite.redemption_proof(&ana.node_id(), &chloe.node_id()),
                card: card_of(&chloe, "Chloe", "127.0.0.1:7401").sign(&chloe),
            }),
        ),
        peer_request(
            "PeerRequest 1 Ask",
            PeerRequest::Ask(Query {
                query_id: qid,
                item: subaru.clone(),
            }),
        ),
        peer_request(
            "PeerRequest 2 Aggregate / AggRequest 0 Advertise",
            PeerRequest::Aggregate(AggRequest::Advertise {
                query_id: qid,
                item: subaru.clone(),
                epsilon: Some(1000),
                detail: false,
            }),
        ),
        peer_request(
            "PeerRequest 2 Aggregate / AggRequest 1 ShareKeys",
            PeerRequest::Aggregate(AggRequest::ShareKeys {
                query_id: qid,
                roster: roster.clone(),
                params,
                neighbours: adverts[1..].to_vec(),
            }),
        ),
        peer_request(
            "PeerRequest 2 Aggregate / AggRequest 2 MaskInput",
            PeerRequest::Aggregate(AggRequest::MaskInput {
                query_id: qid,
                shares: sealed,
            }),
        ),
        peer_request(
            "PeerRequest 2 Aggregate / AggRequest 3 Consistency",
            PeerRequest::Aggregate(AggRequest::Consistency {
                query_id: qid,
                survivors: survivors.clone(),
            }),
        ),
        peer_request(
            "PeerRequest 2 Aggregate / AggRequest 4 Unmask",
            PeerRequest::Aggregate(AggRequest::Unmask {
                query_id: qid,
                signatures: vec![SurvivorSignature {
                    member: sessions[0].node_id(),
                    noise: declared,
                    signature: consistency,
                }],
            }),
        ),
        peer_request(
            "PeerRequest 2 Aggregate / AggRequest 5 Close",
            PeerRequest::Aggregate(AggRequest::Close { query_id: qid }),
        ),
        peer_request(
            "PeerRequest 3 Deliver",
            PeerRequest::Deliver(signed.clone()),
        ),
        peer_request(
            "PeerRequest 4 UpdateCard",
            PeerRequest::UpdateCard(card_of(&ana, "Ana", "192.0.2.10:7400").sign(&ana)),
        ),
        peer_response(
            "PeerResponse 0 Welcome",
            PeerResponse::Welcome(card_of(&ana, "Ana", "127.0.0.1:7400").sign(&ana)),
        ),
        peer_response(
            "PeerResponse 1 Answer",
            PeerResponse::Answer(Answer {
                query_id: qid,
                named: vec![signed.clone()],
            }),
        ),
        peer_response(
            "PeerResponse 3 Aggregate / AggResponse 0 Advertised",
            PeerResponse::Aggregate(AggResponse::Advertised {
                answer: Answer {
                    query_id: qid,
                    named: vec![],
                },
                advertisement: adverts[0].clone(),
            }),
        ),
        peer_response(
            "PeerResponse 3 Aggregate / AggResponse 1 Shares",
            PeerResponse::Aggregate(AggResponse::Shares {
                threshold: 3,
                pairs,
            }),
        ),
        peer_response(
            "PeerResponse 3 Aggregate / AggResponse 2 Masked",
            PeerResponse::Aggregate(AggResponse::Masked(vec![1, 2, 0, u32::MAX, 0, 0, 1])),
        ),
        peer_response(
            "PeerResponse 3 Aggregate / AggResponse 3 Consistent",
            PeerResponse::Aggregate(AggResponse::Consistent {
                noise: declared,
                signature: consistency,
            }),
        ),
        peer_response(
            "PeerResponse 3 Aggregate / AggResponse 4 Unmasked",
            PeerResponse::Aggregate(AggResponse::Unmasked(Unmasking {
                noise: NoiseRelease {
                    kept: 333_334,
                    removed: vec![3, 0, 0, 0, 0, 0, 0],
                },
                self_seed_shares: vec![(sessions[0].node_id(), share_of(0x77))],
                mask_seed_shares: vec![(sessions[1].node_id(), share_of(0x88))],
            })),
        ),
        peer_response(
            "PeerResponse 3 Aggregate / AggResponse 6 Closed",
            PeerResponse::Aggregate(AggResponse::Closed),
        ),
        peer_response("PeerResponse 4 Received", PeerResponse::Received),
        peer_response("PeerResponse 5 CardUpdated", PeerResponse::CardUpdated),
    ];
    for code in [
        Refusal::NotAContact,
        Refusal::InviteUnknown,
        Refusal::InviteExpired,
        Refusal::InviteUsed,
        Refusal::InviteInvalid,
        Refusal::Malformed,
        Refusal::UnsupportedVersion,
        Refusal::Internal,
        Refusal::RateLimited,
    ] {
        let name = format!("PeerResponse 2 Refused / Refusal {} {code:?}", index(&code));
        v.push(peer_response(&name, PeerResponse::Refused(code)));
    }
    for reason in [
        AbortReason::UnexpectedRound,
        AbortReason::CohortTooSmall,
        AbortReason::Inconsistent,
        AbortReason::RateLimited,
        AbortReason::Expired,
        AbortReason::PrivacyBudget,
        AbortReason::TooManyOpen,
    ] {
        let name = format!(
            "PeerResponse 3 Aggregate / AggResponse 5 Abort / AbortReason {} {reason:?}",
            index(&reason)
        );
        v.push(peer_response(
            &name,
            PeerResponse::Aggregate(AggResponse::Abort(reason)),
        ));
    }
    let requests = [
        AppRequest::Status,
        AppRequest::CreateInvite {
            circle: Some("family".into()),
        },
        AppRequest::AcceptInvite {
            code: invite_code.clone(),
            circle: None,
        },
        AppRequest::ListContacts,
        AppRequest::Endorse {
            item: item("isbn:0441013597"),
            count: 1,
            rating: Some(5),
            note: Some("Great in snow".into()),
        },
        AppRequest::ListEndorsements,
        AppRequest::Unendorse {
            item: item("isbn:0441013597"),
        },
        AppRequest::SetPolicy {
            subject: SubjectRef::Circle("friends".into()),
            items: pattern("tag:vehicle/*"),
            share: Share::Count,
        },
        AppRequest::ListPolicy,
        AppRequest::Ask {
            item: subaru.clone(),
            timeout_ms: 5000,
            epsilon: None,
            detail: true,
        },
        AppRequest::Audit { limit: 50 },
        AppRequest::ListSettings,
        AppRequest::SetSetting {
            key: "min-cohort".into(),
            value: "5".into(),
        },
        AppRequest::ListPending,
        AppRequest::Approve { id: 7 },
        AppRequest::Deny { id: 300 },
        AppRequest::ListUpdates { query_id: None },
        AppRequest::CreatePairing {
            name: "shop".into(),
            scope: scope.clone(),
        },
        AppRequest::Pair { code: pairing_code },
        AppRequest::ListApps,
        AppRequest::RevokeApp {
            name: "shop".into(),
        },
        AppRequest::RemovePolicy {
            subject: SubjectRef::Circle("friends".into()),
            items: pattern("tag:vehicle/*"),
        },
        AppRequest::RemoveContact {
            contact: "Chloe".into(),
        },
        AppRequest::RenameContact {
            contact: "Chloe".into(),
            name: "Chloé".into(),
        },
        AppRequest::AuditPage {
            before: Some(120),
            contact: Some("Chloe".into()),
            item: Some("tag:vehicle".into()),
            limit: 50,
        },
        AppRequest::ListInvites,
        AppRequest::RevokeInvite {
            id: "0a1b2c3d".into(),
        },
        AppRequest::ListPairings,
        AppRequest::CancelPairing {
            name: "shop".into(),
        },
        AppRequest::SetAdvertise {
            addresses: vec!["192.0.2.10:7400".into(), "ana.example:7400".into()],
        },
    ];
    for r in requests {
        let name = format!("AppRequest {} {}", index(&r), variant_name(&r));
        v.push(app_request(&name, r));
    }
    let ask_result = AskResult {
        query_id: qid,
        item: subaru.clone(),
        asked: 3,
        answered: 3,
        named: vec![named.clone()],
        elapsed_ms: 412,
        cohort: 3,
        survivors: 3,
        aggregate: Some(AggregateSum {
            owners: 2,
            owners_low: 0,
            owners_high: 3,
            units: Some(0),
            ratings: Some([0, 0, 1, 0, 1]),
        }),
        withheld: None,
        epsilon: Some(1000),
        // One contact per reason, to show every encoding (spec §10.3).
        declined: [
            DeclineReason::Unreachable,
            DeclineReason::TimedOut,
            DeclineReason::DailyBudget,
            DeclineReason::PrivacyBudget,
            DeclineReason::TooManyOpenAsks,
            DeclineReason::NotAContact,
            DeclineReason::Refused,
            DeclineReason::Aborted,
            DeclineReason::Misbehaved,
            DeclineReason::CohortFull,
        ]
        .into_iter()
        .enumerate()
        .map(|(i, reason)| Declined {
            contact: bob.node_id(),
            name: "Bob".into(),
            round: (i % 5) as u8,
            reason,
        })
        .collect(),
    };
    let responses = [
        AppResponse::Status(NodeStatus {
            name: "Ana".into(),
            node_id: ana.node_id(),
            peer_addr: "127.0.0.1:7400".into(),
            api_addr: "127.0.0.1:7410".into(),
            contacts: 2,
            endorsements: 1,
            software: "kith 0.1.0".into(),
            uptime_secs: 3600,
        }),
        AppResponse::Invite(InviteCreated {
            code: invite_code,
            expires_at: NOW + 7 * 24 * 3600,
            circle: "friends".into(),
        }),
        AppResponse::Contact(contact.clone()),
        AppResponse::Contacts(vec![contact]),
        AppResponse::Endorsement(endorsement.clone()),
        AppResponse::Endorsements(vec![endorsement]),
        AppResponse::Removed(true),
        AppResponse::PolicyRule(rule.clone()),
        AppResponse::Policy(vec![
            rule,
            PolicyEntry {
                subject: Subject::Circle("friends".into()),
                contact_name: None,
                items: pattern("*"),
                share: Share::Ask,
            },
        ]),
        AppResponse::AskResult(ask_result),
        AppResponse::Audit(vec![AuditEntry {
            id: 12,
            at: NOW,
            event: "answered".into(),
            peer: Some(ana.node_id()),
            peer_name: Some("Ana".into()),
            item: Some("tag:vehicle/subaru".into()),
            detail: "nothing (owns nothing matching); taking part in an aggregate, as not owning it, counted only if the asker releases one".into(),
        }]),
        AppResponse::Error(AppError {
            code: AppErrorCode::BadRequest,
            message: "no such contact".into(),
        }),
        AppResponse::Settings(vec![
            ("advertise".into(), "192.0.2.10:7400".into()),
            ("min-cohort".into(), "5".into()),
            ("epsilon".into(), "1".into()),
            ("asks-per-day".into(), "20".into()),
            ("epsilon-per-day".into(), "4".into()),
        ]),
        AppResponse::Pending(vec![pending.clone()]),
        AppResponse::Decided(PendingRequest {
            status: PendingStatus::Approved,
            ..pending
        }),
        AppResponse::Updates(vec![AnswerUpdate {
            query_id: qid,
            received_at: NOW + 120,
            named,
        }]),
        AppResponse::Pairing(PairingCreated {
            code: InviteCode(
                PairingCode {
                    node: ana.node_id(),
                    secret: [0x33; 16],
                }
                .to_text(),
            ),
            name: "shop".into(),
            expires_at: NOW + 600,
        }),
        AppResponse::App(app_info.clone()),
        AppResponse::Apps(vec![
            app_info.clone(),
            AppInfo {
                name: "old".into(),
                revoked_at: Some(NOW - 10),
                last_used_at: None,
                ..app_info.clone()
            },
        ]),
        AppResponse::Invites(vec![
            InviteInfo {
                id: [0x0a; 16],
                circle: "friends".into(),
                created_at: NOW - 3600,
                expires_at: NOW + 7 * 86_400 - 3600,
                used_at: None,
                used_by: None,
            },
            InviteInfo {
                id: [0x0b; 16],
                circle: "family".into(),
                created_at: NOW - 86_400,
                expires_at: NOW + 6 * 86_400,
                used_at: Some(NOW - 80_000),
                used_by: Some(chloe.node_id()),
            },
        ]),
        AppResponse::Pairings(vec![PairingInfo {
            name: "garage".into(),
            scope: app_info.scope.clone(),
            created_at: NOW - 60,
            expires_at: NOW + 540,
        }]),
        AppResponse::CardUpdate(CardUpdateReport {
            addresses: vec!["192.0.2.10:7400".into()],
            delivered: vec!["Chloe".into()],
            unreached: vec![CardUpdateUnreached {
                contact: chloe.node_id(),
                name: "Dee".into(),
                reason: "no answer in time".into(),
            }],
        }),
    ];
    for r in responses {
        let name = format!("AppResponse {} {}", index(&r), variant_name(&r));
        v.push(app_response(&name, r));
    }
    for code in [
        AppErrorCode::NotFound,
        AppErrorCode::Unauthorized,
        AppErrorCode::InviteMalformed,
        AppErrorCode::InviteExpired,
        AppErrorCode::InviteUsed,
        AppErrorCode::InviteUnknown,
        AppErrorCode::Unreachable,
        AppErrorCode::PeerMisbehaved,
        AppErrorCode::Internal,
        AppErrorCode::Conflict,
        AppErrorCode::OutOfScope,
        AppErrorCode::RateLimited,
    ] {
        let name = format!(
            "AppResponse 11 Error / AppErrorCode {} {code:?}",
            index(&code)
        );
        v.push(app_response(
            &name,
            AppResponse::Error(AppError {
                code,
                message: String::new(),
            }),
        ));
    }
    v.extend(decoding_failures());
    json!({
        "section": "§5.2, §8.1, §8.4, §9.7, §9.9, §10.2, §10.3, §10.4",
        "description": "Every variant of every message enum and every refusal, abort and app error code: value (JSON, informative), body = postcard(value), message = varint(2) || body, frame = u32_be(len(message)) || message. Sealed pairs, sealed shares and seed shares hold arbitrary bytes here; aggregation.json computes real ones.",
        "vectors": v,
    })
}

fn failure(name: &str, ty: &str, message: &[u8], result: String) -> Value {
    json!({"name": name, "type": ty, "message": hex(message), "result": result})
}

/// One vector per decoding rule of §5.2 and §5.3, on app and aggregation messages (the
/// peer-message cases are in frames.json), plus one accepted non-shortest varint.
fn decoding_failures() -> Vec<Value> {
    let req = |name: &str, m: &[u8]| failure(name, "AppRequest", m, decoded::<AppRequest>(m));
    let resp = |name: &str, m: &[u8]| failure(name, "AppResponse", m, decoded::<AppResponse>(m));
    let peer_req =
        |name: &str, m: &[u8]| failure(name, "PeerRequest", m, decoded::<PeerRequest>(m));
    let peer_resp =
        |name: &str, m: &[u8]| failure(name, "PeerResponse", m, decoded::<PeerResponse>(m));
    let mut bad_utf8 = vec![0x02, 0x14, 0x04];
    bad_utf8.extend_from_slice(&[0x73, 0x68, 0xff, 0x70]);
    let mut pattern_not_normal = vec![0x02, 0x07, 0x00, 0x07];
    pattern_not_normal.extend_from_slice(b"friends");
    pattern_not_normal.push(5);
    pattern_not_normal.extend_from_slice(b"TAG:*");
    pattern_not_normal.push(1);
    let mut normal = pattern_not_normal.clone();
    normal[12..15].copy_from_slice(b"tag");
    assert!(
        decode_message::<AppRequest>(&normal).is_ok(),
        "fails for the pattern only"
    );
    vec![
        req(
            &format!(
                "failure: unknown AppRequest variant {}",
                count::<AppRequest>()
            ),
            &[0x02, count::<AppRequest>() as u8],
        ),
        resp(
            &format!(
                "failure: unknown AppResponse variant {}",
                count::<AppResponse>()
            ),
            &[0x02, count::<AppResponse>() as u8],
        ),
        peer_req(
            &format!(
                "failure: unknown PeerRequest variant {}",
                count::<PeerRequest>()
            ),
            &[0x02, count::<PeerRequest>() as u8],
        ),
        peer_resp(
            &format!(
                "failure: unknown PeerResponse variant {}",
                count::<PeerResponse>()
            ),
            &[0x02, count::<PeerResponse>() as u8],
        ),
        // The first unknown index, counted from the decoder, so that a new variant moves it.
        peer_req(
            &format!(
                "failure: unknown AggRequest variant {}",
                count::<AggRequest>()
            ),
            &[0x02, 0x02, count::<AggRequest>() as u8],
        ),
        peer_resp(
            &format!(
                "failure: unknown AggResponse variant {}",
                count::<AggResponse>()
            ),
            &[0x02, 0x03, count::<AggResponse>() as u8],
        ),
        peer_resp("failure: unknown Refusal code 9", &[0x02, 0x02, 0x09]),
        peer_resp(
            &format!("failure: unknown AbortReason {}", count::<AbortReason>()),
            &[0x02, 0x03, 0x05, count::<AbortReason>() as u8],
        ),
        resp(
            "failure: unknown AppErrorCode 13",
            &[0x02, 0x0b, 0x0d, 0x00],
        ),
        resp(
            "failure: bool tag 02 (AppResponse::Removed)",
            &[0x02, 0x06, 0x02],
        ),
        req(
            "failure: option tag 02 (AppRequest::CreateInvite.circle)",
            &[0x02, 0x01, 0x02],
        ),
        req(
            "failure: string not UTF-8 (AppRequest::RevokeApp.name)",
            &bad_utf8,
        ),
        req(
            "failure: u32 varint whose fifth byte exceeds 0x0f (AppRequest::Audit.limit)",
            &[0x02, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x1f],
        ),
        req(
            "failure: u64 varint of 11 bytes (AppRequest::Approve.id)",
            &[
                0x02, 0x0e, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
        ),
        req(
            "failure: protocol version varint of 4 bytes",
            &[0x81, 0x80, 0x80, 0x00, 0x00],
        ),
        req("failure: empty message (no protocol version)", &[]),
        req(
            "failure: item pattern not in normal form (AppRequest::SetPolicy.items = TAG:*)",
            &pattern_not_normal,
        ),
        req(
            "failure: trailing byte after AppRequest::ListApps",
            &[0x02, 0x13, 0x00],
        ),
        req(
            "failure: truncated AppRequest::Approve",
            &[0x02, 0x0e, 0x80],
        ),
        req(
            "accepted: non-shortest varint 80 00 for Approve.id = 0 (§5.2 Canonical form)",
            &[0x02, 0x0e, 0x80, 0x00],
        ),
        oversize_frame("app", MAX_APP_FRAME),
    ]
}

/// The Rust variant name, from the `Debug` form (up to the first `{`, `(` or space).
fn variant_name<T: std::fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
        .split(['{', '(', ' '])
        .next()
        .unwrap_or_default()
        .to_string()
}
