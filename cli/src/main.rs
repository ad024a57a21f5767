//! `paas`: the command line for a paas controller (apps, releases, login).
//!
//! Everything lives in modules; this file only parses arguments and turns the outcome into
//! an exit code: 0 ok, 1 usage or API error, 2 controller unreachable, 3 not logged in,
//! 4 not found.

mod client;
mod commands;
mod config;
mod git_remote;
mod output;
#[cfg(test)]
mod routes;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match commands::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap uses exit code 2 for usage errors; ours is 1 (2 means "unreachable").
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 1 } else { 0 });
        }
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}: {err}", output::error_label());
            ExitCode::from(err.exit_code())
        }
    }
}
