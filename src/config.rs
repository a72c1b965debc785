//! Typed, validated configuration (`smsgw.toml`).
//!
//! ```toml
//! [store]
//! url = "sqlite://smsgw.db"
//!
//! [engine]
//! default_validity = "24h"
//! park_ttl = "10m"
//!
//! [retry]
//! base = "500ms"
//! max_attempts = 5
//!
//! [kafka]
//! brokers = "127.0.0.1:9092"
//! input_topic = "sms-in"
//! status_topic = "sms-status"
//!
//! [routing.segments]
//! "1703" = "mobile"
//!
//! [[links]]
//! name = "cmcc-1"
//! protocol = "cmpp3"
//! addr = "127.0.0.1:7890"
//! account = "901234"
//! secret_env = "SMSGW_CMCC1_SECRET"
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::engine::retry::{RetryPolicy, RetryPolicyError};
use crate::engine::types::{protocol_serde, Carrier, LinkSpec, ProtocolKind};
use crate::engine::validate::Rules;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid config: {0}")]
    Invalid(String),
    #[error("invalid retry policy: {0}")]
    Retry(#[from] RetryPolicyError),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub store: StoreConfig,
    pub engine: EngineConfig,
    pub retry: RetryConfig,
    pub kafka: Option<KafkaConfig>,
    pub routing: RoutingConfig,
    pub links: Vec<LinkConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://path` (created if missing) or `postgres://...`.
    pub url: String,
    /// Largest number of rows written in one transaction.
    pub batch: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://smsgw.db".into(),
            batch: 512,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Validity of a message without `expire_at`.
    #[serde(with = "humantime_serde")]
    pub default_validity: Duration,
    pub max_segments: u16,
    pub max_recipients: usize,
    /// How long a report that matched nothing waits for its submit response.
    #[serde(with = "humantime_serde")]
    pub park_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// A claimed message not finished within this is claimable again.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    pub claim_batch: usize,
    /// Capacity of each priority lane of a link.
    pub lane_capacity: usize,
    pub notify_weight: u32,
    pub marketing_weight: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            default_validity: Duration::from_secs(24 * 3600),
            max_segments: 10,
            max_recipients: 1000,
            park_ttl: Duration::from_secs(600),
            sweep_interval: Duration::from_secs(30),
            lease: Duration::from_secs(120),
            claim_batch: 512,
            lane_capacity: 1024,
            notify_weight: 4,
            marketing_weight: 1,
        }
    }
}

impl EngineConfig {
    pub fn rules(&self) -> Rules {
        Rules {
            default_validity: self.default_validity,
            max_segments: self.max_segments,
            max_recipients: self.max_recipients,
            ..Rules::default()
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    #[serde(with = "humantime_serde")]
    pub base: Duration,
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    pub max_attempts: u32,
    pub jitter: f64,
    pub resend_unknown: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
            max_attempts: 5,
            jitter: 0.2,
            resend_unknown: true,
        }
    }
}

impl RetryConfig {
    pub fn policy(&self) -> Result<RetryPolicy, RetryPolicyError> {
        RetryPolicy::try_new(
            self.base,
            self.max,
            self.max_attempts,
            self.jitter,
            self.resend_unknown,
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    #[serde(default = "default_group")]
    pub group_id: String,
    pub input_topic: String,
    pub status_topic: String,
    #[serde(default = "default_dlq")]
    pub dead_letter_topic: String,
    #[serde(default = "secs6", with = "humantime_serde")]
    pub session_timeout: Duration,
    #[serde(default = "secs7", with = "humantime_serde")]
    pub max_poll_interval: Duration,
    #[serde(default = "secs1", with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Records prefetched from the input topic, in KiB (librdkafka's
    /// `queued.max.messages.kbytes`). More makes intake of a burst faster
    /// and takes more memory.
    #[serde(default = "prefetch_kib")]
    pub prefetch_kib: u32,
    /// How long the broker may hold a fetch while no records wait
    /// (librdkafka's `fetch.wait.max.ms`). Apache Kafka answers as soon as
    /// a record arrives, so there it is the idle poll interval; a broker
    /// that holds fetches for the whole time (tansu does) adds up to this
    /// much to every record's way in, and hands a trickle of otp records
    /// over in bursts.
    #[serde(default = "fetch_wait", with = "humantime_serde")]
    pub fetch_wait: Duration,
}

fn fetch_wait() -> Duration {
    Duration::from_millis(20)
}

fn prefetch_kib() -> u32 {
    2048
}

fn default_group() -> String {
    "smsgw".into()
}
fn default_dlq() -> String {
    "sms-dead-letters".into()
}
fn secs6() -> Duration {
    Duration::from_secs(6)
}
fn secs7() -> Duration {
    Duration::from_secs(7)
}
fn secs1() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Number-segment overrides on top of the built-in China table.
    pub segments: BTreeMap<String, Carrier>,
}

/// A link in the config file; the secret comes from the environment or a file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkConfig {
    pub name: String,
    #[serde(with = "protocol_serde")]
    pub protocol: ProtocolKind,
    pub addr: String,
    pub account: String,
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default)]
    pub secret_file: Option<String>,
    #[serde(default = "one")]
    pub connections: u32,
    #[serde(default = "sixteen")]
    pub window: u32,
    #[serde(default)]
    pub tps: Option<u32>,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}
fn sixteen() -> u32 {
    16
}

impl std::fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkConfig")
            .field("name", &self.name)
            .field("protocol", &self.protocol)
            .field("addr", &self.addr)
            .field("secret_env", &self.secret_env)
            .field("secret_file", &self.secret_file)
            .finish_non_exhaustive()
    }
}

impl LinkConfig {
    /// Resolves the secret and yields the link.
    pub fn resolve(&self) -> Result<LinkSpec, ConfigError> {
        let secret = match (&self.secret_env, &self.secret_file) {
            (Some(var), None) => std::env::var(var).map_err(|_| {
                ConfigError::Invalid(format!("link {}: env {var} not set", self.name))
            })?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    ConfigError::Invalid(format!("link {}: secret file {path}: {e}", self.name))
                })?
                .trim()
                .to_owned(),
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "link {}: set exactly one of secret_env, secret_file",
                    self.name
                )))
            }
        };
        Ok(LinkSpec {
            name: self.name.clone(),
            protocol: self.protocol,
            addr: self.addr.clone(),
            account: self.account.clone(),
            secret,
            connections: self.connections,
            window: self.window,
            tps: self.tps,
            weight: self.weight,
        })
    }
}

/// Checks a `host:port` address.
pub fn validate_addr(addr: &str) -> Result<(), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("address {addr:?} lacks :port"))?;
    if host.is_empty() {
        return Err(format!("address {addr:?} lacks a host"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("address {addr:?} has a bad port"))?;
    Ok(())
}

/// Checks a link name: 1–64 of `[A-Za-z0-9._-]`.
pub fn validate_link_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad link name {name:?}: use 1-64 of [A-Za-z0-9._-]"
        ))
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?;
        let cfg: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: p,
            source: Box::new(source),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: String| Err(ConfigError::Invalid(s));
        if !(self.store.url.starts_with("sqlite:") || self.store.url.starts_with("postgres")) {
            return bad(format!(
                "store.url must be sqlite:// or postgres://, got {:?}",
                self.store.url
            ));
        }
        if self.store.batch == 0 || self.engine.claim_batch == 0 || self.engine.lane_capacity == 0 {
            return bad(
                "store.batch, engine.claim_batch and engine.lane_capacity must be > 0".into(),
            );
        }
        if self.engine.max_segments == 0 {
            return bad("engine.max_segments must be > 0".into());
        }
        if self.engine.default_validity.is_zero()
            || self.engine.park_ttl.is_zero()
            || self.engine.lease.is_zero()
        {
            return bad("engine durations must be > 0".into());
        }
        if self.engine.notify_weight == 0 || self.engine.marketing_weight == 0 {
            return bad("lane weights must be >= 1".into());
        }
        self.retry.policy()?;
        for prefix in self.routing.segments.keys() {
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return bad(format!(
                    "routing.segments: prefix {prefix:?} must be digits"
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for l in &self.links {
            validate_link_name(&l.name).map_err(ConfigError::Invalid)?;
            validate_addr(&l.addr).map_err(ConfigError::Invalid)?;
            if !names.insert(&l.name) {
                return bad(format!("link {} defined twice", l.name));
            }
            if l.connections == 0 || l.window == 0 || l.weight == 0 || l.tps == Some(0) {
                return bad(format!(
                    "link {}: connections, window, weight and tps must be > 0",
                    l.name
                ));
            }
        }
        if let Some(k) = &self.kafka {
            if k.brokers.trim().is_empty() || k.input_topic.is_empty() || k.status_topic.is_empty()
            {
                return bad("kafka: brokers, input_topic and status_topic are required".into());
            }
            if k.prefetch_kib == 0 {
                return bad("kafka.prefetch_kib must be > 0".into());
            }
            if k.fetch_wait.is_zero() || k.fetch_wait > Duration::from_secs(300) {
                return bad("kafka.fetch_wait must be within 1ms..300s".into());
            }
            if k.heartbeat_interval >= k.session_timeout {
                return bad("kafka.heartbeat_interval must be below session_timeout".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_example_and_validates() {
        let cfg: Config = toml::from_str(
            r#"
            [store]
            url = "sqlite://x.db"
            [engine]
            default_validity = "2h"
            park_ttl = "5m"
            [retry]
            base = "100ms"
            max_attempts = 3
            [kafka]
            brokers = "127.0.0.1:9092"
            input_topic = "in"
            status_topic = "st"
            [routing.segments]
            "1703" = "unicom"
            [[links]]
            name = "m1"
            protocol = "cmpp3"
            addr = "127.0.0.1:7890"
            account = "9001"
            secret_env = "X"
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.engine.default_validity, Duration::from_secs(7200));
        let k = cfg.kafka.unwrap();
        assert_eq!(k.session_timeout, Duration::from_secs(6));
        assert_eq!(k.fetch_wait, Duration::from_millis(20));
        assert_eq!(cfg.routing.segments["1703"], Carrier::Unicom);
    }

    #[test]
    fn kafka_fetch_wait_is_bounded() {
        let parse = |wait: &str| {
            toml::from_str::<Config>(&format!(
                "[kafka]\nbrokers = 'b:1'\ninput_topic = 'i'\nstatus_topic = 's'\nfetch_wait = '{wait}'"
            ))
            .unwrap()
        };
        let c = parse("5ms");
        c.validate().unwrap();
        assert_eq!(c.kafka.unwrap().fetch_wait, Duration::from_millis(5));
        assert!(parse("0s").validate().is_err());
        assert!(parse("10m").validate().is_err());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(toml::from_str::<Config>("[engine]\nfoo = 1").is_err());
        assert!(toml::from_str::<Config>(
            "[[links]]\nname='a'\nprotocol='cmpp3'\naddr='h:1'\naccount='x'\nsecret='plain'"
        )
        .is_err());
        let mut c = Config::default();
        c.retry.max_attempts = 0;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.store.url = "mysql://x".into();
        assert!(c.validate().is_err());
        assert!(validate_addr("host").is_err());
        assert!(validate_addr("h:99999").is_err());
        assert!(validate_link_name("bad name").is_err());
    }
}
