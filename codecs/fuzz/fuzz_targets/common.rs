// Shared driver: frame the input, decode every body, re-encode what
// decoded, and render it as JSON, for every chunking the first byte picks.
use bytes::BytesMut;
use smsgw_codecs::{Framer, Inbound, Protocol};

pub fn run<P: Protocol>(framer: Framer<P>, data: &[u8], to_json: impl Fn(&P::Pdu)) {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = (chunk as usize % 64) + 1;
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(Inbound::Packet(pkt))) => {
                    to_json(&pkt.pdu);
                    // Whatever decodes must encode, and decode back to itself.
                    if let Ok(bytes) = framer.to_bytes(pkt.seq, &pkt.pdu) {
                        let mut again = BytesMut::from(&bytes[..]);
                        match framer.decode(&mut again) {
                            Ok(Some(Inbound::Packet(back))) => assert_eq!(back, pkt),
                            other => panic!("re-encoded PDU did not decode: {other:?}"),
                        }
                    }
                }
                Ok(Some(Inbound::Malformed { .. })) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}
