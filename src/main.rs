//! `smsgw`: parse, init logging, dispatch to the command. Nothing else.

use clap::{Parser, Subcommand};
use smsgw::cli;

#[derive(Debug, Parser)]
#[command(name = "smsgw", version, about = "SMS carrier gateway (CMPP 2.0/3.0, SMGP 3.0, SGIP 1.2)")]
struct Cli {
    #[command(flatten)]
    store: cli::StoreArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Manage carrier links.
    Link(cli::link::LinkArgs),
    /// Queue a message into the embedded queue.
    Send(cli::send::SendArgs),
    /// Counts by state, link and biz.
    Stats(cli::stats::StatsArgs),
    /// Inspect messages.
    Msg(cli::msg::MsgArgs),
    /// Run the gateway.
    Serve(cli::serve::ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Link(a) => cli::link::run(a, &cli.store).await,
        Cmd::Send(a) => cli::send::run(a, &cli.store).await,
        Cmd::Stats(a) => cli::stats::run(a, &cli.store).await,
        Cmd::Msg(a) => cli::msg::run(a, &cli.store).await,
        Cmd::Serve(a) => cli::serve::run(a, &cli.store).await,
    }
}
