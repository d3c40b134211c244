//! The `tidepool` binary: a thin shell over the server and client crates.

mod images;
mod operator;

use clap::{CommandFactory, Parser, Subcommand};
use tidepool_server::config::{LogFormat, ServeArgs};

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

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("TIDEPOOL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only for a person at a terminal: a file or journald would keep the escapes.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // The event's fields at the top level, and the span it happened in (a request's or an
        // import's, with their ids).
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
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
            init_logging(args.observability.log_format);
            tidepool_server::server::run(args, shutdown_signal()).await
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
