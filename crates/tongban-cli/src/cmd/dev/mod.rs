//! `tongban dev [--dir D] [--base-port P]`: a whole local federation with one
//! command, for someone trying tongban for the first time.
//!
//! It takes `D/dev.lock` (the node's [`tongban_node::PidLock`]); lays out, or reuses and brings up to
//! date, a `tongban_sandbox` in D with the client profiles and sample files
//! ([`provision`]); starts the three nodes in this process on loopback ports
//! P, P+1, P+2; runs one sample case from intake to `CLOSED` over real
//! mutual TLS ([`sample`]) and prints its verified trace ([`trace`]) and the
//! commands for trying things by hand ([`printout`]); then keeps serving
//! until Ctrl-C or SIGTERM and stops every node. A taken port is refused
//! before anything is written.

mod fixtures;
mod printout;
mod provision;
mod sample;
mod trace;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tongban_node::{NodeError, PidLock, PidLockError};
use tongban_sandbox::{Sandbox, SandboxError};

use super::BadConfig;

/// How long the nodes may take to stop (each has a 5 s grace for calls and
/// another for its courier).
const STOP: Duration = Duration::from_secs(20);

/// The running federation as the sample run and the printout see it (not
/// the sandbox itself, which is busy watching the nodes meanwhile).
pub(super) struct Federation {
    dir: PathBuf,
    /// Code, name and endpoint of each county, in port order.
    counties: Vec<(String, String, String)>,
}

impl Federation {
    fn of(sandbox: &Sandbox) -> Self {
        Self {
            dir: sandbox.root().to_owned(),
            counties: sandbox
                .counties()
                .map(|c| (c.code.clone(), c.name.clone(), sandbox.endpoint(&c.code)))
                .collect(),
        }
    }

    fn counties(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.counties
            .iter()
            .map(|(c, n, e)| (c.as_str(), n.as_str(), e.as_str()))
    }

    /// `https://127.0.0.1:PORT` of the node of `code` (one of the three).
    fn endpoint(&self, code: &str) -> &str {
        self.counties()
            .find(|(c, _, _)| *c == code)
            .map(|(_, _, e)| e)
            .unwrap_or_default()
    }
}

/// Takes `D/dev.lock` for the whole run, or says which run has it.
fn hold(dir: &Path) -> Result<PidLock> {
    PidLock::acquire(dir, "dev.lock").map_err(|e| match e {
        PidLockError::Held { pid, .. } => {
            let holder = match pid {
                Some(pid) => format!("another tongban dev (pid {pid})"),
                None => "another tongban dev".to_owned(),
            };
            anyhow!("{holder} is running in {}", dir.display())
        }
        other => other.into(),
    })
}

pub(crate) async fn run(dir: &Path, base_port: u16) -> Result<()> {
    if base_port == 0 || base_port > u16::MAX - 2 {
        bail!(
            "--base-port {base_port}: the three nodes need ports P, P+1 and P+2, all below 65536"
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock = hold(dir)?;
    let runtime = NodeRuntime::new()?;

    let fresh = provision::is_fresh(dir);
    let mut sandbox =
        provision::federation(dir, base_port, runtime.handle()).map_err(setup_error)?;
    println!(
        "tongban dev: a local federation of three counties in {}",
        dir.display()
    );
    provision::extras(&sandbox).context("cannot set up the federation")?;
    provision::announce(dir, fresh, sandbox.provisioned());
    sandbox.start_all().await.map_err(setup_error)?;

    let fed = Federation::of(&sandbox);
    let mut stop = Box::pin(super::node::shutdown_signal());
    let session = tokio::select! {
        r = session(&fed) => r.map(|()| true),
        (code, result) = sandbox.exited() => Err(exit_error(&code, result)),
        () = &mut stop => Ok(false),
    };
    let outcome = match session {
        Ok(true) => tokio::select! {
            () = &mut stop => Ok(()),
            (code, result) = sandbox.exited() => Err(exit_error(&code, result)),
        },
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    println!("stopping the nodes…");
    let stopped = sandbox.stop_all(STOP).await.map_err(anyhow::Error::from);
    drop(sandbox);
    runtime.shut_down().await;
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
async fn session(fed: &Federation) -> Result<()> {
    let c = sample::Clients::connect(fed).await?;
    c.ready(fed).await?;
    println!();
    println!(
        "Sample case: 个体工商户登记 (GT-0001) taken in at 汉台区 for 雁塔区, result mailed to the applicant"
    );
    let case_no = sample::sample_case(&c).await?;
    println!();
    trace::trace(&c, fed, &case_no).await?;
    println!();
    printout::print_commands(fed, &case_no);
    Ok(())
}

/// What a person should read when the federation cannot be laid out or
/// started: a config problem exits 64.
fn setup_error(e: SandboxError) -> anyhow::Error {
    match e {
        SandboxError::PortInUse { port } => {
            anyhow!(
                "port {port} is already in use: stop whatever listens there or pass --base-port"
            )
        }
        SandboxError::Config(e) => BadConfig(e.to_string()).into(),
        // Most often a federation.toml someone edited.
        e @ SandboxError::Directory { .. } => BadConfig(e.to_string()).into(),
        e @ SandboxError::TrustDomain { .. } => {
            anyhow!("cannot set up the federation: {e}: use another --dir")
        }
        e => anyhow::Error::from(e).context("cannot set up the federation"),
    }
}

fn exit_error(code: &str, result: Result<(), NodeError>) -> anyhow::Error {
    match result {
        Ok(()) => anyhow!("node {code} stopped unexpectedly"),
        Err(e) => anyhow!("node {code} stopped: {e}"),
    }
}

/// The nodes' own runtime, whose threads log only warnings unless a log
/// level was asked for (the sample run's output stays readable).
struct NodeRuntime(Option<tokio::runtime::Runtime>);

impl NodeRuntime {
    fn new() -> Result<Self> {
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
        Ok(Self(Some(runtime)))
    }

    fn handle(&self) -> tokio::runtime::Handle {
        match &self.0 {
            Some(rt) => rt.handle().clone(),
            None => unreachable!("the runtime is only taken by shut_down, which consumes self"),
        }
    }

    /// Shuts the runtime down, giving its tasks a moment.
    async fn shut_down(mut self) {
        if let Some(runtime) = self.0.take() {
            // Shutting a runtime down blocks: not on this one's threads.
            let _ = tokio::task::spawn_blocking(move || {
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .await;
        }
    }
}

impl Drop for NodeRuntime {
    fn drop(&mut self) {
        // On an early return: dropping a runtime inside another one panics.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
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
