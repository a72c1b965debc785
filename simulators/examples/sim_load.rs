//! Load client: one CMPP 3.0 connection, submits pipelined with a large
//! window, prints submits/s (and reports/s when reports are on).
//!
//! ```text
//! cargo run --release -p smsgw-simulators --example sim_load -- [N] [--reports] [--window W] [--addr HOST:PORT] [--ring CAP]
//! ```
//! Without `--addr` the simulator runs in-process (same 2-core runtime).
//! With `--addr` it drives an external `smsgw sim --protocol cmpp3
//! --account 901234:secret`.

use bytes::{BufMut, BytesMut};
use smsgw_codecs::cmpp::{self, Cmpp, Version};
use smsgw_codecs::wire::{FixedStr, Timestamp};
use smsgw_codecs::{Framer, Inbound};
use smsgw_simulators::{AccountConfig, ProtocolKind, SimConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const SUBMIT_RESP: u32 = 0x8000_0004;
const DELIVER: u32 = 0x0000_0005;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut n: u64 = 1_000_000;
    let mut reports = false;
    let mut window: u64 = 8192;
    let mut addr: Option<SocketAddr> = None;
    let mut ring: usize = 10_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reports" => reports = true,
            "--window" => {
                window = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--window N")
            }
            "--addr" => addr = args.next().and_then(|v| v.parse().ok()),
            "--ring" => ring = args.next().and_then(|v| v.parse().ok()).expect("--ring N"),
            other => n = other.parse().expect("N"),
        }
    }

    let _sim;
    let addr = match addr {
        Some(a) => a,
        None => {
            let mut cfg = SimConfig::new(ProtocolKind::Cmpp3, "127.0.0.1:0".parse().unwrap())
                .account(AccountConfig::new("901234", "secret"));
            cfg.reports.delay = Duration::from_millis(100);
            cfg.ring_capacity = ring;
            let s = smsgw_simulators::start(cfg).await.expect("start");
            let a = s.addr();
            _sim = s;
            a
        }
    };

    let framer = Framer::new(Cmpp::V30);
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).unwrap();
    let connect =
        cmpp::Connect::new("901234", b"secret", Version::V30, Timestamp(1204150730)).unwrap();
    stream
        .write_all(&framer.to_bytes(1, &cmpp::Pdu::Connect(connect)).unwrap())
        .await
        .unwrap();
    let mut buf = BytesMut::with_capacity(1 << 20);
    loop {
        stream.read_buf(&mut buf).await.unwrap();
        if let Some(Inbound::Packet(p)) = framer.decode(&mut buf).unwrap() {
            match p.pdu {
                cmpp::Pdu::ConnectResp(r) if r.status.is_ok() => break,
                other => panic!("login failed: {other:?}"),
            }
        }
    }

    // One encoded SUBMIT; each copy gets its own Sequence_Id patched in.
    let mut s = cmpp::Submit {
        registered_delivery: u8::from(reports),
        service_id: FixedStr::from_padded(b"LOAD"),
        msg_src: FixedStr::from_padded(b"901234"),
        src_id: FixedStr::from_padded(b"10690001"),
        msg_content: bytes::Bytes::from_static(b"load test message"),
        ..Default::default()
    };
    s.dest_terminal_ids
        .push(FixedStr::from_padded(b"13800138000"));
    s.normalize(Version::V30);
    let template = framer.to_bytes(0, &cmpp::Pdu::Submit(s)).unwrap();

    let (mut rd, mut wr) = stream.into_split();
    let answered = Arc::new(AtomicU64::new(0));
    let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<BytesMut>();
    let t0 = Instant::now();

    let answered_w = answered.clone();
    let writer = tokio::spawn(async move {
        let mut out = BytesMut::with_capacity(1 << 20);
        let mut sent: u64 = 0;
        loop {
            while let Ok(acks) = ack_rx.try_recv() {
                out.extend_from_slice(&acks);
            }
            let room = window.saturating_sub(sent - answered_w.load(Ordering::Acquire));
            let batch = room.min(n - sent).min(512);
            for _ in 0..batch {
                sent += 1;
                let at = out.len();
                out.extend_from_slice(&template);
                out[at + 8..at + 12].copy_from_slice(&(sent as u32).to_be_bytes());
            }
            if !out.is_empty() {
                if wr.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            } else if sent == n && !reports {
                return;
            } else {
                // Nothing to do: wait for acks to build or the window to open.
                match tokio::time::timeout(Duration::from_micros(200), ack_rx.recv()).await {
                    Ok(Some(acks)) => out.extend_from_slice(&acks),
                    Ok(None) => return,
                    Err(_) => {}
                }
            }
        }
    });

    let mut resps: u64 = 0;
    let mut reps: u64 = 0;
    let mut t_resp = None;
    let mut ok: u64 = 0;
    let mut rbuf = BytesMut::with_capacity(1 << 20);
    while resps < n || (reports && reps < n) {
        if rbuf.capacity() - rbuf.len() < 65536 {
            rbuf.reserve(1 << 20);
        }
        if rd.read_buf(&mut rbuf).await.unwrap() == 0 {
            panic!("server closed after {resps} responses");
        }
        let mut acks = BytesMut::new();
        while let Some(frame) = framer.split_frame(&mut rbuf).unwrap() {
            let cmd = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            match cmd {
                SUBMIT_RESP => {
                    resps += 1;
                    if frame[20..24] == [0, 0, 0, 0] {
                        ok += 1;
                    }
                }
                DELIVER => {
                    reps += 1;
                    // DELIVER_RESP: same seq, the DELIVER's Msg_Id, Result 0.
                    acks.put_u32(24);
                    acks.put_u32(0x8000_0005);
                    acks.put_slice(&frame[8..12]);
                    acks.put_slice(&frame[12..20]);
                    acks.put_u32(0);
                }
                _ => {}
            }
        }
        answered.store(resps, Ordering::Release);
        if resps == n && t_resp.is_none() {
            t_resp = Some(t0.elapsed());
        }
        if !acks.is_empty() {
            let _ = ack_tx.send(acks);
        }
    }
    let total = t0.elapsed();
    drop(ack_tx);
    let _ = writer.await;
    let tr = t_resp.unwrap_or(total);
    println!(
        "{n} submits on one connection, window {window}, reports {}: {:.0} submits/s answered ({} ok) in {:.2?}",
        if reports { "on" } else { "off" },
        n as f64 / tr.as_secs_f64(),
        ok,
        tr
    );
    if reports {
        println!("{reps} reports received and acknowledged; all done in {total:.2?} ({:.0} submits+reports/s end to end)", n as f64 / total.as_secs_f64());
    }
}
