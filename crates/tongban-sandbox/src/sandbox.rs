//! The sandbox once laid out: the nodes' lifecycle on held sockets (start,
//! stop, restart, handing a node's sockets over to a process of its own,
//! noticing a node that stopped by itself), where things are, and channels
//! to the nodes as any principal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tongban_node::{Clock, NodeConfig, NodeError};
use tongban_pki::Principal;
use tongban_pki::issue::CA_CERT;
use tongban_pki::tls::TlsMaterial;
use tonic::transport::{Channel, Endpoint};

use crate::SandboxError;
use crate::certs::{Pki, Provisioned};
use crate::directory::County;
use crate::socket::Held;

/// Where a sandbox lives: a temp dir removed with it, or a directory kept.
pub(crate) enum Root {
    Temp(TempDir),
    Dir(PathBuf),
}

impl Root {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Root::Temp(t) => t.path(),
            Root::Dir(d) => d,
        }
    }
}

/// A node that runs: how to ask it to stop, its task, which start it was.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), NodeError>>,
    generation: u64,
}

pub(crate) struct Node {
    pub(crate) county: County,
    pub(crate) addr: SocketAddr,
    pub(crate) config: PathBuf,
    data_dir: PathBuf,
    socket: Held,
    carrier: Option<Held>,
    admin: Option<Held>,
    running: Option<Running>,
    /// Its sockets are served by a process of its own ([`Sandbox::hand_over`]):
    /// no node runs here on them and nothing here refuses on them.
    handed_over: bool,
}

impl Node {
    pub(crate) fn new(
        county: County,
        config: PathBuf,
        data_dir: PathBuf,
        socket: Held,
        carrier: Option<Held>,
        admin: Option<Held>,
    ) -> Self {
        Self {
            county,
            addr: socket.addr(),
            config,
            data_dir,
            socket,
            carrier,
            admin,
            running: None,
            handed_over: false,
        }
    }

    /// Where the node's admin port listens, if it has one.
    pub(crate) fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(Held::addr)
    }

    fn held(&mut self) -> impl Iterator<Item = &mut Held> {
        std::iter::once(&mut self.socket)
            .chain(self.carrier.iter_mut())
            .chain(self.admin.iter_mut())
    }

    fn refuse(&mut self, rt: &Handle) -> Result<(), SandboxError> {
        if self.handed_over {
            return Ok(());
        }
        for held in self.held() {
            held.refuse(rt)?;
        }
        Ok(())
    }
}

/// A laid-out federation whose nodes run in this process on held sockets.
pub struct Sandbox {
    root: Root,
    pki: Pki,
    provisioned: Provisioned,
    nodes: Vec<Node>,
    clock: Option<Clock>,
    /// Clocks of single nodes, over `clock` (a node whose clock is off).
    clocks: std::collections::BTreeMap<String, Clock>,
    runtime: Handle,
    /// Each node task says here, with its generation, that it has ended.
    exit_tx: mpsc::UnboundedSender<(String, u64)>,
    exits: mpsc::UnboundedReceiver<(String, u64)>,
    generation: u64,
}

/// Waits for a node task; a panic is reported as the node's error.
async fn join(task: JoinHandle<Result<(), NodeError>>) -> Result<(), NodeError> {
    task.await
        .unwrap_or_else(|e| Err(NodeError::Server(format!("the node task failed: {e}"))))
}

impl Sandbox {
    /// The sandbox of a layout, every port refusing until its node starts.
    pub(crate) fn new(
        root: Root,
        pki: Pki,
        provisioned: Provisioned,
        nodes: Vec<Node>,
        clock: Option<Clock>,
        runtime: Handle,
    ) -> Result<Self, SandboxError> {
        let (exit_tx, exits) = mpsc::unbounded_channel();
        let mut sandbox = Self {
            root,
            pki,
            provisioned,
            nodes,
            clock,
            clocks: Default::default(),
            runtime,
            exit_tx,
            exits,
            generation: 0,
        };
        for n in &mut sandbox.nodes {
            n.refuse(&sandbox.runtime)?;
        }
        Ok(sandbox)
    }

    fn node(&self, code: &str) -> Result<&Node, SandboxError> {
        self.nodes
            .iter()
            .find(|n| n.county.code == code)
            .ok_or_else(|| SandboxError::UnknownCounty(code.to_owned()))
    }

    fn node_mut(&mut self, code: &str) -> Result<&mut Node, SandboxError> {
        self.nodes
            .iter_mut()
            .find(|n| n.county.code == code)
            .ok_or_else(|| SandboxError::UnknownCounty(code.to_owned()))
    }

    /// The root directory (`federation.toml`, `certs/`, node configs, `data/`).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The CA.
    pub fn pki(&self) -> &Pki {
        &self.pki
    }

    /// Whether the CA was created and how many certificates were issued.
    pub fn provisioned(&self) -> Provisioned {
        self.provisioned
    }

    /// The counties, in order, as the directory names them.
    pub fn counties(&self) -> impl Iterator<Item = &County> {
        self.nodes.iter().map(|n| &n.county)
    }

    /// The certificate directory.
    pub fn certs_dir(&self) -> PathBuf {
        self.root().join("certs")
    }

    /// The CA certificate file.
    pub fn ca_path(&self) -> PathBuf {
        self.certs_dir().join(CA_CERT)
    }

    /// The federation directory file.
    pub fn directory_path(&self) -> PathBuf {
        self.root().join("federation.toml")
    }

    /// Where the node of `code` listens.
    ///
    /// # Panics
    /// If `code` is not in the sandbox (a constant of the caller's).
    pub fn addr(&self, code: &str) -> SocketAddr {
        self.expect(code).addr
    }

    /// `https://ADDR` of the node of `code`.
    pub fn endpoint(&self, code: &str) -> String {
        format!("https://{}", self.addr(code))
    }

    /// The config file of the node of `code`.
    pub fn config_path(&self, code: &str) -> &Path {
        &self.expect(code).config
    }

    /// The data dir of the node of `code`.
    pub fn data_dir(&self, code: &str) -> &Path {
        &self.expect(code).data_dir
    }

    /// Where the node of `code` serves `/metrics`, `/healthz` and
    /// `/readyz`, if the admin port is on ([`crate::Builder::admin`]).
    pub fn admin_addr(&self, code: &str) -> Option<SocketAddr> {
        self.expect(code).admin_addr()
    }

    /// Where the node of `code` takes carrier pushes, if carriers are on.
    pub fn carrier_addr(&self, code: &str) -> Option<SocketAddr> {
        self.expect(code).carrier.as_ref().map(Held::addr)
    }

    fn expect(&self, code: &str) -> &Node {
        self.node(code).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Gives the node of `code` a clock of its own from its next start.
    pub fn set_clock(&mut self, code: &str, clock: Clock) {
        self.clocks.insert(code.to_owned(), clock);
    }

    /// Starts the node of `code` on its held socket (a restart, if it ran
    /// before, with its data). Does nothing if it runs.
    pub async fn start(&mut self, code: &str) -> Result<(), SandboxError> {
        self.generation += 1;
        let generation = self.generation;
        let (clock, runtime, exit_tx) = (
            self.clocks.get(code).or(self.clock.as_ref()).cloned(),
            self.runtime.clone(),
            self.exit_tx.clone(),
        );
        let node = self.node_mut(code)?;
        if node.running.is_some() {
            return Ok(());
        }
        let mut config = NodeConfig::load(&node.config)?;
        if let Some(clock) = clock {
            config.clock = clock;
        }
        if node.handed_over {
            return Err(SandboxError::HandedOver(code.to_owned()));
        }
        node.socket.stop_refusing().await;
        let listener = node.socket.duplicate()?;
        let carrier = match node.carrier.as_mut() {
            Some(held) => {
                held.stop_refusing().await;
                Some(held.duplicate()?)
            }
            None => None,
        };
        let admin = match node.admin.as_mut() {
            Some(held) => {
                held.stop_refusing().await;
                Some(held.duplicate()?)
            }
            None => None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let county = code.to_owned();
        let task = runtime.spawn(async move {
            let result = serve(config, listener, carrier, admin, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(e) = &result {
                tracing::error!(county = %county, error = %e, "sandbox node stopped");
            }
            let _ = exit_tx.send((county, generation));
            result
        });
        node.running = Some(Running {
            stop,
            task,
            generation,
        });
        Ok(())
    }

    /// Starts every node that is not running.
    pub async fn start_all(&mut self) -> Result<(), SandboxError> {
        let codes: Vec<String> = self.nodes.iter().map(|n| n.county.code.clone()).collect();
        for code in codes {
            self.start(&code).await?;
        }
        Ok(())
    }

    /// Asks the node of `code` to stop and waits until it has; its port
    /// then refuses connections, like a node that is down.
    pub async fn stop(&mut self, code: &str) -> Result<(), SandboxError> {
        let runtime = self.runtime.clone();
        let node = self.node_mut(code)?;
        let Some(running) = node.running.take() else {
            return Ok(());
        };
        let _ = running.stop.send(());
        let result = join(running.task).await;
        node.refuse(&runtime)?;
        result.map_err(|source| SandboxError::Node {
            county: code.to_owned(),
            source,
        })
    }

    /// Stops the node of `code` if it runs and starts it again.
    pub async fn restart(&mut self, code: &str) -> Result<(), SandboxError> {
        self.stop(code).await?;
        self.start(code).await
    }

    /// Asks every node to stop at once and waits, at most `within` in all.
    pub async fn stop_all(&mut self, within: Duration) -> Result<(), SandboxError> {
        let deadline = tokio::time::Instant::now() + within;
        let mut stopping = Vec::new();
        for node in &mut self.nodes {
            if let Some(running) = node.running.take() {
                let _ = running.stop.send(());
                stopping.push((node.county.code.clone(), running.task));
            }
        }
        let mut failures = Vec::new();
        for (code, task) in stopping {
            match tokio::time::timeout_at(deadline, join(task)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("node {code}: {e}")),
                Err(_) => failures.push(format!(
                    "node {code} did not stop within {} s",
                    within.as_secs()
                )),
            }
        }
        let runtime = self.runtime.clone();
        for node in &mut self.nodes {
            node.refuse(&runtime)?;
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(SandboxError::Stop(failures))
        }
    }

    /// Resolves when a node stops without having been asked to: its county
    /// and how it ended. Pending while every node runs.
    pub async fn exited(&mut self) -> (String, Result<(), NodeError>) {
        loop {
            let Some((code, generation)) = self.exits.recv().await else {
                // The sandbox holds a sender: this never ends.
                return std::future::pending().await;
            };
            let runtime = self.runtime.clone();
            let Ok(node) = self.node_mut(&code) else {
                continue;
            };
            // A node stopped on purpose has no `running` any more, and a
            // restarted one runs under a newer generation.
            if node
                .running
                .as_ref()
                .is_some_and(|r| r.generation == generation)
                && let Some(running) = node.running.take()
            {
                let result = join(running.task).await;
                // Already bound to fail at the next start if it cannot.
                let _ = node.refuse(&runtime);
                return (code, result);
            }
        }
    }

    /// Hands the sockets of the node of `code` over to a process of its
    /// own: the node here stops if it runs, and the sandbox stops refusing
    /// connections on them but keeps holding them, so that no other program
    /// can take a port and every start of the process gets the same ones
    /// ([`Sandbox::sockets`]). While no process serves them, connections
    /// wait in their accept queue instead of being refused.
    pub async fn hand_over(&mut self, code: &str) -> Result<(), SandboxError> {
        self.stop(code).await?;
        let node = self.node_mut(code)?;
        node.handed_over = true;
        for held in node.held() {
            // Its refuser's duplicate must be closed too, or it would take
            // the process's connections.
            held.stop_refusing().await;
        }
        Ok(())
    }

    /// Duplicates of the sockets of the node of `code`, handed over
    /// ([`Sandbox::hand_over`]): gRPC, then the carrier push port and the
    /// admin port if it has them, the order a `tongban node` process takes
    /// them in as `LISTEN_FDS` (it matches each to its config by address).
    pub fn sockets(&self, code: &str) -> Result<crate::Passed, SandboxError> {
        let node = self.node(code)?;
        if !node.handed_over {
            return Err(SandboxError::NotHandedOver(code.to_owned()));
        }
        let mut fds = Vec::new();
        for held in std::iter::once(&node.socket)
            .chain(node.carrier.iter())
            .chain(node.admin.iter())
        {
            fds.push(held.fd()?);
        }
        Ok(crate::Passed::new(fds))
    }

    /// A lazy channel to the node of `code` presenting `tls` (no call is
    /// made yet: with TLS 1.3 a refused certificate shows at the first call).
    pub fn channel(&self, code: &str, tls: &TlsMaterial) -> Result<Channel, SandboxError> {
        channel(self.node(code)?.addr, tls)
    }

    /// A lazy channel to the node of `code` as `principal`, with a new
    /// certificate.
    ///
    /// # Panics
    /// If `code` is not in the sandbox or the certificate cannot be made:
    /// both are the caller's bugs.
    pub fn client(&self, code: &str, principal: Principal) -> Channel {
        channel(self.addr(code), &self.pki.issue(principal))
            .unwrap_or_else(|e| panic!("a channel to {code}: {e}"))
    }
}

async fn serve(
    config: NodeConfig,
    listener: std::net::TcpListener,
    carrier: Option<std::net::TcpListener>,
    admin: Option<std::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), NodeError> {
    // Registered here, with the reactor of the runtime that serves them.
    let register =
        |l| tokio::net::TcpListener::from_std(l).map_err(|e| NodeError::Server(e.to_string()));
    let listeners = tongban_node::Listeners {
        grpc: register(listener)?,
        carrier: carrier.map(register).transpose()?,
        admin: admin.map(register).transpose()?,
    };
    tongban_node::run_with(config, listeners, shutdown).await
}

/// A lazy channel to `addr` presenting `tls`.
pub fn channel(addr: SocketAddr, tls: &TlsMaterial) -> Result<Channel, SandboxError> {
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls.client_config("127.0.0.1"))?
        .connect_lazy())
}

/// A channel to `addr` presenting `tls`, connected now.
pub async fn connect(addr: SocketAddr, tls: &TlsMaterial) -> Result<Channel, SandboxError> {
    Ok(Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls.client_config("127.0.0.1"))?
        .connect()
        .await?)
}
