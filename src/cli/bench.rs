//! `smsgw bench`: drive the session layer against any carrier endpoint.

use anyhow::{Context, Result};

use crate::protocol::ProtocolKind;
use crate::session::bench::{run_bench, BenchArgs};

#[derive(clap::Args, Debug)]
pub struct BenchCli {
    /// Protocol and version of the target.
    #[arg(long)]
    pub protocol: ProtocolKind,
    /// Carrier endpoint, HOST:PORT.
    #[arg(long)]
    pub target: String,
    /// Account as ID:SECRET.
    #[arg(long)]
    pub account: String,
    /// Messages to submit.
    #[arg(long)]
    pub messages: u64,
    /// Connections in the link's pool.
    #[arg(long, default_value_t = 1)]
    pub connections: u32,
    /// Sliding window per connection (requests outstanding).
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Submit rate limit for the whole link, messages per second (0 = none).
    #[arg(long, default_value_t = 0)]
    pub tps: u32,
    /// Message text (a long text is several segments).
    #[arg(long, default_value = "smsgw bench 验证码 123456")]
    pub text: String,
    /// Don't ask for status reports (Registered_Delivery 0) nor wait for them.
    #[arg(long)]
    pub no_reports: bool,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    /// SGIP only: listen here for the SMG's report/MO connection (the SP-side
    /// server; give the same address to the SMG, e.g. `smsgw sim --sp-addr`).
    #[arg(long, value_name = "HOST:PORT", requires = "sp_login")]
    pub sp_listen: Option<std::net::SocketAddr>,
    /// SGIP only: the NAME:PASSWORD the SMG must bind with on the SP-side
    /// server (`smsgw sim --sp-login`).
    #[arg(long, value_name = "NAME:PASSWORD", requires = "sp_listen")]
    pub sp_login: Option<String>,
}

pub fn split_account(account: &str) -> Result<(String, String)> {
    let (id, secret) = account
        .split_once(':')
        .context("--account must be ID:SECRET")?;
    Ok((id.to_owned(), secret.to_owned()))
}

pub async fn run(a: BenchCli) -> Result<()> {
    let (account, secret) = split_account(&a.account)?;
    let sp_login = match &a.sp_login {
        Some(l) => Some(
            l.split_once(':')
                .map(|(n, p)| (n.to_owned(), p.to_owned()))
                .context("--sp-login must be NAME:PASSWORD")?,
        ),
        None => None,
    };
    if a.sp_listen.is_some() && a.protocol != ProtocolKind::Sgip {
        anyhow::bail!("--sp-listen and --sp-login are for --protocol sgip only");
    }
    let report = run_bench(BenchArgs {
        protocol: a.protocol,
        target: a.target,
        account,
        secret,
        messages: a.messages,
        connections: a.connections,
        window: a.window,
        tps: a.tps,
        text: a.text,
        reports: !a.no_reports,
        json: a.json,
        sp_listen: a.sp_listen,
        sp_login,
    })
    .await?;
    println!("{report}");
    Ok(())
}
