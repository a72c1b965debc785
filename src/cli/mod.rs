//! The `smsgw` subcommands. Each module holds a clap `Args` struct and the
//! function that runs it; `main.rs` only dispatches.

pub mod bench;
pub mod pdu;

use std::path::PathBuf;

use clap::Args;

pub mod link;
pub mod msg;
pub mod send;
pub mod serve;
pub mod sim;
pub mod stats;

/// Options every store-backed command takes (global: any position).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Store URL: sqlite://PATH (created if missing) or postgres://...
    #[arg(long, global = true, env = "SMSGW_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Config file (smsgw.toml); its [store] url applies unless --store is given.
    #[arg(long, global = true, env = "SMSGW_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

pub const DEFAULT_STORE: &str = "sqlite://smsgw.db";

impl StoreArgs {
    /// The config file (validated) or defaults.
    pub fn config(&self) -> anyhow::Result<crate::config::Config> {
        match &self.config {
            Some(p) => Ok(crate::config::Config::load(p)?),
            None => Ok(crate::config::Config::default()),
        }
    }

    pub fn url(&self) -> anyhow::Result<String> {
        if let Some(u) = &self.store {
            return Ok(u.clone());
        }
        Ok(match &self.config {
            Some(_) => self.config()?.store.url,
            None => DEFAULT_STORE.to_owned(),
        })
    }

    #[cfg(feature = "sql")]
    pub async fn open(&self) -> anyhow::Result<crate::adapters::sql::SqlStore> {
        let url = self.url()?;
        crate::adapters::sql::SqlStore::open(&url)
            .await
            .map_err(|e| anyhow::anyhow!("opening store {}: {e}", redact_url(&url)))
    }
}

/// Hides a password in a URL (`postgres://u:***@h/db`).
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(not(feature = "sql"))]
pub(crate) fn no_store() -> anyhow::Error {
    anyhow::anyhow!("this smsgw was built without the `sql` feature: no store available")
}
