//! Regenerate (`--write`) or check (default) the spec test vectors in spec/vectors/v2/.

use std::process::ExitCode;

fn main() -> ExitCode {
    let write = std::env::args().any(|a| a == "--write");
    let dir = kith_tests::vectors::vectors_dir();
    let mut stale = 0;
    if write {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("vectors: cannot create {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    for (name, text) in kith_tests::vectors::generate() {
        let path = dir.join(name);
        let same = std::fs::read_to_string(&path)
            .map(|old| old == text)
            .unwrap_or(false);
        if write && !same {
            if let Err(e) = std::fs::write(&path, &text) {
                eprintln!("vectors: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            println!("wrote {}", path.display());
        } else if !same {
            println!("stale {}", path.display());
            stale += 1;
        } else {
            println!("ok    {}", path.display());
        }
    }
    if stale > 0 {
        eprintln!("vectors: {stale} file(s) differ; run with --write to regenerate");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
