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

/// The keyword of a public item declared on `line` (`pub fn`, `pub struct`, …) and its
/// name, or None. `pub(crate)`, `pub use` and fields are not items of the public API.
fn public_item(line: &str) -> Option<(&str, &str)> {
    let mut rest = line.trim_start().strip_prefix("pub ")?;
    for qualifier in ["const fn ", "async fn ", "unsafe fn "] {
        if let Some(r) = rest.strip_prefix(qualifier) {
            return Some((
                "fn",
                r.split(|c: char| !c.is_alphanumeric() && c != '_').next()?,
            ));
        }
    }
    let (keyword, after) = rest.split_once(' ')?;
    if ![
        "fn", "struct", "enum", "const", "type", "trait", "static", "mod",
    ]
    .contains(&keyword)
    {
        return None;
    }
    rest = after;
    let name = rest
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()?;
    (!name.is_empty()).then_some((keyword, name))
}

/// Whether the doc comment right above line `i` (attributes may sit in between) cites a
/// section.
fn doc_cites(lines: &[&str], i: usize) -> bool {
    lines[..i]
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| {
            l.starts_with("///") || l.starts_with("#[") || l.starts_with(")]") || l.ends_with(',')
        })
        .any(|l| l.starts_with("///") && l.contains('§'))
}

/// Whether module `name`'s own `//!` docs (in `dir/name.rs` or `dir/name/mod.rs`) cite a
/// section.
fn module_doc_cites(dir: &Path, name: &str) -> bool {
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .any(|text| {
        text.lines()
            .any(|l| l.starts_with("//!") && l.contains('§'))
    })
}

/// Every public item of kith-protocol names the spec section it implements (issue: code ↔
/// spec links). Test modules, and the test support of `testing/`, are skipped.
#[test]
fn every_public_protocol_item_cites_a_section() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../protocol/src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    // Test support (feature `testing`) implements no part of the spec.
    files.retain(|f| !f.starts_with(root.join("testing")));
    files.sort();
    let (mut total, mut uncited) = (0, Vec::new());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let dir = match f.file_name().and_then(|n| n.to_str()) {
            Some("lib.rs" | "mod.rs") => f.parent().unwrap().to_path_buf(),
            _ => f.with_extension(""),
        };
        for (i, line) in lines.iter().enumerate() {
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            let Some((keyword, name)) = public_item(line) else {
                continue;
            };
            total += 1;
            let declared_elsewhere = keyword == "mod" && line.trim_end().ends_with(';');
            let cited =
                doc_cites(&lines, i) || (declared_elsewhere && module_doc_cites(&dir, name));
            if !cited {
                uncited.push(format!(
                    "{}:{}: {keyword} {name}",
                    f.strip_prefix(&root).unwrap_or(f).display(),
                    i + 1
                ));
            }
        }
    }
    assert!(
        total > 100,
        "found only {total} public items: is the scan broken?"
    );
    assert!(
        uncited.is_empty(),
        "{} of {total} public items cite no spec section (§N or §N.M) in their docs:\n{}",
        uncited.len(),
        uncited.join("\n")
    );
}

#[test]
fn public_item_parsing() {
    assert_eq!(
        public_item("    pub fn split(x: u32)"),
        Some(("fn", "split"))
    );
    assert_eq!(
        public_item("pub const fn new() -> Self"),
        Some(("fn", "new"))
    );
    assert_eq!(
        public_item("pub struct Cohort {"),
        Some(("struct", "Cohort"))
    );
    assert_eq!(public_item("pub mod bitmap {"), Some(("mod", "bitmap")));
    assert_eq!(public_item("pub(crate) fn hidden()"), None);
    assert_eq!(public_item("pub use crate::x;"), None);
    assert_eq!(public_item("    pub degree: u32,"), None);
    let lines = [
        "/// The roster (spec §9.8.1).",
        "#[derive(Debug)]",
        "pub struct R;",
    ];
    assert!(doc_cites(&lines, 2));
    assert!(!doc_cites(&["/// No citation.", "pub struct R;"], 1));
}
