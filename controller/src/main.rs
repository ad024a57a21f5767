//! `paas-controller`: parses the command line and runs the standalone controller or the git
//! `hook` (which must not start an async runtime: it uses blocking HTTP).

use std::process::ExitCode;

use clap::Parser;
use paas_controller::backup;
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
    let result = match cli.command {
        Some(Command::Backup(a)) => runtime
            .block_on(backup::backup(
                &a.data_dir,
                a.database_url.as_deref(),
                &a.out,
            ))
            .map(|m| println!("backed up {} tables to {}", m.tables.len(), a.out.display()))
            .map_err(|e| e.to_string()),
        Some(Command::Restore(a)) => runtime
            .block_on(backup::restore(
                &a.file,
                &a.data_dir,
                a.database_url.as_deref(),
            ))
            .map(|m| {
                println!(
                    "restored the backup of {} into {}",
                    m.created_at,
                    a.data_dir.display()
                )
            })
            .map_err(|e| e.to_string()),
        Some(Command::Router(args)) => runtime
            .block_on(paas_controller::routing::run_router(args))
            .map_err(|e| e.to_string()),
        Some(Command::Gc {
            data_dir,
            keep,
            grace_secs,
            dry_run,
        }) => {
            let dir = data_dir.unwrap_or(cli.serve.data_dir);
            let grace = std::time::Duration::from_secs(grace_secs);
            runtime
                .block_on(paas_controller::gc::run(&dir, keep, grace, dry_run))
                .map(|line| println!("{line}"))
                .map_err(|e| format!("gc: {e}"))
        }
        _ => runtime
            .block_on(paas_controller::standalone::run(cli.serve))
            .map_err(|e| e.to_string()),
    };
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paas-controller: {e}");
            ExitCode::FAILURE
        }
    }
}
