//! The protocol/version names users type on the command line and in config.

use std::fmt;
use std::str::FromStr;

/// A carrier protocol and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ProtocolKind {
    /// CMPP 2.0 (China Mobile)
    Cmpp2,
    /// CMPP 3.0 (China Mobile)
    Cmpp3,
    /// SMGP 3.0 (China Telecom)
    Smgp,
    /// SGIP 1.2 (China Unicom)
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

impl fmt::Display for ProtocolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProtocolKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cmpp2" | "cmpp20" | "cmpp2.0" => Ok(ProtocolKind::Cmpp2),
            "cmpp3" | "cmpp30" | "cmpp3.0" | "cmpp" => Ok(ProtocolKind::Cmpp3),
            "smgp" | "smgp3" | "smgp30" => Ok(ProtocolKind::Smgp),
            "sgip" | "sgip12" => Ok(ProtocolKind::Sgip),
            other => Err(format!(
                "unknown protocol {other:?}: expected cmpp2, cmpp3, smgp or sgip"
            )),
        }
    }
}
