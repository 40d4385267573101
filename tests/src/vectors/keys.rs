//! `keys.json`: how keys and secrets are written down — the raw public key a node and an
//! app present in TLS (spec §4.2), the PKCS#8 form handed to TLS libraries and a derived
//! local key (§2.2), pairing codes and what the node stores for them (§10.5), and the
//! credential file (§10.1) — with the rejections an implementation must make.

use kith_client::Credential;
use kith_protocol::identity::ED25519_SPKI_PREFIX;
use kith_protocol::pairing::{PairingCode, PAIRING_SECRET_LEN};
use kith_protocol::{Identity, NodeId};
use rand_core::RngCore;
use serde_json::{json, Value};

use super::{hex, identity, mistype, VectorRng};

fn spki_result(der: &[u8]) -> String {
    match NodeId::from_spki_der(der) {
        Some(id) => format!("ok: {}", id.to_hex()),
        None => "rejected: not an Ed25519 SubjectPublicKeyInfo, or a small-order key".into(),
    }
}

fn pairing_result(text: &str) -> String {
    match PairingCode::from_text(text) {
        Ok(code) => format!(
            "ok: node {} secret {}",
            code.node.to_hex(),
            hex(&code.secret)
        ),
        Err(e) => format!("bad pairing code: {}", e.0),
    }
}

fn credential_result(text: &str) -> String {
    match Credential::from_text(text) {
        Ok(c) => format!(
            "ok: node {} api {} app key {}",
            c.node.to_hex(),
            c.api_addr,
            c.identity.node_id().to_hex()
        ),
        Err(e) => e.to_string(),
    }
}

pub(super) fn keys() -> Value {
    let (chloe, chloe_keys) = identity("kith-vectors/chloe");
    let (app, app_keys) = identity("kith-vectors/app");
    let spki = chloe.node_id().to_spki_der();
    // The Ed25519 identity point (order 1) and an X25519 key under its own OID.
    let mut small_order = ED25519_SPKI_PREFIX.to_vec();
    small_order.push(0x01);
    small_order.extend_from_slice(&[0u8; 31]);
    let mut x25519_oid = spki.clone();
    x25519_oid[9] = 0x6e;
    let truncated = spki[..43].to_vec();

    let mut rng = VectorRng::new("kith-vectors/pairing");
    let mut secret = [0u8; PAIRING_SECRET_LEN];
    rng.fill_bytes(&mut secret);
    let pairing = PairingCode {
        node: chloe.node_id(),
        secret,
    };
    let text = pairing.to_text();
    let typo = mistype(&text, text.len() / 2);
    let invite_like = format!("KITH1{}", &text["KITHAPP1".len()..]);

    let credential = Credential {
        node: chloe.node_id(),
        api_addr: "127.0.0.1:7410".parse().expect("address"),
        identity: Identity::from_secret_bytes(&app.to_secret_bytes()).expect("same secrets"),
    };
    let credential_text = credential.to_text().to_string();
    let key_line = credential_text
        .lines()
        .find(|l| l.starts_with("key="))
        .expect("key line")
        .to_string();
    let bad_key = credential_text.replace(&key_line, &mistype(&key_line, key_line.len() - 1));
    let no_node = credential_text
        .lines()
        .filter(|l| !l.starts_with("node="))
        .collect::<Vec<_>>()
        .join("\n");

    json!({
        "section": "§2.1, §2.2, §4.2, §10.1, §10.5",
        "description": "Key encodings: TLS raw public keys (SubjectPublicKeyInfo), PKCS#8, a derived local key, pairing codes and their stored hash, credential files",
        "vectors": [
            {
                "name": "node identity as a TLS raw public key (§2.1, §4.2)",
                "keys": chloe_keys,
                "spki_der": hex(&spki),
                "pkcs8_der": hex(&chloe.ed25519_pkcs8_der()),
                "result": spki_result(&spki),
            },
            {
                "name": "derived local key: the QUIC stateless-reset key (§2.2)",
                "keys": chloe_keys,
                "label": "kith/v1/quic-stateless-reset",
                "derived_key": hex(chloe.derive_key("kith/v1/quic-stateless-reset").as_ref()),
                "result": "ok",
            },
            {"name": "failure: raw public key that is a small-order point (§2.1)", "spki_der": hex(&small_order), "result": spki_result(&small_order)},
            {"name": "failure: raw public key under the X25519 OID 1.3.101.110", "spki_der": hex(&x25519_oid), "result": spki_result(&x25519_oid)},
            {"name": "failure: raw public key one byte short", "spki_der": hex(&truncated), "result": spki_result(&truncated)},
            {
                "name": "pairing code (§10.5)",
                "rng_label": "kith-vectors/pairing",
                "node": chloe.node_id().to_hex(),
                "secret": hex(&secret),
                "code": text,
                "stored_secret_hash": hex(&pairing.secret_hash()),
                "result": pairing_result(&text),
            },
            {"name": "pairing code, lowercase (§3.3: case-insensitive)", "code": text.to_lowercase(), "result": pairing_result(&text.to_lowercase())},
            {"name": "failure: pairing code with one character changed", "code": typo, "result": pairing_result(&typo)},
            {"name": "failure: pairing payload under the invite prefix KITH1", "code": invite_like, "result": pairing_result(&invite_like)},
            {
                "name": "credential file (§10.1)",
                "app_keys": app_keys,
                "text": credential_text,
                "result": credential_result(&credential_text),
            },
            {"name": "failure: credential whose secret has a character changed", "text": bad_key, "result": credential_result(&bad_key)},
            {"name": "failure: credential without a node line", "text": no_node, "result": credential_result(&no_node)},
        ]
    })
}
