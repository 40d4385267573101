//! One file per command: its arguments, what it does, and its output as a `Serialize`
//! value with a `Display` for people (JSON is derived, never built by hand). `cli.rs` parses
//! the command line and dispatches.

use std::fmt::Display;

use serde::Serialize;

pub mod accept;
pub mod apps;
pub mod ask;
pub mod audit;
pub mod background;
pub mod contacts;
pub mod endorse;
pub mod endorsements;
pub mod init;
pub mod invite;
pub mod pending;
pub mod policy;
pub mod run;
pub mod settings;
pub mod status;
pub mod stop;
pub mod updates;

/// Print a command's output: JSON for scripts with `--json`, text for people otherwise.
pub fn emit<T: Serialize + Display>(json: bool, out: &T) {
    if json {
        emit_json(out);
    } else {
        println!("{out}");
    }
}

/// Print `out` as JSON.
pub fn emit_json<T: Serialize>(out: &T) {
    match serde_json::to_string_pretty(out) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("kith: cannot encode the output as JSON: {e}"),
    }
}

/// A warning for a person, on standard error so that `--json` output stays parseable.
pub fn warn(text: &str) {
    eprintln!("kith: warning: {text}");
}

/// An outcome already reported on standard output that must still exit non-zero (for
/// example `status` of a node that is not running).
#[derive(Debug)]
pub struct Reported;

impl Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reported")
    }
}

impl std::error::Error for Reported {}
