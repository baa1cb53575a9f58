//! Cases through real nodes: latency, intake, streaming (the drain is
//! `drain.rs`), and the clerks' calls the other parts share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tongban_proto::common::v1::{
    Applicant, CaseView, Company, MaterialChunk, MaterialHeader, applicant::Who,
};
use tongban_proto::review::v1::CaseRef as ReviewCaseRef;
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_proto::window::v1::{
    ApplyFrame, ApplyHeader, CaseRef, VerifyIdentityRequest, apply_frame,
};
use tonic::codegen::Bytes;
use tonic::transport::Channel;

use crate::cluster::{B, Federation, STAR_COUNTIES, Star};
use crate::cpu::{PhaseCpu, Proc};
use crate::drain::count_in_state;
use crate::echo::{ECHO_C1_P50, UPLOAD, hashed_upload};
use crate::floors::{self, FDATASYNC_P50, SIGN, SYNCS_ON_PATH, VERIFY};
use crate::nodes::Nodes;
use crate::stats::{latencies, mb_per_s, rate};
use crate::{Options, Report};

/// Size of the one real material of a benchmark case.
pub(crate) const MATERIAL: usize = 16 * 1024;

/// Deterministic incompressible bytes.
pub(crate) fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A company applicant whose fields come to about 1 KiB on the wire.
pub(crate) fn applicant() -> Applicant {
    Applicant {
        who: Some(Who::Company(Company {
            name: "商洛秦岭茶业有限公司".repeat(12),
            credit_code: "91350100M000100Y43".into(),
            legal_rep_name: "李四".into(),
            legal_rep_id: "11010519491231002X".into(),
        })),
        phone: "09142345678".into(),
        address: "陕西省汉中市汉台区北大街".repeat(16),
    }
}

/// GT-0001's three materials for case `i`: a `id_card`-byte id-card and
/// two tiny ones, all unique (blobs are content-addressed).
pub(crate) fn gt_materials(i: u64, id_card: usize) -> Vec<(&'static str, Bytes)> {
    let mut card = pseudo_random(id_card, i + 1);
    card[..8].copy_from_slice(&i.to_be_bytes());
    vec![
        ("id-card", Bytes::from(card)),
        (
            "application-form",
            Bytes::from(format!("signed application form #{i}").into_bytes()),
        ),
        (
            "premises-proof",
            Bytes::from(format!("lease contract #{i}").into_bytes()),
        ),
    ]
}

/// Apply with the given materials, streamed in 64 KiB chunks.
pub(crate) async fn apply(
    window: &mut WindowClient<Channel>,
    home: &str,
    materials: &[(&str, Bytes)],
) -> anyhow::Result<CaseView> {
    send_apply(window, apply_frames(home, materials)).await
}

/// Sends the frames of an `apply` (see [`apply_frames`]).
pub(crate) async fn send_apply(
    window: &mut WindowClient<Channel>,
    frames: Vec<ApplyFrame>,
) -> anyhow::Result<CaseView> {
    Ok(window
        .apply(tonic::codegen::tokio_stream::iter(frames))
        .await?
        .into_inner())
}

/// The frames of an `apply` with the given materials: the header (with
/// each material's SHA-256, as a clerk's client computes it before
/// sending) and 64 KiB chunks sharing the materials' buffers.
pub(crate) fn apply_frames(home: &str, materials: &[(&str, Bytes)]) -> Vec<ApplyFrame> {
    let header = ApplyHeader {
        item_code: "GT-0001".into(),
        home_county: home.into(),
        delivery: "mail-applicant".into(),
        applicant: Some(applicant()),
        materials: materials
            .iter()
            .map(|(kind, data)| MaterialHeader {
                kind: (*kind).into(),
                filename: format!("{kind}.pdf"),
                size: data.len() as u64,
                sha256: Sha256::digest(data).to_vec(),
            })
            .collect(),
        request_id: String::new(),
    };
    let mut frames = vec![ApplyFrame {
        frame: Some(apply_frame::Frame::Header(header)),
    }];
    for (i, (_, data)) in materials.iter().enumerate() {
        for at in (0..data.len()).step_by(64 * 1024) {
            frames.push(ApplyFrame {
                frame: Some(apply_frame::Frame::Chunk(MaterialChunk {
                    material: i as u32,
                    data: data.slice(at..(at + 64 * 1024).min(data.len())),
                })),
            });
        }
    }
    frames
}

/// Verify identity and accept: the case is QUEUED for its handoff.
pub(crate) async fn verify_and_accept(
    window: &mut WindowClient<Channel>,
    case_no: &str,
) -> anyhow::Result<CaseView> {
    window
        .verify_identity(VerifyIdentityRequest {
            case_no: case_no.into(),
            method: "id-card-reader".into(),
            request_id: String::new(),
        })
        .await?;
    let receipt = window
        .accept(CaseRef {
            case_no: case_no.into(),
            request_id: String::new(),
        })
        .await?
        .into_inner();
    receipt
        .case
        .ok_or_else(|| anyhow::anyhow!("accept returned no case"))
}

/// Concurrent clerks (one connection each) take in `cases` cases
/// with a 16 KiB material: apply + verify-identity + accept. Returns the
/// elapsed time and the case numbers.
pub(crate) async fn clerks(
    windows: Vec<WindowClient<Channel>>,
    cases: usize,
    seed: u64,
    limit: Duration,
) -> anyhow::Result<(Duration, Vec<String>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + limit;
    let mut tasks = tokio::task::JoinSet::new();
    for mut window in windows {
        let next = next.clone();
        tasks.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= cases || Instant::now() >= deadline {
                    break;
                }
                let materials = gt_materials(seed + i as u64, MATERIAL);
                let case = apply(&mut window, B, &materials).await?;
                anyhow::ensure!(
                    case.missing.is_empty(),
                    "case {} misses {:?}",
                    case.case_no,
                    case.missing
                );
                let case = verify_and_accept(&mut window, &case.case_no).await?;
                done.push(case.case_no);
            }
            Ok::<_, anyhow::Error>(done)
        });
    }
    let mut all = Vec::with_capacity(cases);
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    Ok((started.elapsed(), all))
}

fn parse_at(at: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(at, &Rfc3339).map_err(|e| anyhow::anyhow!("time {at:?}: {e}"))
}

/// When `event` was written to the ledger the view comes from.
fn event_at(case: &CaseView, event: &str) -> anyhow::Result<OffsetDateTime> {
    let e = case
        .history
        .iter()
        .find(|e| e.event == event)
        .ok_or_else(|| anyhow::anyhow!("{} has no {event} in its history", case.case_no))?;
    parse_at(&e.at)
}

fn between(from: OffsetDateTime, to: OffsetDateTime) -> Duration {
    Duration::try_from(to - from).unwrap_or_default()
}

/// Polls A until the case is HANDED_OFF; returns the view with history.
async fn wait_handed_off(
    window: &mut WindowClient<Channel>,
    case_no: &str,
    every: Duration,
    limit: Duration,
) -> anyhow::Result<CaseView> {
    let deadline = Instant::now() + limit;
    loop {
        let case = window
            .get_case(CaseRef {
                case_no: case_no.into(),
                request_id: String::new(),
            })
            .await?
            .into_inner();
        if case.state == "HANDED_OFF" {
            return Ok(case);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{case_no} still {} after {limit:?} ({})",
            case.state,
            case.note
        );
        tokio::time::sleep(every).await;
    }
}

/// The latency floor: the disk syncs on the path at this run's fdatasync
/// p50, one signature, one verification and one echo round trip.
fn latency_floor(report: &Report) -> Option<(String, f64)> {
    let sync = report.value(FDATASYNC_P50)?;
    let sign = report.value(SIGN)?;
    let verify = report.value(VERIFY)?;
    let echo = report.value(ECHO_C1_P50)?;
    Some((
        format!(
            "{SYNCS_ON_PATH:.0} syncs × fdatasync {sync:.0} + sign {sign:.0} + verify {verify:.0} + echo p50 {echo:.0} µs"
        ),
        SYNCS_ON_PATH * sync + sign + verify + echo,
    ))
}

const LATENCY: &str = "3. handoff latency";

/// One case at a time with B up: accept → receipt stored at A.
pub(crate) async fn latency(
    opts: &Options,
    fed: &mut Federation,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut window = fed.clerk_a().await?;
    let mut reviewer = fed.reviewer_b().await?;
    let mut samples = Vec::new();
    // The two legs, from the same ledger timestamps (both nodes share this
    // machine's clock): A's accept → B's entry, B's entry → A's receipt.
    let (mut to_b, mut back) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..opts.latency_cases {
        if started.elapsed() > opts.max_phase {
            report.note(format!(
                "latency: stopped by the time bound after {i} cases"
            ));
            break;
        }
        let materials = gt_materials(2_000_000 + i as u64, MATERIAL);
        let case = apply(&mut window, B, &materials).await?;
        verify_and_accept(&mut window, &case.case_no).await?;
        let case = wait_handed_off(
            &mut window,
            &case.case_no,
            Duration::from_millis(2),
            Duration::from_secs(30),
        )
        .await?;
        let at_b = reviewer
            .get_case(ReviewCaseRef {
                case_no: case.case_no.clone(),
                request_id: String::new(),
            })
            .await?
            .into_inner();
        let accepted = event_at(&case, "case.accepted")?;
        let received = event_at(&at_b, "handoff.received")?;
        let receipted = event_at(&case, "handoff.receipted")?;
        samples.push(between(accepted, receipted));
        to_b.push(between(accepted, received));
        back.push(between(received, receipted));
    }
    let lat = latencies(&mut samples);
    let (to_b, back) = (latencies(&mut to_b), latencies(&mut back));
    let echo = report.value(ECHO_C1_P50);
    let floor = latency_floor(report);
    let f = report.add(
        LATENCY,
        "handoff latency p50 (accept → receipt at A)",
        lat.p50_us,
        "µs",
    );
    if let Some(echo) = echo {
        f.baseline = Some((ECHO_C1_P50.into(), echo));
    }
    if let Some((_, at)) = &floor {
        f.target = Some(("≤ 1.5 × floor".into(), lat.p50_us <= 1.5 * at));
    }
    f.floor = floor;
    report.show_last();
    let echo99 = report.value("echo 17 KiB c=1 p99");
    let f = report.add(LATENCY, "handoff latency p99", lat.p99_us, "µs");
    if let Some(echo) = echo99 {
        f.baseline = Some(("echo 17 KiB c=1 p99".into(), echo));
    }
    report.show_last();
    report.note(format!(
        "latency: {} cases one at a time, from the ledger timestamps of case.accepted and \
         handoff.receipted in A's history (max {:.0} µs); the client polls get_case every 2 ms \
         only to know when to start the next case",
        lat.count, lat.max_us
    ));
    report.note(format!(
        "latency, where it goes (p50 of each leg, from both ledgers): A's accept → B's \
         `handoff.received` entry {:.0} µs (A's flush of the accept, the courier, the stream, \
         B's checks, B's material sync); that entry → A's `handoff.receipted` entry {:.0} µs \
         (B's flush, the reply, A's receipt check)",
        to_b.p50_us, back.p50_us
    ));
    Ok(())
}

const INTAKE: &str = "4. intake";

/// Concurrent clerks with B up.
pub(crate) async fn intake(
    opts: &Options,
    fed: &mut Federation,
    report: &mut Report,
) -> anyhow::Result<()> {
    let windows = fed.clerks_a(opts.clerks).await?;
    let spent = Spent::start(fed.nodes()).await?;
    let (elapsed, cases) = clerks(windows, opts.intake_cases, 3_000_000, opts.max_phase).await?;
    let spent = spent.stop(fed.nodes()).await?;
    let n = cases.len();
    anyhow::ensure!(n > 0, "no case taken in");
    let r = rate(n as f64, elapsed);
    report.add(
        INTAKE,
        &format!("intake at {} clerks (apply+verify+accept)", opts.clerks),
        r,
        "cases/s",
    );
    report.show_last();
    report.add(
        INTAKE,
        "CPU per case (whole process: clerks, A, B)",
        spent.cpu_us_per(n),
        "µs",
    );
    report.show_last();
    report.add(
        INTAKE,
        "sled commits per case (A's intake, B's and A's handoff commits)",
        spent.sled.commits as f64 / n as f64,
        "commits",
    );
    report.show_last();
    report.add(
        INTAKE,
        "sled operations per case (reads + writes in commits)",
        spent.sled_ops_per(n),
        "ops",
    );
    report.show_last();
    report.add(INTAKE, "RPCs per case", 3.0, "RPCs");
    report.show_last();
    let echo = report.value("echo 17 KiB c=16 rate");
    let f = report.add(INTAKE, "intake RPC rate", 3.0 * r, "RPC/s");
    if let Some(echo) = echo {
        f.baseline = Some(("echo 17 KiB c=16 rate".into(), echo));
    }
    report.show_last();
    report.note(format!(
        "intake: {n} cases by {} clerks, one connection each, B up (handoffs run meanwhile); \
         each case is a ~1 KiB company applicant plus GT-0001's three materials: a 16 KiB \
         id-card and two tiny ones (application-form, premises-proof, < 40 bytes)",
        opts.clerks
    ));
    Ok(())
}

const STAR: &str = "4b. intake, 2,844-county star";

/// Intake at A with the example's three counties and with a directory of
/// [`STAR_COUNTIES`] in which A has a partner in every other county, in
/// turn, twice each (so both see the same machine): the courier's cost
/// must not grow with the partners that have nothing to send.
pub(crate) async fn star(
    opts: &Options,
    fed: &mut Federation,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut star = Star::start(opts, STAR_COUNTIES).await?;
    let result = star_rounds(opts, fed, &star).await;
    star.shutdown().await;
    let (small_round, star_round) = result?;
    let (small_n, star_n) = (small_round.cases, star_round.cases);
    let small = rate(small_n as f64, small_round.wall);
    let big = rate(star_n as f64, star_round.wall);
    report.add(STAR, "intake, 3-county directory", small, "cases/s");
    report.show_last();
    let f = report.add(
        STAR,
        &format!("intake, {STAR_COUNTIES}-county star directory"),
        big,
        "cases/s",
    );
    f.baseline = Some(("intake, 3-county directory".into(), small));
    f.target = Some(("≥ 0.95 × 3-county".into(), big >= 0.95 * small));
    report.show_last();
    // CPU per case: the comparison that does not swing with the load (the
    // rates do). The whole process: the clerks, both federations' nodes.
    const SMALL_CPU: &str = "CPU per case, 3-county directory";
    report.add(STAR, SMALL_CPU, small_round.cpu_us_per_case(), "µs");
    report.show_last();
    let f = report.add(
        STAR,
        &format!("CPU per case, {STAR_COUNTIES}-county star directory"),
        star_round.cpu_us_per_case(),
        "µs",
    );
    f.baseline = Some((SMALL_CPU.into(), small_round.cpu_us_per_case()));
    report.show_last();
    for (which, r) in [("3-county", &small_round), ("star", &star_round)] {
        report.add(
            STAR,
            &format!("sled operations per case, {which} directory"),
            r.sled_ops as f64 / r.cases.max(1) as f64,
            "ops",
        );
        report.show_last();
    }
    report.note(format!(
        "star: {small_n} and {star_n} cases by {} clerks at A, B up, in rounds 3-county, \
         star, star, 3-county (the 3-county A also holds the earlier parts' cases); each round \
         waits until its handoffs are receipted, and its CPU and sled operations count them; \
         the star's other {} counties have endpoints that are never dialled (nothing is \
         queued for them)",
        opts.clerks,
        STAR_COUNTIES - 3
    ));
    Ok(())
}

/// What the rounds of one directory took in and what they cost.
#[derive(Default)]
struct Round {
    cases: usize,
    wall: Duration,
    /// CPU seconds of the whole process while these rounds ran, their
    /// handoffs included.
    cpu_s: f64,
    /// sled reads + writes in commits while they ran.
    sled_ops: u64,
}

impl Round {
    fn cpu_us_per_case(&self) -> f64 {
        self.cpu_s * 1e6 / self.cases.max(1) as f64
    }

    fn add(&mut self, wall: Duration, cases: usize, spent: &Spent) {
        self.cases += cases;
        self.wall += wall;
        self.cpu_s += spent.cpu_s;
        self.sled_ops += spent.sled.reads + spent.sled.writes;
    }
}

async fn star_rounds(
    opts: &Options,
    fed: &Federation,
    star: &Star,
) -> anyhow::Result<(Round, Round)> {
    let per_round = (opts.intake_cases / 2).max(1);
    let (mut small, mut big) = (Round::default(), Round::default());
    // 3-county, star, star, 3-county: neither directory always goes first.
    for (i, is_star) in [false, true, true, false].into_iter().enumerate() {
        let seed = 4_000_000 + i as u64 * 50_000;
        let windows = if is_star {
            star.clerks_a(opts.clerks).await?
        } else {
            fed.clerks_a(opts.clerks).await?
        };
        let mut watch = windows[0].clone();
        let nodes = if is_star { star.nodes() } else { fed.nodes() };
        let spent = Spent::start(nodes).await?;
        let (t, done) = clerks(windows, per_round, seed, opts.max_phase).await?;
        // The round's handoffs are its cost too, and must not spill into
        // the next round's: its CPU is counted until none is QUEUED.
        settle(&mut watch, opts.max_phase).await?;
        let round = if is_star { &mut big } else { &mut small };
        round.add(t, done.len(), &spent.stop(nodes).await?);
    }
    Ok((small, big))
}

/// Polls A until it has no case QUEUED (every handoff receipted).
async fn settle(window: &mut WindowClient<Channel>, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while count_in_state(window, "QUEUED", 1).await? > 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "handoffs still QUEUED after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The CPU of the bench and of every node process, and the sled
/// operations of every node's commits, from `start` to `stop`.
struct Spent {
    cpu_s: f64,
    sled: tongban_ledger::WriteCounts,
}

impl Spent {
    async fn start(nodes: &Nodes) -> anyhow::Result<Self> {
        Ok(Self {
            cpu_s: nodes.procs().iter().map(Proc::cpu_s).sum(),
            sled: sled_total(nodes).await?,
        })
    }

    async fn stop(self, nodes: &Nodes) -> anyhow::Result<Self> {
        Ok(Self {
            cpu_s: nodes.procs().iter().map(Proc::cpu_s).sum::<f64>() - self.cpu_s,
            sled: sled_total(nodes).await?.since(&self.sled),
        })
    }

    fn cpu_us_per(&self, n: usize) -> f64 {
        self.cpu_s * 1e6 / n.max(1) as f64
    }

    fn sled_ops_per(&self, n: usize) -> f64 {
        (self.sled.reads + self.sled.writes) as f64 / n.max(1) as f64
    }
}

/// Every node's commits so far, added up.
async fn sled_total(nodes: &Nodes) -> anyhow::Result<tongban_ledger::WriteCounts> {
    let mut sum = tongban_ledger::WriteCounts::default();
    for (_, c) in nodes.store_counts().await? {
        sum.commits += c.commits;
        sum.reads += c.reads;
        sum.writes += c.writes;
        sum.bytes += c.bytes;
    }
    Ok(sum)
}

const STREAM: &str = "5. material streaming";

/// One case with `stream_bytes` of materials, handed off.
pub(crate) async fn stream(
    opts: &Options,
    fed: &mut Federation,
    report: &mut Report,
) -> anyhow::Result<()> {
    let total = opts.stream_bytes;
    let quarter = total / 4;
    let materials = vec![
        ("id-card", Bytes::from(pseudo_random(quarter, 11))),
        ("application-form", Bytes::from(pseudo_random(quarter, 12))),
        (
            "premises-proof",
            Bytes::from(pseudo_random(total - 2 * quarter, 13)),
        ),
    ];
    let mut window = fed.clerk_a().await?;
    // The client's digests are computed before the clock starts: the
    // figure is the node's intake, and a clerk's client hashes the files
    // as it reads them anyway.
    let frames = apply_frames(B, &materials);
    // The floors, right before and right after the upload and the handoff
    // (same disk, same cores, same moment; this VM's disk slows down after
    // a burst): as many bytes written and synced to disk, and a bare
    // upload whose receiver hashes every byte.
    // The disk probe writes the same materials the node will, as it will.
    let files: Vec<&[u8]> = materials.iter().map(|(_, m)| &m[..]).collect();
    let disk_before = floors::disk(fed.root(), &files, floors::DISK_BEFORE, report)?;
    let hashed_before = hashed_upload(total, false).await?;
    report.add(
        floors::SECTION,
        floors::HASHED_BEFORE,
        hashed_before,
        "MB/s",
    );
    report.show_last();
    let both_before = hashed_upload(total, true).await?;
    report.add(floors::SECTION, floors::BOTH_BEFORE, both_before, "MB/s");
    report.show_last();
    let cpu = PhaseCpu::start(&fed.procs())?;
    let t = Instant::now();
    let case = send_apply(&mut window, frames).await?;
    let upload = t.elapsed();
    let (upload_cpu, upload_threads) = cpu.stop();
    anyhow::ensure!(
        case.missing.is_empty(),
        "large case misses {:?}",
        case.missing
    );
    let cpu = PhaseCpu::start(&fed.procs())?;
    verify_and_accept(&mut window, &case.case_no).await?;
    let case = wait_handed_off(
        &mut window,
        &case.case_no,
        Duration::from_millis(20),
        opts.max_phase,
    )
    .await?;
    let (handoff_cpu, handoff_threads) = cpu.stop();
    let handoff = between(
        event_at(&case, "case.accepted")?,
        event_at(&case, "handoff.receipted")?,
    );
    let hashed_after = hashed_upload(total, false).await?;
    report.add(floors::SECTION, floors::HASHED_AFTER, hashed_after, "MB/s");
    report.show_last();
    let both_after = hashed_upload(total, true).await?;
    report.add(floors::SECTION, floors::BOTH_AFTER, both_after, "MB/s");
    report.show_last();
    // In this process the handoff's sender shares the two cores: it hashes
    // what it reads as well (the check before each next envelope).
    let both = (both_before + both_after) / 2.0;
    let disk_after = floors::disk(fed.root(), &files, floors::DISK_AFTER, report)?;
    let floor = stream_floor(
        (disk_before + disk_after) / 2.0,
        (hashed_before + hashed_after) / 2.0,
    );
    let bare = report.value(UPLOAD);
    let f = report.add(
        STREAM,
        "apply upload to A (window intake, incl. hashing + blob fsync)",
        mb_per_s(total, upload),
        "MB/s",
    );
    if let Some(bare) = bare {
        f.baseline = Some((UPLOAD.into(), bare));
    }
    f.target = Some((
        "≥ 0.9 × floor".into(),
        mb_per_s(total, upload) >= 0.9 * floor.1,
    ));
    f.floor = Some(floor.clone());
    report.show_last();
    let r = mb_per_s(total, handoff);
    let f = report.add(STREAM, "handoff A → B (accept → receipt at A)", r, "MB/s");
    f.baseline = Some(("bare upload + SHA-256 at both ends".into(), both));
    f.target = Some(("≥ 0.9 × floor".into(), r >= 0.9 * floor.1));
    f.floor = Some(floor);
    report.show_last();
    // CPU per MB moves less with the machine's load than MB/s does.
    let mb = total as f64 / 1e6;
    report.add(
        STREAM,
        "apply upload CPU (client + A)",
        upload_cpu * 1e3 / mb,
        "ms/MB",
    );
    report.show_last();
    report.add(
        STREAM,
        "handoff CPU (A + B, accept → handed off)",
        handoff_cpu * 1e3 / mb,
        "ms/MB",
    );
    report.show_last();
    report.note(format!("streaming: apply upload {upload_threads}"));
    report.note(format!("streaming: handoff {handoff_threads}"));
    report.note(format!(
        "streaming: one GT-0001 case of {} MiB ({} + {} + {} MiB), accept → receipt {:.2} s \
         (limits raised in the bench config: max_material_bytes, max_case_bytes)",
        total >> 20,
        quarter >> 20,
        quarter >> 20,
        (total - 2 * quarter) >> 20,
        handoff.as_secs_f64()
    ));
    Ok(())
}

/// The streaming floor: the slower of the disk (write + fdatasync) and a
/// bare upload whose receiver hashes every byte, each the mean of right
/// before and right after.
fn stream_floor(disk: f64, hashed: f64) -> (String, f64) {
    (
        format!("min(disk write + fdatasync {disk:.0}, bare upload + SHA-256 {hashed:.0}) MB/s"),
        disk.min(hashed),
    )
}
