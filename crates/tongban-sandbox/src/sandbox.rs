//! The sandbox itself: the layout on disk ([`Builder::build`]), the nodes'
//! lifecycle on held sockets (start, stop, restart, noticing a node that
//! stopped by itself) and channels to them as any principal.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
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
use crate::certs::{Pki, Provisioned, provision};
use crate::directory::{self, County};
use crate::socket::Held;

/// Which ports the nodes listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    /// Any free port (`127.0.0.1:0`), the default: tests and the bench.
    Any,
    /// `P, P+1, …` in the order of the counties (`tongban dev --base-port`).
    From(u16),
}

/// How a sandbox is laid out; [`Builder::build`] lays it out.
pub struct Builder {
    root: Option<PathBuf>,
    temp_prefix: String,
    template: String,
    counties: Option<Vec<String>>,
    ports: Ports,
    node_extra: String,
    carriers: bool,
    clock: Option<Clock>,
    runtime: Option<Handle>,
    users: Vec<Principal>,
    validity: (u32, u32),
    written_by: String,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            root: None,
            temp_prefix: "tongban-sandbox-".into(),
            template: directory::EXAMPLE.into(),
            counties: None,
            ports: Ports::Any,
            node_extra: String::new(),
            carriers: false,
            clock: None,
            runtime: None,
            users: Vec::new(),
            validity: (3650, 365),
            written_by: "the tongban sandbox".into(),
        }
    }
}

impl Builder {
    /// The example federation, every county, any ports, in a new temp dir.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lays the sandbox out in `dir` (created if needed) and reuses what an
    /// earlier run left there: the directory file, the CA, certificates
    /// that are still good, the nodes' data.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.root = Some(dir.into());
        self
    }

    /// The prefix of the temp dir when no [`Builder::dir`] is given.
    pub fn temp_prefix(mut self, prefix: &str) -> Self {
        self.temp_prefix = prefix.into();
        self
    }

    /// The directory to start from when the root has no `federation.toml`.
    pub fn directory(mut self, text: &str) -> Self {
        self.template = text.into();
        self
    }

    /// Runs only these counties of the directory, in this order.
    pub fn counties(mut self, codes: &[&str]) -> Self {
        self.counties = Some(codes.iter().map(|c| (*c).to_owned()).collect());
        self
    }

    /// The nodes' ports.
    pub fn ports(mut self, ports: Ports) -> Self {
        self.ports = ports;
        self
    }

    /// TOML appended to every node config (tables such as `[delivery]`).
    pub fn node_config(mut self, extra: &str) -> Self {
        self.node_extra.push_str(extra);
        self
    }

    /// Holds a carrier-push socket for each node and serves it.
    pub fn carriers(mut self, on: bool) -> Self {
        self.carriers = on;
        self
    }

    /// The clock every node reads (instead of the system's).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The runtime the nodes run on (by default the one `build` runs in).
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Also keeps certificates for these users under `certs/`.
    pub fn users(mut self, principals: impl IntoIterator<Item = Principal>) -> Self {
        self.users.extend(principals);
        self
    }

    /// Days of validity of a new CA and of the certificates issued.
    pub fn validity(mut self, ca_days: u32, cert_days: u32) -> Self {
        self.validity = (ca_days, cert_days);
        self
    }

    /// Who the comment atop each node config says wrote it.
    pub fn written_by(mut self, who: &str) -> Self {
        self.written_by = who.into();
        self
    }

    /// Binds every node's socket, then writes the directory with their
    /// endpoints, the certificates and the node configs. No node runs yet:
    /// their ports refuse connections until [`Sandbox::start`].
    pub fn build(self) -> Result<Sandbox, SandboxError> {
        let runtime = match self.runtime {
            Some(h) => h,
            None => Handle::try_current().map_err(|_| SandboxError::NoRuntime)?,
        };
        let root = match self.root {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .map_err(|e| SandboxError::io("failed to create", &dir, e))?;
                Root::Dir(dir)
            }
            None => Root::Temp(
                tempfile::Builder::new()
                    .prefix(&self.temp_prefix)
                    .tempdir()
                    .map_err(|e| {
                        SandboxError::io("failed to create a temp dir in", std::env::temp_dir(), e)
                    })?,
            ),
        };
        let dir = root.path().to_owned();
        let directory_path = dir.join("federation.toml");
        let existing = match std::fs::read_to_string(&directory_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(SandboxError::io("failed to read", &directory_path, e)),
        };
        let text = existing.clone().unwrap_or(self.template);
        let (trust_domain, listed) = directory::counties(&text, &directory_path)?;
        let chosen: Vec<County> = match &self.counties {
            None => listed,
            Some(codes) => codes
                .iter()
                .map(|code| {
                    listed
                        .iter()
                        .find(|c| c.code == *code)
                        .cloned()
                        .ok_or_else(|| SandboxError::Directory {
                            path: directory_path.clone(),
                            reason: format!("no [[county]] with code {code}"),
                        })
                })
                .collect::<Result<_, _>>()?,
        };

        // Sockets first: a taken port is refused before anything is written.
        let mut nodes = Vec::new();
        let count = chosen.len();
        for (i, county) in chosen.into_iter().enumerate() {
            let port = match self.ports {
                Ports::Any => 0,
                Ports::From(base) => u16::try_from(usize::from(base) + i)
                    .ok()
                    .filter(|_| base != 0)
                    .ok_or(SandboxError::PortRange { base, count })?,
            };
            let socket = Held::bind((Ipv4Addr::LOCALHOST, port).into())?;
            let carrier = if self.carriers {
                Some(Held::bind((Ipv4Addr::LOCALHOST, 0).into())?)
            } else {
                None
            };
            nodes.push(Node {
                config: dir.join(format!("node-{}.toml", county.code)),
                data_dir: dir.join("data").join(&county.code),
                addr: socket.addr(),
                socket: Some(socket),
                carrier,
                county,
                running: None,
            });
        }

        let endpoints: BTreeMap<String, String> = nodes
            .iter()
            .map(|n| (n.county.code.clone(), format!("https://{}", n.addr)))
            .collect();
        let rewritten = directory::set_endpoints(&text, &directory_path, &endpoints)?;
        if existing.as_deref() != Some(rewritten.as_str()) {
            write(&directory_path, &rewritten)?;
        }

        let certs = dir.join("certs");
        let mut principals: Vec<Principal> =
            nodes.iter().map(|n| crate::node(&n.county.code)).collect();
        principals.extend(self.users);
        let (pki, provisioned) = provision(&certs, &trust_domain, &principals, self.validity)?;

        for n in &nodes {
            let code = &n.county.code;
            write(
                &n.config,
                &format!(
                    "# Node config of {name} ({code}), written by {who} on every run.\n\
                     # Paths are relative to this file.\n\
                     county = \"{code}\"\n\
                     listen = \"{addr}\"\n\
                     data_dir = \"data/{code}\"\n\
                     directory = \"federation.toml\"\n\
                     \n\
                     [tls]\n\
                     ca = \"certs/{CA_CERT}\"\n\
                     cert = \"certs/node-{code}.crt\"\n\
                     key = \"certs/node-{code}.key\"\n{extra}",
                    name = n.county.name,
                    who = self.written_by,
                    addr = n.addr,
                    extra = self.node_extra,
                ),
            )?;
        }

        let (exit_tx, exits) = mpsc::unbounded_channel();
        let mut sandbox = Sandbox {
            root,
            pki,
            provisioned,
            nodes,
            clock: self.clock,
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
}

fn write(path: &Path, text: &str) -> Result<(), SandboxError> {
    std::fs::write(path, text).map_err(|e| SandboxError::io("failed to write", path, e))
}

/// Where a sandbox lives: a temp dir removed with it, or a directory kept.
enum Root {
    Temp(TempDir),
    Dir(PathBuf),
}

impl Root {
    fn path(&self) -> &Path {
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

struct Node {
    county: County,
    addr: SocketAddr,
    config: PathBuf,
    data_dir: PathBuf,
    /// `None` once released for a process of its own.
    socket: Option<Held>,
    carrier: Option<Held>,
    running: Option<Running>,
}

impl Node {
    fn refuse(&mut self, rt: &Handle) -> Result<(), SandboxError> {
        for held in self.socket.iter_mut().chain(self.carrier.iter_mut()) {
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

    /// Where the node of `code` takes carrier pushes, if carriers are on.
    pub fn carrier_addr(&self, code: &str) -> Option<SocketAddr> {
        self.expect(code).carrier.as_ref().map(Held::addr)
    }

    fn expect(&self, code: &str) -> &Node {
        self.node(code).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the node of `code` on its held socket (a restart, if it ran
    /// before, with its data). Does nothing if it runs.
    pub async fn start(&mut self, code: &str) -> Result<(), SandboxError> {
        self.generation += 1;
        let generation = self.generation;
        let (clock, runtime, exit_tx) = (
            self.clock.clone(),
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
        let socket = node
            .socket
            .as_mut()
            .ok_or_else(|| SandboxError::Released(code.to_owned()))?;
        socket.stop_refusing().await;
        let listener = socket.duplicate()?;
        let carrier = match node.carrier.as_mut() {
            Some(held) => {
                held.stop_refusing().await;
                Some(held.duplicate()?)
            }
            None => None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let county = code.to_owned();
        let task = runtime.spawn(async move {
            let result = serve(config, listener, carrier, async {
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

    /// Gives up the held socket of the node of `code` (which must not run)
    /// so that a process of its own can bind the port. Its port is free
    /// from here on: some other program could take it first.
    pub async fn release(&mut self, code: &str) -> Result<(), SandboxError> {
        self.stop(code).await?;
        let node = self.node_mut(code)?;
        for mut held in node.socket.take().into_iter().chain(node.carrier.take()) {
            // Its refuser's duplicate must be closed too before the port is free.
            held.stop_refusing().await;
        }
        Ok(())
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
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), NodeError> {
    // Registered here, with the reactor of the runtime that serves them.
    let register =
        |l| tokio::net::TcpListener::from_std(l).map_err(|e| NodeError::Server(e.to_string()));
    let listener = register(listener)?;
    let carrier = carrier.map(register).transpose()?;
    tongban_node::run_with_carrier(config, listener, carrier, shutdown).await
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
