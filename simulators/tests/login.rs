//! Login accepted and refused, per protocol, over real TCP.

mod common;
use common::*;
use smsgw_codecs::{cmpp, sgip, smgp};
use smsgw_simulators::ProtocolKind;

#[tokio::test]
async fn cmpp3_login_ok_and_authenticator_ismg_checks() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let (_c, r) = cmpp_connect(s.addr(), cmpp::Version::V30, "901234", "secret").await;
    assert_eq!(r.status, cmpp::ConnectStatus::OK);
    assert_eq!(r.version, 0x30);
    let connect = cmpp::Connect::new("901234", b"secret", cmpp::Version::V30, TS).unwrap();
    assert!(r.verify(cmpp::Version::V30, &connect.authenticator_source, b"secret"));
    assert_eq!(s.stats().totals.logins_ok, 1);
}

#[tokio::test]
async fn cmpp3_login_refused_then_closed() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let (mut c, r) = cmpp_connect(s.addr(), cmpp::Version::V30, "901234", "wrong").await;
    assert_eq!(r.status, cmpp::ConnectStatus::AUTH_FAILED);
    assert_eq!(r.authenticator_ismg, [0; 16]);
    assert!(c.closed().await);
    let (mut c, r) = cmpp_connect(s.addr(), cmpp::Version::V30, "999999", "secret").await;
    assert_eq!(r.status, cmpp::ConnectStatus::ILLEGAL_SOURCE);
    assert!(c.closed().await);
    // A 2.0 client on a 3.0 ISMG.
    let (mut c, r) = cmpp_connect(s.addr(), cmpp::Version::V20, "901234", "secret").await;
    assert_eq!(r.status, cmpp::ConnectStatus::VERSION_TOO_HIGH);
    assert!(c.closed().await);
    assert_eq!(s.stats().totals.logins_refused, 3);
}

#[tokio::test]
async fn cmpp2_login_ok_and_wrong_version_refused() {
    let s = sim(config(ProtocolKind::Cmpp2)).await;
    let (_c, r) = cmpp_connect(s.addr(), cmpp::Version::V20, "901234", "secret").await;
    assert_eq!(r.status, cmpp::ConnectStatus::OK);
    assert_eq!(r.version, 0x20);
    let (mut c, r) = cmpp_connect(s.addr(), cmpp::Version::V30, "901234", "secret").await;
    assert_eq!(r.status, cmpp::ConnectStatus::VERSION_TOO_HIGH);
    assert!(c.closed().await);
    let (mut c, r) = cmpp_connect(s.addr(), cmpp::Version::V20, "901234", "nope").await;
    assert_eq!(r.status, cmpp::ConnectStatus::AUTH_FAILED);
    assert!(c.closed().await);
}

#[tokio::test]
async fn cmpp_submit_before_login_is_refused_and_closed() {
    let s = sim(config(ProtocolKind::Cmpp3)).await;
    let mut c = Client::connect(s.addr(), cmpp_proto(cmpp::Version::V30)).await;
    c.send(
        5,
        &cmpp_submit(cmpp::Version::V30, "13800138000", "hi", false),
    )
    .await;
    match c.packet().await.pdu {
        cmpp::Pdu::SubmitResp(r) => assert_ne!(r.result, cmpp::SubmitResult::OK),
        other => panic!("{other:?}"),
    }
    assert!(c.closed().await);
    assert_eq!(s.stats().totals.submits_received, 0);
}

#[tokio::test]
async fn cmpp_max_connections_per_account() {
    let mut cfg = config(ProtocolKind::Cmpp3);
    cfg.accounts[0].max_connections = 2;
    let s = sim(cfg).await;
    let _a = cmpp_login(s.addr(), cmpp::Version::V30).await;
    let _b = cmpp_login(s.addr(), cmpp::Version::V30).await;
    let (mut c, r) = cmpp_connect(s.addr(), cmpp::Version::V30, "901234", "secret").await;
    assert_eq!(r.status, cmpp::ConnectStatus::TOO_MANY_ACCOUNT_CONNECTIONS);
    assert!(c.closed().await);
    drop(_a);
    // The slot frees once the simulator notices the close.
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let (_c, r) = cmpp_connect(s.addr(), cmpp::Version::V30, "901234", "secret").await;
        if r.status == cmpp::ConnectStatus::OK {
            ok = true;
            break;
        }
    }
    assert!(ok);
}

#[tokio::test]
async fn smgp_login_ok_and_refused() {
    let s = sim(config(ProtocolKind::Smgp)).await;
    let (_c, r) = smgp_connect(s.addr(), "10690001", "secret", smgp::LoginMode::TRANSMIT).await;
    assert_eq!(r.status, smgp::Status::OK);
    let login = smgp::Login::new("10690001", b"secret", smgp::LoginMode::TRANSMIT, TS).unwrap();
    assert!(r.verify(&login.authenticator_client, b"secret"));

    let (mut c, r) = smgp_connect(s.addr(), "10690001", "bad", smgp::LoginMode::TRANSMIT).await;
    assert_eq!(r.status, smgp::Status::AUTHENTICATION_ERROR);
    assert!(c.closed().await);
    let (mut c, r) = smgp_connect(s.addr(), "nobody", "secret", smgp::LoginMode::TRANSMIT).await;
    assert_eq!(r.status, smgp::Status::AUTHENTICATION_ERROR);
    assert!(c.closed().await);

    // Wrong ClientVersion.
    let mut c = Client::connect(s.addr(), smgp::Smgp).await;
    let mut login = smgp::Login::new("10690001", b"secret", smgp::LoginMode::TRANSMIT, TS).unwrap();
    login.client_version = 0x13;
    c.send(1, &smgp::Pdu::Login(login)).await;
    match c.packet().await.pdu {
        smgp::Pdu::LoginResp(r) => assert_eq!(r.status, smgp::Status::VERSION_TOO_HIGH),
        other => panic!("{other:?}"),
    }
    assert!(c.closed().await);
}

#[tokio::test]
async fn sgip_bind_ok_and_refused() {
    let s = sim(config(ProtocolKind::Sgip)).await;
    let (_c, r) = sgip_bind(s.addr(), "spuser", "secret", sgip::LoginType::SP_TO_SMG).await;
    assert_eq!(r.result, sgip::ResultCode::OK);
    let (mut c, r) = sgip_bind(s.addr(), "spuser", "bad", sgip::LoginType::SP_TO_SMG).await;
    assert_eq!(r.result, sgip::ResultCode::ILLEGAL_LOGIN);
    assert!(c.closed().await);
    let (mut c, r) = sgip_bind(s.addr(), "nobody", "secret", sgip::LoginType::SP_TO_SMG).await;
    assert_eq!(r.result, sgip::ResultCode::ILLEGAL_LOGIN);
    assert!(c.closed().await);
    let (mut c, r) = sgip_bind(s.addr(), "spuser", "secret", sgip::LoginType::SMG_TO_SP).await;
    assert_eq!(r.result, sgip::ResultCode::BAD_LOGIN_TYPE);
    assert!(c.closed().await);
}
