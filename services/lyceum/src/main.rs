//! `lyceum`: the one binary of the platform.

mod commands;
mod services;

use clap::{Parser, Subcommand};

/// Lyceum: learning, marketplace, instructor revenue and lead generation, as gRPC services.
#[derive(Parser)]
#[command(name = "lyceum", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one or more services (or `all`) in this process.
    // Boxed: its arguments outweigh every other command's many times over.
    Serve(Box<commands::ServeArgs>),
    /// Create roles and schemas and run the migrations of one service or `all`.
    Migrate(commands::MigrateArgs),
    /// Ask a server's gRPC health service whether it is SERVING (exit 0) or not (exit 1).
    Healthcheck(commands::HealthcheckArgs),
    /// Administrative tasks.
    #[command(subcommand)]
    Admin(commands::AdminCommand),
    /// Inspect and replay dead letters of the event consumers.
    #[command(subcommand)]
    Dlq(commands::DlqCommand),
    /// Recompute derived statistics from their sources and report (or repair) drift.
    Verify(commands::VerifyArgs),
    /// Scheduled jobs, run once (from cron, a Kubernetes CronJob or by hand).
    #[command(subcommand)]
    Jobs(commands::JobsCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve(*args).await,
            Command::Migrate(args) => commands::migrate(args).await,
            Command::Healthcheck(args) => commands::healthcheck(args).await,
            Command::Admin(command) => commands::admin(command).await,
            Command::Dlq(command) => commands::dlq(command).await,
            Command::Verify(args) => commands::verify(args).await,
            Command::Jobs(command) => commands::jobs(command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
