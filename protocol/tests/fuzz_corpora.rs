//! The fuzz targets without libFuzzer (spec §5): every committed seed in
//! `protocol/fuzz/seeds/<target>/` (a minimised corpus from the long runs), plus seeded
//! mutations of valid inputs, through the same
//! entry points the cargo-fuzz targets call. Catches regressions on stable in plain
//! `cargo test`; the long runs are `RUSTC_BOOTSTRAP=1 cargo fuzz run <target>`.

use std::path::Path;

use kith_protocol::app::{AppRequest, AppResponse};
use kith_protocol::testing::fuzz as fuzzing;
use kith_protocol::wire::encode_message;
use kith_protocol::*;
use rand_core::RngCore;

mod common;
use common::SimRng;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 4] = [
    ("frames", fuzzing::frames),
    ("messages", fuzzing::messages),
    ("texts", fuzzing::texts),
    ("rounds", fuzzing::rounds),
];

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect()
}

/// Valid inputs to mutate from.
fn seeds() -> Vec<Vec<u8>> {
    let item = ItemKey::parse("tag:vehicle/subaru").unwrap();
    let mut frame = vec![0, 0, 0, 3];
    frame.extend_from_slice(b"abc");
    vec![
        encode_message(&PeerRequest::Ask(Query {
            query_id: QueryId([1; 16]),
            item: item.clone(),
        })),
        encode_message(&PeerResponse::Refused(Refusal::NotAContact)),
        encode_message(&AppRequest::Ask {
            item,
            timeout_ms: 5000,
            epsilon: Some(1000),
            detail: false,
        }),
        encode_message(&AppResponse::Removed(true)),
        frame,
        b"tag:vehicle/subaru/outback".to_vec(),
        b"isbn:0-441-01359-7".to_vec(),
        b"KITHAPP1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .to_vec(),
    ]
}

fn mutate(rng: &mut SimRng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.next_u32() % 4 {
        match rng.next_u32() % 4 {
            0 if !out.is_empty() => {
                let i = rng.next_u32() as usize % out.len();
                out[i] ^= 1 << (rng.next_u32() % 8);
            }
            1 => {
                let i = rng.next_u32() as usize % (out.len() + 1);
                out.insert(i, rng.next_u32() as u8);
            }
            2 if !out.is_empty() => {
                let i = rng.next_u32() as usize % out.len();
                out.remove(i);
            }
            _ => out.truncate(rng.next_u32() as usize % (out.len() + 1)),
        }
    }
    out
}

#[test]
fn corpora_and_mutations_never_break_an_invariant() {
    let seeds = seeds();
    let mut rng = SimRng(0x00f0_22ed);
    for (name, target) in TARGETS {
        let entries = corpus(name);
        for entry in &entries {
            target(entry);
        }
        for i in 0..3000 {
            let base = &seeds[i % seeds.len()];
            let input = if i % 10 == 0 {
                let mut random = vec![0u8; rng.next_u32() as usize % 300];
                rng.fill_bytes(&mut random);
                random
            } else {
                mutate(&mut rng, base)
            };
            target(&input);
        }
        eprintln!("{name}: {} corpus entries + 3000 mutations", entries.len());
    }
}
