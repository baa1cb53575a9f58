//! The bench's nodes A and B as they run in production: one spawned
//! `tongban node` process each, on the sandbox's own config files, and
//! what is read of them from outside: `/proc/PID` (CPU, threads, bytes
//! written) and their admin port's `/metrics` (what their store handed to
//! sled). Where no `tongban` binary is at hand (the smoke test), or for the
//! drain's comparison, they run as tasks of this process instead, sharing
//! sled 0.34's process-global lock (its `CONCURRENCY_CONTROL`: every
//! transaction takes it exclusively, every read shares it), which two real
//! nodes never share.
//!
//! Owns the nodes' lifecycle and their accounting; not what is done with
//! them (the flows) nor the layout (`tongban_sandbox`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tongban_ledger::WriteCounts;
use tongban_pki::tls::TlsMaterial;
use tongban_sandbox::{Passed, Sandbox};

use crate::cpu::Proc;
use crate::startup;

/// A node spawned as its own process.
struct Spawned {
    node: startup::Node,
    admin: SocketAddr,
}

/// How the nodes run.
enum Run {
    /// In this process, on the sandbox's held sockets.
    InProcess,
    /// As `tongban node` processes of `bin`, each passed its held sockets.
    Processes {
        bin: PathBuf,
        /// Presented to a node's gRPC health while it starts.
        probe: TlsMaterial,
        /// Each node's sockets and its admin port, by county.
        sockets: BTreeMap<String, (Passed, SocketAddr)>,
        running: BTreeMap<String, Spawned>,
    },
}

/// Nodes of a sandbox, each with the label its figures are printed under.
pub(crate) struct Nodes {
    sandbox: Sandbox,
    labels: BTreeMap<String, &'static str>,
    run: Run,
}

impl Nodes {
    /// The nodes `(county, label)` of `sandbox`, none started: as
    /// processes of `bin` if given (their held sockets handed over to them;
    /// the sandbox must have admin ports), else in this process.
    pub(crate) async fn new(
        mut sandbox: Sandbox,
        nodes: &[(&str, &'static str)],
        bin: Option<PathBuf>,
        probe: TlsMaterial,
    ) -> anyhow::Result<Self> {
        let labels = nodes.iter().map(|(c, l)| ((*c).to_owned(), *l)).collect();
        let Some(bin) = bin else {
            return Ok(Self {
                sandbox,
                labels,
                run: Run::InProcess,
            });
        };
        let mut sockets = BTreeMap::new();
        for (code, _) in nodes {
            // Still held by the sandbox, so no other program can take a
            // port and every start gets the same ones.
            sandbox.hand_over(code).await?;
            let admin = sandbox
                .admin_addr(code)
                .ok_or_else(|| anyhow::anyhow!("node {code} has no admin port"))?;
            sockets.insert((*code).to_owned(), (sandbox.sockets(code)?, admin));
        }
        Ok(Self {
            sandbox,
            labels,
            run: Run::Processes {
                bin,
                probe,
                sockets,
                running: BTreeMap::new(),
            },
        })
    }

    pub(crate) fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Whether the nodes run as processes of their own.
    pub(crate) fn in_processes(&self) -> bool {
        matches!(self.run, Run::Processes { .. })
    }

    /// Starts the node of `code` unless it runs: in this process, or
    /// spawned and waited for until its gRPC health answers SERVING.
    pub(crate) async fn start(&mut self, code: &str) -> anyhow::Result<()> {
        match &mut self.run {
            Run::InProcess => Ok(self.sandbox.start(code).await?),
            Run::Processes {
                bin,
                probe,
                sockets,
                running,
            } => {
                // As the sandbox's own start: a node that runs stays as it is.
                if running.contains_key(code) {
                    return Ok(());
                }
                let (passed, admin) = sockets
                    .get(code)
                    .ok_or_else(|| anyhow::anyhow!("{code} is not one of the spawned nodes"))?;
                let (node, _) = startup::Node::start(
                    bin,
                    self.sandbox.config_path(code),
                    (self.sandbox.addr(code), passed),
                    probe,
                    Duration::from_secs(60),
                )
                .await?;
                running.insert(
                    code.to_owned(),
                    Spawned {
                        node,
                        admin: *admin,
                    },
                );
                Ok(())
            }
        }
    }

    /// The processes whose CPU and writes the flows count: this one (the
    /// clients, and the nodes when they run here), then each running node
    /// process under its label.
    pub(crate) fn procs(&self) -> Vec<Proc> {
        let mut out = vec![Proc::myself()];
        if let Run::Processes { running, .. } = &self.run {
            for (code, s) in running {
                out.push(Proc::pid(s.node.pid(), self.label(code)));
            }
        }
        out
    }

    fn label(&self, code: &str) -> &'static str {
        self.labels.get(code).copied().unwrap_or("node")
    }

    /// What the stores' commits have handed to sled so far, by label:
    /// each running node process's from its `/metrics`, or this process's
    /// total when the nodes run here (then all of them together, under
    /// "both nodes").
    pub(crate) async fn store_counts(&self) -> anyhow::Result<Vec<(String, WriteCounts)>> {
        let Run::Processes { running, .. } = &self.run else {
            return Ok(vec![("both nodes".into(), tongban_ledger::write_counts())]);
        };
        let mut out = Vec::new();
        for (code, s) in running {
            out.push((self.label(code).to_owned(), scrape_counts(s.admin).await?));
        }
        Ok(out)
    }

    /// Stops every node: SIGTERM to each process (waiting for it to exit),
    /// or the sandbox's own stop.
    pub(crate) async fn shutdown(&mut self) {
        if let Run::Processes { running, .. } = &mut self.run {
            for (_, s) in std::mem::take(running) {
                let _ = s.node.terminate().await;
            }
        }
        let _ = self.sandbox.stop_all(Duration::from_secs(16)).await;
    }
}

/// The store counters of the node whose admin port is `admin`.
async fn scrape_counts(admin: SocketAddr) -> anyhow::Result<WriteCounts> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = format!("http://{admin}/metrics").parse()?;
    let response = client.get(uri).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "GET http://{admin}/metrics: {}",
        response.status()
    );
    let body = response.into_body().collect().await?.to_bytes();
    let text = std::str::from_utf8(&body)?;
    let sample = |name: &str| -> anyhow::Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.split(' ').next()?.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no {name} in http://{admin}/metrics"))
    };
    Ok(WriteCounts {
        commits: sample("tongban_store_commits_total")?,
        reads: sample("tongban_store_commit_reads_total")?,
        writes: sample("tongban_store_commit_writes_total")?,
        bytes: sample("tongban_store_commit_bytes_total")?,
    })
}
