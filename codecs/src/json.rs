//! JSON helpers shared by every protocol's `to_json()` (feature `json`).

use serde_json::{json, Map, Value};

use crate::text::DataCoding;
use crate::udh;
use crate::wire::HexFmt;

pub(crate) fn hex(b: &[u8]) -> String {
    HexFmt(b).to_string()
}

/// A data coding as its number and name.
pub(crate) fn coding(c: DataCoding) -> Value {
    json!({ "value": c.0, "name": c.name() })
}

/// A short message's content: raw hex, the UDH parsed when `udhi` is set,
/// and the text decoded per `coding` (after the UDH).
pub(crate) fn content(udhi: bool, coding: DataCoding, bytes: &[u8]) -> Value {
    let mut m = Map::new();
    m.insert("length".into(), json!(bytes.len()));
    m.insert("hex".into(), json!(hex(bytes)));
    let mut text_from = 0;
    if udhi {
        match udh::parse(bytes) {
            Ok(u) => {
                text_from = u.header_len;
                let concat = u.concat.map_or(Value::Null, |c| {
                    json!({
                        "reference": c.reference.value(),
                        "reference_bits": match c.reference {
                            udh::ConcatRef::Eight(_) => 8,
                            udh::ConcatRef::Sixteen(_) => 16,
                        },
                        "total": c.total,
                        "seq": c.seq,
                    })
                });
                m.insert(
                    "udh".into(),
                    json!({ "length": u.header_len, "hex": hex(&bytes[..u.header_len]), "concat": concat }),
                );
            }
            Err(e) => {
                m.insert("udh_error".into(), json!(e.to_string()));
            }
        }
    }
    m.insert(
        "text".into(),
        json!(crate::text::decode(&bytes[text_from..], coding)),
    );
    Value::Object(m)
}
