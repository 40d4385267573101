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
        assert_eq!(v["spec_version"], "v1");
    }
}

#[test]
fn generation_is_deterministic() {
    assert_eq!(
        kith_tests::vectors::generate(),
        kith_tests::vectors::generate()
    );
}
