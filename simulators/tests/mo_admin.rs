//! MO injection (single and long, out of order) and the HTTP admin
//! endpoint.

mod common;
use common::*;
use smsgw_codecs::{cmpp, sgip, smgp, udh};
use smsgw_simulators::{MoRequest, ProtocolKind, StatsSnapshot};
use std::time::Duration;

const V: cmpp::Version = cmpp::Version::V30;

#[tokio::test]
async fn cmpp_mo_td() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let mut c = cmpp_login(s.addr(), V).await;
    let req = MoRequest {
        coding: 0,
        ..MoRequest::new("13800138000", "106900001", "TD").account("901234")
    };
    assert_eq!(s.inject_mo(req).unwrap(), 1);
    let p = c.packet().await;
    match p.pdu {
        cmpp::Pdu::Deliver(d) => {
            assert!(!d.is_report());
            assert_eq!(d.text(), "TD");
            assert_eq!(d.src_terminal_id.as_bytes(), b"13800138000");
            assert_eq!(d.dest_id.as_bytes(), b"106900001");
            c.send(
                p.seq,
                &cmpp::Pdu::DeliverResp(cmpp::DeliverResp {
                    msg_id: d.msg_id,
                    result: cmpp::SubmitResult::OK,
                }),
            )
            .await;
        }
        other => panic!("{other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.stats().totals.mo_acknowledged, 1);
    assert!(matches!(
        s.inject_mo(MoRequest::new("1", "2", "x").account("nobody")),
        Err(smsgw_simulators::SimError::UnknownAccount(_))
    ));
}

#[tokio::test]
async fn long_mo_out_of_order_over_admin() {
    let mut cfg = config(ProtocolKind::Cmpp3);
    cfg.admin = Some("127.0.0.1:0".parse().unwrap());
    let s = sim(cfg).await;
    let admin = s.admin_addr().unwrap();
    let mut c = cmpp_login(s.addr(), V).await;
    let text: String = "长短信".repeat(50); // 150 chars → 3 segments
    let body = serde_json::json!({"account": "901234", "src": "13800138000", "dest": "10690001", "text": text, "out_of_order": true});
    let (status, resp) = http(admin, "POST", "/mo", Some(&body.to_string())).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&resp).unwrap()["segments"],
        3
    );
    let mut parts = Vec::new();
    for _ in 0..3 {
        let p = c.packet().await;
        let cmpp::Pdu::Deliver(d) = p.pdu else {
            panic!()
        };
        assert_eq!(d.tp_udhi, 1);
        let h = udh::parse(&d.msg_content).unwrap();
        let concat = h.concat.unwrap();
        parts.push((concat.seq, d.text()));
        c.send(
            p.seq,
            &cmpp::Pdu::DeliverResp(cmpp::DeliverResp {
                msg_id: d.msg_id,
                result: cmpp::SubmitResult::OK,
            }),
        )
        .await;
    }
    assert_eq!(
        parts.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![3, 2, 1],
        "sent last-first"
    );
    parts.sort();
    assert_eq!(parts.into_iter().map(|p| p.1).collect::<String>(), text);
}

#[tokio::test]
async fn smgp_long_mo_has_udhi_tlv() {
    let s = sim(config(ProtocolKind::Smgp)).await;
    let mut c = smgp_login(s.addr()).await;
    let text: String = "字".repeat(100);
    assert_eq!(
        s.inject_mo(MoRequest::new("18900000001", "1069000", &text).account("10690001"))
            .unwrap(),
        2
    );
    let mut joined = String::new();
    for _ in 0..2 {
        let p = c.packet().await;
        let smgp::Pdu::Deliver(d) = p.pdu else {
            panic!()
        };
        assert!(d.udhi());
        joined.push_str(&smsgw_simulators::text::decode_content(
            8,
            true,
            d.payload().unwrap(),
        ));
    }
    assert_eq!(joined, text);
}

#[tokio::test]
async fn sgip_mo_goes_over_sp_link() {
    let sp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(ProtocolKind::Sgip);
    cfg.sgip.sp_addr = Some(sp.local_addr().unwrap());
    cfg.sgip.sp_login = Some(smsgw_simulators::SpLogin {
        name: "smg".into(),
        password: "pw".into(),
    });
    let s = sim(cfg).await;
    s.inject_mo(MoRequest::new("8613000000001", "10655", "TD"))
        .unwrap();
    let (stream, _) = sp.accept().await.unwrap();
    let mut c = Client::accepted(stream, sgip::Sgip);
    let p = c.packet().await;
    assert!(matches!(p.pdu, sgip::Pdu::Bind(ref b) if b.login_type == sgip::LoginType::SMG_TO_SP));
    c.send(p.seq, &sgip::Pdu::BindResp(sgip::Resp::ok())).await;
    let p = c.packet().await;
    match p.pdu {
        sgip::Pdu::Deliver(d) => assert_eq!(d.text(), "TD"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sgip_sp_link_rebinds_and_resends_unacknowledged() {
    let sp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(ProtocolKind::Sgip);
    cfg.sgip.sp_addr = Some(sp.local_addr().unwrap());
    cfg.sgip.sp_login = Some(smsgw_simulators::SpLogin {
        name: "smg".into(),
        password: "pw".into(),
    });
    let s = sim(cfg).await;
    s.inject_mo(MoRequest::new("8613000000001", "10655", "again"))
        .unwrap();
    // First SP connection: bind, read the Deliver, drop without answering.
    let (stream, _) = sp.accept().await.unwrap();
    let mut c = Client::accepted(stream, sgip::Sgip);
    let p = c.packet().await;
    c.send(p.seq, &sgip::Pdu::BindResp(sgip::Resp::ok())).await;
    assert!(matches!(c.packet().await.pdu, sgip::Pdu::Deliver(_)));
    drop(c);
    // The SMG binds again and resends.
    let (stream, _) = sp.accept().await.unwrap();
    let mut c = Client::accepted(stream, sgip::Sgip);
    let p = c.packet().await;
    c.send(p.seq, &sgip::Pdu::BindResp(sgip::Resp::ok())).await;
    let p = c.packet().await;
    assert!(matches!(p.pdu, sgip::Pdu::Deliver(ref d) if d.text() == "again"));
    c.send(p.seq, &sgip::Pdu::DeliverResp(sgip::Resp::ok()))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let st = s.stats().totals;
    assert_eq!(st.sp_link_connects, 2);
    assert_eq!(st.mo_acknowledged, 1);
}

#[tokio::test]
async fn admin_stats_messages_faults_corrupt() {
    let mut cfg = config(ProtocolKind::Cmpp3);
    cfg.admin = Some("127.0.0.1:0".parse().unwrap());
    let s = sim(cfg).await;
    let admin = s.admin_addr().unwrap();
    assert_eq!(
        http(admin, "GET", "/health", None).await,
        (200, "ok".to_string())
    );
    let mut c = cmpp_login(s.addr(), V).await;
    c.send(3, &cmpp_submit(V, "13800138000", "你好 QA", false))
        .await;
    let id = match c.packet().await.pdu {
        cmpp::Pdu::SubmitResp(r) => r.msg_id,
        other => panic!("{other:?}"),
    };

    let (st, body) = http(admin, "GET", "/stats", None).await;
    assert_eq!(st, 200);
    let stats: StatsSnapshot = serde_json::from_str(&body).unwrap();
    assert_eq!(stats.totals.submits_received, 1);
    assert_eq!(stats.accounts["901234"].submits_received, 1);
    assert_eq!(stats.totals.connections_open, 1);

    let (_, body) = http(admin, "GET", "/messages", None).await;
    let msgs: Vec<smsgw_simulators::ReceivedMessage> = serde_json::from_str(&body).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].msg_id, id.0.to_string());
    assert_eq!(msgs[0].text, "你好 QA");
    assert_eq!(msgs[0].dest, vec!["13800138000".to_string()]);
    assert_eq!(http(admin, "DELETE", "/messages", None).await.0, 204);
    assert!(s.received().is_empty());

    let (st, _) = http(
        admin,
        "PUT",
        "/faults",
        Some(r#"{"error": {"code": 77, "fraction": 1.0}}"#),
    )
    .await;
    assert_eq!(st, 200);
    c.send(4, &cmpp_submit(V, "13800138000", "x", false)).await;
    assert!(matches!(c.packet().await.pdu, cmpp::Pdu::SubmitResp(r) if r.result.0 == 77));
    let (_, body) = http(admin, "GET", "/faults", None).await;
    assert!(body.contains("77"));
    assert_eq!(
        http(admin, "PUT", "/faults", Some(r#"{"bogus": 1}"#))
            .await
            .0,
        422
    );
    assert_eq!(
        http(admin, "PUT", "/faults", Some(r#"{"drop_response": 3.0}"#))
            .await
            .0,
        400
    );

    let (_, body) = http(admin, "POST", "/corrupt", Some(r#"{"kind": "length"}"#)).await;
    assert!(body.contains("\"connections\":1"), "{body}");
    assert!(matches!(c.recv().await, Recv::Framing(_)));
}
