//! The bench's federation: a `tongban_sandbox` of the example's three
//! counties with room for the large case, its nodes A and B run as
//! `tongban node` processes where the binary is at hand (`nodes.rs`), and
//! the clients the flows use.
//!
//! A = 610702 (汉台区, the receiving window), B = 610113 (雁塔区, the home
//! authority), C = 611002 (商州区, the node spawned as a process for the
//! start-up measurement: its held sockets are passed to that process).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tongban_pki::Principal;
use tongban_pki::tls::TlsMaterial;
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_sandbox::Passed;
use tonic::transport::Channel;

use crate::cpu::Proc;
use crate::nodes::Nodes;
use crate::{Options, Report};

pub(crate) use tongban_sandbox::county;
pub(crate) const A: &str = tongban_sandbox::HANTAI;
pub(crate) const B: &str = tongban_sandbox::YANTA;
pub(crate) const C: &str = tongban_sandbox::SHANGZHOU;

/// The federation of one run.
pub(crate) struct Federation {
    nodes: Nodes,
    /// C's address (held by the sandbox for the spawned processes).
    pub(crate) c_addr: SocketAddr,
    /// C's held sockets, passed to each of its processes.
    pub(crate) c_sockets: Passed,
    pub(crate) c_config: PathBuf,
    pub(crate) c_data_dir: PathBuf,
    clerk_a: TlsMaterial,
}

impl Federation {
    /// Writes the CA, certificates, directory and configs; A's and B's
    /// ports refuse connections until they are started. A and B run as
    /// processes of the `tongban` binary when `opts.spawn_binary` and it is
    /// found, else in this process (said in a note).
    pub(crate) async fn new(opts: &Options, report: &mut Report) -> anyhow::Result<Self> {
        let bin = if opts.spawn_binary {
            crate::startup::tongban_binary(opts, report)
        } else {
            None
        };
        if bin.is_none() {
            report.note(
                "nodes A and B run inside the bench process (no tongban binary spawned): they \
                 share sled's process-global lock, which two real nodes never do",
            );
        }
        Self::with(opts, bin).await
    }

    /// The federation with A and B in this process, whatever `opts` says
    /// (the drain's comparison).
    pub(crate) async fn in_process(opts: &Options) -> anyhow::Result<Self> {
        Self::with(opts, None).await
    }

    async fn with(opts: &Options, bin: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut sandbox = builder("tongban-bench-", opts, bin.as_deref()).build()?;
        // C is a separate process later, on its held sockets.
        sandbox.hand_over(C).await?;
        let c_sockets = sandbox.sockets(C)?;
        let clerk_a = sandbox.pki().try_issue(tongban_sandbox::clerk(A, "wang"))?;
        let (c_addr, c_config, c_data_dir) = (
            sandbox.addr(C),
            sandbox.config_path(C).to_owned(),
            sandbox.data_dir(C).to_owned(),
        );
        let nodes = Nodes::new(sandbox, &[(A, "A"), (B, "B")], bin, clerk_a.clone()).await?;
        Ok(Self {
            nodes,
            c_addr,
            c_sockets,
            c_config,
            c_data_dir,
            clerk_a,
        })
    }

    /// The run's directory (removed with the federation).
    pub(crate) fn root(&self) -> &Path {
        self.nodes.sandbox().root()
    }

    /// The CA certificate file.
    pub(crate) fn ca_path(&self) -> PathBuf {
        self.nodes.sandbox().ca_path()
    }

    pub(crate) async fn start_a(&mut self) -> anyhow::Result<()> {
        self.nodes.start(A).await
    }

    pub(crate) async fn start_b(&mut self) -> anyhow::Result<()> {
        self.nodes.start(B).await
    }

    pub(crate) fn a_addr(&self) -> SocketAddr {
        self.nodes.sandbox().addr(A)
    }

    pub(crate) fn b_addr(&self) -> SocketAddr {
        self.nodes.sandbox().addr(B)
    }

    /// The nodes, for their accounting (`/proc`, store counters).
    pub(crate) fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// This process and the running node processes (see [`Nodes::procs`]).
    pub(crate) fn procs(&self) -> Vec<Proc> {
        self.nodes.procs()
    }

    /// Certificate material for `principal` from this run's CA.
    pub(crate) fn issue(&self, principal: Principal) -> anyhow::Result<TlsMaterial> {
        Ok(self.nodes.sandbox().pki().try_issue(principal)?)
    }

    /// `n` clerks of A, one connection each.
    pub(crate) async fn clerks_a(&self, n: usize) -> anyhow::Result<Vec<WindowClient<Channel>>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.clerk_a().await?);
        }
        Ok(out)
    }

    /// A clerk of A on a new connection (one connection per clerk), with a
    /// decode limit large enough for `list_cases` of 10,000 cases.
    pub(crate) async fn clerk_a(&self) -> anyhow::Result<WindowClient<Channel>> {
        window_client(self.a_addr(), &self.clerk_a).await
    }

    /// A reviewer of B on a new connection (to read B's side of a case).
    pub(crate) async fn reviewer_b(&self) -> anyhow::Result<ReviewClient<Channel>> {
        let tls = self.issue(tongban_sandbox::reviewer(B, "li"))?;
        let channel = tongban_sandbox::connect(self.b_addr(), &tls).await?;
        Ok(ReviewClient::new(channel))
    }

    /// Stops every running node (waits at most a few seconds each).
    pub(crate) async fn shutdown(&mut self) {
        self.nodes.shutdown().await;
    }
}

/// A sandbox of the bench's nodes, run as processes of `bin` if it is
/// given: those are counted from their /metrics, so they get admin ports
/// (the one place that says so; a part built without them cannot count).
fn builder(prefix: &str, opts: &Options, bin: Option<&Path>) -> tongban_sandbox::Builder {
    tongban_sandbox::Builder::new()
        .temp_prefix(prefix)
        .node_config(&node_config(opts))
        .admin(bin.is_some())
}

/// The node config the bench adds to the sandbox's.
fn node_config(opts: &Options) -> String {
    // Room for the 256 MiB case: one material of 128 MiB, 256 MiB a case.
    let max_material = (opts.stream_bytes / 2).max(64 << 20) as u64;
    let max_case = (opts.stream_bytes as u64 * 2).max(256 << 20);
    // Batch size and streams stay at their defaults: the drain measures
    // the product as shipped. Short backoffs: B's start is not waited out.
    format!(
        "[limits]\nmax_material_bytes = {max_material}\nmax_case_bytes = {max_case}\n\
         [delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\n"
    )
}

/// Counties in the star directory: about as many as China has.
pub(crate) const STAR_COUNTIES: usize = 2_844;

/// The example directory grown to `counties` counties: the extra ones
/// (`61xxxx`, their endpoints a closed loopback port, never dialled) each
/// with an agreement with A for GT-0001, so A has `counties - 1` partners.
pub(crate) fn star_directory(counties: usize) -> String {
    let base = tongban_sandbox::directory::EXAMPLE;
    let taken = [A, B, C];
    let extra: Vec<String> = (101..10_000)
        .map(|n| format!("61{n:04}"))
        .filter(|c| !c.ends_with("00") && !taken.contains(&c.as_str()))
        .take(counties.saturating_sub(taken.len()))
        .collect();
    let mut county_tables = String::new();
    let mut agreements = String::new();
    for code in &extra {
        county_tables.push_str(&format!(
            "[[county]]\ncode = \"{code}\"\nname = \"县{code}\"\nendpoint = \"https://127.0.0.1:9\"\n\n"
        ));
        agreements.push_str(&format!(
            "[[agreement]]\ncounties = [\"{A}\", \"{code}\"]\nitems = [\"GT-0001\"]\n\n"
        ));
    }
    // Each array of tables stays contiguous: the counties go before the
    // first item, the agreements before the first agreement.
    let items = base.find("[[item]]").expect("the example has items");
    let mut text = String::with_capacity(base.len() + county_tables.len() + agreements.len());
    text.push_str(&base[..items]);
    text.push_str(&county_tables);
    let rest = &base[items..];
    let first = rest
        .find("[[agreement]]")
        .expect("the example has agreements");
    text.push_str(&rest[..first]);
    text.push_str(&agreements);
    text.push_str(&rest[first..]);
    text
}

/// A and B of the star directory, both running (as processes when the
/// federation's are: the star is compared with the federation's A).
pub(crate) struct Star {
    nodes: Nodes,
    clerk_a: TlsMaterial,
}

impl Star {
    /// Builds and starts A and B with [`star_directory`] of `counties`.
    pub(crate) async fn start(opts: &Options, counties: usize) -> anyhow::Result<Self> {
        // The federation has found (or built) it already if it runs them.
        let bin = crate::startup::binary_path(opts).filter(|p| opts.spawn_binary && p.is_file());
        let sandbox = builder("tongban-bench-star-", opts, bin.as_deref())
            .directory(&star_directory(counties))
            .counties(&[A, B])
            .build()?;
        let clerk_a = sandbox.pki().try_issue(tongban_sandbox::clerk(A, "wang"))?;
        let mut nodes = Nodes::new(sandbox, &[(A, "A"), (B, "B")], bin, clerk_a.clone()).await?;
        nodes.start(A).await?;
        nodes.start(B).await?;
        Ok(Self { nodes, clerk_a })
    }

    /// Its two nodes.
    pub(crate) fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    /// `n` clerks of A, one connection each.
    pub(crate) async fn clerks_a(&self, n: usize) -> anyhow::Result<Vec<WindowClient<Channel>>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(window_client(self.nodes.sandbox().addr(A), &self.clerk_a).await?);
        }
        Ok(out)
    }

    /// Stops both nodes.
    pub(crate) async fn shutdown(&mut self) {
        self.nodes.shutdown().await;
    }
}

/// A window client on a new, connected channel.
pub(crate) async fn window_client(
    addr: SocketAddr,
    tls: &TlsMaterial,
) -> anyhow::Result<WindowClient<Channel>> {
    let channel = tongban_sandbox::connect(addr, tls).await?;
    Ok(WindowClient::new(channel).max_decoding_message_size(512 << 20))
}
