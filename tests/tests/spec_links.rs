//! Every spec section the code cites (`§N` or `§N.M`) exists in spec/kith.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "target" && n != "fuzz") {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn cited_sections(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices('§') {
        let rest = &text[i + '§'.len_utf8()..];
        let num: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let num = num.trim_end_matches('.');
        if !num.is_empty() {
            out.insert(num.to_string());
        }
    }
    out
}

fn spec_sections(spec: &str) -> BTreeSet<String> {
    spec.lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| l.trim_start_matches('#').split_whitespace().next())
        .map(|n| n.trim_end_matches('.').to_string())
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .collect()
}

#[test]
fn every_cited_section_exists() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let spec = std::fs::read_to_string(root.join("spec/kith.md")).expect("spec/kith.md");
    let have = spec_sections(&spec);
    assert!(have.contains("8.3"), "spec headings not found: {have:?}");
    let mut files = Vec::new();
    for crate_dir in ["protocol", "node", "client-sdk", "tests"] {
        rust_files(&root.join(crate_dir), &mut files);
    }
    let mut missing = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for s in cited_sections(&text) {
            if !have.contains(&s) {
                missing.push(format!(
                    "{}: §{s}",
                    f.strip_prefix(&root).unwrap_or(f).display()
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "code cites sections the spec lacks:\n{}",
        missing.join("\n")
    );
}

#[test]
fn section_parsing() {
    assert_eq!(
        cited_sections("see §3.2, and §10."),
        ["10", "3.2"].iter().map(|s| s.to_string()).collect()
    );
    assert!(spec_sections("## 3. Cards\n### 3.1 Cards\ntext").contains("3.1"));
}
