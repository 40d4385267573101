//! The `kith` command: one binary for running a node and for talking to it.

mod cli;
mod cmd;
mod demo;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
