//! Content decoding for the received ring and MO segmentation for
//! injection. (Display only: the simulator never interprets content.)

use bytes::{BufMut, Bytes, BytesMut};
use smsgw_codecs::udh::{self, Concat, ConcatRef};

/// Decodes content by its coding (8 UCS2, 15 GBK, else ASCII/Latin-1),
/// removing the UDH when `udhi` is set.
pub fn decode_content(coding: u8, udhi: bool, content: &[u8]) -> String {
    let body = if udhi {
        match udh::parse(content) {
            Ok(h) => &content[h.header_len..],
            Err(_) => content,
        }
    } else {
        content
    };
    match coding {
        8 => {
            let units: Vec<u16> = body.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        15 => encoding_rs::GB18030.decode_without_bom_handling(body).0.into_owned(),
        4 => body.iter().map(|b| format!("{b:02x}")).collect(),
        _ => match std::str::from_utf8(body) {
            Ok(s) => s.to_owned(),
            Err(_) => body.iter().map(|&b| b as char).collect(),
        },
    }
}

/// Encodes `text` in `coding` (0 ASCII, 8 UCS2, 15 GBK) and splits it
/// into segments of at most 140 bytes, UDH (8-bit reference) included.
/// Returns `(udhi, content)` per segment, in order.
pub fn segment(text: &str, coding: u8, reference: u8) -> Result<Vec<(bool, Bytes)>, String> {
    // Units that may not be split: a UCS2 character (2 or 4 bytes), a GBK
    // character (1 or 2 bytes), an ASCII byte.
    let mut units: Vec<Vec<u8>> = Vec::new();
    match coding {
        8 => {
            for ch in text.chars() {
                let mut buf = [0u16; 2];
                let enc = ch.encode_utf16(&mut buf);
                units.push(enc.iter().flat_map(|u| u.to_be_bytes()).collect());
            }
        }
        15 => {
            for ch in text.chars() {
                let mut s = [0u8; 4];
                let (bytes, _, bad) = encoding_rs::GB18030.encode(ch.encode_utf8(&mut s));
                if bad {
                    return Err(format!("{ch:?} is not representable in GB18030"));
                }
                units.push(bytes.into_owned());
            }
        }
        0 => {
            if !text.is_ascii() {
                return Err("coding 0 needs ASCII text".into());
            }
            units.extend(text.bytes().map(|b| vec![b]));
        }
        other => return Err(format!("unsupported MO coding {other}")),
    }
    let total_len: usize = units.iter().map(Vec::len).sum();
    if total_len <= 140 {
        return Ok(vec![(false, Bytes::from(units.concat()))]);
    }
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::new();
    for u in units {
        if cur.len() + u.len() > 134 {
            chunks.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(&u);
    }
    if !cur.is_empty() {
        chunks.push(cur);
    }
    if chunks.len() > 255 {
        return Err("text needs more than 255 segments".into());
    }
    let total = chunks.len() as u8;
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut b = BytesMut::with_capacity(6 + c.len());
            Concat {
                reference: ConcatRef::Eight(reference),
                total,
                seq: i as u8 + 1,
            }
            .put(&mut b);
            b.put_slice(&c);
            (true, b.freeze())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ucs2_splits_at_67_chars() {
        let text: String = std::iter::repeat('中').take(150).collect();
        let segs = segment(&text, 8, 0x2a).unwrap();
        assert_eq!(segs.len(), 3);
        assert_eq!(&segs[0].1[..6], &[0x05, 0x00, 0x03, 0x2a, 0x03, 0x01]);
        assert_eq!(segs[0].1.len(), 140);
        assert_eq!(segs[2].1.len(), 6 + 32);
        let joined: String = segs.iter().map(|(u, c)| decode_content(8, *u, c)).collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn short_text_single_segment() {
        let segs = segment("TD", 0, 1).unwrap();
        assert_eq!(segs, vec![(false, Bytes::from_static(b"TD"))]);
    }
}
