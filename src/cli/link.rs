//! `smsgw link add|list|remove`.

use clap::{Args, Subcommand};

use super::StoreArgs;
use crate::config::{validate_addr, validate_link_name};
use crate::engine::types::{LinkSpec, ProtocolKind};

#[derive(Debug, Args)]
pub struct LinkArgs {
    #[command(subcommand)]
    pub cmd: LinkCmd,
}

#[derive(Debug, Subcommand)]
pub enum LinkCmd {
    /// Adds a carrier link.
    Add(AddArgs),
    /// Lists links (secrets masked).
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Removes a link.
    Remove { name: String },
    /// Connects and logs in once; reports the login latency or the refusal.
    Test {
        name: String,
        /// Give up after this long.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Link name: 1-64 of [A-Za-z0-9._-].
    pub name: String,
    /// cmpp2 | cmpp3 | smgp | sgip
    #[arg(long)]
    pub protocol: String,
    /// Carrier gateway HOST:PORT.
    #[arg(long)]
    pub addr: String,
    /// Account (CMPP Source_Addr / SP id, SMGP ClientID, SGIP login name).
    #[arg(long)]
    pub account: String,
    /// Shared secret; prefer the environment variable (not visible in `ps`).
    #[arg(long, env = "SMSGW_LINK_SECRET", hide_env_values = true)]
    pub secret: String,
    #[arg(long, default_value_t = 1)]
    pub connections: u32,
    /// In-flight window per connection.
    #[arg(long, default_value_t = 16)]
    pub window: u32,
    /// Submits per second across the link's connections.
    #[arg(long)]
    pub tps: Option<u32>,
    /// Routing weight among links of the same carrier.
    #[arg(long, default_value_t = 1)]
    pub weight: u32,
}

impl AddArgs {
    pub fn spec(&self) -> anyhow::Result<LinkSpec> {
        validate_link_name(&self.name).map_err(anyhow::Error::msg)?;
        validate_addr(&self.addr).map_err(anyhow::Error::msg)?;
        let protocol: ProtocolKind = self.protocol.parse().map_err(anyhow::Error::msg)?;
        if self.connections == 0 || self.window == 0 || self.weight == 0 || self.tps == Some(0) {
            anyhow::bail!("--connections, --window, --weight and --tps must be > 0");
        }
        if self.account.is_empty() || self.secret.is_empty() {
            anyhow::bail!("--account and --secret must not be empty");
        }
        Ok(LinkSpec {
            name: self.name.clone(),
            protocol,
            addr: self.addr.clone(),
            account: self.account.clone(),
            secret: self.secret.clone(),
            connections: self.connections,
            window: self.window,
            tps: self.tps,
            weight: self.weight,
        })
    }
}

/// A link as shown to operators: the secret is masked.
pub fn shown(l: &LinkSpec) -> serde_json::Value {
    serde_json::json!({
        "name": l.name,
        "protocol": l.protocol.as_str(),
        "carrier": l.carrier(),
        "addr": l.addr,
        "account": l.account,
        "secret": l.masked_secret(),
        "connections": l.connections,
        "window": l.window,
        "tps": l.tps,
        "weight": l.weight,
    })
}

#[cfg(feature = "sql")]
pub async fn run(args: LinkArgs, store: &StoreArgs) -> anyhow::Result<()> {
    use crate::engine::ports::{LinkRegistry, StoreError};
    let s = store.open().await?;
    match args.cmd {
        LinkCmd::Add(a) => {
            let spec = a.spec()?;
            match s.add_link(&spec).await {
                Ok(()) => println!(
                    "link {} added ({} {}, {})",
                    spec.name,
                    spec.protocol,
                    spec.carrier(),
                    spec.addr
                ),
                Err(StoreError::Conflict { .. }) => {
                    anyhow::bail!("link {} already exists", spec.name)
                }
                Err(e) => return Err(e.into()),
            }
        }
        LinkCmd::Test { name, timeout } => test_link(&s, &name, timeout).await?,
        LinkCmd::List { json } => {
            let links = s.links().await?;
            if json {
                let v: Vec<_> = links.iter().map(shown).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if links.is_empty() {
                println!("no links");
            } else {
                println!(
                    "{:<16} {:<8} {:<8} {:<22} {:<12} {:<8} {:>5} {:>6} {:>6} {:>6}",
                    "NAME",
                    "PROTOCOL",
                    "CARRIER",
                    "ADDR",
                    "ACCOUNT",
                    "SECRET",
                    "CONNS",
                    "WINDOW",
                    "TPS",
                    "WEIGHT"
                );
                for l in &links {
                    println!(
                        "{:<16} {:<8} {:<8} {:<22} {:<12} {:<8} {:>5} {:>6} {:>6} {:>6}",
                        l.name,
                        l.protocol.as_str(),
                        l.carrier().as_str(),
                        l.addr,
                        l.account,
                        l.masked_secret(),
                        l.connections,
                        l.window,
                        l.tps.map_or("-".to_owned(), |t| t.to_string()),
                        l.weight
                    );
                }
            }
        }
        LinkCmd::Remove { name } => {
            if s.remove_link(&name).await? {
                println!("link {name} removed");
            } else {
                anyhow::bail!("no link named {name}");
            }
        }
    }
    s.close().await;
    Ok(())
}

#[cfg(not(feature = "sql"))]
pub async fn run(_args: LinkArgs, _store: &StoreArgs) -> anyhow::Result<()> {
    Err(super::no_store())
}

/// `link test NAME`: one connection, login, report latency, log out.
#[cfg(feature = "sql")]
async fn test_link(
    s: &crate::adapters::sql::SqlStore,
    name: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    use crate::adapters::carrier::{link_config, CarrierOptions};
    use crate::engine::ports::LinkRegistry;
    use crate::session::{Link, LinkEvent};
    let links = s.links().await?;
    let Some(spec) = links.iter().find(|l| l.name == name) else {
        anyhow::bail!("no link named {name:?} (see `smsgw link list`)");
    };
    let mut cfg = link_config(spec, &CarrierOptions::default())?;
    cfg.connections = 1;
    let started = std::time::Instant::now();
    let (handle, mut events) = Link::start(cfg).await?;
    let outcome = tokio::time::timeout(timeout, async {
        while let Some(ev) = events.recv().await {
            match ev {
                LinkEvent::Up { .. } => return Ok(started.elapsed()),
                LinkEvent::Down { reason, .. } => return Err(reason.to_string()),
                // Nothing is stored here: answer the carrier right away.
                LinkEvent::Report(r) => {
                    r.ack.ack();
                }
                _ => {}
            }
        }
        Err("link stopped".to_owned())
    })
    .await;
    let shutdown = handle.shutdown();
    // Keep draining events so the shutdown can finish.
    let drain = async {
        while let Some(ev) = events.recv().await {
            if let LinkEvent::Report(r) = ev {
                r.ack.ack();
            }
        }
    };
    tokio::join!(shutdown, drain);
    match outcome {
        Ok(Ok(latency)) => {
            println!(
                "link {name}: logged in to {} ({} {}) in {:.1} ms",
                spec.addr,
                spec.protocol,
                spec.carrier(),
                latency.as_secs_f64() * 1000.0
            );
            Ok(())
        }
        Ok(Err(reason)) => anyhow::bail!("link {name}: {} {}: {reason}", spec.protocol, spec.addr),
        Err(_) => anyhow::bail!(
            "link {name}: no login within {} ({} {})",
            humantime::format_duration(timeout),
            spec.protocol,
            spec.addr
        ),
    }
}
