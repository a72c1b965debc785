//! The retry class every carrier status code maps to.

/// How the engine should treat a status: this is the only thing about a
/// status code that the layers above the codecs need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    /// Success.
    Ok,
    /// The carrier asks us to slow down; resend later, the message is fine.
    Throttled,
    /// A transient failure; resending the same message may succeed.
    Retryable,
    /// The message or account is wrong; resending will not help.
    Permanent,
}

impl StatusClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Ok => "ok",
            StatusClass::Throttled => "throttled",
            StatusClass::Retryable => "retryable",
            StatusClass::Permanent => "permanent",
        }
    }
}

impl std::fmt::Display for StatusClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
