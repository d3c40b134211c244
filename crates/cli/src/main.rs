//! The `tidepool` binary: a thin shell over the server and client crates.

mod images;
mod logging;
mod operator;

use clap::{CommandFactory, Parser, Subcommand};
use tidepool_server::config::ServeArgs;

#[derive(Parser)]
#[command(
    name = "tidepool",
    version,
    about = "A self-hosted image service that speaks DigitalOcean's Images API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (with no flags: SQLite catalog and blobs under ./tidepool-data).
    Serve(ServeArgs),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(operator::TokenCommand),
    /// Manage the public images every account sees (operator only).
    #[command(subcommand)]
    Public(operator::PublicCommand),
    /// List, show, import, change and delete images over the API (like `doctl compute image`).
    Images(images::ImagesArgs),
    /// Print a shell completion script: `tidepool completions bash > /etc/bash_completion.d/tidepool`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            let logs = logging::init(args.observability.log_format);
            let served = tidepool_server::server::run(args, shutdown_signal()).await;
            logs.flush();
            served
        }
        Command::Token(cmd) => operator::token(cmd).await,
        Command::Public(cmd) => operator::public(cmd).await,
        // Exit codes of its own (see `tidepool images --help`).
        Command::Images(args) => return images::run(args).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "tidepool",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tidepool: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
