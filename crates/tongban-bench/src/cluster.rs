//! Real nodes in-process on loopback: a per-run CA, a temp dir, the example
//! federation directory with its endpoints rewritten, configs written as a
//! user would write them, and listeners bound before the nodes start.
//!
//! A = 610702 (汉台区, the receiving window), B = 610113 (雁塔区, the home
//! authority), C = 611002 (商州区, the node spawned as a process for the
//! start-up measurement).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tongban_node::{NodeConfig, NodeError};
use tongban_pki::Principal;
use tongban_pki::issue::Ca;
use tongban_pki::tls::TlsMaterial;
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::window::v1::window_client::WindowClient;
use tonic::transport::{Channel, Endpoint};

use crate::Options;

pub(crate) const TD: &str = "shaanxi.tongban";
pub(crate) const A: &str = "610702";
pub(crate) const B: &str = "610113";
pub(crate) const C: &str = "611002";

const EXAMPLE_DIRECTORY: &str = include_str!("../../../examples/federation.toml");

type Running = (oneshot::Sender<()>, JoinHandle<Result<(), NodeError>>);

/// A listener held by a task that accepts and drops connections (a node
/// that is down), until it is asked to give the listener back.
struct Parked {
    give_back: oneshot::Sender<()>,
    task: JoinHandle<TcpListener>,
}

fn park(listener: TcpListener) -> Parked {
    let (give_back, mut asked) = oneshot::channel();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = &mut asked => return listener,
                accepted = listener.accept() => drop(accepted),
            }
        }
    });
    Parked { give_back, task }
}

struct Slot {
    addr: SocketAddr,
    config: PathBuf,
    running: Option<Running>,
    parked: Option<Parked>,
}

/// The federation of one run.
pub(crate) struct Federation {
    pub(crate) ca: Ca,
    pub(crate) root: TempDir,
    a: Slot,
    b: Slot,
    /// C's address (bound, then released for the spawned process).
    pub(crate) c_addr: SocketAddr,
    pub(crate) c_config: PathBuf,
    pub(crate) c_data_dir: PathBuf,
    clerk_a: TlsMaterial,
}

fn material(ca: &Ca, principal: Principal) -> anyhow::Result<TlsMaterial> {
    let hosts = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let pair = ca.issue(principal, &hosts, 2)?;
    Ok(TlsMaterial {
        ca_pem: ca.cert_pem().to_owned(),
        cert_pem: pair.cert_pem,
        key_pem: pair.key_pem,
    })
}

pub(crate) fn county(code: &str) -> tongban_core::CountyCode {
    code.parse().expect("a valid county code")
}

impl Federation {
    /// Writes the CA, certificates, directory and configs; binds A's and
    /// B's listeners (parked: connections are refused until started).
    pub(crate) fn new(opts: &Options) -> anyhow::Result<Self> {
        let ca = Ca::generate(TD, 3)?;
        let root = tempfile::Builder::new()
            .prefix("tongban-bench-")
            .tempdir()?;
        let bind = || -> anyhow::Result<std::net::TcpListener> {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.set_nonblocking(true)?;
            Ok(l)
        };
        let (la, lb, lc) = (bind()?, bind()?, bind()?);
        let (a_addr, b_addr, c_addr) = (la.local_addr()?, lb.local_addr()?, lc.local_addr()?);
        // C is a separate process later: free its port now.
        drop(lc);
        let directory = EXAMPLE_DIRECTORY
            .replace("https://127.0.0.1:7001", &format!("https://{a_addr}"))
            .replace("https://127.0.0.1:7002", &format!("https://{b_addr}"))
            .replace("https://127.0.0.1:7003", &format!("https://{c_addr}"));
        let dir = root.path();
        std::fs::write(dir.join("federation.toml"), directory)?;
        std::fs::write(dir.join("ca.crt"), ca.cert_pem())?;
        // Room for the 256 MiB case: one material of 128 MiB, 256 MiB a case.
        let max_material = (opts.stream_bytes / 2).max(64 << 20) as u64;
        let max_case = (opts.stream_bytes as u64 * 2).max(256 << 20);
        // Batch size and streams stay at their defaults: the drain measures
        // the product as shipped. Short backoffs: B's start is not waited out.
        let extra = format!(
            "[limits]\nmax_material_bytes = {max_material}\nmax_case_bytes = {max_case}\n\
             [delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\n"
        );
        let mut configs = Vec::new();
        for (code, addr) in [(A, a_addr), (B, b_addr), (C, c_addr)] {
            let tls = material(
                &ca,
                Principal::Node {
                    county: county(code),
                },
            )?;
            std::fs::write(dir.join(format!("node-{code}.crt")), &tls.cert_pem)?;
            std::fs::write(dir.join(format!("node-{code}.key")), &tls.key_pem)?;
            let config = dir.join(format!("node-{code}.toml"));
            std::fs::write(
                &config,
                format!(
                    "county = \"{code}\"\nlisten = \"{addr}\"\ndata_dir = \"data-{code}\"\n\
                     directory = \"federation.toml\"\n\
                     [tls]\nca = \"ca.crt\"\ncert = \"node-{code}.crt\"\nkey = \"node-{code}.key\"\n{extra}"
                ),
            )?;
            configs.push((config, dir.join(format!("data-{code}"))));
        }
        let mut configs = configs.into_iter();
        let (a_config, _) = configs.next().expect("A");
        let (b_config, _) = configs.next().expect("B");
        let (c_config, c_data_dir) = configs.next().expect("C");
        let clerk_a = material(
            &ca,
            Principal::Clerk {
                county: county(A),
                name: "wang".into(),
            },
        )?;
        let slot = |addr, config, l: std::net::TcpListener| -> anyhow::Result<Slot> {
            Ok(Slot {
                addr,
                config,
                running: None,
                parked: Some(park(TcpListener::from_std(l)?)),
            })
        };
        Ok(Self {
            a: slot(a_addr, a_config, la)?,
            b: slot(b_addr, b_config, lb)?,
            ca,
            root,
            c_addr,
            c_config,
            c_data_dir,
            clerk_a,
        })
    }

    async fn start(slot: &mut Slot) -> anyhow::Result<()> {
        let Some(parked) = slot.parked.take() else {
            return Ok(());
        };
        let _ = parked.give_back.send(());
        let listener = parked.task.await?;
        let config = NodeConfig::load(&slot.config)?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(tongban_node::run(config, listener, async move {
            let _ = rx.await;
        }));
        slot.running = Some((tx, task));
        Ok(())
    }

    pub(crate) async fn start_a(&mut self) -> anyhow::Result<()> {
        Self::start(&mut self.a).await
    }

    pub(crate) async fn start_b(&mut self) -> anyhow::Result<()> {
        Self::start(&mut self.b).await
    }

    pub(crate) fn b_addr(&self) -> SocketAddr {
        self.b.addr
    }

    /// Certificate material for `principal` from this run's CA.
    pub(crate) fn issue(&self, principal: Principal) -> anyhow::Result<TlsMaterial> {
        material(&self.ca, principal)
    }

    /// A clerk of A on a new connection (one connection per clerk), with a
    /// decode limit large enough for `list_cases` of 10,000 cases.
    pub(crate) async fn clerk_a(&self) -> anyhow::Result<WindowClient<Channel>> {
        window_client(self.a.addr, &self.clerk_a).await
    }

    /// A reviewer of B on a new connection (to read B's side of a case).
    pub(crate) async fn reviewer_b(&self) -> anyhow::Result<ReviewClient<Channel>> {
        let tls = self.issue(Principal::Reviewer {
            county: county(B),
            name: "li".into(),
        })?;
        Ok(ReviewClient::new(connect(self.b.addr, &tls).await?))
    }

    /// Stops every running node (waits at most a few seconds each).
    pub(crate) async fn shutdown(&mut self) {
        for slot in [&mut self.a, &mut self.b] {
            if let Some((tx, task)) = slot.running.take() {
                let _ = tx.send(());
                let _ = tokio::time::timeout(Duration::from_secs(8), task).await;
            }
            if let Some(parked) = slot.parked.take() {
                parked.task.abort();
            }
        }
    }
}

/// A window client on a new, connected channel.
pub(crate) async fn window_client(
    addr: SocketAddr,
    tls: &TlsMaterial,
) -> anyhow::Result<WindowClient<Channel>> {
    let channel = connect(addr, tls).await?;
    Ok(WindowClient::new(channel).max_decoding_message_size(512 << 20))
}

async fn connect(addr: SocketAddr, tls: &TlsMaterial) -> anyhow::Result<Channel> {
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls.client_config("127.0.0.1"))?
        .connect()
        .await?)
}
