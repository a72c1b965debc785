//! Content helpers over the codecs crate's `text` module: decoding for the
//! received ring, segmentation for MO injection.

use bytes::Bytes;
use smsgw_codecs::text::{self, DataCoding, Family};
use smsgw_codecs::udh::{self, ConcatRef};

/// Decodes content by its coding, removing the UDH when `udhi` is set.
pub fn decode_content(coding: u8, udhi: bool, content: &[u8]) -> String {
    let body = if udhi {
        match udh::parse(content) {
            Ok(h) => &content[h.header_len..],
            Err(_) => content,
        }
    } else {
        content
    };
    text::decode(body, DataCoding(coding))
}

/// Encodes `text` in `coding` and splits it into SMS segments (8-bit
/// reference). Returns `(udhi, content)` per segment, in order.
pub fn segment(
    text_in: &str,
    coding: u8,
    family: Family,
    reference: u8,
) -> Result<Vec<(bool, Bytes)>, String> {
    text::split(
        text_in,
        DataCoding(coding),
        family,
        ConcatRef::Eight(reference),
    )
    .map(|segs| {
        segs.into_iter()
            .map(|s| (s.concat.is_some(), s.content))
            .collect()
    })
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ucs2_splits_and_decodes() {
        let text: String = "中".repeat(150);
        let segs = segment(&text, 8, Family::Cmpp, 0x2a).unwrap();
        assert_eq!(segs.len(), 3);
        assert_eq!(&segs[0].1[..6], &[0x05, 0x00, 0x03, 0x2a, 0x03, 0x01]);
        let joined: String = segs.iter().map(|(u, c)| decode_content(8, *u, c)).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn short_text_single_segment() {
        let segs = segment("TD", 0, Family::Smgp, 1).unwrap();
        assert_eq!(segs, vec![(false, Bytes::from_static(b"TD"))]);
    }
}
