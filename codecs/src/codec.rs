//! tokio-util `Decoder` / `Encoder` adapters over [`Framer`].

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::error::FrameError;
use crate::frame::{Framer, Inbound, Packet, Protocol};

impl<P: Protocol> Decoder for Framer<P> {
    type Item = Inbound<P>;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Framer::decode(self, src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Framer::decode_eof(self, src)
    }
}

impl<P: Protocol> Encoder<Packet<P>> for Framer<P> {
    type Error = std::io::Error;

    fn encode(&mut self, item: Packet<P>, dst: &mut BytesMut) -> Result<(), Self::Error> {
        Framer::encode(self, item.seq, &item.pdu, dst).map_err(Into::into)
    }
}

impl<P: Protocol> Encoder<&Packet<P>> for Framer<P> {
    type Error = std::io::Error;

    fn encode(&mut self, item: &Packet<P>, dst: &mut BytesMut) -> Result<(), Self::Error> {
        Framer::encode(self, item.seq, &item.pdu, dst).map_err(Into::into)
    }
}
