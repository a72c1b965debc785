//! The `smsgw` binary: argument parsing, logging set-up and dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use smsgw::cli;

#[derive(Parser, Debug)]
#[command(
    name = "smsgw",
    version,
    about = "SMS carrier gateway: CMPP 2.0/3.0, SMGP 3.0, SGIP 1.2"
)]
struct Cli {
    /// `--store URL` / `--config PATH`, global to every store-backed command.
    #[command(flatten)]
    store: cli::StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decode and encode protocol PDUs (read a packet capture, craft traffic).
    Pdu(cli::pdu::PduArgs),
    /// Load-test a carrier endpoint through the session layer.
    Bench(cli::bench::BenchCli),
    /// Manage carrier links (add, list, remove).
    Link(cli::link::LinkArgs),
    /// Queue a message into the embedded queue.
    Send(cli::send::SendArgs),
    /// Message counts by state, link and biz (segments for cost allocation).
    Stats(cli::stats::StatsArgs),
    /// Inspect a message's status history.
    Msg(cli::msg::MsgArgs),
    /// Run the gateway.
    Serve(cli::serve::ServeArgs),
    /// Run a carrier simulator (ISMG / SMGW / SMG) with fault injection.
    Sim(cli::sim::SimArgs),
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("SMSGW_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> ExitCode {
    let args = Cli::parse();
    init_tracing();
    let result = match args.command {
        Command::Pdu(a) => cli::pdu::run(a),
        Command::Bench(a) => runtime().and_then(|rt| rt.block_on(cli::bench::run(a))),
        Command::Link(a) => runtime().and_then(|rt| rt.block_on(cli::link::run(a, &args.store))),
        Command::Send(a) => runtime().and_then(|rt| rt.block_on(cli::send::run(a, &args.store))),
        Command::Stats(a) => runtime().and_then(|rt| rt.block_on(cli::stats::run(a, &args.store))),
        Command::Msg(a) => runtime().and_then(|rt| rt.block_on(cli::msg::run(a, &args.store))),
        Command::Serve(a) => runtime().and_then(|rt| rt.block_on(cli::serve::run(a, &args.store))),
        Command::Sim(a) => runtime().and_then(|rt| rt.block_on(cli::sim::run(a))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smsgw: {e:#}");
            ExitCode::FAILURE
        }
    }
}
