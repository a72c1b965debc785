//! Runs one simulator until Ctrl-C, for trying third-party clients
//! (the full CLI is `smsgw sim`):
//!
//! ```text
//! cargo run -p smsgw-simulators --example sim_serve -- cmpp3 127.0.0.1:7890 901234:secret [DLR_DELAY]
//! ```

use smsgw_simulators::{config::parse_duration, AccountConfig, ProtocolKind, SimConfig};
use std::time::Duration;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: sim_serve PROTOCOL HOST:PORT ID:SECRET [DLR_DELAY]");
        std::process::exit(2);
    }
    let protocol: ProtocolKind = args[0].parse().expect("protocol");
    let account: AccountConfig = args[2].parse().expect("ID:SECRET");
    let mut cfg = SimConfig::new(protocol, args[1].parse().expect("HOST:PORT")).account(account);
    cfg.reports.delay = args
        .get(3)
        .map(|d| parse_duration(d).expect("duration"))
        .unwrap_or(Duration::from_millis(100));
    cfg.seed = Some(1);
    let sim = smsgw_simulators::start(cfg).await.expect("start");
    eprintln!("{} simulator on {}", protocol, sim.addr());
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let t = sim.stats().totals;
                eprintln!("logins ok {} refused {} | submits {} | reports sent {} acked {} retried {}",
                    t.logins_ok, t.logins_refused, t.submits_received, t.reports_sent, t.reports_acknowledged, t.reports_retried);
            }
        }
    }
    sim.shutdown().await;
}
