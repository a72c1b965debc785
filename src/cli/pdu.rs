//! `smsgw pdu`: read and craft PDUs by hand, for operators reading a packet
//! capture and for QA crafting traffic.
//!
//! `decode` prints one JSON object per PDU found (JSON lines). Malformed or
//! truncated input is an error naming the protocol, the byte offset in the
//! input and the field.

use std::io::Write;

use anyhow::{anyhow, bail, Context, Result};
use bytes::BytesMut;
use serde_json::{json, Map, Value};
use smsgw_codecs::text::{self, DataCoding};
use smsgw_codecs::udh::ConcatRef;
use smsgw_codecs::wire::{FixedStr, HexFmt};
use smsgw_codecs::{cmpp, sgip, smgp, FrameError, Framer, Inbound, Protocol};

use crate::protocol::ProtocolKind;

#[derive(clap::Args, Debug)]
pub struct PduArgs {
    #[command(subcommand)]
    pub command: PduCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum PduCommand {
    /// Decode hex PDUs (spaces allowed; several PDUs back to back) into JSON lines.
    Decode(DecodeArgs),
    /// Encode PDUs from fields and print them as hex, one PDU per line.
    Encode(EncodeArgs),
}

#[derive(clap::Args, Debug)]
pub struct DecodeArgs {
    /// Protocol and version of the bytes.
    #[arg(long, short)]
    pub protocol: ProtocolKind,
    /// Largest Total_Length accepted.
    #[arg(long, default_value_t = smsgw_codecs::DEFAULT_MAX_FRAME_LEN)]
    pub max_len: usize,
    /// Hex bytes; all arguments are joined, whitespace and ':' are ignored.
    /// With no argument the hex is read from standard input.
    pub hex: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct EncodeArgs {
    /// Protocol and version to encode.
    #[arg(long, short)]
    pub protocol: ProtocolKind,
    #[command(subcommand)]
    pub pdu: EncodePdu,
}

#[derive(clap::Subcommand, Debug)]
pub enum EncodePdu {
    /// A submit (split into several when the text is long).
    Submit(SubmitFields),
}

#[derive(clap::Args, Debug)]
pub struct SubmitFields {
    /// Recipient number; repeat for several recipients in one submit.
    #[arg(long, required = true)]
    pub to: Vec<String>,
    /// Message text.
    #[arg(long)]
    pub text: String,
    /// Text coding: ucs2, gbk, ascii or binary (binary sends the UTF-8 bytes).
    #[arg(long, default_value = "ucs2", value_parser = parse_coding)]
    pub coding: DataCoding,
    /// Sender number shown on the handset (CMPP Src_Id, SMGP SrcTermID, SGIP SPNumber).
    #[arg(long, default_value = "10690001")]
    pub src: String,
    /// SP / enterprise id (CMPP Msg_src, SGIP CorpId).
    #[arg(long, default_value = "901234")]
    pub sp_id: String,
    /// Service id (CMPP Service_Id, SMGP ServiceID, SGIP ServiceType).
    #[arg(long, default_value = "")]
    pub service_id: String,
    /// Ask for a delivery report.
    #[arg(long)]
    pub report: bool,
    /// Sequence number of the first PDU (CMPP/SMGP; SGIP uses it as the counter).
    #[arg(long, default_value_t = 1)]
    pub seq: u32,
    /// SGIP node id of the sender.
    #[arg(long, default_value_t = 3_000_000_001)]
    pub node_id: u32,
    /// Concatenation reference for long text (8-bit unless --ref16).
    #[arg(long = "ref", default_value_t = 1)]
    pub reference: u16,
    /// Use a 16-bit concatenation reference (7-byte UDH).
    #[arg(long)]
    pub ref16: bool,
}

fn parse_coding(s: &str) -> Result<DataCoding, String> {
    match s.to_ascii_lowercase().as_str() {
        "ucs2" | "8" => Ok(DataCoding::UCS2),
        "gbk" | "gb" | "15" => Ok(DataCoding::GBK),
        "ascii" | "0" => Ok(DataCoding::ASCII),
        "binary" | "4" => Ok(DataCoding::BINARY),
        other => Err(format!(
            "unknown coding {other:?}: expected ucs2, gbk, ascii or binary"
        )),
    }
}

pub fn run(args: PduArgs) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.command {
        PduCommand::Decode(a) => {
            let input = if a.hex.is_empty() {
                std::io::read_to_string(std::io::stdin()).context("reading hex from stdin")?
            } else {
                a.hex.join(" ")
            };
            let bytes = parse_hex(&input)?;
            decode(a.protocol, &bytes, a.max_len, &mut out)?;
        }
        PduCommand::Encode(a) => match a.pdu {
            EncodePdu::Submit(f) => {
                for frame in encode_submit(a.protocol, &f)? {
                    writeln!(out, "{}", HexFmt(&frame))?;
                }
            }
        },
    }
    Ok(())
}

/// Parses hex that may contain whitespace, ':' separators and `0x` prefixes.
pub fn parse_hex(input: &str) -> Result<Vec<u8>> {
    let mut digits = Vec::with_capacity(input.len());
    for token in input.split(|c: char| c.is_whitespace() || c == ':') {
        let token = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
            .unwrap_or(token);
        digits.extend_from_slice(token.as_bytes());
    }
    if digits.len() % 2 != 0 {
        bail!("hex input has an odd number of digits ({})", digits.len());
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let s = std::str::from_utf8(pair).unwrap_or("??");
            u8::from_str_radix(s, 16)
                .map_err(|_| anyhow!("hex input: {s:?} at byte {i} is not a hex byte"))
        })
        .collect()
}

/// Decodes every PDU in `bytes`, writing one JSON line each.
pub fn decode(
    kind: ProtocolKind,
    bytes: &[u8],
    max_len: usize,
    out: &mut dyn Write,
) -> Result<usize> {
    match kind {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => {
            let version = if kind == ProtocolKind::Cmpp2 {
                cmpp::Version::V20
            } else {
                cmpp::Version::V30
            };
            let framer = Framer::new(cmpp::Cmpp { version }).with_max_len(max_len);
            decode_all(kind, &framer, bytes, out, |seq, pdu| {
                (json!(seq), pdu.to_json())
            })
        }
        ProtocolKind::Smgp => {
            let framer = Framer::new(smgp::Smgp).with_max_len(max_len);
            decode_all(kind, &framer, bytes, out, |seq, pdu| {
                (json!(seq), pdu.to_json())
            })
        }
        ProtocolKind::Sgip => {
            let framer = Framer::new(sgip::Sgip).with_max_len(max_len);
            decode_all(kind, &framer, bytes, out, |seq, pdu| {
                (seq.to_json(), pdu.to_json())
            })
        }
    }
}

fn decode_all<P: Protocol>(
    kind: ProtocolKind,
    framer: &Framer<P>,
    bytes: &[u8],
    out: &mut dyn Write,
    to_json: impl Fn(&P::Seq, &P::Pdu) -> (Value, Value),
) -> Result<usize> {
    let mut buf = BytesMut::from(bytes);
    let mut offset = 0usize;
    let mut count = 0usize;
    while !buf.is_empty() {
        let before = buf.len();
        match framer.decode(&mut buf) {
            Ok(Some(Inbound::Packet(pkt))) => {
                let len = before - buf.len();
                let (seq, fields) = to_json(&pkt.seq, &pkt.pdu);
                let mut obj = Map::new();
                obj.insert("protocol".into(), kind.as_str().into());
                obj.insert("offset".into(), offset.into());
                obj.insert("length".into(), len.into());
                obj.insert("sequence".into(), seq);
                match fields {
                    Value::Object(m) => obj.extend(m),
                    other => {
                        obj.insert("fields".into(), other);
                    }
                }
                serde_json::to_writer(&mut *out, &Value::Object(obj))?;
                writeln!(out)?;
                offset += len;
                count += 1;
            }
            Ok(Some(Inbound::Malformed {
                command_id, error, ..
            })) => {
                let at = offset + P::HEADER_LEN + error.offset().unwrap_or(0);
                bail!(
                    "{kind}: offset {at}: malformed PDU (command id {command_id:#010x}, frame at offset {offset}): {error}"
                );
            }
            Ok(None) => {
                let have = buf.len();
                if have < 4 {
                    bail!("{kind}: offset {offset}: Total_Length: truncated, {have} of 4 bytes present");
                }
                let declared = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                bail!(
                    "{kind}: offset {offset}: truncated PDU: Total_Length declares {declared} bytes, {have} present"
                );
            }
            Err(FrameError::FrameTooShort { len, min, .. }) => {
                bail!("{kind}: offset {offset}: Total_Length: declared length {len} is below the {min}-byte header");
            }
            Err(FrameError::FrameTooLarge { len, max, .. }) => {
                bail!("{kind}: offset {offset}: Total_Length: declared length {len} exceeds the maximum of {max} bytes (--max-len)");
            }
            Err(e) => bail!("{kind}: offset {offset}: {e}"),
        }
    }
    if count == 0 {
        bail!("{kind}: no PDU in the input");
    }
    Ok(count)
}

/// Builds the submit PDU(s) for `f`, split into segments when long.
pub fn encode_submit(kind: ProtocolKind, f: &SubmitFields) -> Result<Vec<Vec<u8>>> {
    let reference = if f.ref16 {
        ConcatRef::Sixteen(f.reference)
    } else {
        ConcatRef::Eight(
            u8::try_from(f.reference).context("--ref must be 0..=255 without --ref16")?,
        )
    };
    let family = match kind {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => text::Family::Cmpp,
        ProtocolKind::Smgp => text::Family::Smgp,
        ProtocolKind::Sgip => text::Family::Sgip,
    };
    let segments = text::split(&f.text, f.coding, family, reference)?;
    let mut frames = Vec::with_capacity(segments.len());
    match kind {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => {
            let version = if kind == ProtocolKind::Cmpp2 {
                cmpp::Version::V20
            } else {
                cmpp::Version::V30
            };
            let framer = Framer::new(cmpp::Cmpp { version });
            let t = cmpp::Submit {
                registered_delivery: u8::from(f.report),
                service_id: FixedStr::new(f.service_id.as_bytes())?,
                msg_src: FixedStr::new(f.sp_id.as_bytes())?,
                src_id: FixedStr::new(f.src.as_bytes())?,
                msg_fmt: f.coding,
                dest_terminal_ids: recipients(&f.to)?,
                ..Default::default()
            };
            for (i, s) in cmpp::submits_for(&t, &segments).iter().enumerate() {
                let pdu = cmpp::Pdu::Submit(s.clone());
                frames.push(
                    framer
                        .to_bytes(f.seq.wrapping_add(i as u32), &pdu)?
                        .to_vec(),
                );
            }
        }
        ProtocolKind::Smgp => {
            let framer = Framer::new(smgp::Smgp);
            let t = smgp::Submit {
                need_report: u8::from(f.report),
                service_id: FixedStr::new(f.service_id.as_bytes())?,
                msg_format: f.coding,
                src_term_id: FixedStr::new(f.src.as_bytes())?,
                dest_term_ids: recipients(&f.to)?,
                ..Default::default()
            };
            for (i, s) in smgp::submits_for(&t, &segments).into_iter().enumerate() {
                let pdu = smgp::Pdu::Submit(s);
                frames.push(
                    framer
                        .to_bytes(f.seq.wrapping_add(i as u32), &pdu)?
                        .to_vec(),
                );
            }
        }
        ProtocolKind::Sgip => {
            let framer = Framer::new(sgip::Sgip);
            let t = sgip::Submit {
                sp_number: FixedStr::new(f.src.as_bytes())?,
                corp_id: FixedStr::new(f.sp_id.as_bytes().get(..5).unwrap_or(f.sp_id.as_bytes()))?,
                service_type: FixedStr::new(f.service_id.as_bytes())?,
                report_flag: if f.report {
                    sgip::ReportFlag::ALWAYS
                } else {
                    sgip::ReportFlag::NEVER
                },
                message_coding: f.coding,
                user_numbers: recipients(&f.to)?,
                ..Default::default()
            };
            let mut seqs = sgip::SeqGen::new(f.node_id);
            seqs.counter = f.seq;
            let ts = crate::clock::carrier_timestamp();
            for s in sgip::submits_for(&t, &segments) {
                let pdu = sgip::Pdu::Submit(s);
                frames.push(framer.to_bytes(seqs.next(ts), &pdu)?.to_vec());
            }
        }
    }
    Ok(frames)
}

fn recipients<const N: usize, A: smallvec::Array<Item = FixedStr<N>>>(
    to: &[String],
) -> Result<smallvec::SmallVec<A>> {
    to.iter()
        .map(|n| {
            FixedStr::new(n.as_bytes()).with_context(|| format!("recipient {n:?} is too long"))
        })
        .collect()
}
