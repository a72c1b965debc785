//! Typed simulator configuration: one serde tree with `deny_unknown_fields`,
//! loadable from TOML or JSON, validated after parsing.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::faults::Faults;

/// Which carrier gateway to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolKind {
    /// China Mobile ISMG speaking CMPP 2.0 (accepts versions 0x20 and 0x21).
    Cmpp2,
    /// China Mobile ISMG speaking CMPP 3.0 (accepts versions 0x3x).
    Cmpp3,
    /// China Telecom SMGW speaking SMGP 3.0.
    Smgp,
    /// China Unicom SMG speaking SGIP 1.2.
    Sgip,
}

impl ProtocolKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolKind::Cmpp2 => "cmpp2",
            ProtocolKind::Cmpp3 => "cmpp3",
            ProtocolKind::Smgp => "smgp",
            ProtocolKind::Sgip => "sgip",
        }
    }
}

impl FromStr for ProtocolKind {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cmpp2" | "cmpp20" | "cmpp2.0" => Ok(ProtocolKind::Cmpp2),
            "cmpp3" | "cmpp30" | "cmpp3.0" => Ok(ProtocolKind::Cmpp3),
            "smgp" | "smgp3" | "smgp30" => Ok(ProtocolKind::Smgp),
            "sgip" | "sgip12" => Ok(ProtocolKind::Sgip),
            _ => Err(ConfigError::Invalid(format!(
                "unknown protocol {s:?} (expected cmpp2, cmpp3, smgp or sgip)"
            ))),
        }
    }
}

impl std::fmt::Display for ProtocolKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One SP account the simulated gateway accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// CMPP SP_Id / SMGP ClientID / SGIP Login Name.
    pub id: String,
    /// Shared secret (CMPP/SMGP) or password (SGIP).
    pub secret: String,
    /// Concurrent connections allowed for this account.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Submits per second accepted; beyond it the throttle status is sent.
    /// `None` means unlimited.
    #[serde(default)]
    pub tps: Option<u32>,
}

fn default_max_connections() -> usize {
    8
}

impl AccountConfig {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        AccountConfig {
            id: id.into(),
            secret: secret.into(),
            max_connections: default_max_connections(),
            tps: None,
        }
    }

    pub fn with_tps(mut self, tps: u32) -> Self {
        self.tps = Some(tps);
        self
    }

    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
}

impl FromStr for AccountConfig {
    type Err = ConfigError;
    /// Parses the CLI form `ID:SECRET`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((id, secret)) if !id.is_empty() => Ok(AccountConfig::new(id, secret)),
            _ => Err(ConfigError::Invalid(format!(
                "account {s:?} is not ID:SECRET"
            ))),
        }
    }
}

/// Credentials the SGIP SMG presents when it binds to the SP (login type 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpLogin {
    pub name: String,
    pub password: String,
}

impl FromStr for SpLogin {
    type Err = ConfigError;
    /// Parses the CLI form `NAME:PASSWORD`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((name, password)) => Ok(SpLogin {
                name: name.into(),
                password: password.into(),
            }),
            None => Err(ConfigError::Invalid(format!(
                "sp login {s:?} is not NAME:PASSWORD"
            ))),
        }
    }
}

/// Report (DELIVER / Report) behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Delay between the submit and its status report.
    #[serde(with = "humantime_serde")]
    pub delay: Duration,
    /// Outcome weights, e.g. `{ DELIVRD = 0.9, UNDELIV = 0.1 }`. Keys are
    /// CMPP/SMGP stat words: DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED,
    /// UNKNOWN.
    pub outcomes: BTreeMap<String, f64>,
    /// How long to wait for DELIVER_RESP / Report_Resp before resending.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Sends in total before a report is given up.
    pub max_attempts: u32,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            delay: Duration::from_millis(100),
            outcomes: BTreeMap::from([("DELIVRD".to_string(), 1.0)]),
            retry_after: Duration::from_secs(5),
            max_attempts: 3,
        }
    }
}

/// Keep-alive behaviour (CMPP / SMGP; SGIP has no link test).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    /// Idle time before the simulator sends its own ACTIVE_TEST.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Unanswered tests after which the connection is dropped.
    pub max_missed: u32,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: Duration::from_secs(30),
            max_missed: 3,
        }
    }
}

/// SGIP only: where and how the SMG reaches the SP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgipConfig {
    /// The SP's listening address for the SMG's connection.
    pub sp_addr: Option<SocketAddr>,
    /// What the SMG presents in its Bind (login type 2).
    pub sp_login: Option<SpLogin>,
    /// Node id of the simulated SMG (sequence numbers it originates).
    #[serde(default = "default_sgip_node")]
    pub node_id: u32,
}

fn default_sgip_node() -> u32 {
    107_551
}

impl Default for SgipConfig {
    fn default() -> Self {
        SgipConfig {
            sp_addr: None,
            sp_login: None,
            node_id: default_sgip_node(),
        }
    }
}

/// The whole simulator configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub protocol: ProtocolKind,
    /// Where SPs connect; port 0 picks a free port (see `SimHandle::addr`).
    pub listen: SocketAddr,
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// HTTP admin endpoint; `None` disables it.
    #[serde(default)]
    pub admin: Option<SocketAddr>,
    /// Seed for every random decision; `None` seeds from the clock.
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub reports: ReportConfig,
    #[serde(default)]
    pub heartbeat: HeartbeatConfig,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub sgip: SgipConfig,
    /// Gateway code put in CMPP Msg_Id (ISMG id, 22 bits) and SMGP MsgID
    /// (6 digits).
    #[serde(default = "default_gateway_code")]
    pub gateway_code: u32,
    /// Received messages kept for `received()` / `GET /messages`.
    #[serde(default = "default_ring")]
    pub ring_capacity: usize,
    /// UTC offset (hours) used for timestamps and ids; carriers use +8.
    #[serde(default = "default_utc_offset")]
    pub utc_offset_hours: i32,
    /// Largest frame accepted from a client.
    #[serde(default = "default_max_frame")]
    pub max_frame_len: usize,
}

fn default_gateway_code() -> u32 {
    1001
}
fn default_ring() -> usize {
    10_000
}
fn default_utc_offset() -> i32 {
    8
}
fn default_max_frame() -> usize {
    smsgw_codecs::DEFAULT_MAX_FRAME_LEN
}

impl SimConfig {
    /// A configuration with defaults for everything but the essentials.
    pub fn new(protocol: ProtocolKind, listen: SocketAddr) -> Self {
        SimConfig {
            protocol,
            listen,
            accounts: Vec::new(),
            admin: None,
            seed: None,
            reports: ReportConfig::default(),
            heartbeat: HeartbeatConfig::default(),
            faults: Faults::default(),
            sgip: SgipConfig::default(),
            gateway_code: default_gateway_code(),
            ring_capacity: default_ring(),
            utc_offset_hours: default_utc_offset(),
            max_frame_len: default_max_frame(),
        }
    }

    pub fn account(mut self, account: AccountConfig) -> Self {
        self.accounts.push(account);
        self
    }

    /// Parses TOML, or JSON when the text starts with `{`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: SimConfig = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?
        } else {
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for a in &self.accounts {
            if a.id.is_empty() {
                return Err(ConfigError::Invalid("account id is empty".into()));
            }
            if !seen.insert(&a.id) {
                return Err(ConfigError::Invalid(format!(
                    "account {} listed twice",
                    a.id
                )));
            }
            if a.max_connections == 0 {
                return Err(ConfigError::Invalid(format!(
                    "account {}: max_connections is 0",
                    a.id
                )));
            }
            let max_id = match self.protocol {
                ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => 6,
                ProtocolKind::Smgp => 8,
                ProtocolKind::Sgip => 16,
            };
            if a.id.len() > max_id {
                return Err(ConfigError::Invalid(format!(
                    "account {}: id longer than {max_id} bytes for {}",
                    a.id, self.protocol
                )));
            }
        }
        if self.reports.outcomes.is_empty() || self.reports.outcomes.values().all(|w| *w <= 0.0) {
            return Err(ConfigError::Invalid(
                "reports.outcomes has no positive weight".into(),
            ));
        }
        for (k, w) in &self.reports.outcomes {
            if crate::behavior::Outcome::from_stat(k).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "reports.outcomes: unknown stat {k:?}"
                )));
            }
            if !w.is_finite() || *w < 0.0 {
                return Err(ConfigError::Invalid(format!(
                    "reports.outcomes.{k}: bad weight {w}"
                )));
            }
        }
        if self.reports.max_attempts == 0 {
            return Err(ConfigError::Invalid("reports.max_attempts is 0".into()));
        }
        if self.gateway_code > 0x3F_FFFF {
            return Err(ConfigError::Invalid("gateway_code exceeds 22 bits".into()));
        }
        if self.protocol == ProtocolKind::Sgip
            && self.sgip.sp_addr.is_some()
            && self.sgip.sp_login.is_none()
        {
            return Err(ConfigError::Invalid(
                "sgip.sp_addr needs sgip.sp_login".into(),
            ));
        }
        self.faults.validate().map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

/// Parses `50ms`, `2s`, `1m` (humantime).
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(s).map_err(|e| ConfigError::Invalid(format!("duration {s:?}: {e}")))
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config parse error: {0}")]
    Parse(String),
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_toml_with_faults() {
        let cfg = SimConfig::parse(
            r#"
protocol = "cmpp3"
listen = "127.0.0.1:0"
seed = 7
[[accounts]]
id = "901234"
secret = "secret"
tps = 100
[reports]
delay = "50ms"
outcomes = { DELIVRD = 0.9, UNDELIV = 0.1 }
[faults]
drop_response = 0.1
response_delay = { min = "1ms", max = "5ms" }
"#,
        )
        .unwrap();
        assert_eq!(cfg.accounts[0].tps, Some(100));
        assert_eq!(cfg.reports.delay, Duration::from_millis(50));
        assert_eq!(cfg.faults.drop_response, 0.1);
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../sim.example.toml");
        let cfg = SimConfig::parse(text).unwrap();
        assert_eq!(cfg.protocol, ProtocolKind::Cmpp3);
        assert_eq!(cfg.accounts[0].tps, Some(500));
        assert_eq!(cfg.reports.outcomes.len(), 4);
    }

    #[test]
    fn reject_unknown_fields() {
        let e = SimConfig::parse("protocol = \"smgp\"\nlisten = \"127.0.0.1:0\"\nbogus = 1\n");
        assert!(matches!(e, Err(ConfigError::Parse(_))));
    }

    #[test]
    fn parse_account_flag() {
        let a: AccountConfig = "901234:se:cret".parse().unwrap();
        assert_eq!(a.id, "901234");
        assert_eq!(a.secret, "se:cret");
        assert!("nocolon".parse::<AccountConfig>().is_err());
    }
}
