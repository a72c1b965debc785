//! A minimal CMPP 3.0 ISMG (the e2e tests' one: every submit answered with a
//! DELIVRD report, written before the submit response), for
//! benches/e2e_bench.sh until `smsgw sim` lands. Prints its address, runs
//! until killed. `ismg [PORT]` (default: a free port).

#[path = "../tests/common/ismg.rs"]
#[allow(dead_code)]
mod ismg;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .map_or(0, |p| p.parse().expect("PORT"));
    let seen = std::sync::Arc::new(ismg::Seen::default());
    let addr = ismg::start_on(seen.clone(), port).await;
    println!("{addr}");
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
}
