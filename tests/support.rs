//! The tests' layer over `tongban_sandbox`: a sandbox per test (its own CA,
//! pre-bound loopback listeners held so restarts get their port back, a temp
//! dir, configs written as a user would write them) under the names the
//! tests use, and the tests' fixtures (applicants, materials, polling).

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tongban_pki::Principal;
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
// Each of the two test binaries uses a part of these.
#[allow(unused_imports)]
pub use tongban_sandbox::{
    HANTAI, Pki, SHANGZHOU, Sandbox, TRUST_DOMAIN as TD, YANTA, clerk, county, node, reviewer,
};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// A valid resident ID (the GB 11643 test vector).
pub const PERSON_ID: &str = "11010519491231002X";
/// A valid unified social credit code (the GB 32100 test vector).
pub const CREDIT_CODE: &str = "91350100M000100Y43";

/// Opens a channel to `addr` presenting `tls` (no call is made yet: with
/// TLS 1.3 a refused client certificate shows at the first call).
pub async fn channel(addr: SocketAddr, tls: &TlsMaterial) -> Channel {
    tongban_sandbox::channel(addr, tls).expect("channel")
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

    /// A clock that reads `at` now and runs on from there.
    pub fn at(at: OffsetDateTime) -> Self {
        let clock = Self::default();
        clock.set(at);
        clock
    }

    /// Sets the time to `at` (it runs on from there).
    pub fn set(&self, at: OffsetDateTime) {
        let offset = (at - OffsetDateTime::now_utc()).whole_seconds();
        self.0.store(offset, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn advance_days(&self, days: i64) {
        self.0
            .fetch_add(days * 86_400, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The sandbox of one test, with the clients the tests use; a node that
/// does not start or stop cleanly fails the test.
pub struct Cluster(Sandbox);

impl std::ops::Deref for Cluster {
    type Target = Sandbox;

    fn deref(&self) -> &Sandbox {
        &self.0
    }
}

impl Cluster {
    /// The example federation's three counties, all running.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// The three counties on `clock`, a test's own days.
    pub async fn on_clock(clock: &TestClock) -> Self {
        Self::start_with(Options {
            clock: Some(clock.clock()),
            ..Options::default()
        })
        .await
    }

    pub async fn start_with(options: Options) -> Self {
        Self::start_after(options, |_| {}).await
    }

    /// Like [`Cluster::start_with`], with `setup` run on the laid-out
    /// sandbox before any node starts (to put a data dir somewhere else).
    pub async fn start_after(options: Options, setup: impl FnOnce(&Sandbox)) -> Self {
        // A node that fails is otherwise only seen at stop(): the sandbox
        // says so at once, at error level, while the test waits.
        let filter = match std::env::var_os("TONGBAN_TEST_LOG") {
            Some(_) => "info",
            None => "tongban_sandbox=error",
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
        let mut extra = options.extra.clone();
        if options.carriers {
            extra.push_str("[[mail.carrier]]\nname = \"EMS\"\nsecret_file = \"ems.secret\"\n");
        }
        let mut builder = tongban_sandbox::Builder::new()
            .temp_prefix("tongban-test-")
            .node_config(&extra)
            .carriers(options.carriers);
        if let Some(clock) = options.clock {
            builder = builder.clock(clock);
        }
        let mut sandbox = builder.build().expect("lay out the sandbox");
        if options.carriers {
            std::fs::write(sandbox.root().join("ems.secret"), CARRIER_SECRET).unwrap();
        }
        setup(&sandbox);
        sandbox.start_all().await.expect("start the nodes");
        Self(sandbox)
    }

    /// Where the node of `code` takes carrier pushes.
    pub fn carrier_addr(&self, code: &str) -> SocketAddr {
        self.0.carrier_addr(code).expect("carriers enabled")
    }

    /// Stops a node and waits until it has shut down. Its port then
    /// refuses connections, like a node that is down.
    pub async fn stop(&mut self, code: &str) {
        self.0.stop(code).await.expect("node stops cleanly");
    }

    /// Gives the node of `code` a clock of its own from its next start.
    pub fn set_clock(&mut self, code: &str, clock: tongban_node::Clock) {
        self.0.set_clock(code, clock);
    }

    /// Starts a stopped node again on its address, with its data.
    pub async fn restart(&mut self, code: &str) {
        self.0.start(code).await.expect("node starts again");
    }

    pub async fn client(&self, code: &str, principal: Principal) -> Channel {
        self.0.client(code, principal)
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
        request_id: String::new(),
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
    verify_and_accept(window, &case.case_no).await
}

/// Restarts 汉台 on a clock two hours ahead of 雁塔's: the application time
/// its handoffs state is then in 雁塔's future, which 雁塔 refuses.
pub async fn hantai_two_hours_ahead(cluster: &mut Cluster) {
    cluster.stop(HANTAI).await;
    cluster.set_clock(
        HANTAI,
        tongban_node::Clock::from_fn(|| time::OffsetDateTime::now_utc() + time::Duration::hours(2)),
    );
    cluster.restart(HANTAI).await;
}

/// Checks the applicant's identity by card reader and accepts the case:
/// the clerk's two steps after a complete application.
pub async fn verify_and_accept(window: &mut WindowClient<Channel>, case_no: &str) -> CaseView {
    window
        .verify_identity(VerifyIdentityRequest {
            case_no: case_no.to_owned(),
            method: "id-card-reader".into(),
            request_id: String::new(),
        })
        .await
        .expect("verify identity");
    window
        .accept(CaseRef {
            case_no: case_no.to_owned(),
            request_id: String::new(),
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
                .get_case(tongban_proto::review::v1::CaseRef {
                    case_no,
                    request_id: String::new(),
                })
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
            let c = w
                .get_case(CaseRef {
                    case_no,
                    request_id: String::new(),
                })
                .await
                .ok()?
                .into_inner();
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

/// Asserts that a call was refused as [`refused`] checks, and that the
/// status details carry the coded reason `reason` at request field `field`
/// (docs/protocol.md §3); returns the refusal's facts.
pub fn refused_coded<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    needle: &str,
    reason: &str,
    field: &str,
) -> std::collections::HashMap<String, String> {
    use prost::Message as _;
    let err = result.expect_err(needle);
    assert_eq!(err.code(), code, "{needle}: {}", err.message());
    assert!(
        err.message().contains(needle),
        "{needle:?} in {:?}",
        err.message()
    );
    let details = tongban_proto::common::v1::Refusal::decode(err.details())
        .unwrap_or_else(|e| panic!("{needle}: the details decode: {e}"));
    assert_eq!(details.reason, reason, "{needle}: {}", err.message());
    assert_eq!(details.field, field, "{needle}: {}", err.message());
    details.args
}

/// Writes a client profile for `principal` on `county`'s node into the
/// cluster's directory (certificate, key and the TOML the CLI reads) and
/// returns its path.
pub fn profile(
    cluster: &Cluster,
    county: &str,
    name: &str,
    principal: Principal,
) -> std::path::PathBuf {
    let tls = cluster.pki().issue(principal);
    let dir = cluster.root();
    std::fs::write(dir.join(format!("{name}.crt")), &tls.cert_pem).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), &tls.key_pem).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "node = \"https://{}\"\nca = \"certs/ca.crt\"\ncert = \"{name}.crt\"\nkey = \"{name}.key\"\n",
            cluster.addr(county)
        ),
    )
    .unwrap();
    path
}

/// Sends `frames` as one handoff stream to `to`'s node, as the node of
/// `from`; returns the single result.
pub async fn handoff_as(
    cluster: &Cluster,
    to: &str,
    from: &str,
    frames: Vec<tongban_proto::federation::v1::HandoffFrame>,
) -> tongban_proto::federation::v1::HandoffResult {
    let mut fed = cluster.federation_as(to, from).await;
    let mut reply = fed
        .handoff(tokio_stream::iter(frames))
        .await
        .expect("handoff call")
        .into_inner();
    assert_eq!(reply.results.len(), 1);
    reply.results.remove(0)
}

/// The code and message of a result that must be a refusal.
pub fn refusal(
    result: &tongban_proto::federation::v1::HandoffResult,
) -> (tongban_proto::federation::v1::refusal::Code, String) {
    use tongban_proto::federation::v1::handoff_result::Outcome;
    match &result.outcome {
        Some(Outcome::Refusal(r)) => (
            tongban_proto::federation::v1::refusal::Code::try_from(r.code).unwrap(),
            r.message.clone(),
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// An RFC 3339 time as the CLI shows it to people:
/// `2026-12-01 08:30:12 CST`.
pub fn cst(rfc3339: &str) -> String {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?} is RFC 3339: {e}"))
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] CST"
        ))
        .unwrap()
}
