//! `smsgw sim`: run a carrier gateway simulator (ISMG / SMGW / SMG) until
//! Ctrl-C or SIGTERM.
//!
//! Flags override the config file (`--config`, TOML or JSON, the
//! `smsgw_simulators::SimConfig` tree). With stderr on a terminal a one-line
//! summary is printed every second.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use smsgw_simulators::{AccountConfig, SimConfig, SpLogin};

use crate::protocol::ProtocolKind;

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Protocol and version to simulate.
    #[arg(long)]
    pub protocol: Option<ProtocolKind>,
    /// Address SPs connect to (port 0 picks one; the bound address is logged).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// An accepted account, `ID:SECRET` (repeatable).
    #[arg(long = "account", value_name = "ID:SECRET", value_parser = parse_account)]
    pub accounts: Vec<AccountConfig>,
    /// Delay before each status report (`50ms`, `2s`, `1m`); default 100ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub dlr_delay: Option<Duration>,
    /// Config file (TOML, or JSON when it starts with `{`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// HTTP admin endpoint (stats, received messages, MO injection, faults).
    #[arg(long, value_name = "HOST:PORT")]
    pub admin: Option<SocketAddr>,
    /// Seed for every random decision (replayable runs).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// SGIP only: the SP's listening address for reports and MO.
    #[arg(long, value_name = "HOST:PORT")]
    pub sp_addr: Option<SocketAddr>,
    /// SGIP only: what the SMG presents in its Bind to the SP, `NAME:PASSWORD`.
    #[arg(long, value_name = "NAME:PASSWORD", value_parser = parse_sp_login)]
    pub sp_login: Option<SpLogin>,
}

fn parse_account(s: &str) -> Result<AccountConfig, String> {
    s.parse()
        .map_err(|e: smsgw_simulators::ConfigError| e.to_string())
}

fn parse_sp_login(s: &str) -> Result<SpLogin, String> {
    s.parse()
        .map_err(|e: smsgw_simulators::ConfigError| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    smsgw_simulators::config::parse_duration(s).map_err(|e| e.to_string())
}

fn sim_protocol(p: ProtocolKind) -> smsgw_simulators::ProtocolKind {
    match p {
        ProtocolKind::Cmpp2 => smsgw_simulators::ProtocolKind::Cmpp2,
        ProtocolKind::Cmpp3 => smsgw_simulators::ProtocolKind::Cmpp3,
        ProtocolKind::Smgp => smsgw_simulators::ProtocolKind::Smgp,
        ProtocolKind::Sgip => smsgw_simulators::ProtocolKind::Sgip,
    }
}

/// Builds the simulator config: the file first, then the flags on top.
pub fn build_config(args: &SimArgs) -> Result<SimConfig> {
    let mut cfg = match &args.config {
        Some(path) => {
            SimConfig::load(path).with_context(|| format!("loading {}", path.display()))?
        }
        None => {
            let Some(protocol) = args.protocol else {
                bail!("--protocol is required (or a --config file naming one)");
            };
            let Some(listen) = args.listen else {
                bail!("--listen is required (or a --config file naming one)");
            };
            SimConfig::new(sim_protocol(protocol), listen)
        }
    };
    if let Some(p) = args.protocol {
        cfg.protocol = sim_protocol(p);
    }
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    for a in &args.accounts {
        cfg.accounts.retain(|x| x.id != a.id);
        cfg.accounts.push(a.clone());
    }
    if let Some(d) = args.dlr_delay {
        cfg.reports.delay = d;
    }
    if args.admin.is_some() {
        cfg.admin = args.admin;
    }
    if args.seed.is_some() {
        cfg.seed = args.seed;
    }
    if args.sp_addr.is_some() {
        cfg.sgip.sp_addr = args.sp_addr;
    }
    if args.sp_login.is_some() {
        cfg.sgip.sp_login = args.sp_login.clone();
    }
    if (args.sp_addr.is_some() || args.sp_login.is_some())
        && cfg.protocol != smsgw_simulators::ProtocolKind::Sgip
    {
        bail!("--sp-addr / --sp-login apply to --protocol sgip only");
    }
    if cfg.accounts.is_empty() {
        bail!("no account: pass --account ID:SECRET");
    }
    cfg.validate()?;
    Ok(cfg)
}

pub async fn run(args: SimArgs) -> Result<()> {
    let cfg = build_config(&args)?;
    let sim = smsgw_simulators::start(cfg).await?;
    let summary = std::io::stderr().is_terminal();
    eprintln!(
        "smsgw sim: {} on {}{} (seed {})",
        sim.config().protocol,
        sim.addr(),
        sim.admin_addr()
            .map(|a| format!(", admin http://{a}"))
            .unwrap_or_default(),
        sim.seed()
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = sim.stats().totals;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick(), if summary => {
                let now = sim.stats().totals;
                eprintln!(
                    "conns {} | submits {} (+{}/s) | throttled {} | reports {} sent, {} acked (+{}/s) | mo {} | faults {}",
                    now.connections_open,
                    now.submits_received,
                    now.submits_received - last.submits_received,
                    now.throttled,
                    now.reports_sent,
                    now.reports_acknowledged,
                    now.reports_sent - last.reports_sent,
                    now.mo_sent,
                    now.faults_fired,
                );
                last = now;
            }
        }
    }
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn flags_build_a_config() {
        let t = T::parse_from([
            "x",
            "--protocol",
            "sgip",
            "--listen",
            "127.0.0.1:0",
            "--account",
            "sp:pw",
            "--account",
            "b:c",
            "--dlr-delay",
            "50ms",
            "--seed",
            "9",
            "--sp-addr",
            "127.0.0.1:8801",
            "--sp-login",
            "smg:pw",
        ]);
        let cfg = build_config(&t.sim).unwrap();
        assert_eq!(cfg.protocol, smsgw_simulators::ProtocolKind::Sgip);
        assert_eq!(cfg.accounts.len(), 2);
        assert_eq!(cfg.reports.delay, Duration::from_millis(50));
        assert_eq!(cfg.seed, Some(9));
        assert_eq!(cfg.sgip.sp_login.unwrap().name, "smg");
    }

    #[test]
    fn sp_flags_need_sgip() {
        let t = T::parse_from([
            "x",
            "--protocol",
            "cmpp3",
            "--listen",
            "127.0.0.1:0",
            "--account",
            "901234:s",
            "--sp-addr",
            "127.0.0.1:1",
        ]);
        assert!(build_config(&t.sim).is_err());
    }
}
