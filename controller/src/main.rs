//! `paas-controller`: parses the command line and runs the standalone controller or the git
//! `hook` (which must not start an async runtime: it uses blocking HTTP).

use std::process::ExitCode;

use clap::Parser;
use paas_controller::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Hook) = cli.command {
        return paas_controller::hook::run();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paas-controller: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Gc {
        data_dir,
        keep,
        grace_secs,
        dry_run,
    }) = cli.command
    {
        let dir = data_dir.unwrap_or(cli.serve.data_dir);
        let grace = std::time::Duration::from_secs(grace_secs);
        return match runtime.block_on(paas_controller::gc::run(&dir, keep, grace, dry_run)) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("paas-controller gc: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = runtime.block_on(paas_controller::standalone::run(cli.serve));
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paas-controller: {e}");
            ExitCode::FAILURE
        }
    }
}
