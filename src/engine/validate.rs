//! Validation of upstream records: JSON → one [`NewMessage`] per recipient,
//! or dead letters with a reason. Never blocks, never drops silently.

use std::time::Duration;

use serde::Deserialize;

use super::routing::NumberPlan;
use super::types::*;

/// The upstream record format (one per Kafka record / queue row).
#[derive(Debug, Clone, Deserialize)]
pub struct UpstreamRecord {
    pub id: Option<String>,
    pub to: Option<Recipients>,
    pub text: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    #[serde(default)]
    pub biz: Option<String>,
    #[serde(default)]
    pub expire_at: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Recipients {
    One(String),
    Many(Vec<String>),
}

/// Limits applied to every record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Validity when the record has no `expire_at`.
    pub default_validity: Duration,
    /// Longest accepted text, in SMS segments.
    pub max_segments: u16,
    pub max_recipients: usize,
    /// Channels this node sends on.
    pub channels: Vec<ChannelKind>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            default_validity: Duration::from_secs(24 * 3600),
            max_segments: 10,
            max_recipients: 1000,
            channels: vec![ChannelKind::Sms],
        }
    }
}

/// The result of validating one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validated {
    pub messages: Vec<NewMessage>,
    pub dead: Vec<DeadLetter>,
}

/// SMS segment count of `text` sent to a `carrier`'s protocol, by the
/// codecs' rules (long-sms.md §2): ASCII goes as ASCII (CMPP: 159 bytes in
/// one SMS, 153 per part; SMGP/SGIP: 140 and 134), anything else as UCS-2
/// (70 and 67 UTF-16 units). `None` takes the SMGP/SGIP limits, the stricter.
/// The carrier adapter checks it agrees with `smsgw_codecs::text::segment_count`.
pub fn sms_segments(text: &str, carrier: Option<Carrier>) -> u32 {
    let (len, single, multi) = if text.is_ascii() {
        match carrier {
            Some(Carrier::Mobile) => (text.len(), 159, 153),
            _ => (text.len(), 140, 134),
        }
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    if len <= single {
        1
    } else {
        len.div_ceil(multi) as u32
    }
}

/// Normalises a mainland China mobile number to its 11-digit national form.
pub fn normalize_msisdn(raw: &str) -> Option<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let d = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .or_else(|| {
            if digits.len() == 13 {
                digits.strip_prefix("86")
            } else {
                None
            }
        })
        .unwrap_or(&digits);
    let ok = d.len() == 11
        && d.bytes().all(|b| b.is_ascii_digit())
        && d.as_bytes()[0] == b'1'
        && (b'3'..=b'9').contains(&d.as_bytes()[1]);
    ok.then(|| d.to_owned())
}

/// Masks a number for logs: `138****8000`.
pub fn mask_msisdn(n: &str) -> String {
    if n.len() >= 7 && n.is_ascii() {
        format!("{}****{}", &n[..3], &n[n.len() - 4..])
    } else {
        "****".to_owned()
    }
}

/// Validates one raw record received at `now` from `origin`.
pub fn validate(
    payload: &[u8],
    origin: &str,
    now: Timestamp,
    rules: &Rules,
    plan: &NumberPlan,
) -> Validated {
    let dead = |id: Option<String>, reason: String| Validated {
        messages: Vec::new(),
        dead: vec![DeadLetter {
            origin: origin.to_owned(),
            upstream_id: id,
            payload: String::from_utf8_lossy(payload).into_owned(),
            reason,
            at: now,
        }],
    };
    let rec: UpstreamRecord = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => return dead(None, format!("bad json: {e}")),
    };
    let id = match rec.id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() && id.len() <= 128 => id.to_owned(),
        Some(_) => return dead(None, "bad id: empty or longer than 128".to_owned()),
        None => return dead(None, "missing id".to_owned()),
    };
    let did = Some(id.clone());
    let channel = match rec
        .channel
        .as_deref()
        .map(str::parse::<ChannelKind>)
        .transpose()
    {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return dead(did, format!("bad channel: {e}")),
    };
    if !rules.channels.contains(&channel) {
        return dead(did, format!("channel {channel} not enabled"));
    }
    let priority = match rec
        .priority
        .as_deref()
        .map(str::parse::<Priority>)
        .transpose()
    {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return dead(did, format!("bad priority: {e}")),
    };
    let text = rec.text.unwrap_or_default();
    if text.trim().is_empty() {
        return dead(did, "empty text".to_owned());
    }
    let worst = sms_segments(&text, None);
    if worst > u32::from(rules.max_segments) {
        return dead(
            did,
            format!("text too long: {worst} segments > {}", rules.max_segments),
        );
    }
    let expire_at = match rec.expire_at.as_deref() {
        None => now.plus(rules.default_validity),
        Some(s) => match Timestamp::parse_rfc3339(s) {
            Some(t) => t,
            None => return dead(did, format!("bad expire_at {s:?}: not RFC 3339")),
        },
    };
    if expire_at <= now {
        return dead(did, format!("expired at {}", expire_at.to_rfc3339()));
    }
    let recipients = match rec.to {
        None => return dead(did, "missing to".to_owned()),
        Some(Recipients::One(n)) => vec![n],
        Some(Recipients::Many(v)) => v,
    };
    if recipients.is_empty() {
        return dead(did, "missing to".to_owned());
    }
    if recipients.len() > rules.max_recipients {
        return dead(
            did,
            format!(
                "too many recipients: {} > {}",
                recipients.len(),
                rules.max_recipients
            ),
        );
    }
    let biz = rec.biz.filter(|b| !b.trim().is_empty());
    let mut out = Validated::default();
    let mut seen = std::collections::HashSet::new();
    for raw in recipients {
        let Some(to) = normalize_msisdn(&raw) else {
            out.dead
                .extend(dead(did.clone(), format!("bad number {raw:?}")).dead);
            continue;
        };
        let Some(carrier) = plan.carrier_of(&to) else {
            out.dead.extend(
                dead(
                    did.clone(),
                    format!("no carrier for number segment of {}", mask_msisdn(&to)),
                )
                .dead,
            );
            continue;
        };
        if !seen.insert(to.clone()) {
            continue; // the same recipient twice in one record is one message
        }
        out.messages.push(NewMessage {
            upstream_id: id.clone(),
            to,
            text: text.clone(),
            priority,
            biz: biz.clone(),
            channel,
            expire_at,
            segments: sms_segments(&text, Some(carrier)) as u16,
            carrier: Some(carrier),
            accepted_at: now,
            claimed_until: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    fn run(json: &str) -> Validated {
        validate(
            json.as_bytes(),
            "test:1",
            NOW,
            &Rules::default(),
            &NumberPlan::default(),
        )
    }

    fn reason(v: &Validated) -> &str {
        assert!(v.messages.is_empty(), "{v:?}");
        &v.dead[0].reason
    }

    #[test]
    fn valid_record_one_message_per_recipient() {
        let v = run(
            r#"{"id":"a1","to":["13800138000","+8618612345678","13800138000"],"text":"hi","priority":"otp","biz":"login"}"#,
        );
        assert!(v.dead.is_empty());
        assert_eq!(v.messages.len(), 2);
        let m = &v.messages[1];
        assert_eq!(m.to, "18612345678");
        assert_eq!(m.carrier, Some(Carrier::Unicom));
        assert_eq!(m.priority, Priority::Otp);
        assert_eq!(m.biz.as_deref(), Some("login"));
        assert_eq!(m.expire_at, NOW.plus(Duration::from_secs(86400)));
    }

    #[test]
    fn defaults_apply() {
        let v = run(r#"{"id":"a1","to":"13800138000","text":"hi"}"#);
        assert_eq!(v.messages[0].priority, Priority::Notify);
        assert_eq!(v.messages[0].channel, ChannelKind::Sms);
        assert_eq!(v.messages[0].segments, 1);
    }

    #[test]
    fn invalid_records_are_dead_lettered_with_reasons() {
        assert!(reason(&run("{not json")).starts_with("bad json"));
        assert_eq!(
            reason(&run(r#"{"to":"13800138000","text":"x"}"#)),
            "missing id"
        );
        assert_eq!(
            reason(&run(r#"{"id":"a","to":"13800138000","text":"  "}"#)),
            "empty text"
        );
        assert!(reason(&run(
            r#"{"id":"a","to":"13800138000","text":"x","priority":"vip"}"#
        ))
        .starts_with("bad priority"));
        assert!(reason(&run(
            r#"{"id":"a","to":"13800138000","text":"x","expire_at":"2020-01-01T00:00:00Z"}"#
        ))
        .starts_with("expired"));
        assert!(reason(&run(
            r#"{"id":"a","to":"13800138000","text":"x","expire_at":"soon"}"#
        ))
        .starts_with("bad expire_at"));
        let long = "短".repeat(67 * 10 + 1);
        assert!(reason(&run(&format!(
            r#"{{"id":"a","to":"13800138000","text":"{long}"}}"#
        )))
        .starts_with("text too long"));
        assert!(reason(&run(r#"{"id":"a","to":"12345","text":"x"}"#)).starts_with("bad number"));
        assert!(reason(&run(
            r#"{"id":"a","to":"13800138000","text":"x","channel":"email"}"#
        ))
        .contains("not enabled"));
        let v = run(r#"{"id":"a","to":"13800138000","text":"x"}"#);
        assert!(v.dead.is_empty());
    }

    #[test]
    fn bad_recipient_does_not_sink_the_others() {
        let v = run(r#"{"id":"a","to":["13800138000","999"],"text":"x"}"#);
        assert_eq!(v.messages.len(), 1);
        assert_eq!(v.dead.len(), 1);
        assert_eq!(v.dead[0].upstream_id.as_deref(), Some("a"));
    }

    #[test]
    fn segment_counts() {
        let m = Some(Carrier::Mobile);
        let u = Some(Carrier::Unicom);
        assert_eq!(sms_segments("a", m), 1);
        assert_eq!(sms_segments(&"a".repeat(159), m), 1);
        assert_eq!(sms_segments(&"a".repeat(160), m), 2);
        assert_eq!(sms_segments(&"a".repeat(306), m), 2);
        assert_eq!(sms_segments(&"a".repeat(140), u), 1);
        assert_eq!(sms_segments(&"a".repeat(141), u), 2);
        assert_eq!(sms_segments(&"a".repeat(268), None), 2);
        assert_eq!(sms_segments(&"中".repeat(70), m), 1);
        assert_eq!(sms_segments(&"中".repeat(71), u), 2);
        assert_eq!(sms_segments(&"中".repeat(134), m), 2);
        assert_eq!(sms_segments(&"中".repeat(135), m), 3);
    }

    #[test]
    fn msisdn_normalisation_and_masking() {
        assert_eq!(
            normalize_msisdn("0086 138-0013-8000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(
            normalize_msisdn("8613800138000").as_deref(),
            Some("13800138000")
        );
        assert_eq!(normalize_msisdn("12800138000"), None);
        assert_eq!(normalize_msisdn("1380013800a"), None);
        assert_eq!(mask_msisdn("13800138000"), "138****8000");
    }
}
