//! Client side for the simulator tests: the codecs crate's framer and PDUs
//! over real TCP on 127.0.0.1.
#![allow(dead_code)]

use bytes::BytesMut;
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{cmpp, sgip, smgp, FrameError, Framer, Inbound, Packet, Protocol};
use smsgw_simulators::{start, AccountConfig, ProtocolKind, SimConfig, SimHandle};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TS: Timestamp = Timestamp(1204150730);

#[derive(Debug)]
pub enum Recv<P: Protocol> {
    Item(Inbound<P>),
    Closed,
    Timeout,
    Framing(FrameError),
}

impl<P: Protocol> Recv<P> {
    pub fn packet(self) -> Packet<P> {
        match self {
            Recv::Item(Inbound::Packet(p)) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }
}

pub struct Client<P: Protocol> {
    pub stream: TcpStream,
    pub framer: Framer<P>,
    buf: BytesMut,
    pub seq: u32,
    /// Reads that returned data (to observe fragmented writes).
    pub reads: usize,
}

impl<P: Protocol> Client<P> {
    pub async fn connect(addr: SocketAddr, proto: P) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            framer: Framer::new(proto),
            buf: BytesMut::with_capacity(65536),
            seq: 0,
            reads: 0,
        }
    }

    pub fn accepted(stream: TcpStream, proto: P) -> Self {
        Client {
            stream,
            framer: Framer::new(proto),
            buf: BytesMut::with_capacity(65536),
            seq: 0,
            reads: 0,
        }
    }

    pub async fn send(&mut self, seq: P::Seq, pdu: &P::Pdu) {
        let bytes = self.framer.to_bytes(seq, pdu).expect("encode");
        self.stream.write_all(&bytes).await.expect("write");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    pub async fn recv_within(&mut self, d: Duration) -> Recv<P> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match self.framer.decode(&mut self.buf) {
                Ok(Some(item)) => return Recv::Item(item),
                Ok(None) => {}
                Err(e) => return Recv::Framing(e),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Recv::Timeout,
                Ok(Ok(0)) => {
                    return match self.framer.decode(&mut self.buf) {
                        Ok(Some(item)) => Recv::Item(item),
                        _ => Recv::Closed,
                    }
                }
                Ok(Ok(_)) => self.reads += 1,
                Ok(Err(_)) => return Recv::Closed,
            }
        }
    }

    pub async fn recv(&mut self) -> Recv<P> {
        self.recv_within(Duration::from_secs(5)).await
    }

    pub async fn packet(&mut self) -> Packet<P> {
        self.recv().await.packet()
    }

    /// Whether the server closed the connection (after draining frames).
    pub async fn closed(&mut self) -> bool {
        loop {
            match self.recv_within(Duration::from_secs(5)).await {
                Recv::Closed => return true,
                Recv::Item(_) => continue,
                Recv::Timeout => return false,
                Recv::Framing(_) => return true,
            }
        }
    }
}

// ---- config ---------------------------------------------------------------

pub fn config(protocol: ProtocolKind) -> SimConfig {
    let mut c = SimConfig::new(protocol, "127.0.0.1:0".parse().unwrap());
    let id = match protocol {
        ProtocolKind::Cmpp2 | ProtocolKind::Cmpp3 => "901234",
        ProtocolKind::Smgp => "10690001",
        ProtocolKind::Sgip => "spuser",
    };
    c.accounts.push(AccountConfig::new(id, "secret"));
    c.seed = Some(42);
    c.reports.delay = Duration::from_millis(20);
    c
}

pub async fn sim(cfg: SimConfig) -> SimHandle {
    start(cfg).await.expect("start simulator")
}

// ---- CMPP -----------------------------------------------------------------

pub fn cmpp_proto(v: cmpp::Version) -> cmpp::Cmpp {
    cmpp::Cmpp::new(v)
}

pub async fn cmpp_connect(
    addr: SocketAddr,
    v: cmpp::Version,
    id: &str,
    secret: &str,
) -> (Client<cmpp::Cmpp>, cmpp::ConnectResp) {
    let mut c = Client::connect(addr, cmpp_proto(v)).await;
    let connect = cmpp::Connect::new(id, secret.as_bytes(), v, TS).unwrap();
    c.send(1, &cmpp::Pdu::Connect(connect)).await;
    let p = c.packet().await;
    assert_eq!(p.seq, 1);
    match p.pdu {
        cmpp::Pdu::ConnectResp(r) => (c, r),
        other => panic!("expected CONNECT_RESP, got {other:?}"),
    }
}

pub async fn cmpp_login(addr: SocketAddr, v: cmpp::Version) -> Client<cmpp::Cmpp> {
    let (c, r) = cmpp_connect(addr, v, "901234", "secret").await;
    assert_eq!(r.status, cmpp::ConnectStatus::OK);
    c
}

pub fn cmpp_submit(v: cmpp::Version, dest: &str, text: &str, report: bool) -> cmpp::Pdu {
    let mut s = cmpp::Submit {
        registered_delivery: u8::from(report),
        service_id: FixedStr::from_padded(b"TEST"),
        msg_src: FixedStr::from_padded(b"901234"),
        src_id: FixedStr::from_padded(b"106900001"),
        msg_fmt: smsgw_codecs::text::DataCoding::UCS2,
        msg_content: smsgw_codecs::text::encode(text, smsgw_codecs::text::DataCoding::UCS2)
            .unwrap()
            .into(),
        ..Default::default()
    };
    s.dest_terminal_ids
        .push(FixedStr::from_padded(dest.as_bytes()));
    s.normalize(v);
    cmpp::Pdu::Submit(s)
}

// ---- SMGP -----------------------------------------------------------------

pub async fn smgp_connect(
    addr: SocketAddr,
    id: &str,
    secret: &str,
    mode: smgp::LoginMode,
) -> (Client<smgp::Smgp>, smgp::LoginResp) {
    let mut c = Client::connect(addr, smgp::Smgp).await;
    let login = smgp::Login::new(id, secret.as_bytes(), mode, TS).unwrap();
    c.send(1, &smgp::Pdu::Login(login)).await;
    match c.packet().await.pdu {
        smgp::Pdu::LoginResp(r) => (c, r),
        other => panic!("expected Login_Resp, got {other:?}"),
    }
}

pub async fn smgp_login(addr: SocketAddr) -> Client<smgp::Smgp> {
    let (c, r) = smgp_connect(addr, "10690001", "secret", smgp::LoginMode::TRANSMIT).await;
    assert_eq!(r.status, smgp::Status::OK);
    c
}

pub fn smgp_submit(dest: &str, text: &str, report: bool) -> smgp::Pdu {
    let mut s = smgp::Submit {
        msg_type: smgp::MsgType::MT,
        need_report: u8::from(report),
        service_id: FixedStr::from_padded(b"TEST"),
        src_term_id: FixedStr::from_padded(b"1069000"),
        msg_format: smsgw_codecs::text::DataCoding::UCS2,
        msg_content: smsgw_codecs::text::encode(text, smsgw_codecs::text::DataCoding::UCS2)
            .unwrap()
            .into(),
        ..Default::default()
    };
    s.dest_term_ids.push(FixedStr::from_padded(dest.as_bytes()));
    smgp::Pdu::Submit(s)
}

// ---- SGIP -----------------------------------------------------------------

pub fn sgip_seq(counter: u32) -> sgip::SeqNo {
    sgip::SeqNo::new(3_075_512_345, TS, counter)
}

pub async fn sgip_bind(
    addr: SocketAddr,
    name: &str,
    password: &str,
    login_type: sgip::LoginType,
) -> (Client<sgip::Sgip>, sgip::Resp) {
    let mut c = Client::connect(addr, sgip::Sgip).await;
    let bind = sgip::Bind::new(login_type, name, password).unwrap();
    c.send(sgip_seq(0), &sgip::Pdu::Bind(bind)).await;
    match c.packet().await.pdu {
        sgip::Pdu::BindResp(r) => (c, r),
        other => panic!("expected Bind_Resp, got {other:?}"),
    }
}

pub async fn sgip_login(addr: SocketAddr) -> Client<sgip::Sgip> {
    let (c, r) = sgip_bind(addr, "spuser", "secret", sgip::LoginType::SP_TO_SMG).await;
    assert_eq!(r.result, sgip::ResultCode::OK);
    c
}

pub fn sgip_submit(dest: &str, text: &str, report: bool) -> sgip::Pdu {
    let mut s = sgip::Submit {
        sp_number: FixedStr::from_padded(b"10655"),
        corp_id: FixedStr::from_padded(b"12345"),
        service_type: FixedStr::from_padded(b"TEST"),
        report_flag: if report {
            sgip::ReportFlag::ALWAYS
        } else {
            sgip::ReportFlag::NEVER
        },
        message_coding: smsgw_codecs::text::DataCoding::UCS2,
        message_content: smsgw_codecs::text::encode(text, smsgw_codecs::text::DataCoding::UCS2)
            .unwrap()
            .into(),
        ..Default::default()
    };
    s.user_numbers.push(FixedStr::from_padded(dest.as_bytes()));
    sgip::Pdu::Submit(s)
}

// ---- HTTP (admin) ---------------------------------------------------------

/// A minimal HTTP/1.1 request; returns (status, body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
