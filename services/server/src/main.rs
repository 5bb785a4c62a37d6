//! `triage`: risk triage for petition and dispute text. The binary is thin:
//! argument parsing and wiring; the work lives in the library crates.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Every file and directory the process makes is its owner's only: case
    // texts, the store's segments (written by qdrant-edge, whose modes we do
    // not choose), keys and salt.
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
    let args = cli::Cli::parse();
    cli::init_logging(&args.global);
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
