//! `tongban dev [--dir D] [--base-port P]`: a whole local federation with one
//! command, for someone trying tongban for the first time.
//!
//! It creates (or, on a later run, reuses) a CA, node, clerk, reviewer and
//! auditor certificates, a `federation.toml` drawn from
//! `examples/federation.toml`, one config per node and ready-made client
//! profiles in D; starts the three nodes in this process on loopback ports
//! P, P+1, P+2; runs one sample case from intake to `CLOSED` over real
//! mutual TLS; prints its trace and the commands for trying things by hand;
//! and keeps serving until Ctrl-C or SIGTERM, then stops every node.
//!
//! A lock file (`D/dev.lock`, holding the pid) keeps two runs off one
//! directory; a taken port is refused before anything starts.

use std::fmt::Write as _;
use std::fs;
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tongban_core::CountyCode;
use tongban_node::{NodeConfig, NodeError};
use tongban_pki::Principal;
use tongban_pki::issue::{CA_CERT, Ca, file_stem};
use tongban_pki::tls::TlsMaterial;
use tongban_proto::common::v1::{
    Applicant, CaseEvent, CaseView, MaterialChunk, MaterialHeader, Person, applicant::Who,
};
use tongban_proto::mail::v1::mail_client::MailClient;
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::review::v1::{ApproveFrame, ApproveHeader, InboxRequest, approve_frame};
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_proto::window::v1::{
    ApplyFrame, ApplyHeader, ListCasesRequest, VerifyIdentityRequest, apply_frame,
};
use tonic::transport::Channel;

use super::status_error;

/// The trust domain of the dev federation (the example directory's).
const TRUST_DOMAIN: &str = "shaanxi.tongban";
/// The directory every dev federation starts from; its endpoints are
/// rewritten to the ports of this run.
const TEMPLATE: &str = include_str!("../../../../examples/federation.toml");
/// The three counties, in port order (P, P+1, P+2).
const COUNTIES: [(&str, &str); 3] = [
    ("610702", "汉台区"),
    ("610113", "雁塔区"),
    ("611002", "商州区"),
];
const HANTAI: &str = "610702";
const YANTA: &str = "610113";
const SHANGZHOU: &str = "611002";
/// Hosts every node certificate serves.
const HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];
/// The sample applicant.
const PERSON_NAME: &str = "张三";
const PERSON_ID: &str = "11010519491231002X";
const PHONE: &str = "13812345678";
const ADDRESS: &str = "陕西省汉中市汉台区北大街1号";
/// How long the sample case may wait for one state.
const WAIT: Duration = Duration::from_secs(30);
/// How often it looks.
const POLL: Duration = Duration::from_millis(50);
/// How long a node may take to answer its first call.
const READY: Duration = Duration::from_secs(15);
/// How long the nodes may take to stop (each has a 5 s grace for calls and
/// another for its courier).
const STOP: Duration = Duration::from_secs(20);

/// The ports of the three nodes, in [`COUNTIES`] order.
type Ports = [u16; 3];

pub(crate) async fn run(dir: &Path, base_port: u16) -> Result<()> {
    if base_port == 0 || base_port > u16::MAX - 2 {
        bail!(
            "--base-port {base_port}: the three nodes need ports P, P+1 and P+2, all below 65536"
        );
    }
    let ports: Ports = [base_port, base_port + 1, base_port + 2];
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock = Lock::acquire(dir)?;
    let mut listeners = Vec::new();
    for port in ports {
        listeners.push(bind(port).await?);
    }

    println!(
        "tongban dev: a local federation of three counties in {}",
        dir.display()
    );
    let fresh = !(dir.join("federation.toml").exists() && dir.join("certs").join(CA_CERT).exists());
    let setup = prepare(dir, &ports).context("cannot set up the federation")?;
    if fresh {
        println!(
            "  ✓ created a CA for {TRUST_DOMAIN} and {} certificates in {}",
            setup.issued,
            dir.join("certs").display()
        );
    } else if setup.issued > 0 {
        println!(
            "  ✓ reusing the federation in {} (renewed {} certificates)",
            dir.display(),
            setup.issued
        );
    } else {
        println!(
            "  ✓ reusing the federation in {} (its certificates, data and cases)",
            dir.display()
        );
    }
    println!(
        "  ✓ wrote {}, 3 node configs and 4 client profiles",
        dir.join("federation.toml").display()
    );

    let mut configs = Vec::new();
    for (code, _) in COUNTIES {
        let path = dir.join(format!("node-{code}.toml"));
        configs.push(NodeConfig::load(&path).map_err(|e| super::BadConfig(e.to_string()))?);
    }
    let mut nodes = Nodes::start(configs, listeners)?;
    let mut stop = Box::pin(super::node::shutdown_signal());

    let session = tokio::select! {
        r = session(dir, &ports) => r.map(|()| true),
        exit = nodes.exited() => Err(exit),
        () = &mut stop => Ok(false),
    };
    let outcome = match session {
        Ok(true) => tokio::select! {
            () = &mut stop => Ok(()),
            exit = nodes.exited() => Err(exit),
        },
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    println!("stopping the nodes…");
    let stopped = nodes.stop().await;
    drop(lock);
    if let (Err(_), Err(e)) = (&outcome, &stopped) {
        eprintln!("error: {e:#}");
    }
    outcome?;
    stopped?;
    println!("stopped");
    Ok(())
}

/// Everything after the nodes start: wait until they answer, run the sample
/// case, print its trace and the commands for trying things by hand.
async fn session(dir: &Path, ports: &Ports) -> Result<()> {
    let c = Clients::connect(dir, ports).await?;
    c.ready(ports).await?;
    println!();
    println!(
        "Sample case: 个体工商户登记 (GT-0001) taken in at 汉台区 for 雁塔区, result mailed to the applicant"
    );
    let case_no = sample_case(&c).await?;
    println!();
    trace(&c, dir, ports, &case_no).await?;
    println!();
    print_commands(dir, ports, &case_no);
    Ok(())
}

// ---------------------------------------------------------------------------
// The lock and the ports.

/// `D/dev.lock`, holding this process's pid while it runs.
struct Lock {
    path: PathBuf,
}

impl Lock {
    fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("dev.lock");
        let me = std::process::id();
        for _ in 0..3 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "{me}")
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let mut text = fs::read_to_string(&path).unwrap_or_default();
                    if text.trim().is_empty() {
                        // Another run may have just created it and not yet
                        // written its pid.
                        std::thread::sleep(Duration::from_millis(200));
                        text = fs::read_to_string(&path).unwrap_or_default();
                    }
                    if let Ok(pid) = text.trim().parse::<u32>()
                        && pid != me
                        && alive(pid)
                    {
                        bail!(
                            "another tongban dev (pid {pid}) is running in {}",
                            dir.display()
                        );
                    }
                    // Stale: left by a run that was killed.
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(e).with_context(|| {
                                format!("cannot remove the stale lock {}", path.display())
                            });
                        }
                    }
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        bail!("cannot take the lock {}", path.display())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Only our own: never a lock another run took after ours went stale.
        let ours = fs::read_to_string(&self.path)
            .is_ok_and(|t| t.trim() == std::process::id().to_string());
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Whether `pid` is a running tongban (a recycled pid of another program
/// does not count).
fn alive(pid: u32) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if !proc.exists() {
        return false;
    }
    match fs::read(proc.join("cmdline")) {
        Ok(cmdline) => String::from_utf8_lossy(&cmdline).contains("tongban"),
        // Not ours to read: assume it is what the lock says.
        Err(_) => true,
    }
}

async fn bind(port: u16) -> Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            bail!("port {port} is already in use: stop whatever listens there or pass --base-port")
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on 127.0.0.1:{port}")),
    }
}

// ---------------------------------------------------------------------------
// The files.

struct Setup {
    /// Certificates issued this run.
    issued: usize,
}

fn county(code: &str) -> CountyCode {
    // The codes are constants of this file, all valid.
    code.parse()
        .unwrap_or_else(|e| panic!("county code {code}: {e}"))
}

fn principals() -> Vec<Principal> {
    let mut out: Vec<Principal> = COUNTIES
        .iter()
        .map(|(code, _)| Principal::Node {
            county: county(code),
        })
        .collect();
    out.push(Principal::Clerk {
        county: county(HANTAI),
        name: "wang".into(),
    });
    out.push(Principal::Clerk {
        county: county(SHANGZHOU),
        name: "zhou".into(),
    });
    out.push(Principal::Reviewer {
        county: county(YANTA),
        name: "li".into(),
    });
    out.push(Principal::Auditor {
        county: None,
        name: "zhao".into(),
    });
    out
}

/// The client profiles: file stem, node index, certificate stem, who.
const PROFILES: [(&str, usize, &str, &str); 4] = [
    (
        "clerk-610702",
        0,
        "clerk-610702-wang",
        "clerk wang of 汉台区 (610702)",
    ),
    (
        "clerk-611002",
        2,
        "clerk-611002-zhou",
        "clerk zhou of 商州区 (611002)",
    ),
    (
        "reviewer-610113",
        1,
        "reviewer-610113-li",
        "reviewer li of 雁塔区 (610113)",
    ),
    ("auditor", 0, "auditor-zhao", "province auditor zhao"),
];

fn endpoint(port: u16) -> String {
    format!("https://127.0.0.1:{port}")
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes (or brings up to date) everything in `dir` but the data.
fn prepare(dir: &Path, ports: &Ports) -> Result<Setup> {
    let issued = certificates(&dir.join("certs"))?;

    let directory = dir.join("federation.toml");
    let text = match fs::read_to_string(&directory) {
        // Kept as it is (someone may have added items), endpoints aside.
        Ok(existing) => existing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TEMPLATE.to_owned(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", directory.display())),
    };
    let rewritten = set_endpoints(&text, ports);
    if rewritten != text || !directory.exists() {
        write(&directory, &rewritten)?;
    }

    for ((code, name), port) in COUNTIES.iter().zip(ports) {
        write(
            &dir.join(format!("node-{code}.toml")),
            &format!(
                "# Node config of {name} ({code}), written by `tongban dev` on every run.\n\
                 # Paths are relative to this file.\n\
                 county = \"{code}\"\n\
                 listen = \"127.0.0.1:{port}\"\n\
                 data_dir = \"data/{code}\"\n\
                 directory = \"federation.toml\"\n\
                 \n\
                 [tls]\n\
                 ca = \"certs/ca.crt\"\n\
                 cert = \"certs/node-{code}.crt\"\n\
                 key = \"certs/node-{code}.key\"\n"
            ),
        )?;
    }

    let profiles = dir.join("profiles");
    fs::create_dir_all(&profiles)
        .with_context(|| format!("cannot create {}", profiles.display()))?;
    for (file, node, cert, who) in PROFILES {
        write(
            &profiles.join(format!("{file}.toml")),
            &format!(
                "# Client profile of {who}, written by `tongban dev`.\n\
                 # Use it with --profile FILE or TONGBAN_PROFILE=FILE; paths are relative to this file.\n\
                 node = \"{}\"\n\
                 ca = \"../certs/ca.crt\"\n\
                 cert = \"../certs/{cert}.crt\"\n\
                 key = \"../certs/{cert}.key\"\n",
                endpoint(ports[node])
            ),
        )?;
    }

    let samples = dir.join("samples");
    fs::create_dir_all(&samples).with_context(|| format!("cannot create {}", samples.display()))?;
    for (_, file, bytes) in sample_materials() {
        let path = samples.join(file);
        fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let result = samples.join(RESULT_FILE);
    fs::write(&result, result_document())
        .with_context(|| format!("cannot write {}", result.display()))?;
    Ok(Setup { issued })
}

/// Creates the CA if there is none and issues every certificate that is
/// missing, expiring or otherwise wrong (all of them for a new CA).
fn certificates(certs: &Path) -> Result<usize> {
    let ca_path = certs.join(CA_CERT);
    let (ca, new_ca) = if ca_path.exists() {
        let ca = Ca::load(certs)
            .with_context(|| format!("cannot reuse the CA in {}", certs.display()))?;
        if ca.trust_domain() != TRUST_DOMAIN {
            bail!(
                "the CA in {} is for {:?}, not {TRUST_DOMAIN:?}: use another --dir",
                certs.display(),
                ca.trust_domain()
            );
        }
        (ca, false)
    } else {
        let ca = Ca::generate(TRUST_DOMAIN, 3650)?;
        ca.write(certs, true)?;
        (ca, true)
    };
    let troubled: Vec<String> = if new_ca {
        Vec::new()
    } else {
        tongban_pki::issue::list(certs)?
            .into_iter()
            .filter(|r| r.file != CA_CERT && !r.problems.is_empty())
            .map(|r| r.file)
            .collect()
    };
    let hosts: Vec<String> = HOSTS.iter().map(|h| (*h).to_owned()).collect();
    let mut issued = 0;
    for principal in principals() {
        let stem = file_stem(&principal);
        let present = certs.join(format!("{stem}.crt")).exists()
            && certs.join(format!("{stem}.key")).exists();
        if new_ca || !present || troubled.contains(&format!("{stem}.crt")) {
            let hosts: &[String] = match principal {
                Principal::Node { .. } => &hosts,
                _ => &[],
            };
            ca.issue_to_dir(certs, principal, hosts, 365, true)
                .with_context(|| format!("cannot issue {stem}"))?;
            issued += 1;
        }
    }
    Ok(issued)
}

/// Sets the endpoint of each of the three counties in a federation
/// directory's text to its port here, leaving everything else as it is.
fn set_endpoints(text: &str, ports: &Ports) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // The current [[county]] table: its code and its endpoint line.
    let mut block: Option<(Option<String>, Option<usize>)> = None;
    let mut edits = Vec::new();
    let mut close = |block: &mut Option<(Option<String>, Option<usize>)>| {
        if let Some((Some(code), Some(line))) = block.take()
            && let Some(i) = COUNTIES.iter().position(|(c, _)| *c == code)
        {
            edits.push((line, ports[i]));
        }
    };
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            close(&mut block);
            if t == "[[county]]" {
                block = Some((None, None));
            }
            continue;
        }
        if let Some((code, endpoint)) = block.as_mut()
            && let Some((key, value)) = t.split_once('=')
        {
            let value = value
                .split('#')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            match key.trim() {
                "code" => *code = Some(value.to_owned()),
                "endpoint" => *endpoint = Some(i),
                _ => {}
            }
        }
    }
    close(&mut block);
    for (line, port) in edits {
        lines[line] = format!("endpoint = \"{}\"", endpoint(port));
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------
// The nodes.

/// The three nodes, on a runtime of their own whose threads log only
/// warnings unless a log level was asked for.
struct Nodes {
    runtime: Option<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    exits: mpsc::UnboundedReceiver<(String, Result<(), NodeError>)>,
    running: usize,
}

impl Nodes {
    fn start(configs: Vec<NodeConfig>, listeners: Vec<tokio::net::TcpListener>) -> Result<Self> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder
            .enable_all()
            .worker_threads(2)
            .thread_name("tongban-dev-node");
        if let Some(dispatch) = quiet_logging() {
            builder.on_thread_start(move || {
                // For the thread's whole life: the guard would restore the
                // global subscriber when dropped.
                std::mem::forget(tracing::dispatcher::set_default(&dispatch));
            });
        }
        let runtime = builder.build().context("cannot start the nodes' runtime")?;
        let (stop, stop_rx) = watch::channel(false);
        let (exit_tx, exits) = mpsc::unbounded_channel();
        let running = configs.len();
        for (config, listener) in configs.into_iter().zip(listeners) {
            let mut stop_rx = stop_rx.clone();
            let exit_tx = exit_tx.clone();
            let code = config.county.to_string();
            // Registered with the reactor of the runtime that serves it.
            let listener = listener
                .into_std()
                .context("cannot hand the listener to the node")?;
            runtime.spawn(async move {
                let result = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        tongban_node::run(config, listener, async move {
                            let _ = stop_rx.wait_for(|stop| *stop).await;
                        })
                        .await
                    }
                    Err(e) => Err(NodeError::Server(e.to_string())),
                };
                let _ = exit_tx.send((code, result));
            });
        }
        Ok(Self {
            runtime: Some(runtime),
            stop,
            exits,
            running,
        })
    }

    /// Resolves when a node stops without being asked to, with why.
    async fn exited(&mut self) -> anyhow::Error {
        match self.exits.recv().await {
            Some((code, result)) => {
                self.running -= 1;
                match result {
                    Ok(()) => anyhow!("node {code} stopped unexpectedly"),
                    Err(e) => anyhow!("node {code} stopped: {e}"),
                }
            }
            None => anyhow!("the nodes stopped unexpectedly"),
        }
    }

    /// Asks every node to stop and waits until they have (bounded).
    async fn stop(mut self) -> Result<()> {
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + STOP;
        let mut failures = Vec::new();
        while self.running > 0 {
            match tokio::time::timeout_at(deadline, self.exits.recv()).await {
                Ok(Some((code, result))) => {
                    self.running -= 1;
                    if let Err(e) = result {
                        failures.push(format!("node {code}: {e}"));
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    failures.push(format!(
                        "{} node(s) did not stop within {} s",
                        self.running,
                        STOP.as_secs()
                    ));
                    break;
                }
            }
        }
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks: not on this one's threads.
            let _ = tokio::task::spawn_blocking(move || {
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .await;
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("{}", failures.join("; "))
        }
    }
}

/// The subscriber for the nodes' threads: warnings only, in the format the
/// command line asked for; `None` when `--log-level` or `TONGBAN_LOG` asked
/// for something (then the nodes log like everything else).
fn quiet_logging() -> Option<tracing::Dispatch> {
    let args: Vec<String> = std::env::args().collect();
    let asked = std::env::var_os("TONGBAN_LOG").is_some()
        || args
            .iter()
            .any(|a| a == "--log-level" || a.starts_with("--log-level="));
    if asked {
        return None;
    }
    let json = args.iter().any(|a| a == "--log-format=json")
        || args
            .windows(2)
            .any(|w| w[0] == "--log-format" && w[1] == "json");
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    Some(if json {
        tracing::Dispatch::new(builder.json().finish())
    } else {
        tracing::Dispatch::new(builder.finish())
    })
}

// ---------------------------------------------------------------------------
// The sample case.

/// Clients for the sample case, each with its own certificate.
struct Clients {
    window: WindowClient<Channel>,
    window_shangzhou: WindowClient<Channel>,
    review: ReviewClient<Channel>,
    mail_window: MailClient<Channel>,
    mail_home: MailClient<Channel>,
}

impl Clients {
    async fn connect(dir: &Path, ports: &Ports) -> Result<Self> {
        let certs = dir.join("certs");
        let open = |port: u16, stem: &'static str| {
            let certs = certs.clone();
            async move {
                let tls = TlsMaterial::load(
                    &certs.join(CA_CERT),
                    &certs.join(format!("{stem}.crt")),
                    &certs.join(format!("{stem}.key")),
                )?;
                crate::client::channel(&endpoint(port), &tls).await
            }
        };
        let wang = open(ports[0], "clerk-610702-wang").await?;
        let li = open(ports[1], "reviewer-610113-li").await?;
        let zhou = open(ports[2], "clerk-611002-zhou").await?;
        Ok(Self {
            window: WindowClient::new(wang.clone()),
            window_shangzhou: WindowClient::new(zhou),
            review: ReviewClient::new(li.clone()),
            mail_window: MailClient::new(wang),
            mail_home: MailClient::new(li),
        })
    }

    /// Waits until each node answers a call from one of its users.
    async fn ready(&self, ports: &Ports) -> Result<()> {
        for (i, (code, name)) in COUNTIES.iter().enumerate() {
            let deadline = Instant::now() + READY;
            loop {
                let answer = match *code {
                    YANTA => self.review.clone().inbox(InboxRequest {}).await.map(|_| ()),
                    HANTAI => list(&self.window).await,
                    _ => list(&self.window_shangzhou).await,
                };
                match answer {
                    Ok(()) => break,
                    Err(s) if Instant::now() >= deadline => {
                        return Err(status_error(s))
                            .with_context(|| format!("node {code} {name} does not answer"));
                    }
                    Err(_) => tokio::time::sleep(POLL).await,
                }
            }
            println!("  ✓ {code} {name} serving on {}", endpoint(ports[i]));
        }
        Ok(())
    }
}

async fn list(window: &WindowClient<Channel>) -> Result<(), tonic::Status> {
    window
        .clone()
        .list_cases(ListCasesRequest {
            state: String::new(),
            limit: 1,
        })
        .await
        .map(|_| ())
}

fn step(line: impl std::fmt::Display) {
    println!("  ✓ {line}");
}

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

/// The sample's materials: kind, file name, contents.
fn sample_materials() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let pdf = |title: &str| {
        format!(
            "%PDF-1.4\n% tongban dev sample: {title}\n% 申请人 {PERSON_NAME} {PERSON_ID}\n%%EOF\n"
        )
        .into_bytes()
    };
    vec![
        (
            "id-card",
            "id-card.jpg",
            format!("JFIF sample scan: 居民身份证 {PERSON_NAME} {PERSON_ID} (front and back)\n")
                .repeat(64)
                .into_bytes(),
        ),
        (
            "application-form",
            "application-form.pdf",
            pdf("个体工商户登记申请书 (signed)"),
        ),
        (
            "premises-proof",
            "lease-contract.pdf",
            pdf("经营场所使用证明: 房屋租赁合同, 雁塔区小寨东路1号"),
        ),
    ]
}

const RESULT_FILE: &str = "licence.pdf";

fn result_document() -> Vec<u8> {
    format!(
        "%PDF-1.4\n% tongban dev sample: 营业执照 (个体工商户), 经营者 {PERSON_NAME}, 雁塔区市场监督管理局\n%%EOF\n"
    )
    .into_bytes()
}

fn seconds_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A valid UPU S10 waybill for `prefix` and the last eight digits of `n`.
fn waybill(prefix: &str, n: u64) -> String {
    tongban_core::Waybill::s10(prefix, n)
        .map(|w| w.to_string())
        .expect("the sample uses valid service indicators (EA, EB)")
}

/// A valid unified social credit code of an individual business (92…) in
/// 雁塔区, the licence number of the sample's result.
fn licence_no(n: u64) -> String {
    let body = format!("92{YANTA}MA6{:06}", n % 1_000_000);
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .map(|c| format!("{body}{c}"))
        .find(|code| tongban_core::CreditCode::parse(code).is_ok())
        .unwrap_or_else(|| format!("{body}0"))
}

/// Polls `get` every 50 ms until the case is in `state`, for at most 30 s.
async fn wait_for<F, Fut>(what: &str, state: &str, get: F) -> Result<CaseView>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<CaseView>, tonic::Status>>,
{
    wait_until(what, state, |c| c.state == state, get).await
}

/// Polls `get` every 50 ms until `done` holds for the case (described as
/// `expected`), for at most 30 s.
async fn wait_until<F, Fut>(
    what: &str,
    expected: &str,
    done: impl Fn(&CaseView) -> bool,
    mut get: F,
) -> Result<CaseView>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<CaseView>, tonic::Status>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let last = match get().await {
            Ok(c) if done(c.get_ref()) => return Ok(c.into_inner()),
            Ok(c) => {
                let c = c.into_inner();
                if c.note.is_empty() {
                    format!("it is {}", c.state)
                } else {
                    format!("it is {} ({})", c.state, c.note)
                }
            }
            Err(s) => status_error(s).to_string(),
        };
        if Instant::now() >= deadline {
            bail!(
                "{what} did not reach {expected} within {} s: {last}",
                WAIT.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

fn window_ref(case_no: &str) -> tongban_proto::window::v1::CaseRef {
    tongban_proto::window::v1::CaseRef {
        case_no: case_no.to_owned(),
    }
}

fn review_ref(case_no: &str) -> tongban_proto::review::v1::CaseRef {
    tongban_proto::review::v1::CaseRef {
        case_no: case_no.to_owned(),
    }
}

/// Runs the sample case from intake to CLOSED on both nodes; returns its
/// case number.
async fn sample_case(c: &Clients) -> Result<String> {
    let (mut window, mut review) = (c.window.clone(), c.review.clone());
    let (mut mail_window, mut mail_home) = (c.mail_window.clone(), c.mail_home.clone());
    let wang = format!("{HANTAI} clerk wang");
    let li = format!("{YANTA} reviewer li");

    // 1. Intake at 汉台区.
    let materials = sample_materials();
    let header = ApplyHeader {
        item_code: "GT-0001".into(),
        home_county: YANTA.into(),
        delivery: "mail-applicant".into(),
        applicant: Some(Applicant {
            who: Some(Who::Person(Person {
                name: PERSON_NAME.into(),
                resident_id: PERSON_ID.into(),
            })),
            phone: PHONE.into(),
            address: ADDRESS.into(),
        }),
        materials: materials
            .iter()
            .map(|(kind, file, bytes)| MaterialHeader {
                kind: (*kind).into(),
                filename: (*file).into(),
                size: bytes.len() as u64,
                sha256: sha256(bytes),
            })
            .collect(),
    };
    let mut frames = vec![ApplyFrame {
        frame: Some(apply_frame::Frame::Header(header)),
    }];
    for (i, (_, _, bytes)) in materials.into_iter().enumerate() {
        frames.push(ApplyFrame {
            frame: Some(apply_frame::Frame::Chunk(MaterialChunk {
                material: i as u32,
                data: bytes.into(),
            })),
        });
    }
    let case = window
        .apply(tokio_stream::iter(frames))
        .await
        .map_err(status_error)
        .context("apply")?
        .into_inner();
    let case_no = case.case_no.clone();
    step(format_args!(
        "{wang}: applied for {PERSON_NAME} with 3 materials → {case_no} ({})",
        case.state
    ));

    let case = window
        .verify_identity(VerifyIdentityRequest {
            case_no: case_no.clone(),
            method: "id-card-reader".into(),
        })
        .await
        .map_err(status_error)
        .context("verify identity")?
        .into_inner();
    step(format_args!(
        "{wang}: identity verified (id-card-reader) → {}",
        case.state
    ));

    let receipt = window
        .accept(window_ref(&case_no))
        .await
        .map_err(status_error)
        .context("accept at the window")?
        .into_inner();
    let state = receipt
        .case
        .as_ref()
        .map(|c| c.state.as_str())
        .unwrap_or("?");
    step(format_args!(
        "{wang}: accepted, intake receipt issued → {state}"
    ));

    // 2. Handoff to 雁塔区, receipted.
    let started = Instant::now();
    wait_for("the handoff", "HANDED_OFF", || {
        let (mut client, case) = (window.clone(), window_ref(&case_no));
        async move { client.get_case(case).await }
    })
    .await?;
    step(format_args!(
        "{HANTAI} → {YANTA}: handed off over mutual TLS, receipt signed by 雁塔区 → HANDED_OFF ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    // The home node has it once the window holds its receipt.
    wait_for("the case at 雁塔区", "HANDED_OFF", || {
        let (mut client, case) = (review.clone(), review_ref(&case_no));
        async move { client.get_case(case).await }
    })
    .await?;

    // 3. Review at 雁塔区.
    let case = review
        .accept(review_ref(&case_no))
        .await
        .map_err(status_error)
        .context("accept for review")?
        .into_inner();
    step(format_args!(
        "{li}: accepted for review (受理) → {}, due {} ({} working days)",
        case.state, case.due_date, case.working_days_left
    ));

    // The clerk mails once the window knows the case is under review.
    wait_for("the case at 汉台区", "UNDER_REVIEW", || {
        let (mut client, case) = (window.clone(), window_ref(&case_no));
        async move { client.get_case(case).await }
    })
    .await?;

    let secs = seconds_now();
    let materials_waybill = waybill("EA", secs);
    let case = mail_window
        .send(SendRequest {
            case_no: case_no.clone(),
            leg: "materials".into(),
            carrier: "EMS".into(),
            waybill: materials_waybill.clone(),
        })
        .await
        .map_err(status_error)
        .context("mail the paper originals")?
        .into_inner();
    step(format_args!(
        "{wang}: paper originals mailed to 雁塔区, EMS {materials_waybill} → {}",
        case.state
    ));

    // The reviewer records the parcel once 雁塔区 knows it was sent.
    wait_until(
        "the case at 雁塔区",
        "a materials leg",
        |c| c.mail.iter().any(|m| m.waybill == materials_waybill),
        || {
            let (mut client, case) = (review.clone(), review_ref(&case_no));
            async move { client.get_case(case).await }
        },
    )
    .await?;
    let case = review
        .paper_received(review_ref(&case_no))
        .await
        .map_err(status_error)
        .context("record the paper originals")?
        .into_inner();
    step(format_args!(
        "{li}: paper originals received → {}",
        case.state
    ));

    let licence = licence_no(secs);
    let doc = result_document();
    let frames = vec![
        ApproveFrame {
            frame: Some(approve_frame::Frame::Header(ApproveHeader {
                case_no: case_no.clone(),
                licence_no: licence.clone(),
                result: Some(MaterialHeader {
                    kind: "result".into(),
                    filename: RESULT_FILE.into(),
                    size: doc.len() as u64,
                    sha256: sha256(&doc),
                }),
            })),
        },
        ApproveFrame {
            frame: Some(approve_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data: doc.into(),
            })),
        },
    ];
    let case = review
        .approve(tokio_stream::iter(frames))
        .await
        .map_err(status_error)
        .context("approve")?
        .into_inner();
    step(format_args!(
        "{li}: approved, licence {licence} → {}",
        case.state
    ));

    // 4. The result by mail, delivered.
    let result_waybill = waybill("EB", secs);
    let case = mail_home
        .send(SendRequest {
            case_no: case_no.clone(),
            leg: "result".into(),
            carrier: "EMS".into(),
            waybill: result_waybill.clone(),
        })
        .await
        .map_err(status_error)
        .context("mail the result")?
        .into_inner();
    step(format_args!(
        "{li}: result mailed to the applicant, EMS {result_waybill} → {}",
        case.state
    ));

    let case = mail_home
        .event(EventRequest {
            waybill: result_waybill.clone(),
            status: "delivered".into(),
            at: String::new(),
            note: "本人签收".into(),
        })
        .await
        .map_err(status_error)
        .context("record the delivery")?
        .into_inner();
    step(format_args!(
        "{li}: EMS reports {result_waybill} delivered → {}",
        case.state
    ));
    if case.state != "CLOSED" {
        bail!(
            "the sample case is {} after delivery, not CLOSED",
            case.state
        );
    }

    wait_for("the case at 汉台区", "CLOSED", || {
        let (mut client, case) = (window.clone(), window_ref(&case_no));
        async move { client.get_case(case).await }
    })
    .await?;
    step(format_args!("{HANTAI} 汉台区 reports {case_no} CLOSED too"));
    Ok(case_no)
}

// ---------------------------------------------------------------------------
// The trace and the commands.

/// Prints the case's trace as `tongban audit trace` does, as province
/// auditor zhao, verified against both nodes' signed checkpoints; when that
/// cannot be done, the history both nodes report, merged by time.
async fn trace(c: &Clients, dir: &Path, ports: &Ports, case_no: &str) -> Result<()> {
    println!("Trace of {case_no} (tongban audit trace, as province auditor zhao):");
    let auth = crate::args::AuditAuth {
        ca: None,
        cert: None,
        key: None,
        profile: Some(dir.join("profiles").join("auditor.toml")),
        json: false,
    };
    let command = crate::args::AuditCommand::Trace {
        case: case_no.to_owned(),
        nodes: vec![endpoint(ports[0]), endpoint(ports[1])],
        html: None,
        reveal: false,
    };
    match super::audit::run(&auth, command).await {
        Ok(()) => Ok(()),
        Err(e) => {
            println!("  ! the audit trace failed: {e:#}");
            println!();
            print_history(c, case_no).await
        }
    }
}

/// Prints the case's history from both nodes' ledgers, merged by time.
async fn print_history(c: &Clients, case_no: &str) -> Result<()> {
    let at_window = c
        .window
        .clone()
        .get_case(window_ref(case_no))
        .await
        .map_err(status_error)
        .context("the case at 汉台区")?
        .into_inner();
    let at_home = c
        .review
        .clone()
        .get_case(review_ref(case_no))
        .await
        .map_err(status_error)
        .context("the case at 雁塔区")?
        .into_inner();
    let mut events: Vec<CaseEvent> = at_window
        .history
        .into_iter()
        .chain(at_home.history)
        .collect();
    let time = |e: &CaseEvent| {
        time::OffsetDateTime::parse(&e.at, &time::format_description::well_known::Rfc3339).ok()
    };
    events.sort_by(|a, b| {
        time(a)
            .cmp(&time(b))
            .then_with(|| a.county.cmp(&b.county))
            .then(a.seq.cmp(&b.seq))
    });
    println!(
        "History of {case_no} ({} ledger entries on 汉台区 and 雁塔区, merged by time, not verified):",
        events.len()
    );
    let width = events.iter().map(|e| e.event.len()).max().unwrap_or(0);
    let mut out = String::new();
    let shown = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    for e in &events {
        let at = time(e)
            .map(|t| t.to_offset(time::UtcOffset::UTC))
            .and_then(|t| t.format(&shown).ok())
            .unwrap_or_else(|| e.at.clone());
        let _ = writeln!(
            out,
            "  {at}  {}  {:<width$}  {}",
            e.county, e.event, e.detail
        );
    }
    print!("{out}");
    Ok(())
}

/// Quotes `s` for a POSIX shell if it needs it.
fn sh(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=+,@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `cargo run --release --` when running from a cargo build, else this binary.
fn command_prefix() -> String {
    match std::env::current_exe() {
        Ok(exe) if exe.components().any(|c| c.as_os_str() == "target") => {
            "cargo run --release --".to_owned()
        }
        Ok(exe) => sh(&exe.display().to_string()),
        Err(_) => "tongban".to_owned(),
    }
}

/// Prints the commands for trying the clerk, reviewer, mail and auditor
/// paths by hand against the running federation.
fn print_commands(dir: &Path, ports: &Ports, case_no: &str) {
    let t = command_prefix();
    let d = |rel: &str| sh(&dir.join(rel).display().to_string());
    let as_ = |profile: &str| {
        format!(
            "TONGBAN_PROFILE={} {t}",
            d(&format!("profiles/{profile}.toml"))
        )
    };
    let clerk = as_("clerk-610702");
    let zhou = as_("clerk-611002");
    let reviewer = as_("reviewer-610113");
    let secs = seconds_now();
    let (w1, w2) = (waybill("EC", secs), waybill("ED", secs));
    let lines = [
        "The federation keeps running. Try it by hand, from this directory (NEW is the case_no that apply prints):".to_owned(),
        String::new(),
        "  # clerk wang at the 汉台区 window (610702): the cases, the sample case, a new case".to_owned(),
        format!("  {clerk} window list"),
        format!("  {clerk} window status {case_no}"),
        format!(
            "  {clerk} window apply --item GT-0001 --home {YANTA} --delivery mail-applicant --person-name {} --person-id {PERSON_ID} --phone {PHONE} --address {} --material id-card={} --material application-form={} --material premises-proof={}",
            sh(PERSON_NAME),
            sh(ADDRESS),
            d("samples/id-card.jpg"),
            d("samples/application-form.pdf"),
            d("samples/lease-contract.pdf"),
        ),
        format!("  {clerk} window verify-identity NEW --method id-card-reader"),
        format!("  {clerk} window accept NEW"),
        "  # reviewer li at 雁塔区 (610113), the home authority".to_owned(),
        format!("  {reviewer} review inbox"),
        format!("  {reviewer} review accept NEW"),
        "  # mail: the paper originals to 雁塔区, then the decision and the result back".to_owned(),
        format!("  {clerk} mail send NEW --leg materials --carrier EMS --waybill {w1}"),
        format!("  {reviewer} review paper-received NEW"),
        format!(
            "  {reviewer} review approve NEW --result {} --licence-no {}",
            d(&format!("samples/{RESULT_FILE}")),
            licence_no(secs + 1)
        ),
        format!("  {reviewer} mail send NEW --leg result --carrier EMS --waybill {w2}"),
        format!("  {reviewer} mail event --waybill {w2} --status delivered"),
        "  # clerk zhou at the 商州区 window (611002)".to_owned(),
        format!("  {zhou} window list"),
        "  # province auditor zhao: the sample case across both nodes' ledgers".to_owned(),
        format!(
            "  {t} audit trace {case_no} --node {} --node {} --profile {}",
            endpoint(ports[0]),
            endpoint(ports[1]),
            d("profiles/auditor.toml")
        ),
        String::new(),
        "Press Ctrl-C to stop every node.".to_owned(),
    ];
    println!("{}", lines.join("\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waybills_pass_the_s10_check() {
        for n in [0, 47312482, 12345678, 99999999, 1_732_000_000] {
            for prefix in ["EA", "EB", "EC", "ED"] {
                let w = waybill(prefix, n);
                tongban_core::Waybill::parse(&w).unwrap_or_else(|e| panic!("{w}: {e}"));
            }
        }
        assert_eq!(waybill("EA", 47312482), "EA473124829CN");
    }

    #[test]
    fn licence_numbers_are_valid_credit_codes() {
        for n in [0, 1, 123456, 999_999, 1_732_000_000] {
            let l = licence_no(n);
            tongban_core::CreditCode::parse(&l).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
    }

    #[test]
    fn endpoints_follow_the_ports_and_nothing_else_changes() {
        let out = set_endpoints(TEMPLATE, &[7002, 7003, 7004]);
        assert!(out.contains(
            "code = \"610702\"\nname = \"汉台区\"\nendpoint = \"https://127.0.0.1:7002\""
        ));
        assert!(out.contains("endpoint = \"https://127.0.0.1:7003\""));
        assert!(out.contains("endpoint = \"https://127.0.0.1:7004\""));
        assert!(!out.contains("7001"));
        assert_eq!(set_endpoints(TEMPLATE, &[7001, 7002, 7003]), TEMPLATE);
        tongban_core::Directory::from_toml_str(&out).expect("still a valid directory");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(
            sh("tongban-dev/profiles/a.toml"),
            "tongban-dev/profiles/a.toml"
        );
        assert_eq!(sh("张三"), "'张三'");
        assert_eq!(sh("it's"), r"'it'\''s'");
    }
}
