//! GSM 03.40 user data header: the concatenation information elements
//! (IEI 0x00, 8-bit reference; IEI 0x08, 16-bit reference). Other elements
//! are skipped by their length, as TS 23.040 requires.

use bytes::{BufMut, BytesMut};

/// IEI of the 8-bit-reference concatenation element.
pub const IEI_CONCAT_8: u8 = 0x00;
/// IEI of the 16-bit-reference concatenation element.
pub const IEI_CONCAT_16: u8 = 0x08;

/// Why a user data header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdhError {
    #[error("content is empty but udhi is set")]
    Empty,
    #[error("header length {udhl} exceeds content length {content}")]
    HeaderTooLong { udhl: usize, content: usize },
    #[error("information element {iei:#04x} at offset {offset} overruns the header")]
    ElementOverrun { iei: u8, offset: usize },
    #[error("concatenation element {iei:#04x} has length {len}, expected {expected}")]
    BadConcatLength { iei: u8, len: u8, expected: u8 },
}

/// The reference that ties the segments of one message together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConcatRef {
    /// IEI 0x00, 6-byte header.
    Eight(u8),
    /// IEI 0x08, 7-byte header.
    Sixteen(u16),
}

impl ConcatRef {
    pub fn value(self) -> u16 {
        match self {
            ConcatRef::Eight(r) => r as u16,
            ConcatRef::Sixteen(r) => r,
        }
    }

    /// Length of the whole UDH (UDHL byte included) this reference needs.
    pub fn udh_len(self) -> usize {
        match self {
            ConcatRef::Eight(_) => 6,
            ConcatRef::Sixteen(_) => 7,
        }
    }
}

/// A concatenation element: segment `seq` of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    pub reference: ConcatRef,
    pub total: u8,
    pub seq: u8,
}

impl Concat {
    /// Whether a receiver should use this element: TS 23.040 says a total
    /// of 0, or a seq of 0 or above total, means "ignore the element".
    pub fn is_usable(&self) -> bool {
        self.total > 0 && self.seq > 0 && self.seq <= self.total
    }

    /// Appends the 6- or 7-byte UDH carrying only this element.
    pub fn put(&self, dst: &mut BytesMut) {
        match self.reference {
            ConcatRef::Eight(r) => {
                dst.put_slice(&[0x05, IEI_CONCAT_8, 0x03, r, self.total, self.seq])
            }
            ConcatRef::Sixteen(r) => {
                let [hi, lo] = r.to_be_bytes();
                dst.put_slice(&[0x06, IEI_CONCAT_16, 0x04, hi, lo, self.total, self.seq])
            }
        }
    }
}

/// A parsed header: the concatenation element (if any) and where the text
/// starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Udh {
    pub concat: Option<Concat>,
    /// Bytes of header, UDHL byte included; the text follows.
    pub header_len: usize,
}

/// Whether a TP_udhi field says a header is present. Some gateways send
/// 0x40 (SMPP's esm_class bit) instead of 1: either bit counts.
pub fn udhi_set(flag: u8) -> bool {
    flag & 0x41 != 0
}

/// Parses the header at the start of `content`.
pub fn parse(content: &[u8]) -> Result<Udh, UdhError> {
    let Some(&udhl) = content.first() else {
        return Err(UdhError::Empty);
    };
    let header_len = 1 + udhl as usize;
    if header_len > content.len() {
        return Err(UdhError::HeaderTooLong {
            udhl: udhl as usize,
            content: content.len(),
        });
    }
    let mut concat = None;
    let mut at = 1;
    while at < header_len {
        let iei = content[at];
        if at + 1 >= header_len {
            return Err(UdhError::ElementOverrun { iei, offset: at });
        }
        let len = content[at + 1];
        let data_start = at + 2;
        let data_end = data_start + len as usize;
        if data_end > header_len {
            return Err(UdhError::ElementOverrun { iei, offset: at });
        }
        let data = &content[data_start..data_end];
        match iei {
            IEI_CONCAT_8 => {
                if len != 3 {
                    return Err(UdhError::BadConcatLength {
                        iei,
                        len,
                        expected: 3,
                    });
                }
                concat = Some(Concat {
                    reference: ConcatRef::Eight(data[0]),
                    total: data[1],
                    seq: data[2],
                });
            }
            IEI_CONCAT_16 => {
                if len != 4 {
                    return Err(UdhError::BadConcatLength {
                        iei,
                        len,
                        expected: 4,
                    });
                }
                concat = Some(Concat {
                    reference: ConcatRef::Sixteen(u16::from_be_bytes([data[0], data[1]])),
                    total: data[2],
                    seq: data[3],
                });
            }
            _ => {}
        }
        at = data_end;
    }
    Ok(Udh { concat, header_len })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_8bit_concat() {
        let udh = parse(&[0x05, 0x00, 0x03, 0x2a, 0x03, 0x01, 0x95, 0x7f]).unwrap();
        assert_eq!(udh.header_len, 6);
        assert_eq!(
            udh.concat,
            Some(Concat {
                reference: ConcatRef::Eight(0x2a),
                total: 3,
                seq: 1
            })
        );
    }

    #[test]
    fn parse_16bit_concat_after_port_element() {
        let c = [
            0x0c, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02, b'x',
        ];
        let udh = parse(&c).unwrap();
        assert_eq!(udh.header_len, 13);
        assert_eq!(
            udh.concat,
            Some(Concat {
                reference: ConcatRef::Sixteen(0x1234),
                total: 2,
                seq: 2
            })
        );
    }

    #[test]
    fn reject_bad_headers() {
        assert_eq!(parse(&[]), Err(UdhError::Empty));
        assert_eq!(
            parse(&[0x05, 0x00, 0x03]),
            Err(UdhError::HeaderTooLong {
                udhl: 5,
                content: 3
            })
        );
        assert_eq!(
            parse(&[0x03, 0x00, 0x05, 0x01]),
            Err(UdhError::ElementOverrun { iei: 0, offset: 1 })
        );
        assert_eq!(
            parse(&[0x04, 0x00, 0x02, 0x01, 0x02]),
            Err(UdhError::BadConcatLength {
                iei: 0,
                len: 2,
                expected: 3
            })
        );
    }

    #[test]
    fn udhi_bit0_or_bit6() {
        assert!(udhi_set(1));
        assert!(udhi_set(0x40));
        assert!(!udhi_set(0));
        assert!(!udhi_set(2));
    }
}
