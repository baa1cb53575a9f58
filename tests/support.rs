//! The test cluster: a CA per test, pre-bound loopback listeners, a temp dir
//! per node, configs written as a user would write them, and clients for
//! each kind of identity.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tongban_node::{NodeConfig, NodeError};
use tongban_pki::Principal;
use tongban_pki::issue::{Ca, LeafSpec};
use tongban_pki::tls::TlsMaterial;
use tongban_proto::common::v1::{
    Applicant, CaseView, Company, MaterialChunk, MaterialHeader, Person, applicant::Who,
};
use tongban_proto::federation::v1::federation_client::FederationClient;
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_proto::window::v1::{
    ApplyFrame, ApplyHeader, CaseRef, VerifyIdentityRequest, apply_frame,
};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

pub const TD: &str = "shaanxi.tongban";
pub const HANTAI: &str = "610702";
pub const YANTA: &str = "610113";
pub const SHANGZHOU: &str = "611002";
/// A valid resident ID (the GB 11643 test vector).
pub const PERSON_ID: &str = "11010519491231002X";
/// A valid unified social credit code (the GB 32100 test vector).
pub const CREDIT_CODE: &str = "91350100M000100Y43";

/// The example directory shipped in `examples/`, with its loopback ports.
const EXAMPLE_DIRECTORY: &str = include_str!("../examples/federation.toml");
const EXAMPLE_PORTS: [(&str, &str); 3] = [(HANTAI, "7001"), (YANTA, "7002"), (SHANGZHOU, "7003")];

/// A CA made for one test.
pub struct Pki {
    pub ca: Ca,
}

impl Pki {
    pub fn new() -> Self {
        Self::with_domain(TD)
    }

    pub fn with_domain(td: &str) -> Self {
        tongban_pki::install_crypto_provider();
        Self {
            ca: Ca::generate(td, 30).expect("generate ca"),
        }
    }

    fn material(&self, pair: tongban_pki::issue::PemPair) -> TlsMaterial {
        TlsMaterial {
            ca_pem: self.ca.cert_pem().to_owned(),
            cert_pem: pair.cert_pem,
            key_pem: pair.key_pem,
        }
    }

    /// A valid certificate for `principal`.
    pub fn issue(&self, principal: Principal) -> TlsMaterial {
        let hosts = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        self.material(self.ca.issue(principal, &hosts, 10).expect("issue"))
    }

    /// A certificate exactly as specified (odd ones for negative tests).
    pub fn leaf(&self, spec: LeafSpec) -> TlsMaterial {
        self.material(self.ca.issue_leaf(&spec).expect("issue leaf"))
    }

    pub fn spec(uris: &[&str]) -> LeafSpec {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            uris: uris.iter().map(|u| u.to_string()).collect(),
            hosts: vec!["127.0.0.1".into()],
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(1),
            server: false,
        }
    }
}

pub fn county(code: &str) -> tongban_core::CountyCode {
    code.parse().expect("county code")
}

pub fn node(code: &str) -> Principal {
    Principal::Node {
        county: county(code),
    }
}

pub fn clerk(code: &str, name: &str) -> Principal {
    Principal::Clerk {
        county: county(code),
        name: name.into(),
    }
}

pub fn reviewer(code: &str, name: &str) -> Principal {
    Principal::Reviewer {
        county: county(code),
        name: name.into(),
    }
}

/// Opens a channel to `addr` presenting `tls` (no call is made yet: with
/// TLS 1.3 a refused client certificate shows at the first call).
pub async fn channel(addr: SocketAddr, tls: &TlsMaterial) -> Channel {
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls.client_config("127.0.0.1"))
        .unwrap()
        .connect_lazy()
}

/// A channel that trusts `ca_pem` but presents no certificate.
pub fn anonymous_channel(addr: SocketAddr, ca_pem: &str) -> Channel {
    Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem))
                .domain_name("127.0.0.1"),
        )
        .unwrap()
        .connect_lazy()
}

/// A second handle on a listening socket (the same port, the same queue).
fn listener_socket(listener: &tokio::net::TcpListener) -> std::net::TcpListener {
    use std::os::fd::{AsFd, OwnedFd};
    let fd: OwnedFd = listener.as_fd().try_clone_to_owned().expect("dup listener");
    std::net::TcpListener::from(fd)
}

/// A tokio listener on a duplicate of `socket`.
fn tokio_listener(socket: &std::net::TcpListener) -> tokio::net::TcpListener {
    let dup = socket.try_clone().expect("dup socket");
    dup.set_nonblocking(true).expect("nonblocking");
    tokio::net::TcpListener::from_std(dup).expect("tokio listener")
}

/// A running node: its stop signal and its task.
type Running = (oneshot::Sender<()>, JoinHandle<Result<(), NodeError>>);

struct Slot {
    addr: SocketAddr,
    carrier_addr: Option<SocketAddr>,
    config: PathBuf,
    data_dir: PathBuf,
    running: Option<Running>,
    /// The node's listening socket, kept open for the whole test so that no
    /// other test can take the port while the node is down.
    socket: std::net::TcpListener,
    /// While the node is down: the task refusing connections on its socket.
    refuser: Option<JoinHandle<()>>,
}

/// The secret of the test carrier "EMS".
pub const CARRIER_SECRET: &str = "test-carrier-secret-0123456789";

/// How the cluster's nodes are configured.
#[derive(Clone)]
pub struct Options {
    /// Extra config lines for every node.
    pub extra: String,
    /// The clock every node reads.
    pub clock: Option<tongban_node::Clock>,
    /// Whether nodes take carrier pushes (carrier "EMS").
    pub carriers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            // Quick retries so tests that take a partner down finish fast.
            extra: "[delivery]\ninitial_backoff_ms = 20\nmax_backoff_ms = 200\n".into(),
            clock: None,
            carriers: false,
        }
    }
}

/// A clock tests move forward by hand.
#[derive(Clone, Default)]
pub struct TestClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl TestClock {
    pub fn clock(&self) -> tongban_node::Clock {
        let offset = self.0.clone();
        tongban_node::Clock::from_fn(move || {
            OffsetDateTime::now_utc()
                + time::Duration::seconds(offset.load(std::sync::atomic::Ordering::SeqCst))
        })
    }

    pub fn advance_days(&self, days: i64) {
        self.0
            .fetch_add(days * 86_400, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A running federation of nodes on loopback.
pub struct Cluster {
    pub pki: Pki,
    pub root: TempDir,
    slots: BTreeMap<String, Slot>,
    options: Options,
}

impl Cluster {
    /// The example federation's three counties, all running.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        if std::env::var_os("TONGBAN_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_test_writer()
                .try_init();
        }
        let pki = Pki::new();
        let root = tempfile::tempdir().unwrap();
        let mut listeners = Vec::new();
        let mut directory = EXAMPLE_DIRECTORY.to_owned();
        for (code, port) in EXAMPLE_PORTS {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            directory = directory.replace(
                &format!("https://127.0.0.1:{port}"),
                &format!("https://{addr}"),
            );
            listeners.push((code, listener));
        }
        std::fs::write(root.path().join("federation.toml"), &directory).unwrap();
        std::fs::write(root.path().join("ca.crt"), pki.ca.cert_pem()).unwrap();
        let mut cluster = Self {
            pki,
            root,
            slots: BTreeMap::new(),
            options: options.clone(),
        };
        let mut extra = options.extra.clone();
        if options.carriers {
            std::fs::write(cluster.root.path().join("ems.secret"), CARRIER_SECRET).unwrap();
            extra.push_str("[[mail.carrier]]\nname = \"EMS\"\nsecret_file = \"ems.secret\"\n");
        }
        for (code, listener) in listeners {
            let addr = listener.local_addr().unwrap();
            let tls = cluster.pki.issue(node(code));
            let dir = cluster.root.path();
            std::fs::write(dir.join(format!("node-{code}.crt")), &tls.cert_pem).unwrap();
            std::fs::write(dir.join(format!("node-{code}.key")), &tls.key_pem).unwrap();
            let config = dir.join(format!("node-{code}.toml"));
            std::fs::write(
                &config,
                format!(
                    "county = \"{code}\"\nlisten = \"{addr}\"\ndata_dir = \"data-{code}\"\ndirectory = \"federation.toml\"\n\
                     [tls]\nca = \"ca.crt\"\ncert = \"node-{code}.crt\"\nkey = \"node-{code}.key\"\n{extra}"
                ),
            )
            .unwrap();
            cluster.slots.insert(
                code.to_owned(),
                Slot {
                    addr,
                    socket: listener_socket(&listener),
                    refuser: None,
                    carrier_addr: None,
                    config,
                    data_dir: dir.join(format!("data-{code}")),
                    running: None,
                },
            );
            cluster.spawn(code, listener);
        }
        cluster
    }

    fn spawn(&mut self, code: &str, listener: tokio::net::TcpListener) {
        let slot = self.slots.get_mut(code).expect("county");
        let mut config = NodeConfig::load(&slot.config).expect("config loads");
        if let Some(clock) = &self.options.clock {
            config.clock = clock.clone();
        }
        let carrier = self.options.carriers.then(|| {
            let std = std::net::TcpListener::bind(
                slot.carrier_addr.unwrap_or(([127, 0, 0, 1], 0).into()),
            )
            .unwrap();
            std.set_nonblocking(true).unwrap();
            tokio::net::TcpListener::from_std(std).unwrap()
        });
        slot.carrier_addr = carrier.as_ref().map(|l| l.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        let county = code.to_owned();
        let handle = tokio::spawn(async move {
            let result = tongban_node::run_with_carrier(config, listener, carrier, async {
                let _ = rx.await;
            })
            .await;
            if let Err(e) = &result {
                // Otherwise only seen at stop(): say it while tests wait.
                eprintln!("node {county} failed: {e}");
            }
            result
        });
        slot.running = Some((tx, handle));
    }

    /// Where the node of `code` takes carrier pushes.
    pub fn carrier_addr(&self, code: &str) -> SocketAddr {
        self.slots[code].carrier_addr.expect("carriers enabled")
    }

    pub fn addr(&self, code: &str) -> SocketAddr {
        self.slots[code].addr
    }

    pub fn data_dir(&self, code: &str) -> &Path {
        &self.slots[code].data_dir
    }

    pub fn config_path(&self, code: &str) -> &Path {
        &self.slots[code].config
    }

    /// Stops a node and waits until it has shut down. Its port then
    /// refuses connections, like a node that is down.
    pub async fn stop(&mut self, code: &str) {
        let slot = self.slots.get_mut(code).expect("county");
        if let Some((tx, handle)) = slot.running.take() {
            let _ = tx.send(());
            handle
                .await
                .expect("node task")
                .expect("node stops cleanly");
            let refusing = tokio_listener(&slot.socket);
            slot.refuser = Some(tokio::spawn(async move {
                while let Ok((stream, _)) = refusing.accept().await {
                    drop(stream);
                }
            }));
        }
    }

    /// Starts a stopped node again on its address, with its data.
    pub async fn restart(&mut self, code: &str) {
        let slot = self.slots.get_mut(code).expect("county");
        if let Some(refuser) = slot.refuser.take() {
            refuser.abort();
            let _ = refuser.await;
        }
        let listener = tokio_listener(&slot.socket);
        self.spawn(code, listener);
    }

    pub async fn client(&self, code: &str, principal: Principal) -> Channel {
        channel(self.addr(code), &self.pki.issue(principal)).await
    }

    pub async fn window(&self, code: &str) -> WindowClient<Channel> {
        WindowClient::new(self.client(code, clerk(code, "wang")).await)
    }

    pub async fn review(&self, code: &str) -> ReviewClient<Channel> {
        ReviewClient::new(self.client(code, reviewer(code, "li")).await)
    }

    /// The mail service of `code`, as its clerk.
    pub async fn mail(
        &self,
        code: &str,
    ) -> tongban_proto::mail::v1::mail_client::MailClient<Channel> {
        tongban_proto::mail::v1::mail_client::MailClient::new(
            self.client(code, clerk(code, "wang")).await,
        )
    }

    /// The mail service of `code`, as its reviewer.
    pub async fn mail_as_reviewer(
        &self,
        code: &str,
    ) -> tongban_proto::mail::v1::mail_client::MailClient<Channel> {
        tongban_proto::mail::v1::mail_client::MailClient::new(
            self.client(code, reviewer(code, "li")).await,
        )
    }

    /// The federation service of `code`, called as the node of `as_county`.
    pub async fn federation_as(&self, code: &str, as_county: &str) -> FederationClient<Channel> {
        FederationClient::new(self.client(code, node(as_county)).await)
    }
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

pub fn person() -> Applicant {
    Applicant {
        who: Some(Who::Person(Person {
            name: "张三".into(),
            resident_id: PERSON_ID.into(),
        })),
        phone: "13812345678".into(),
        address: "陕西省汉中市汉台区北大街1号".into(),
    }
}

pub fn company() -> Applicant {
    Applicant {
        who: Some(Who::Company(Company {
            name: "商洛秦岭茶业有限公司".into(),
            credit_code: CREDIT_CODE.into(),
            legal_rep_name: "李四".into(),
            legal_rep_id: PERSON_ID.into(),
        })),
        phone: "09142345678".into(),
        address: "陕西省商洛市商州区".into(),
    }
}

/// A material's declaration for `data`.
pub fn header(kind: &str, data: &[u8]) -> MaterialHeader {
    MaterialHeader {
        kind: kind.into(),
        filename: format!("{kind}.pdf"),
        size: data.len() as u64,
        sha256: sha256(data),
    }
}

/// Frames of an upload: chunks of 64 KiB in declaration order.
pub fn chunks(materials: &[(&str, Vec<u8>)]) -> Vec<MaterialChunk> {
    let mut out = Vec::new();
    for (i, (_, data)) in materials.iter().enumerate() {
        for piece in data.chunks(64 * 1024) {
            out.push(MaterialChunk {
                material: i as u32,
                data: piece.to_vec().into(),
            });
        }
    }
    out
}

/// Applies at the window with the given materials.
pub async fn apply(
    window: &mut WindowClient<Channel>,
    item: &str,
    home: &str,
    delivery: &str,
    applicant: Applicant,
    materials: &[(&str, Vec<u8>)],
) -> Result<CaseView, tonic::Status> {
    let header = ApplyHeader {
        item_code: item.into(),
        home_county: home.into(),
        delivery: delivery.into(),
        applicant: Some(applicant),
        materials: materials.iter().map(|(k, d)| header(k, d)).collect(),
    };
    let mut frames = vec![ApplyFrame {
        frame: Some(apply_frame::Frame::Header(header)),
    }];
    frames.extend(chunks(materials).into_iter().map(|c| ApplyFrame {
        frame: Some(apply_frame::Frame::Chunk(c)),
    }));
    window
        .apply(tokio_stream::iter(frames))
        .await
        .map(|r| r.into_inner())
}

/// Materials for the example item GT-0001 (个体工商户登记).
pub fn gt_materials() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("id-card", b"scan of the operator's id card".repeat(3000)),
        ("application-form", b"signed application form".to_vec()),
        ("premises-proof", b"lease contract".to_vec()),
    ]
}

/// Applies for GT-0001 with every material, verifies identity, accepts.
pub async fn accepted_case(window: &mut WindowClient<Channel>, home: &str) -> CaseView {
    accepted_case_with(window, home, "mail-applicant").await
}

/// Like [`accepted_case`], with a delivery mode.
pub async fn accepted_case_with(
    window: &mut WindowClient<Channel>,
    home: &str,
    delivery: &str,
) -> CaseView {
    let case = apply(window, "GT-0001", home, delivery, person(), &gt_materials())
        .await
        .expect("apply");
    window
        .verify_identity(VerifyIdentityRequest {
            case_no: case.case_no.clone(),
            method: "id-card-reader".into(),
        })
        .await
        .expect("verify identity");
    window
        .accept(CaseRef {
            case_no: case.case_no.clone(),
        })
        .await
        .expect("accept")
        .into_inner()
        .case
        .expect("case")
}

/// Polls `check` until it returns `Some`, for at most 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the home node's view of the case satisfies `done`.
pub async fn home_case_until(
    review: &mut ReviewClient<Channel>,
    case_no: &str,
    what: &str,
    done: impl Fn(&CaseView) -> bool,
) -> CaseView {
    eventually(&format!("{case_no}: {what} at home"), || {
        let mut r = review.clone();
        let case_no = case_no.to_owned();
        let done = &done;
        async move {
            let c = r
                .get_case(tongban_proto::review::v1::CaseRef { case_no })
                .await
                .ok()?
                .into_inner();
            done(&c).then_some(c)
        }
    })
    .await
}

/// Waits until the window node's view of the case satisfies `done`.
pub async fn window_case_until(
    window: &mut WindowClient<Channel>,
    case_no: &str,
    what: &str,
    done: impl Fn(&CaseView) -> bool,
) -> CaseView {
    eventually(&format!("{case_no}: {what} at the window"), || {
        let mut w = window.clone();
        let case_no = case_no.to_owned();
        let done = &done;
        async move {
            let c = w.get_case(CaseRef { case_no }).await.ok()?.into_inner();
            done(&c).then_some(c)
        }
    })
    .await
}

/// Waits until the home node's case is in `state`.
pub async fn home_state(
    review: &mut ReviewClient<Channel>,
    case_no: &str,
    state: &str,
) -> CaseView {
    home_case_until(review, case_no, state, |c| c.state == state).await
}

/// Waits until the window's case is in `state`.
pub async fn window_state(
    window: &mut WindowClient<Channel>,
    case_no: &str,
    state: &str,
) -> CaseView {
    window_case_until(window, case_no, state, |c| c.state == state).await
}

/// How many receipts a node's view of a case shows it holds.
pub fn receipts(c: &CaseView) -> usize {
    c.history
        .iter()
        .filter(|h| h.event == "handoff.receipted")
        .count()
}

/// Asserts that no material file was left under a node's data dir.
pub fn assert_blob_dir_empty(data_dir: &std::path::Path) {
    let blobs = data_dir.join("blobs");
    let files: Vec<_> = walk(&blobs);
    assert!(files.is_empty(), "leftover files: {files:?}");
}

/// Every file under a directory.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Asserts that a call was refused with `code` and a message containing `needle`.
pub fn refused<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    needle: &str,
) {
    let err = result.expect_err(needle);
    assert_eq!(err.code(), code, "{needle}: {}", err.message());
    assert!(
        err.message().contains(needle),
        "{needle:?} in {:?}",
        err.message()
    );
}
