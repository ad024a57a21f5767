//! `paas-agent`: the node daemon binary. Parses the command line, sets up logging and runs
//! either the agent ([`paas_node_agent::serve`]) or `cleanup`.

use clap::Parser;
use paas_node_agent::config::{AgentConfig, Cli, Command};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paas-agent: starting the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async {
        match cli.command {
            Some(Command::Cleanup(args)) => Ok(paas_node_agent::cleanup::run(&args).await?),
            None => {
                let mut serve = cli.serve;
                paas_node_agent::register::resolve_subnet(&mut serve).await?;
                let config = AgentConfig::from_args(serve)?;
                Ok(paas_node_agent::serve(config).await?)
            }
        }
    });
    // Waiter threads block in the runtime's wait(); do not wait for them on exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("paas-agent: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
