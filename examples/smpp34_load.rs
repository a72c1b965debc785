//! Comparator for `benches/session_bench.sh`: the `smpp34` crate's own
//! client and server doing what `smsgw bench` against `smsgw sim` does — N
//! `submit_sm` over C connections with W outstanding per connection, every
//! one auto-accepted by the server, no delivery reports.
//!
//! ```text
//! smpp34_load --serve 127.0.0.1:2775            # server only, until killed
//! smpp34_load --target 127.0.0.1:2775 --messages 100000 --window 64 --connections 4
//! smpp34_load --messages 100000 --window 64      # both in one process
//! ```
//!
//! The client prints one JSON object: messages, accepted, errors, elapsed_s,
//! msgs_per_s.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use smpp34::client::{SmppClient, SmppClientListener, BIND_TYPE, SMSC};
use smpp34::{
    bind_transceiver, bind_transceiver_resp, submit_sm, submit_sm_resp, SmppConnectionInformation,
    SmppServer, SmppServerListener,
};
use tokio::sync::{oneshot, Mutex};

struct AutoAccept {
    received: AtomicU64,
}

#[async_trait]
impl SmppServerListener for AutoAccept {
    async fn on_bind_transceiver(
        &self,
        req: bind_transceiver,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> bind_transceiver_resp {
        req.accept("SMPP34SIM".to_string(), Some(0x34))
    }

    async fn on_submit_sm(
        &self,
        req: submit_sm,
        _c: &SmppConnectionInformation,
        _s: &String,
    ) -> submit_sm_resp {
        let n = self.received.fetch_add(1, Ordering::Relaxed);
        req.accept(format!("{n:016x}"))
    }
}

struct Binder {
    tx: Mutex<Option<oneshot::Sender<Arc<SMSC>>>>,
}

#[async_trait]
impl SmppClientListener for Binder {
    async fn on_smsc_bound(&self, smsc: SMSC, _s: &String) {
        if let Some(tx) = self.tx.lock().await.take() {
            let _ = tx.send(Arc::new(smsc));
        }
    }
}

#[derive(Debug)]
struct Args {
    serve: Option<SocketAddr>,
    target: Option<SocketAddr>,
    messages: u64,
    window: usize,
    connections: usize,
    text: String,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        serve: None,
        target: None,
        messages: 10_000,
        window: 16,
        connections: 1,
        text: "smsgw bench 123456".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--serve" => a.serve = Some(val()?.parse().map_err(|e| format!("--serve: {e}"))?),
            "--target" => a.target = Some(val()?.parse().map_err(|e| format!("--target: {e}"))?),
            "--messages" => a.messages = val()?.parse().map_err(|e| format!("--messages: {e}"))?,
            "--window" => a.window = val()?.parse().map_err(|e| format!("--window: {e}"))?,
            "--connections" => {
                a.connections = val()?.parse().map_err(|e| format!("--connections: {e}"))?
            }
            "--text" => a.text = val()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.window == 0 || a.connections == 0 {
        return Err("--window and --connections must be at least 1".into());
    }
    Ok(a)
}

async fn serve(addr: SocketAddr) -> SmppServer {
    let listener = Arc::new(AutoAccept {
        received: AtomicU64::new(0),
    });
    let mut server = SmppServer::new(addr.ip(), addr.port(), listener);
    server.start().await;
    server
}

async fn run_client(target: SocketAddr, a: &Args) -> serde_json::Value {
    let mut smscs = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..a.connections {
        let (tx, rx) = oneshot::channel();
        let binder = Arc::new(Binder {
            tx: Mutex::new(Some(tx)),
        });
        let mut client = SmppClient::new(
            target.ip().to_string(),
            target.port(),
            false,
            BIND_TYPE::TRX,
            "bench".to_string(),
            "secret".to_string(),
            String::new(),
            0,
            0,
            String::new(),
            binder,
            a.window,
        );
        client.start().await;
        let smsc = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .expect("bind within 10 s")
            .expect("bound");
        smscs.push(smsc);
        clients.push(client);
    }

    // W submitters per connection, each awaiting its response before the
    // next: at most W outstanding per connection, as `smsgw bench --window W`.
    let remaining = Arc::new(AtomicU64::new(a.messages));
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let text = Arc::new(a.text.clone().into_bytes());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for smsc in &smscs {
        for _ in 0..a.window {
            let (smsc, remaining, accepted, errors, text) = (
                smsc.clone(),
                remaining.clone(),
                accepted.clone(),
                errors.clone(),
                text.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| x.checked_sub(1))
                    .is_ok()
                {
                    let res = smsc
                        .submit_sm()
                        .source_addr("901234")
                        .destination_addr("13800138000")
                        .registered_delivery(0)
                        .short_message(text.as_slice())
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.is_success() => accepted.fetch_add(1, Ordering::Relaxed),
                        _ => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for mut c in clients {
        c.stop().await;
    }
    let acc = accepted.load(Ordering::Relaxed);
    serde_json::json!({
        "impl": "smpp34",
        "messages": a.messages,
        "accepted": acc,
        "errors": errors.load(Ordering::Relaxed),
        "connections": a.connections,
        "window": a.window,
        "elapsed_s": elapsed,
        "msgs_per_s": if elapsed > 0.0 { (acc + errors.load(Ordering::Relaxed)) as f64 / elapsed } else { 0.0 },
    })
}

#[tokio::main]
async fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("smpp34_load: {e}");
            std::process::exit(2);
        }
    };
    if let Some(addr) = a.serve {
        let mut server = serve(addr).await;
        eprintln!("smpp34_load: serving on {addr}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        server.stop().await;
        return;
    }
    let (target, server) = match a.target {
        Some(t) => (t, None),
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port);
            let s = serve(addr).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            (addr, Some(s))
        }
    };
    let report = run_client(target, &a).await;
    println!("{report}");
    if let Some(mut s) = server {
        s.stop().await;
    }
}
