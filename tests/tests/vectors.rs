//! The spec's test vectors are exactly what the code produces, byte for byte, and every
//! failure vector records an error.

#[test]
fn spec_vectors_match_the_code_byte_for_byte() {
    let dir = kith_tests::vectors::vectors_dir();
    for (name, text) in kith_tests::vectors::generate() {
        let path = dir.join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run `cargo run -p kith-tests --bin vectors -- --write`)",
                path.display()
            )
        });
        assert!(on_disk == text, "{name} differs from the code's output; regenerate with `cargo run -p kith-tests --bin vectors -- --write` and review the diff");
        let v: serde_json::Value = serde_json::from_str(&on_disk).unwrap();
        let failures =
            on_disk.matches("\"result\": \"").count() - on_disk.matches("\"result\": \"ok").count();
        assert!(
            failures > 0 || name == "item_keys.json",
            "{name} has no failure cases"
        );
        assert_eq!(v["spec_version"], "v2");
    }
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(
        kith_tests::vectors::generate(),
        kith_tests::vectors::generate()
    );
}

/// `messages.json` has a vector for every variant of every message and code enum, and each
/// decodes to a value that encodes to the same bytes.
#[test]
fn every_message_variant_has_a_vector() {
    use kith_protocol::app::{AppRequest, AppResponse};
    use kith_protocol::wire::{decode_message, encode_message};
    use kith_protocol::{PeerRequest, PeerResponse};
    use std::collections::{BTreeMap, BTreeSet};

    fn round_trip<T>(message: &[u8])
    where
        T: serde::de::DeserializeOwned + serde::Serialize,
    {
        let value: T = decode_message(message).expect("vector decodes");
        assert_eq!(encode_message(&value), message, "re-encoding differs");
    }

    let path = kith_tests::vectors::vectors_dir().join("messages.json");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut seen: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for v in file["vectors"].as_array().unwrap() {
        if v.get("result").is_some() {
            continue;
        }
        let message = kith_tests::vectors::hex_decode(v["message"].as_str().unwrap());
        match v["type"].as_str().unwrap() {
            "PeerRequest" => round_trip::<PeerRequest>(&message),
            "PeerResponse" => round_trip::<PeerResponse>(&message),
            "AppRequest" => round_trip::<AppRequest>(&message),
            "AppResponse" => round_trip::<AppResponse>(&message),
            other => panic!("unknown type {other}"),
        }
        for step in v["variants"].as_array().unwrap() {
            let (ty, i) = step.as_object().unwrap().iter().next().unwrap();
            seen.entry(ty.clone())
                .or_default()
                .insert(i.as_u64().unwrap());
        }
    }
    for (ty, n) in kith_tests::vectors::variant_counts() {
        assert!(n > 0, "{ty}: probing found no variant");
        let want: BTreeSet<u64> = (0..u64::from(n)).collect();
        assert_eq!(seen.get(ty), Some(&want), "{ty}: a variant has no vector");
    }
}
