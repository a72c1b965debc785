//! Carrier gateway simulators (China Mobile ISMG / CMPP 2.0 and 3.0, China
//! Telecom SMGW / SMGP 3.0, China Unicom SMG / SGIP 1.2) built on
//! `smsgw-codecs`: the same framer and PDUs as the gateway, no second codec.
//!
//! ```no_run
//! # async fn demo() -> Result<(), smsgw_simulators::SimError> {
//! use smsgw_simulators::{start, AccountConfig, ProtocolKind, SimConfig};
//! let cfg = SimConfig::new(ProtocolKind::Cmpp3, "127.0.0.1:0".parse().unwrap())
//!     .account(AccountConfig::new("901234", "secret"));
//! let sim = start(cfg).await?;
//! println!("ISMG listening on {}", sim.addr());
//! # Ok(()) }
//! ```

mod admin;
pub mod behavior;
pub mod clock;
pub mod cmpp;
pub mod config;
mod core;
pub mod faults;
pub mod rng;
mod server;
pub mod sgip;
pub mod smgp;
pub mod stats;
pub mod text;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smsgw_codecs::cmpp::Version;
use smsgw_codecs::text::Family;
use smsgw_codecs::wire::FixedStr;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::behavior::{MsgId, Outcome};
pub use crate::config::{
    AccountConfig, ConfigError, HeartbeatConfig, ProtocolKind, ReportConfig, SgipConfig, SimConfig,
    SpLogin,
};
pub use crate::core::SimCore;
pub use crate::faults::{CorruptKind, DelayRange, ErrorInjection, Faults, FragmentWrites};
pub use crate::stats::{AccountSnapshot, CountersSnapshot, ReceivedMessage, StatsSnapshot};

use crate::behavior::{Job, MoSegment};
use crate::core::ConnCmd;

/// Why the simulator could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("unknown account {0:?}")]
    UnknownAccount(String),
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// An uplink (MO) message to inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoRequest {
    /// Account whose connection receives it (SGIP: optional, the SP link
    /// carries every MO).
    #[serde(default)]
    pub account: Option<String>,
    /// The handset that sent it.
    pub src: String,
    /// The SP number it was sent to.
    pub dest: String,
    pub text: String,
    /// 0 ASCII, 8 UCS2 (default), 15 GBK.
    #[serde(default = "default_mo_coding")]
    pub coding: u8,
    /// Send the segments of a long message last-first.
    #[serde(default)]
    pub out_of_order: bool,
    #[serde(default)]
    pub service_id: Option<String>,
}

fn default_mo_coding() -> u8 {
    8
}

impl MoRequest {
    pub fn new(src: &str, dest: &str, text: &str) -> Self {
        MoRequest {
            account: None,
            src: src.into(),
            dest: dest.into(),
            text: text.into(),
            coding: default_mo_coding(),
            out_of_order: false,
            service_id: None,
        }
    }

    pub fn account(mut self, account: &str) -> Self {
        self.account = Some(account.into());
        self
    }

    pub fn out_of_order(mut self) -> Self {
        self.out_of_order = true;
        self
    }
}

/// A running simulator. Dropping it shuts the simulator down.
pub struct SimHandle {
    core: Arc<SimCore>,
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts a simulator: binds the SP-facing listener (and the admin
/// endpoint), spawns the accept loop, returns at once.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    config.validate()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SimError::Bind {
        addr: config.listen,
        source,
    })?;
    let admin_listener = match config.admin {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .map_err(|source| SimError::Bind { addr: a, source })?,
        ),
        None => None,
    };
    let (tx, rx) = watch::channel(false);
    let core = Arc::new(SimCore::new(config, rx));
    let cfg = &core.config;
    let mut tasks = Vec::new();
    match cfg.protocol {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => {
            let version = if cfg.protocol == ProtocolKind::Cmpp2 {
                Version::V20
            } else {
                Version::V30
            };
            let beh = Arc::new(cmpp::CmppSim {
                version,
                gateway_code: cfg.gateway_code,
            });
            tasks.push(tokio::spawn(server::serve(core.clone(), beh, listener)));
        }
        ProtocolKind::Smgp => {
            let beh = Arc::new(smgp::SmgpSim {
                gateway_code: cfg.gateway_code,
            });
            tasks.push(tokio::spawn(server::serve(core.clone(), beh, listener)));
        }
        ProtocolKind::Sgip => {
            let beh = Arc::new(sgip::SgipSim {
                node_id: cfg.sgip.node_id,
            });
            if let (Some(sp), Some(login)) = (cfg.sgip.sp_addr, cfg.sgip.sp_login.clone()) {
                // Registered before anything can be dispatched.
                let (link_tx, link_rx) = tokio::sync::mpsc::unbounded_channel();
                if let Ok(mut g) = core.sp_link.lock() {
                    *g = Some(link_tx);
                }
                tasks.push(tokio::spawn(server::sp_link(
                    core.clone(),
                    beh.clone(),
                    sp,
                    login,
                    link_rx,
                )));
            }
            tasks.push(tokio::spawn(server::serve(core.clone(), beh, listener)));
        }
    }
    let mut admin_addr = None;
    if let Some(l) = admin_listener {
        admin_addr = l.local_addr().ok();
        tasks.push(tokio::spawn(admin::serve(core.clone(), l)));
    }
    tracing::info!(protocol = %cfg.protocol, %addr, admin = ?admin_addr, seed = core.seed, "simulator started");
    Ok(SimHandle {
        core,
        addr,
        admin_addr,
        shutdown: tx,
        tasks,
    })
}

impl SimHandle {
    /// The SP-facing address (the real port when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn config(&self) -> &SimConfig {
        &self.core.config
    }

    /// The seed in use (given or drawn from the clock).
    pub fn seed(&self) -> u64 {
        self.core.seed
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.core.stats()
    }

    pub fn faults(&self) -> Faults {
        (*self.core.faults.get()).clone()
    }

    /// Replaces the fault set; live connections pick it up on their next
    /// batch.
    pub fn set_faults(&self, faults: Faults) -> Result<(), SimError> {
        self.core.faults.set(faults).map_err(SimError::Invalid)
    }

    /// Sends an MO message (split into segments when long). Returns the
    /// number of segments queued.
    pub fn inject_mo(&self, req: MoRequest) -> Result<usize, SimError> {
        inject_mo(&self.core, req)
    }

    /// Messages received so far (bounded ring, oldest first).
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.core.ring.list()
    }

    pub fn clear_received(&self) {
        self.core.ring.clear()
    }

    /// Writes one corrupt frame on a connection of `account` (or every
    /// connection of every account). Returns how many connections got it.
    pub fn corrupt(&self, account: Option<&str>, kind: CorruptKind) -> usize {
        corrupt(&self.core, account, kind)
    }

    /// Stops accepting, closes every connection, waits for the tasks.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Like [`SimHandle::shutdown`] but keeps the handle: once this returns
    /// the listening address is free again (a new simulator may bind it) and
    /// [`SimHandle::stats`] / [`SimHandle::received`] hold the final counts,
    /// every connection having closed.
    pub async fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

pub(crate) fn inject_mo(core: &SimCore, req: MoRequest) -> Result<usize, SimError> {
    let account = match (&req.account, core.config.protocol) {
        (Some(a), _) => a.clone(),
        (None, ProtocolKind::Sgip) => core
            .config
            .accounts
            .first()
            .map(|a| a.id.clone())
            .unwrap_or_default(),
        (None, _) => return Err(SimError::Invalid("account is required".into())),
    };
    if core.config.protocol != ProtocolKind::Sgip && !core.accounts.contains_key(&account) {
        return Err(SimError::UnknownAccount(account));
    }
    let family = match core.config.protocol {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => Family::Cmpp,
        ProtocolKind::Smgp => Family::Smgp,
        ProtocolKind::Sgip => Family::Sgip,
    };
    let reference = core
        .mo_ref
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u8;
    let segs =
        text::segment(&req.text, req.coding, family, reference).map_err(SimError::Invalid)?;
    let src = FixedStr::new(req.src.as_bytes()).map_err(|e| SimError::Invalid(e.to_string()))?;
    let dest = FixedStr::new(req.dest.as_bytes()).map_err(|e| SimError::Invalid(e.to_string()))?;
    let service_id = FixedStr::new(req.service_id.as_deref().unwrap_or("").as_bytes())
        .map_err(|e| SimError::Invalid(e.to_string()))?;
    let acct: Arc<str> = Arc::from(account.as_str());
    let mut jobs: Vec<Job> = segs
        .into_iter()
        .map(|(udhi, content)| {
            Job::Mo(MoSegment {
                src,
                dest,
                service_id,
                coding: req.coding,
                udhi,
                content,
                attempts: 0,
                account: acct.clone(),
            })
        })
        .collect();
    if req.out_of_order {
        jobs.reverse();
    }
    let n = jobs.len();
    core.dispatch_batch(jobs);
    Ok(n)
}

pub(crate) fn corrupt(core: &SimCore, account: Option<&str>, kind: CorruptKind) -> usize {
    let mut n = 0;
    for (id, a) in &core.accounts {
        if account.is_some_and(|x| x != id) {
            continue;
        }
        n += a.broadcast(|| ConnCmd::Corrupt(kind));
    }
    n
}
