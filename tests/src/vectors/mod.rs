//! Test-vector generation for `spec/vectors/v2/` (spec README). Every value is computed by
//! the real protocol code from fixed seeds, so the files change exactly when the wire format
//! or a computation changes. `tests/vectors.rs` regenerates and compares byte for byte.

use std::path::PathBuf;

mod keys;
mod messages;
pub use messages::variant_counts;

use curve25519_dalek::Scalar;
use hkdf::Hkdf;
use kith_protocol::app::{AppError, AppErrorCode, AppRequest, AppResponse};
use kith_protocol::endorsement::STATEMENT_VERSION;
use kith_protocol::frame::{encode_frame, FrameDecoder, MAX_APP_FRAME, MAX_PEER_FRAME};
use kith_protocol::invite::INVITE_PREFIX;
use kith_protocol::wire::{decode_exact, decode_message, encode_message, encode_value};
use kith_protocol::*;
use rand_core::{CryptoRng, RngCore};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The spec version whose vectors this module writes.
pub const SPEC_VERSION: &str = "v2";

/// Deterministic bytes: SHA-256(label || 0x00 || counter_be32), concatenated. Not secure;
/// reproducible from the label alone, which the vectors record.
#[derive(Clone, Debug)]
pub struct VectorRng {
    label: Vec<u8>,
    counter: u32,
    buf: Vec<u8>,
}

impl VectorRng {
    pub fn new(label: &str) -> Self {
        Self {
            label: label.as_bytes().to_vec(),
            counter: 0,
            buf: Vec::new(),
        }
    }
}

impl RngCore for VectorRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest.iter_mut() {
            if self.buf.is_empty() {
                let mut h = Sha256::new();
                h.update(&self.label);
                h.update([0]);
                h.update(self.counter.to_be_bytes());
                self.counter += 1;
                self.buf = h.finalize().to_vec();
                self.buf.reverse();
            }
            *d = self.buf.pop().expect("refilled");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for VectorRng {}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn identity(label: &str) -> (Identity, Value) {
    let mut rng = VectorRng::new(label);
    let mut probe = rng.clone();
    let mut secrets = [0u8; 64];
    probe.fill_bytes(&mut secrets);
    let id = Identity::generate(&mut rng);
    let v = json!({
        "rng_label": label,
        "ed25519_seed": hex(&secrets[..32]),
        "x25519_secret": hex(&secrets[32..]),
        "node_id": id.node_id().to_hex(),
        "sealing_key": hex(&id.sealing_public_key().0),
    });
    (id, v)
}

const NOW: u64 = 1_795_000_000;

fn card_of(id: &Identity, name: &str, addr: &str) -> ContactCard {
    ContactCard::new(id, name, vec![addr.into()], NOW, 365 * 24 * 3600).expect("valid card")
}

/// A card's fields as JSON, the inputs of its body (§3.1).
fn card_fields(card: &ContactCard) -> Value {
    json!({"version": card.version, "name": card.name, "addresses": card.addresses, "issued_at": card.issued_at, "expires_at": card.expires_at})
}

fn cards() -> Value {
    let (chloe, keys) = identity("kith-vectors/chloe");
    let card = card_of(&chloe, "Chloe", "127.0.0.1:7401");
    let signed = card.sign(&chloe);
    let mut tampered = signed.clone();
    let last = tampered.body.len() - 1;
    tampered.body[last] ^= 0x01;
    let err = |s: &SignedCard, at: u64| {
        s.verify(at)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "ok".into())
    };
    // The name's length written as the two-byte varint `85 00` instead of `05` (§5.2
    // Canonical form), and signed as sent: receivers accept it and verify these bytes.
    let i = signed
        .body
        .windows(6)
        .position(|w| w == b"\x05Chloe")
        .expect("name in body");
    let mut long_body = signed.body[..i].to_vec();
    long_body.extend_from_slice(&[0x85, 0x00]);
    long_body.extend_from_slice(&signed.body[i + 1..]);
    let non_canonical = SignedCard {
        signature: chloe.sign(SigningLabel::ContactCard, &long_body),
        body: long_body,
    };
    json!({
        "section": "§2.3, §3.1, §5.2",
        "description": "Contact cards: body = postcard(ContactCard); signature = Ed25519(label || 0x00 || body)",
        "vectors": [
            {
                "name": "card signed and verified",
                "keys": keys,
                "card": card_fields(&card),
                "body": hex(&signed.body),
                "signed_message": hex(&SigningLabel::ContactCard.prefix(&signed.body)),
                "signature": hex(&signed.signature.0),
                "signed_card": hex(&encode_value(&signed)),
                "verify_at": NOW + 1,
                "result": err(&signed, NOW + 1),
            },
            {
                "name": "tampered body (last bit of expires_at flipped)",
                "signed_card": hex(&encode_value(&tampered)),
                "verify_at": NOW + 1,
                "result": err(&tampered, NOW + 1),
            },
            {
                "name": "accepted: body with a non-shortest varint (name length 85 00), signed over the bytes sent (§2.3, §5.2)",
                "body": hex(&non_canonical.body),
                "signature": hex(&non_canonical.signature.0),
                "signed_card": hex(&encode_value(&non_canonical)),
                "verify_at": NOW + 1,
                "result": err(&non_canonical, NOW + 1),
            },
            {
                "name": "expired card",
                "signed_card": hex(&encode_value(&signed)),
                "verify_at": card.expires_at,
                "result": err(&signed, card.expires_at),
            },
        ]
    })
}

fn invites() -> Value {
    let (ana, keys) = identity("kith-vectors/ana");
    let (bob, _) = identity("kith-vectors/bob");
    let card = card_of(&ana, "Ana", "127.0.0.1:7400");
    let signed = card.sign(&ana);
    let mut rng = VectorRng::new("kith-vectors/invite");
    let invite = Invite::generate(&mut rng, signed, NOW, 7 * 24 * 3600);
    let code = invite.to_code();
    let decode = |code: &str, at: u64| match Invite::from_code(code, at) {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let typo = mistype(&code, 20);
    let mut v2 = encode_value(&invite);
    v2[0] = 2;
    let future = text_code::encode(INVITE_PREFIX, &v2);
    let mut forged = invite.clone();
    forged.card.signature.0[0] ^= 0x80;
    let forged_code = forged.to_code();
    json!({
        "section": "§3.2, §3.3",
        "description": "Invite codes: KITH1 || base32(postcard(Invite) || SHA-256(payload)[0..4]); redemption proof = HMAC-SHA256(secret, label || 0x00 || invite_id || inviter || acceptor)",
        "vectors": [
            {
                "name": "invite code",
                "inviter_keys": keys,
                "card": card_fields(&card),
                "card_body": hex(&invite.card.body),
                "card_signature": hex(&invite.card.signature.0),
                "rng_label": "kith-vectors/invite",
                "invite_id": hex(&invite.id.0),
                "secret": hex(&invite.secret.0),
                "expires_at": invite.expires_at,
                "payload": hex(&encode_value(&invite)),
                "code": code,
                "acceptor_id": bob.node_id().to_hex(),
                "redemption_proof": hex(&invite.redemption_proof(&ana.node_id(), &bob.node_id())),
                "decode_at": NOW + 60,
                "result": decode(&code, NOW + 60),
            },
            {"name": "mistyped character", "code": typo, "decode_at": NOW + 60, "result": decode(&typo, NOW + 60)},
            {"name": "expired", "code": code, "decode_at": invite.expires_at, "result": decode(&code, invite.expires_at)},
            {"name": "unsupported invite version 2", "code": future, "decode_at": NOW + 60, "result": decode(&future, NOW + 60)},
            {"name": "card signature forged", "code": forged_code, "decode_at": NOW + 60, "result": decode(&forged_code, NOW + 60)},
            {"name": "not a kith code", "code": "HELLO", "decode_at": NOW, "result": decode("HELLO", NOW)},
        ],
        "text_codes": text_codes(),
    })
}

/// The text-code rules of §3.3 on a short payload, with the prefix `KITH1` and a limit of
/// 4000 characters: accepted spellings and each rejection of steps 4–7.
fn text_codes() -> Vec<Value> {
    let payload = b"kith";
    let code = text_code::encode(INVITE_PREFIX, payload);
    let body = &code[INVITE_PREFIX.len()..];
    let decoded = |t: &str| match text_code::decode(INVITE_PREFIX, t, 4000) {
        Ok(p) => format!("ok: {}", hex(&p)),
        Err(e) => format!("{e:?}"),
    };
    let grouped: String = code
        .to_lowercase()
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = match i {
                0 => None,
                i if i % 8 == 0 => Some('\n'),
                i if i % 4 == 0 => Some('-'),
                _ => None,
            };
            sep.into_iter().chain([c])
        })
        .collect();
    // `kith` + 4 checksum bytes = 64 bits = 13 characters with 1 spare bit; the last
    // character's low bit set gives non-zero spare bits.
    let last = body.as_bytes()[body.len() - 1];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let value = alphabet.iter().position(|c| *c == last).expect("alphabet");
    let spare = format!(
        "{INVITE_PREFIX}{}{}",
        &body[..body.len() - 1],
        alphabet[value | 1] as char
    );
    let mut out = vec![
        json!({"name": "text code of the 4 bytes 6b697468 (\"kith\")", "payload": hex(payload), "checksum": hex(&Sha256::digest(payload)[..4]), "code": code, "result": decoded(&code)}),
        json!({"name": "accepted: lowercase, grouped with - and wrapped with newlines", "code": grouped, "result": decoded(&grouped)}),
        json!({"name": "failure: non-zero spare bits in the last character", "code": spare, "result": decoded(&spare)}),
        json!({"name": "failure: padding character =", "code": format!("{code}="), "result": decoded(&format!("{code}="))}),
        json!({"name": "failure: another prefix", "code": format!("KITH2{body}"), "result": decoded(&format!("KITH2{body}"))}),
        json!({"name": "failure: fewer than 4 bytes (checksum missing)", "code": format!("{INVITE_PREFIX}AAAA"), "result": decoded(&format!("{INVITE_PREFIX}AAAA"))}),
        {
            let code = format!("{INVITE_PREFIX}{}", "A".repeat(3996));
            json!({"name": "failure: over the limit of 4000 characters", "code": code, "code_length": code.len(), "result": decoded(&code)})
        },
    ];
    // Character counts 1, 3 and 6 modulo 8 leave 5 or more bits over: never valid.
    for cut in [9usize, 11, 6] {
        let shorter = format!("{INVITE_PREFIX}{}", &body[..cut]);
        let name = format!(
            "failure: {cut} characters ({} modulo 8: {} bits left over)",
            cut % 8,
            cut * 5 % 8
        );
        out.push(json!({"name": name, "code": shorter, "result": decoded(&shorter)}));
    }
    out
}

fn envelopes() -> Value {
    let (bob, keys) = identity("kith-vectors/bob");
    let (label, aad, plaintext) = (
        "share",
        b"query 01".as_slice(),
        b"a secret share".as_slice(),
    );
    let mut rng = VectorRng::new("kith-vectors/envelope");
    let mut probe = rng.clone();
    let mut eph_secret = [0u8; 32];
    probe.fill_bytes(&mut eph_secret);
    let env = seal(&mut rng, &bob.sealing_public_key(), label, aad, plaintext).expect("seal");
    // Independent re-derivation of the key schedule, for readers of the spec.
    let shared = x25519_dalek::x25519(eph_secret, bob.sealing_public_key().0);
    let hk = Hkdf::<Sha256>::new(Some(b"kith/v1/envelope"), &shared);
    let mut info = vec![label.len() as u8];
    info.extend_from_slice(label.as_bytes());
    info.extend_from_slice(&env.ephemeral);
    info.extend_from_slice(&bob.sealing_public_key().0);
    let mut okm = [0u8; 44];
    hk.expand(&info, &mut okm).expect("hkdf");
    let open_result = |e: &SealedEnvelope, label: &str, aad: &[u8]| match open(&bob, label, aad, e)
    {
        Ok(p) => format!("ok: {}", hex(&p)),
        Err(e) => e.to_string(),
    };
    let mut tampered = env.clone();
    tampered.ciphertext[0] ^= 1;
    // An ephemeral key of small order (the point 0) gives an all-zero shared secret.
    let low_order = SealedEnvelope {
        ephemeral: [0u8; 32],
        ciphertext: env.ciphertext.clone(),
    };
    let mut trailing = encode_value(&env);
    trailing.push(0);
    let trailing_result = match decode_exact::<SealedEnvelope>(&trailing) {
        Ok(e) => open_result(&e, label, aad),
        Err(e) => e.to_string(),
    };
    json!({
        "section": "§7",
        "description": "Sealed envelope: X25519 ephemeral-static, HKDF-SHA256, ChaCha20-Poly1305",
        "vectors": [
            {
                "name": "seal and open",
                "recipient_keys": keys,
                "rng_label": "kith-vectors/envelope",
                "ephemeral_secret": hex(&eph_secret),
                "ephemeral_public": hex(&env.ephemeral),
                "shared_secret": hex(&shared),
                "label": label,
                "info": hex(&info),
                "key": hex(&okm[..32]),
                "nonce": hex(&okm[32..]),
                "aad": hex(aad),
                "plaintext": hex(plaintext),
                "ciphertext": hex(&env.ciphertext),
                "envelope": hex(&encode_value(&env)),
                "result": open_result(&env, label, aad),
            },
            {"name": "tampered ciphertext", "envelope": hex(&encode_value(&tampered)), "label": label, "aad": hex(aad), "result": open_result(&tampered, label, aad)},
            {"name": "wrong label", "envelope": hex(&encode_value(&env)), "label": "other", "aad": hex(aad), "result": open_result(&env, "other", aad)},
            {"name": "wrong aad", "envelope": hex(&encode_value(&env)), "label": label, "aad": hex(b"query 02"), "result": open_result(&env, label, b"query 02")},
            {"name": "ephemeral key of small order (all-zero shared secret)", "envelope": hex(&encode_value(&low_order)), "label": label, "aad": hex(aad), "result": open_result(&low_order, label, aad)},
            {"name": "trailing byte after the envelope", "envelope": hex(&trailing), "label": label, "aad": hex(aad), "result": trailing_result},
        ]
    })
}

fn statement(endorser: &Identity, audience: NodeId) -> EndorsementStatement {
    EndorsementStatement {
        version: STATEMENT_VERSION,
        endorser: endorser.node_id(),
        audience,
        query_id: QueryId([0x11; 16]),
        endorsement: Endorsement::new(
            ItemKey::parse("tag:vehicle/subaru/outback").unwrap(),
            2,
            Some(5),
            Some("Great in snow".into()),
            NOW - 86_400,
        )
        .unwrap(),
        issued_at: NOW,
    }
}

fn endorsements() -> Value {
    let (chloe, keys) = identity("kith-vectors/chloe");
    let (ana, _) = identity("kith-vectors/ana");
    let st = statement(&chloe, ana.node_id());
    let signed = st.sign(&chloe);
    let asked = ItemKey::parse("tag:vehicle/subaru").unwrap();
    let check = |s: &SignedEndorsement, audience: &NodeId, qid: &QueryId, asked: &ItemKey| match s
        .verify_for(&chloe.node_id(), audience, qid, asked)
    {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let signature_only = |s: &SignedEndorsement| match s.verify_signature() {
        Ok(_) => "ok".to_string(),
        Err(e) => e.to_string(),
    };
    let mut bad = signed.clone();
    bad.signature.0[10] ^= 4;
    let other = ItemKey::parse("tag:vehicle/subarus").unwrap();
    let torsion = torsion_signature(&chloe, &signed.statement);
    let small_order = small_order_statement(&st);
    let e = &st.endorsement;
    json!({
        "section": "§2.3, §6.4, §8.3",
        "description": "Endorsement statements disclosed by name, bound to audience and query id. The asker verifying an answer from `responder_id` for its query `expected_query_id` about `asked` is `verifier_id` (§8.3.3); failure vectors change one of these expectations or the bytes",
        "vectors": [
            {
                "name": "signed statement",
                "endorser_keys": keys,
                "endorsement": {"item": e.item.to_string(), "count": e.count, "rating": e.rating, "note": e.note, "since": e.since},
                "statement_fields": {"version": st.version, "endorser": st.endorser.to_hex(), "audience": st.audience.to_hex(), "query_id": st.query_id.to_hex(), "issued_at": st.issued_at},
                "statement": hex(&signed.statement),
                "signed_message": hex(&SigningLabel::Endorsement.prefix(&signed.statement)),
                "signature": hex(&signed.signature.0),
                "signed_endorsement": hex(&encode_value(&signed)),
                "responder_id": chloe.node_id().to_hex(),
                "verifier_id": ana.node_id().to_hex(),
                "expected_query_id": st.query_id.to_hex(),
                "asked": asked.to_string(),
                "result": check(&signed, &ana.node_id(), &st.query_id, &asked),
            },
            {"name": "bad signature", "signed_endorsement": hex(&encode_value(&bad)), "result": check(&bad, &ana.node_id(), &st.query_id, &asked)},
            {"name": "another query", "signed_endorsement": hex(&encode_value(&signed)), "expected_query_id": hex(&[0x12; 16]), "result": check(&signed, &ana.node_id(), &QueryId([0x12; 16]), &asked)},
            {"name": "another audience (the verifier is Chloe herself)", "signed_endorsement": hex(&encode_value(&signed)), "verifier_id": chloe.node_id().to_hex(), "result": check(&signed, &chloe.node_id(), &st.query_id, &asked)},
            {"name": "item not within the asked item", "signed_endorsement": hex(&encode_value(&signed)), "asked": other.to_string(), "result": check(&signed, &ana.node_id(), &st.query_id, &other)},
            {"name": "signature valid only under the cofactored equation (R has an order-8 component, §2.3)", "signed_endorsement": hex(&encode_value(&torsion)), "result": signature_only(&torsion)},
            {"name": "endorser is the small-order identity point, R = identity, S = 0 (§2.1)", "signed_endorsement": hex(&encode_value(&small_order)), "result": signature_only(&small_order)},
        ]
    })
}

/// A signature by `signer` over the endorsement label and `statement` whose `R` is
/// `[r]B + T`, `T` of order 8: the cofactored equation `[8][S]B = [8]R + [8][k]A` holds,
/// the cofactorless one that §2.3 requires does not.
fn torsion_signature(signer: &Identity, statement: &[u8]) -> SignedEndorsement {
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use sha2::Sha512;
    let secrets = signer.to_secret_bytes();
    let h = Sha512::digest(&secrets[..32]);
    let mut a_bytes = [0u8; 32];
    a_bytes.copy_from_slice(&h[..32]);
    a_bytes[0] &= 248;
    a_bytes[31] &= 127;
    a_bytes[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a_bytes);
    let r = Scalar::from(0x6b697468u64);
    let big_r = ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1];
    let message = SigningLabel::Endorsement.prefix(statement);
    let digest: [u8; 64] = Sha512::new()
        .chain_update(big_r.compress().as_bytes())
        .chain_update(signer.node_id().as_bytes())
        .chain_update(&message)
        .finalize()
        .into();
    let k = Scalar::from_bytes_mod_order_wide(&digest);
    let s = r + k * a;
    let public = ED25519_BASEPOINT_POINT * a;
    assert_eq!(public.compress().to_bytes(), signer.node_id().0);
    let lhs = (ED25519_BASEPOINT_POINT * s).mul_by_cofactor();
    assert_eq!(
        lhs,
        (big_r + public * k).mul_by_cofactor(),
        "cofactored holds"
    );
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.compress().as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    SignedEndorsement {
        statement: statement.to_vec(),
        signature: Signature(sig),
    }
}

/// `st` re-issued by the identity point `01 00 … 00` (order 1), "signed" with `R` = the
/// identity and `S` = 0, which a verifier without the small-order check accepts.
fn small_order_statement(st: &EndorsementStatement) -> SignedEndorsement {
    let mut identity_point = [0u8; 32];
    identity_point[0] = 1;
    let forged = EndorsementStatement {
        endorser: NodeId(identity_point),
        ..st.clone()
    };
    let mut sig = [0u8; 64];
    sig[0] = 1;
    SignedEndorsement {
        statement: encode_value(&forged),
        signature: Signature(sig),
    }
}

fn message_vector<T: serde::Serialize + std::fmt::Debug>(name: &str, msg: &T, cap: u32) -> Value {
    let body = encode_value(msg);
    let message = encode_message(msg);
    json!({"name": name, "debug": format!("{msg:?}"), "body": hex(&body), "message": hex(&message), "frame": hex(&encode_frame(&message, cap).unwrap())})
}

/// How a receiver decodes `message` as a `T` (§5.2, §5.3): `ok: <value>` or the error.
fn decoded<T: serde::de::DeserializeOwned + std::fmt::Debug>(message: &[u8]) -> String {
    match decode_message::<T>(message) {
        Ok(m) => format!("ok: {m:?}"),
        Err(e) => e.to_string(),
    }
}

/// A failure vector: a frame header announcing one byte more than `cap` (§5.1).
fn oversize_frame(kind: &str, cap: u32) -> Value {
    let header = (cap + 1).to_be_bytes();
    let mut decoder = FrameDecoder::new(cap);
    decoder.feed(&header);
    let result = match decoder.next_frame() {
        Err(e) => e.to_string(),
        Ok(_) => "ok".into(),
    };
    json!({"name": format!("failure: {kind} frame header over the {cap}-byte cap"), "cap": cap, "frame_header": hex(&header), "result": result})
}

/// `text` with the character at `i` replaced by another letter of the base32 alphabet: a
/// typing mistake the checksum of §3.3 must catch.
fn mistype(text: &str, i: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn frames() -> Value {
    let (chloe, _) = identity("kith-vectors/chloe");
    let (ana, _) = identity("kith-vectors/ana");
    let ask = PeerRequest::Ask(Query {
        query_id: QueryId([0x11; 16]),
        item: ItemKey::parse("tag:vehicle/subaru").unwrap(),
    });
    let mut rng = VectorRng::new("kith-vectors/invite");
    let invite = Invite::generate(
        &mut rng,
        card_of(&ana, "Ana", "127.0.0.1:7400").sign(&ana),
        NOW,
        7 * 24 * 3600,
    );
    let redeem = PeerRequest::Redeem(InviteRedemption {
        invite_id: invite.id,
        proof: invite.redemption_proof(&ana.node_id(), &chloe.node_id()),
        card: card_of(&chloe, "Chloe", "127.0.0.1:7401").sign(&chloe),
    });
    let named = PeerResponse::Answer(Answer {
        query_id: QueryId([0x11; 16]),
        named: vec![statement(&chloe, ana.node_id()).sign(&chloe)],
    });
    let empty = PeerResponse::Answer(Answer {
        query_id: QueryId([0x11; 16]),
        named: vec![],
    });
    let ask_bytes = encode_message(&ask);
    let mut trailing = ask_bytes.clone();
    trailing.push(0);
    let mut v3 = ask_bytes.clone();
    v3[0] = 3;
    let bad_variant = vec![2u8, 9];
    let truncated = ask_bytes[..ask_bytes.len() - 3].to_vec();
    let mut not_normal = vec![0x02, 0x01];
    not_normal.extend_from_slice(&[0x11; 16]);
    not_normal.push(10);
    not_normal.extend_from_slice(b"tag:Subaru");
    json!({
        "section": "§5, §8, §10",
        "description": "Messages: body = postcard(value); message = varint(2) || body; frame = u32_be(len(message)) || message",
        "vectors": [
            message_vector("PeerRequest::Ask", &ask, MAX_PEER_FRAME),
            message_vector("PeerRequest::Redeem", &redeem, MAX_PEER_FRAME),
            message_vector("PeerResponse::Answer (named nothing: owns nothing, or count/ask/none)", &empty, MAX_PEER_FRAME),
            message_vector("PeerResponse::Answer (one named endorsement)", &named, MAX_PEER_FRAME),
            message_vector("PeerResponse::Refused(NotAContact)", &PeerResponse::Refused(Refusal::NotAContact), MAX_PEER_FRAME),
            message_vector("PeerResponse::Refused(RateLimited) (a contact over its asks-per-day)", &PeerResponse::Refused(Refusal::RateLimited), MAX_PEER_FRAME),
            message_vector("PeerRequest::Deliver (an endorsement approved after the ask)", &PeerRequest::Deliver(statement(&chloe, ana.node_id()).sign(&chloe)), MAX_PEER_FRAME),
            message_vector("PeerResponse::Received", &PeerResponse::Received, MAX_PEER_FRAME),
            message_vector("AppRequest::Status", &AppRequest::Status, MAX_APP_FRAME),
            message_vector("AppRequest::CreatePairing", &AppRequest::CreatePairing { name: "shop".into(), scope: kith_protocol::app::AppScope { ask: vec![kith_protocol::ItemPattern::parse("tag:vehicle/*").unwrap()], named: false, daily_limit: Some(20) } }, MAX_APP_FRAME),
            message_vector("AppRequest::Pair", &AppRequest::Pair { code: kith_protocol::app::InviteCode(kith_protocol::pairing::PairingCode { node: kith_protocol::NodeId([0x22; 32]), secret: [0x33; 16] }.to_text()) }, MAX_APP_FRAME),
            message_vector("AppRequest::RevokeApp", &AppRequest::RevokeApp { name: "shop".into() }, MAX_APP_FRAME),
            message_vector("AppRequest::Approve", &AppRequest::Approve { id: 1 }, MAX_APP_FRAME),
            message_vector("AppRequest::ListUpdates", &AppRequest::ListUpdates { query_id: Some(QueryId([0x11; 16])) }, MAX_APP_FRAME),
            message_vector("AppRequest::SetSetting", &AppRequest::SetSetting { key: "epsilon".into(), value: "0.5".into() }, MAX_APP_FRAME),
            message_vector("AppRequest::Ask", &AppRequest::Ask { item: ItemKey::parse("tag:vehicle/subaru").unwrap(), timeout_ms: 5000, epsilon: Some(1000), detail: false }, MAX_APP_FRAME),
            message_vector("AppRequest::Endorse", &AppRequest::Endorse { item: ItemKey::parse("isbn:0441013597").unwrap(), count: 1, rating: Some(5), note: None }, MAX_APP_FRAME),
            message_vector("AppResponse::Error", &AppResponse::Error(AppError { code: AppErrorCode::InviteUsed, message: "invite code was already used".into() }), MAX_APP_FRAME),
            message_vector("AppResponse::Error (out of scope)", &AppResponse::Error(AppError { code: AppErrorCode::OutOfScope, message: "isbn:0441013597 is outside this app's scope".into() }), MAX_APP_FRAME),
            message_vector("AppResponse::App", &AppResponse::App(kith_protocol::app::AppInfo { name: "shop".into(), key: kith_protocol::NodeId([0x44; 32]), scope: kith_protocol::app::AppScope { ask: vec![kith_protocol::ItemPattern::parse("tag:vehicle/*").unwrap()], named: false, daily_limit: Some(20) }, paired_at: 1_790_000_000, last_used_at: None, asks_24h: 0, revoked_at: None }), MAX_APP_FRAME),
            {"name": "failure: trailing byte after PeerRequest::Ask", "type": "PeerRequest", "message": hex(&trailing), "result": decoded::<PeerRequest>(&trailing)},
            {"name": "failure: unknown protocol version 3", "type": "PeerRequest", "message": hex(&v3), "result": decoded::<PeerRequest>(&v3)},
            {"name": "failure: unknown PeerRequest variant 9", "type": "PeerRequest", "message": hex(&bad_variant), "result": decoded::<PeerRequest>(&bad_variant)},
            {"name": "failure: truncated PeerRequest::Ask", "type": "PeerRequest", "message": hex(&truncated), "result": decoded::<PeerRequest>(&truncated)},
            {"name": "failure: item key not in normal form (tag:Subaru)", "type": "PeerRequest", "message": hex(&not_normal), "result": decoded::<PeerRequest>(&not_normal)},
            oversize_frame("peer", MAX_PEER_FRAME),
        ]
    })
}

fn item_keys() -> Value {
    let inputs = [
        "isbn:0-441-01359-7",
        "ISBN: 978-0-441-01359-3",
        "isbn:0-8044-2957-X",
        "isbn:0-441-01359-8",
        "isbn:12345",
        "gtin:036000291452",
        "gtin:036000291453",
        "wikidata:q042",
        "wikidata:42",
        "tag: Vehicle / Subaru  Outback",
        "tag:vehicle//subaru",
        "tag:a/b/c/d/e/f/g/h/i",
        "car:subaru",
        "subaru",
        "tag:bücher",
        "tag:\u{a0}foo",
        "isbn:\u{a0}0441013597",
        "tag:\u{1c}foo",
    ];
    let keys: Vec<Value> = inputs
        .iter()
        .map(|i| match ItemKey::parse(i) {
            Ok(k) => json!({"input": i, "result": "ok", "normal": k.to_string(), "wire": hex(&encode_value(&k))}),
            Err(e) => json!({"input": i, "result": e.to_string()}),
        })
        .collect();
    let within = [
        ("tag:vehicle/subaru/outback", "tag:vehicle/subaru"),
        ("tag:vehicle/subaru", "tag:vehicle/subaru"),
        ("tag:vehicle/subarus", "tag:vehicle/subaru"),
        ("tag:vehicle", "tag:vehicle/subaru"),
    ];
    let within: Vec<Value> = within
        .iter()
        .map(|(a, b)| json!({"item": a, "asked": b, "within": ItemKey::parse(a).unwrap().is_within(&ItemKey::parse(b).unwrap())}))
        .collect();
    let patterns = [
        "*",
        "tag:*",
        "tag:vehicle/*",
        "isbn:0441013597",
        "isbn:978*",
        "isbn:9780441013593/*",
    ];
    let patterns: Vec<Value> = patterns
        .iter()
        .map(|p| match ItemPattern::parse(p) {
            Ok(pat) => json!({"input": p, "result": "ok", "normal": pat.to_string(), "specificity": pat.specificity(),
                "matches_tag:vehicle/subaru": pat.matches(&ItemKey::parse("tag:vehicle/subaru").unwrap())}),
            Err(e) => json!({"input": p, "result": e.to_string()}),
        })
        .collect();
    // On the wire an item key must already be in normal form (§5.2): the string is not
    // normalised again, so these are refused although they parse as typed input.
    let wire: Vec<Value> = [
        "tag:vehicle/subaru",
        "tag:Subaru",
        "isbn:0441013597",
        "tag:vehicle/",
    ]
    .iter()
    .map(|k| {
        let bytes = encode_value(&k.to_string());
        let result = match decode_exact::<ItemKey>(&bytes) {
            Ok(key) => format!("ok: {key}"),
            Err(e) => e.to_string(),
        };
        json!({"string": k, "wire": hex(&bytes), "result": result})
    })
    .collect();
    json!({"section": "§5.2, §6.1, §6.2", "description": "Item key normalisation, the within relation, patterns, and item keys as received on the wire", "keys": keys, "within": within, "patterns": patterns, "wire": wire})
}

/// Every vector file: (file name, pretty JSON text ending in a newline).
pub fn generate() -> Vec<(&'static str, String)> {
    let files = [
        ("cards.json", cards()),
        ("invites.json", invites()),
        ("envelopes.json", envelopes()),
        ("endorsements.json", endorsements()),
        ("frames.json", frames()),
        ("messages.json", messages::messages()),
        ("keys.json", keys::keys()),
        ("item_keys.json", item_keys()),
        ("aggregation.json", aggregation()),
    ];
    files
        .into_iter()
        .map(|(name, mut v)| {
            v["spec_version"] = json!(SPEC_VERSION);
            v["generated_by"] = json!("cargo run -p kith-tests --bin vectors -- --write");
            (name, serde_json::to_string_pretty(&v).expect("JSON") + "\n")
        })
        .collect()
}

/// `spec/vectors/v2` in this repository.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("spec")
        .join("vectors")
        .join(SPEC_VERSION)
}

/// A complete aggregation among three members with noise off, every request and reply of
/// every round (spec §9), plus the key schedule, Shamir and PRG steps, and failure cases.
fn aggregation() -> Value {
    use kith_protocol::aggregation::cohort::{self, bitmap, Graph, Params, Plan};
    use kith_protocol::aggregation::input::Contribution;
    use kith_protocol::aggregation::keys::Context;
    use kith_protocol::aggregation::messages::{AggRequest, AggResponse};
    use kith_protocol::aggregation::responder::{AggResponder, ResponderSettings};
    use kith_protocol::aggregation::{prg, shamir};
    use std::time::{Duration, Instant};

    let (asker, asker_keys) = identity("kith-vectors/ana");
    let members: Vec<(Identity, Value, Contribution)> = [
        (
            "kith-vectors/chloe",
            Contribution {
                owns: true,
                units: 2,
                best_rating: Some(5),
            },
        ),
        (
            "kith-vectors/bob",
            Contribution {
                owns: false,
                units: 0,
                best_rating: None,
            },
        ),
        (
            "kith-vectors/dev",
            Contribution {
                owns: true,
                units: 1,
                best_rating: Some(3),
            },
        ),
    ]
    .into_iter()
    .map(|(label, c)| {
        let (id, keys) = identity(label);
        (id, keys, c)
    })
    .collect();
    let qid = QueryId([0x22; 16]);
    let item = ItemKey::parse("tag:vehicle/subaru").unwrap();
    let ctx = Context {
        query_id: qid,
        asker: asker.node_id(),
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let Run {
        transcript,
        outcome,
        adverts,
    } = run_aggregation(&asker, &members, qid, &item, None, None);
    let sum = outcome
        .aggregate
        .clone()
        .expect("the vector run releases its sum");

    // The same query among four members, one of whom (eve) drops out in round 2: the
    // asker removes eve's pairwise masks with her mask-key seed rebuilt from shares.
    let mut four: Vec<(Identity, Value, Contribution)> = members
        .iter()
        .map(|m| {
            let label = m.1["rng_label"].as_str().expect("label");
            let (id, keys) = identity(label);
            (id, keys, m.2)
        })
        .collect();
    let (eve, eve_keys) = identity("kith-vectors/eve");
    let eve_id = eve.node_id();
    four.push((
        eve,
        eve_keys,
        Contribution {
            owns: true,
            units: 4,
            best_rating: Some(1),
        },
    ));
    let dropout = run_aggregation(&asker, &four, qid, &item, Some(eve_id), None);
    // The three-member query again, every member's own setting ε = 1: the asker sends
    // session ε 1000 and each member adds its noise share in round 2 (§9.6).
    let noisy = run_aggregation(
        &asker,
        &members,
        QueryId([0x33; 16]),
        &item,
        None,
        Some(1000),
    );
    let noisy_sum = noisy
        .outcome
        .aggregate
        .clone()
        .expect("three members release");
    let dropout_sum = dropout
        .outcome
        .aggregate
        .clone()
        .expect("three survivors meet the floor");

    // Key schedule and building blocks, from fixed inputs.
    let seed_u = Scalar::from(5u64);
    let seed_v = Scalar::from(6u64);
    let (u, v) = (members[0].0.node_id(), members[1].0.node_id());
    let su = ctx.mask_secret(&seed_u, &u);
    let sv = ctx.mask_secret(&seed_v, &v);
    let pv = x25519_dalek::PublicKey::from(&sv).to_bytes();
    let pairwise = ctx.pairwise_seed(&su, &pv, &u, &v).expect("contributory");
    let share_key = ctx.share_key(&su, &pv, &u, &v).expect("contributory");
    let self_seed = ctx.self_mask_seed(&Scalar::from(7u64), &u);
    let mut rng = VectorRng::new("kith-vectors/shamir");
    let secret = Scalar::from(123_456_789u64);
    let xs = [1u32, 2, 3, 4];
    let ys = shamir::split(&secret, 3, &xs, &mut rng).expect("split");
    let lambdas = shamir::lagrange_at_zero(&[2, 3, 4]).expect("coefficients");
    let p3 = Params::choose(3, 2, None);

    // The sparse graph (§9.8.1) of a 60-member roster of made-up digests.
    let mut roster: Vec<[u8; 32]> = (0..60u8)
        .map(|i| {
            use sha2::{Digest, Sha256};
            Sha256::digest([b"kith-vectors/roster/".as_slice(), &[i]].concat()).into()
        })
        .collect();
    roster.sort();
    let graph_seed = cohort::graph_seed(&roster);
    let degree = cohort::sparse_degree(60).expect("60 may be sparse");
    let graph = Graph::new(&graph_seed, 60, degree).expect("admissible");

    // Failure cases.
    let mut forged = match decode_message::<PeerResponse>(&hex_decode(
        transcript[0]["response"].as_str().unwrap(),
    )) {
        Ok(PeerResponse::Aggregate(AggResponse::Advertised { advertisement, .. })) => advertisement,
        _ => panic!("first reply is an advertisement"),
    };
    forged.signature.0[0] ^= 1;
    let forged_result = forged
        .verify(&ctx.query_id, &ctx.asker)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "ok".into());
    let mut fresh_rng = VectorRng::new("kith-vectors/secagg/replay");
    let (first, _, c) = &members[0];
    let mut replay = AggResponder::start(
        first,
        ctx,
        *c,
        ResponderSettings {
            epsilon: None,
            min_cohort: 2,
        },
        Default::default(),
        Default::default(),
        &mut fresh_rng,
        deadline,
    );
    let early_request = AggRequest::Consistency {
        query_id: qid,
        survivors: vec![0b111],
    };
    let early = replay.handle(early_request.clone(), &mut fresh_rng, start);
    let mut low_rng = VectorRng::new("kith-vectors/secagg/low-threshold");
    let mut low = AggResponder::start(
        first,
        ctx,
        *c,
        ResponderSettings {
            epsilon: None,
            min_cohort: 2,
        },
        Default::default(),
        Default::default(),
        &mut low_rng,
        deadline,
    );
    let low_plan = {
        let mut ads: Vec<_> = adverts.iter().filter(|(k, _)| *k != u).cloned().collect();
        ads.push((u, low.advertisement().clone()));
        let mut plan = Plan::new(ads, p3).expect("three members");
        plan.params.threshold = 2;
        plan
    };
    let too_low_request = low_plan.share_keys(qid, low_plan.position(&u).expect("member"));
    let too_low = low.handle(too_low_request.clone(), &mut low_rng, start);
    // What both fresh sessions answered in round 0, and how they were set up (§9.8.2).
    let fresh_setup = json!({
        "member_settings": {"epsilon": null, "min_cohort": 2},
        "contacts": [],
        "input": c.to_vector().to_vec(),
        "round0_request": hex(&encode_message(&PeerRequest::Aggregate(AggRequest::Advertise {
            query_id: qid,
            item: item.clone(),
            epsilon: None,
            detail: false,
        }))),
        "asker": ctx.asker.to_hex(),
    });
    let low_advertisement = hex(&encode_value(low.advertisement()));
    let duplicate = shamir::split(&secret, 2, &[1, 1], &mut rng)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();

    json!({
        "section": "§9",
        "description": "Secure aggregation: one complete run among three members (noise off), its building blocks, and failure cases",
        "vectors": [
            {
                "name": "three-member aggregation transcript",
                "asker_keys": asker_keys,
                "members": members.iter().map(|m| json!({"keys": m.1, "input": m.2.to_vector().to_vec(),
                    "rng_label": format!("kith-vectors/secagg/{}", m.0.node_id().short())})).collect::<Vec<_>>(),
                "query_id": qid.to_hex(),
                "item": item.to_string(),
                "threshold": outcome.threshold,
                "params": {"degree": p3.degree, "threshold": p3.threshold, "min_survivors": p3.min_survivors, "epsilon": p3.epsilon, "detail": p3.detail},
                "member_settings": {"epsilon": null, "min_cohort": 2},
                "asker_min_cohort": 2,
                "requested_epsilon": null,
                "roster": session_roster(&transcript).0.iter().map(|d| hex(d)).collect::<Vec<_>>(),
                "cohort_digest": hex(&{ let (r, p) = session_roster(&transcript); cohort::cohort_digest(&r, &p) }),
                "transcript": transcript,
                "sum": {"owners": sum.owners, "units": sum.units, "ratings": sum.ratings},
                "result": "ok",
            },
            {
                "name": "four-member aggregation transcript, one member dropping out in round 2",
                "members": four.iter().map(|m| json!({"keys": m.1, "input": m.2.to_vector().to_vec(),
                    "rng_label": format!("kith-vectors/secagg/{}", m.0.node_id().short())})).collect::<Vec<_>>(),
                "dropped": eve_id.to_hex(),
                "member_settings": {"epsilon": null, "min_cohort": 2},
                "asker_min_cohort": 2,
                "requested_epsilon": null,
                "roster": session_roster(&dropout.transcript).0.iter().map(|d| hex(d)).collect::<Vec<_>>(),
                "cohort_digest": hex(&{ let (r, p) = session_roster(&dropout.transcript); cohort::cohort_digest(&r, &p) }),
                "query_id": qid.to_hex(),
                "item": item.to_string(),
                "survivors": dropout.outcome.survivors,
                "transcript": dropout.transcript,
                "sum": {"owners": dropout_sum.owners, "units": dropout_sum.units, "ratings": dropout_sum.ratings},
                "result": "ok",
            },
            {
                "name": "three-member aggregation transcript with noise (every member's epsilon setting 1000)",
                "members": members.iter().map(|m| json!({"keys": m.1, "input": m.2.to_vector().to_vec(),
                    "rng_label": format!("kith-vectors/secagg/{}", m.0.node_id().short())})).collect::<Vec<_>>(),
                "member_settings": {"epsilon": 1000, "min_cohort": 2},
                "asker_min_cohort": 2,
                "requested_epsilon": null,
                "query_id": hex(&[0x33; 16]),
                "item": item.to_string(),
                "session_epsilon": noisy.outcome.epsilon,
                "roster": session_roster(&noisy.transcript).0.iter().map(|d| hex(d)).collect::<Vec<_>>(),
                "cohort_digest": hex(&{ let (r, p) = session_roster(&noisy.transcript); cohort::cohort_digest(&r, &p) }),
                "transcript": noisy.transcript,
                "sum": {"owners": noisy_sum.owners, "units": noisy_sum.units, "ratings": noisy_sum.ratings},
                "note": "informative like the noise vectors: the masked vectors and the sum depend on the reference sampler (§9.6)",
                "result": "ok",
            },
            {
                "name": "key schedule (§9.3)",
                "query_id": qid.to_hex(), "asker": asker.node_id().to_hex(), "u": u.to_hex(), "v": v.to_hex(),
                "mask_seed_u": hex(seed_u.as_bytes()), "mask_seed_v": hex(seed_v.as_bytes()),
                "mask_secret_u": hex(su.as_bytes()), "mask_public_v": hex(&pv),
                "share_secret_u": hex(su.as_bytes()), "share_public_v": hex(&pv),
                "pairwise_seed": hex(pairwise.as_ref()),
                "share_key_u_to_v": hex(&share_key[..32]), "share_nonce_u_to_v": hex(&share_key[32..]),
                "self_seed_scalar": hex(Scalar::from(7u64).as_bytes()), "self_mask_seed_u": hex(self_seed.as_ref()),
                "self_mask": prg::expand(&self_seed, 7),
                "result": "ok",
            },
            {
                "name": "Shamir over the Curve25519 scalar field (§9.4)",
                "rng_label": "kith-vectors/shamir", "secret": hex(secret.as_bytes()), "threshold": 3,
                "xs": xs, "shares": ys.iter().map(|y| hex(y.as_bytes())).collect::<Vec<_>>(),
                "lagrange_at_zero_for_2_3_4": lambdas.iter().map(|l| hex(l.as_bytes())).collect::<Vec<_>>(),
                "reconstructed_from_2_3_4": hex(shamir::combine(&lambdas, &ys[1..]).expect("combine").as_bytes()),
                "result": "ok",
            },
            {
                "name": "sparse neighbour graph of 60 members (§9.8.1)",
                "roster": roster.iter().map(|d| hex(d)).collect::<Vec<_>>(),
                "graph_seed": hex(&graph_seed),
                "degree": degree,
                "cycle": graph.cycle(),
                "neighbours_of_0": graph.neighbours(0),
                "neighbours_of_59": graph.neighbours(59),
                "survivors_all_but_1_and_58": hex(&bitmap::from_positions(60, (0..60).filter(|p| *p != 1 && *p != 58))),
                "result": "ok",
            },
            {
                "name": "sparse degree of every cohort size (§9.8.1)",
                "note": "sparse_degree(n) for n from 51 to 1000, as runs: each entry gives the first n of a run and the degree of every n up to the next entry's first n",
                "runs": degree_runs(),
                "result": "ok",
            },
            noise_vector("kith-vectors/noise/a", 1000, 3),
            noise_vector("kith-vectors/noise/b", 10, 1),
            noise_vector("kith-vectors/noise/c", 10000, 2),
            {"name": "advertisement with a flipped signature bit (bit 0 of the first signature byte)", "signed_advertisement": hex(&encode_value(&forged)), "result": forged_result},
            {"name": "round 3 before round 1", "member_keys": members[0].1, "session_rng_label": "kith-vectors/secagg/replay", "note": "a fresh session of the first member, as if it had just answered the transcript's round-0 Advertise, its secrets drawn from session_rng_label; then it is sent this request", "setup": fresh_setup, "request": hex(&encode_message(&PeerRequest::Aggregate(early_request))), "response": hex(&encode_message(&PeerResponse::Aggregate(early.clone()))), "result": format!("{early:?}")},
            {"name": "threshold below floor(2h/3)+1", "member_keys": members[0].1, "session_rng_label": "kith-vectors/secagg/low-threshold", "note": "a fresh session of the first member, with the other two members' advertisements of the transcript; its ShareKeys has threshold 2 where floor(2*3/3)+1 = 3", "setup": fresh_setup, "advertisement": low_advertisement, "request": hex(&encode_message(&PeerRequest::Aggregate(too_low_request))), "response": hex(&encode_message(&PeerResponse::Aggregate(too_low.clone()))), "result": format!("{too_low:?}")},
            {"name": "Shamir split with a repeated index", "threshold": 2, "xs": [1, 1], "result": duplicate},
        ]
    })
}

/// `sparse_degree` over every sparse cohort size, as `[first n, degree]` runs.
fn degree_runs() -> Vec<[usize; 2]> {
    let mut runs: Vec<[usize; 2]> = Vec::new();
    use kith_protocol::aggregation::cohort;
    for n in cohort::SPARSE_FROM..=cohort::MAX_COHORT {
        let k = cohort::sparse_degree(n).expect("sparse");
        if runs.last().is_none_or(|r| r[1] != k) {
            runs.push([n, k]);
        }
    }
    runs
}

/// The roster and parameters of a transcript's session, from its first `ShareKeys`.
fn session_roster(
    transcript: &[Value],
) -> (Vec<[u8; 32]>, kith_protocol::aggregation::cohort::Params) {
    use kith_protocol::aggregation::messages::AggRequest;
    transcript
        .iter()
        .find_map(|t| {
            let bytes = hex_decode(t["request"].as_str()?);
            match decode_message::<PeerRequest>(&bytes) {
                Ok(PeerRequest::Aggregate(AggRequest::ShareKeys { roster, params, .. })) => {
                    Some((roster, params))
                }
                _ => None,
            }
        })
        .expect("the transcript has round 1")
}

/// A member's noise draw (§9.6.2) for session ε = `milli`/1000, owners only, base mass
/// `1/divisor`, drawn from the stream `label` (64-bit words little-endian): the Pólya draws
/// of the owners cell in the order they are taken (base, then the ladder's components
/// largest first; `y` then `z` of each), the total, and what `release(keep)` reveals.
fn noise_vector(label: &str, milli: u32, divisor: u32) -> Value {
    use kith_protocol::aggregation::noise::{cell_alphas, polya, NoiseDraw, LADDER, LADDER_UNITS};
    let epsilon = f64::from(milli) / 1000.0;
    let alpha = cell_alphas(epsilon, false)[0];
    let mut rng = VectorRng::new(label);
    let base = 1.0 / f64::from(divisor.max(1));
    let unit = (1.0 - base) / f64::from(LADDER_UNITS);
    let masses: Vec<f64> = std::iter::once(base)
        .chain(LADDER.iter().map(|u| unit * f64::from(*u)))
        .collect();
    let draws: Vec<[u64; 2]> = masses
        .iter()
        .map(|r| {
            if *r <= 0.0 {
                [0, 0]
            } else {
                [polya(&mut rng, *r, alpha), polya(&mut rng, *r, alpha)]
            }
        })
        .collect();
    let draw = NoiseDraw::draw(&mut VectorRng::new(label), epsilon, false, divisor);
    let total: i64 = draws.iter().map(|[y, z]| *y as i64 - *z as i64).sum();
    assert_eq!(
        draw.total()[0] as i32 as i64,
        total,
        "NoiseDraw draws base then ladder, y then z"
    );
    let releases: Vec<Value> = [0.0, 0.5, 1.0]
        .iter()
        .map(|keep| {
            let (kept, removed) = draw.release(*keep);
            json!({"keep": keep, "kept_micro": kept, "removed_owners": removed[0] as i32})
        })
        .collect();
    json!({
        "name": format!("noise draw for ε = {milli}/1000, base 1/{divisor} (§9.6.2)"),
        "rng_label": label,
        "epsilon_milli": milli,
        "base_divisor": divisor,
        "alpha_owners": format!("{alpha:e}"),
        "masses": masses.iter().map(|m| format!("{m:e}")).collect::<Vec<_>>(),
        "draws_y_z": draws,
        "total_owners": total,
        "releases": releases,
        "result": "ok",
    })
}

/// One aggregation run of the vectors: every request and reply, the outcome, and each
/// member's advertisement. `dropped` (if any) never answers its round-2 `MaskInput`.
struct Run {
    transcript: Vec<Value>,
    outcome: kith_protocol::aggregation::asker::AggOutcome,
    adverts: Vec<(
        NodeId,
        kith_protocol::aggregation::messages::SignedAdvertisement,
    )>,
}

fn run_aggregation(
    asker: &Identity,
    members: &[(
        Identity,
        Value,
        kith_protocol::aggregation::input::Contribution,
    )],
    qid: QueryId,
    item: &ItemKey,
    dropped: Option<NodeId>,
    member_epsilon: Option<u32>,
) -> Run {
    use kith_protocol::aggregation::asker::{AggAsker, AggregationParams};
    use kith_protocol::aggregation::cohort;
    use kith_protocol::aggregation::messages::AggRequest;
    use kith_protocol::aggregation::responder::ResponderSettings;
    use kith_protocol::ask::ContactFailure;
    use kith_protocol::testing::{aggregation_request, drive, Delivery, SimMember};
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let params = AggregationParams {
        epsilon: None,
        min_cohort: 2,
        round_timeout: Duration::from_secs(5),
        dense_max: cohort::DENSE_MAX,
        detail: false,
    };
    let mut agg = AggAsker::new(
        asker.node_id(),
        qid,
        item.clone(),
        members.iter().map(|m| m.0.node_id()),
        params,
        start,
    );
    let mut sessions: BTreeMap<NodeId, (SimMember, VectorRng)> = BTreeMap::new();
    let mut transcript = Vec::new();
    let driven = drive(&mut agg, start, Duration::ZERO, |t, now| {
        let req = aggregation_request(&t.payload);
        if dropped == Some(t.to) && matches!(req, AggRequest::MaskInput { .. }) {
            transcript.push(json!({"to": t.to.to_hex(), "request": hex(&t.payload), "response": null, "dropped": true}));
            return Delivery::Failed(ContactFailure::TimedOut);
        }
        let (member, rng) = sessions.entry(t.to).or_insert_with(|| {
            let (id, _, contribution) = members
                .iter()
                .find(|m| m.0.node_id() == t.to)
                .expect("member");
            let id = Identity::from_secret_bytes(&id.to_secret_bytes()).expect("a key");
            let rng = VectorRng::new(&format!("kith-vectors/secagg/{}", id.node_id().short()));
            // Members of the vector cohorts all know each other (§9.6.2).
            let member = SimMember::new(id, *contribution)
                .with_settings(ResponderSettings {
                    epsilon: member_epsilon,
                    min_cohort: 2,
                })
                .knowing(members.iter().map(|m| m.0.node_id()));
            (member, rng)
        });
        let response = member
            .answer(asker.node_id(), req, rng, now, deadline)
            .expect("a session");
        let reply = encode_message(&PeerResponse::Aggregate(response));
        transcript.push(
            json!({"to": t.to.to_hex(), "request": hex(&t.payload), "response": hex(&reply)}),
        );
        Delivery::Reply(reply)
    });
    assert_eq!(driven.waits, 0, "vector run never times out");
    assert!(agg.is_done(), "vector run finished");
    let outcome = agg.outcome();
    Run {
        transcript,
        outcome,
        adverts: sessions
            .iter()
            .map(|(k, (m, _))| (*k, m.session().expect("advertised").advertisement().clone()))
            .collect(),
    }
}

/// Bytes from lowercase hex, as the vector files write them.
pub fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
