//! SGIP's two-connection model over real TCP: the link submits to an
//! in-test SMG (Bind type 1), and the SMG connects back to the link's
//! SP-side server (Bind type 2) to deliver the status report and an MO.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use smsgw::session::{
    Credentials, Link, LinkConfig, LinkEvent, ProtocolKind, Segment, SgipServerConfig,
    SubmitRequest,
};
use smsgw_codecs::sgip::{
    Bind, Deliver, LoginType, Pdu, Report, ReportState, Resp, SeqGen, SeqNo, Sgip,
};
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{Framer, Inbound, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

async fn read_packet(sock: &mut TcpStream, rbuf: &mut BytesMut) -> Option<Packet<Sgip>> {
    let framer = Framer::new(Sgip);
    loop {
        if let Ok(Some(Inbound::Packet(p))) = framer.decode(rbuf) {
            return Some(p);
        }
        match sock.read_buf(rbuf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn send(sock: &mut TcpStream, seq: SeqNo, pdu: Pdu) {
    let bytes = Framer::new(Sgip).to_bytes(seq, &pdu).unwrap();
    sock.write_all(&bytes).await.unwrap();
}

/// The SMG: accepts the SP's bind and submits; reports each submit's
/// sequence back through `submitted`.
async fn smg(listener: TcpListener, submitted: mpsc::Sender<SeqNo>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let submitted = submitted.clone();
        tokio::spawn(async move {
            let mut rbuf = BytesMut::new();
            while let Some(p) = read_packet(&mut sock, &mut rbuf).await {
                match p.pdu {
                    Pdu::Bind(b) => {
                        let ok = b.login_type == LoginType::SP_TO_SMG && b.verify("sp", "sppw");
                        let r = if ok {
                            Resp::ok()
                        } else {
                            Resp::new(smsgw_codecs::sgip::ResultCode::ILLEGAL_LOGIN)
                        };
                        send(&mut sock, p.seq, Pdu::BindResp(r)).await;
                    }
                    Pdu::Submit(_) => {
                        send(&mut sock, p.seq, Pdu::SubmitResp(Resp::ok())).await;
                        let _ = submitted.send(p.seq).await;
                    }
                    Pdu::Unbind => {
                        send(&mut sock, p.seq, Pdu::UnbindResp).await;
                        return;
                    }
                    _ => {}
                }
            }
        });
    }
}

#[tokio::test]
async fn sgip_submit_then_report_and_mo_on_the_sp_server() {
    let smg_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smg_addr = smg_listener.local_addr().unwrap().to_string();
    let (sub_tx, mut sub_rx) = mpsc::channel(8);
    tokio::spawn(smg(smg_listener, sub_tx));

    let mut cfg = LinkConfig::new(
        "unicom",
        ProtocolKind::Sgip,
        &smg_addr,
        Credentials {
            account: "sp".into(),
            secret: "sppw".into(),
            node_id: 3_075_512_345,
        },
    );
    cfg.sgip_server = Some(SgipServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        account: "smg".into(),
        secret: "smgpw".into(),
    });
    let (link, mut rx) = Link::start(cfg).await.unwrap();
    let sp_addr = link.sgip_server_addr().unwrap();

    link.submit(SubmitRequest {
        token: 7,
        segment: Segment::single(
            "10655",
            "8613000000000",
            "svc",
            0,
            Bytes::from_static(b"hi"),
        ),
    })
    .await
    .unwrap();
    let submit_seq = tokio::time::timeout(Duration::from_secs(5), sub_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        submit_seq.node_id, 3_075_512_345,
        "our node id is in the sequence"
    );

    // A wrong Bind on the SP server is refused and closed.
    let mut bad = TcpStream::connect(sp_addr).await.unwrap();
    let mut gen = SeqGen::new(107_551);
    let ts = Timestamp(1204150730);
    send(
        &mut bad,
        gen.next(ts),
        Pdu::Bind(Bind::new(LoginType::SMG_TO_SP, "smg", "nope").unwrap()),
    )
    .await;
    let mut rbuf = BytesMut::new();
    let resp = read_packet(&mut bad, &mut rbuf).await.unwrap();
    assert!(matches!(resp.pdu, Pdu::BindResp(r) if r.result.0 == 1));
    assert!(
        read_packet(&mut bad, &mut rbuf).await.is_none(),
        "closed after a refused bind"
    );

    // The SMG binds properly and delivers a report and an MO.
    let mut smg_conn = TcpStream::connect(sp_addr).await.unwrap();
    let mut rbuf = BytesMut::new();
    send(
        &mut smg_conn,
        gen.next(ts),
        Pdu::Bind(Bind::new(LoginType::SMG_TO_SP, "smg", "smgpw").unwrap()),
    )
    .await;
    let resp = read_packet(&mut smg_conn, &mut rbuf).await.unwrap();
    assert!(matches!(resp.pdu, Pdu::BindResp(r) if r.result.0 == 0));
    let report = Report {
        submit_sequence_number: submit_seq,
        user_number: FixedStr::new(b"8613000000000").unwrap(),
        state: ReportState::DELIVERED,
        ..Default::default()
    };
    send(&mut smg_conn, gen.next(ts), Pdu::Report(report)).await;
    // The Report_Resp waits for the consumer's ack (after storing it).
    let mut accepted = None;
    let reported;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let ack = loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(LinkEvent::Accepted {
                token: 7,
                carrier_id,
                ..
            })) => accepted = Some(carrier_id),
            Ok(Some(LinkEvent::Report(r))) => {
                reported = Some((r.carrier_id, r.delivered));
                break r.ack;
            }
            Ok(Some(_)) => {}
            _ => panic!("no report event"),
        }
    };
    assert!(
        tokio::time::timeout(
            Duration::from_millis(300),
            read_packet(&mut smg_conn, &mut rbuf)
        )
        .await
        .is_err(),
        "no Report_Resp before the ack"
    );
    assert!(ack.ack(), "the ack writes the answer");
    assert!(!ack.clone().ack(), "only once");
    assert!(matches!(
        read_packet(&mut smg_conn, &mut rbuf).await.unwrap().pdu,
        Pdu::ReportResp(_)
    ));
    let mo = Deliver {
        user_number: FixedStr::new(b"8613000000001").unwrap(),
        sp_number: FixedStr::new(b"10655").unwrap(),
        message_content: Bytes::from_static(b"TD"),
        ..Default::default()
    };
    send(&mut smg_conn, gen.next(ts), Pdu::Deliver(mo)).await;
    assert!(matches!(
        read_packet(&mut smg_conn, &mut rbuf).await.unwrap().pdu,
        Pdu::DeliverResp(_)
    ));
    send(&mut smg_conn, gen.next(ts), Pdu::Unbind).await;
    assert!(matches!(
        read_packet(&mut smg_conn, &mut rbuf).await.unwrap().pdu,
        Pdu::UnbindResp
    ));

    let mut mo_text = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while accepted.is_none() || mo_text.is_none() {
        let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            break;
        };
        match ev {
            LinkEvent::Accepted {
                token: 7,
                carrier_id,
                ..
            } => accepted = Some(carrier_id),
            LinkEvent::Mo(m) => mo_text = Some(m.content),
            _ => {}
        }
    }
    let id = accepted.expect("submit accepted");
    assert_eq!(
        reported,
        Some((id, true)),
        "the report names the submit's sequence"
    );
    assert_eq!(mo_text.as_deref(), Some(&b"TD"[..]));
    link.shutdown().await;
}
