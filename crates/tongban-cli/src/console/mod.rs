//! `tongban console`: a web console on this machine for the one identity
//! of a client profile. It owns the HTTP side only (sessions, forms,
//! pages); every case operation goes to the node over the same mutual-TLS
//! gRPC API the CLI uses, with the profile's certificate, so the node
//! checks every action exactly as it checks the CLI's.
//!
//! Access: the console listens on loopback unless told otherwise; any other
//! address needs an HTTPS certificate and key (`--tls-cert`, `--tls-key`),
//! which can be given on loopback too. It prints one URL carrying a
//! one-time token; opening it sets a session cookie (HttpOnly,
//! SameSite=Strict, Secure under HTTPS) and spends the token. Without an
//! open session every page is refused (401); sessions end on logout, when
//! idle and at a fixed age ([`session`]). The role comes from the
//! certificate's SPIFFE ID and only that role's pages exist.

mod access;
mod findings;
mod lang;
mod pages;
mod paging;
mod refusal;
mod refusal_names;
mod routes;
mod session;
mod verifying;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tongban_core::directory::Directory;
use tongban_pki::tls::{TlsAcceptor, TlsMaterial, https_acceptor};
use tongban_pki::{Identity, Principal};
use tonic::transport::Channel;

use crate::args::ConsoleArgs;
use crate::cmd::BadConfig;

pub(crate) use session::parse_duration;

/// The role the certificate gives, which decides the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A window clerk of the receiving county.
    Clerk,
    /// A reviewer at the home authority.
    Reviewer,
    /// An auditor (province-wide or of one county).
    Auditor,
}

/// What every request handler shares.
pub(crate) struct Console {
    /// Who the console acts as.
    pub(crate) identity: Identity,
    /// The role of `identity`.
    pub(crate) role: Role,
    /// The channel to the profile's node, opened as the CLI opens it (the
    /// node's certificate must be the own county's); it reconnects by
    /// itself after the node restarts. `None` for an auditor, who names
    /// nodes per trace.
    pub(crate) node: Option<Channel>,
    /// The profile's certificates (an auditor connects to each node).
    pub(crate) tls: TlsMaterial,
    /// The federation directory, for the form and the auditor's nodes.
    pub(crate) directory: Option<Directory>,
    /// The one-time token and the sessions it opened.
    pub(crate) sessions: session::Sessions,
    /// What the auditor's traces verified of each node's ledger, so a trace
    /// checks only the entries since (`audit/known.rs`); one trace at a time.
    pub(crate) known: tokio::sync::Mutex<crate::audit::known::Known>,
    /// The federation CA as the auditor's traces check signatures with,
    /// built once and kept with a bounded cache of the signatures it
    /// verified (partner checkpoints, receipts and their signers come back
    /// in every trace of the same nodes); the CLI's one-shot checks use
    /// an anchor without one.
    pub(crate) anchor: tongban_pki::TrustAnchor,
    /// The auditor's node verifications (`verifying`).
    pub(crate) verifications: verifying::Jobs,
    /// An auditor's channels by node URL, opened at the first trace that
    /// needs one and kept (each reconnects by itself), so a trace does not
    /// pay a TLS handshake per node.
    audit_channels: std::sync::Mutex<std::collections::HashMap<String, Channel>>,
}

impl Console {
    /// An audit client on the kept channel to the node at `url`.
    pub(crate) async fn audit_client(
        &self,
        url: &str,
    ) -> Result<tongban_proto::audit::v1::audit_client::AuditClient<Channel>> {
        let kept = self
            .audit_channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .cloned();
        let channel = match kept {
            Some(channel) => channel,
            None => {
                let channel = crate::client::channel(url, &self.tls).await?;
                self.audit_channels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(url.to_owned(), channel.clone());
                channel
            }
        };
        Ok(tongban_proto::audit::v1::audit_client::AuditClient::new(
            channel,
        ))
    }
}

/// Runs `tongban console`: loads the profile, binds, prints the login URL
/// and serves until Ctrl-C.
pub(crate) async fn run(args: ConsoleArgs) -> Result<()> {
    let https = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(load_https(cert, key)?),
        _ if !args.listen.ip().is_loopback() => {
            return Err(BadConfig(format!(
                "--listen {}: a console reachable from other machines must serve HTTPS; \
                 give its certificate and key with --tls-cert FILE --tls-key FILE, \
                 or listen on loopback (127.0.0.1 or ::1)",
                args.listen
            ))
            .into());
        }
        _ => None,
    };
    let (node, tls) =
        crate::client::credentials(None, &None, &None, &None, Some(args.profile.as_path()))?;
    let directory_path = args
        .directory
        .clone()
        .or_else(|| find_directory(&args.profile));
    let directory = match &directory_path {
        Some(path) => Some(tongban_node::config::load_directory(path).map_err(|e| {
            BadConfig(format!(
                "failed to load the federation directory {}: {} {} (give it with --directory)",
                path.display(),
                e.field,
                e.reason
            ))
        })?),
        None => None,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (another console there? choose another with --listen 127.0.0.1:PORT, or port 0 for a free one)",
                args.listen
            )
        })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let web = Web {
        port: addr.port(),
        https: https.is_some(),
        limits: session::Limits {
            idle: args.session_idle,
            absolute: args.session_max,
        },
    };
    let base = base_url(addr, web.https);
    let announce = Box::new(move |token: &str| {
        println!("{base}/login?token={token}");
    });
    let console = Console::new(node.as_deref(), tls, directory, web, announce).await?;
    let token = console.sessions.token();
    println!(
        "{}/login?token={token}",
        base_url(addr, console.sessions.secure())
    );
    if directory_path.is_none() && console.role == Role::Clerk {
        eprintln!(
            "warning: no federation.toml beside the profile; the application form needs --directory"
        );
    }
    let console = Arc::new(console);
    warm_up(&console);
    serve(listener, console, https, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// The console's HTTPS settings from `--tls-cert` and `--tls-key`.
fn load_https(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let read = |flag: &str, p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| BadConfig(format!("{flag} {}: cannot read it: {e}", p.display())))
    };
    let (cert_pem, key_pem) = (read("--tls-cert", cert)?, read("--tls-key", key)?);
    Ok(https_acceptor(&cert_pem, &key_pem).map_err(|e| {
        BadConfig(format!(
            "--tls-cert {} --tls-key {}: {e}",
            cert.display(),
            key.display()
        ))
    })?)
}

/// `http://ADDR` or `https://ADDR`, the start of every printed URL.
fn base_url(addr: SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

/// How the console is reached: what its sessions and host check need.
pub(crate) struct Web {
    /// The port it listens on.
    pub(crate) port: u16,
    /// Whether it serves HTTPS.
    pub(crate) https: bool,
    /// How long sessions live.
    pub(crate) limits: session::Limits,
}

/// `federation.toml` beside the profile, or in the directory above it
/// (`tongban dev` keeps profiles in `profiles/` under the federation).
fn find_directory(profile: &Path) -> Option<PathBuf> {
    let dir = profile.parent()?;
    [
        dir.join("federation.toml"),
        dir.parent()?.join("federation.toml"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

impl Console {
    /// The console for the identity in `tls`, reached as `web` says; `node`
    /// is the profile's node URL (not needed by an auditor); `announce`
    /// shows each fresh login URL's token.
    pub(crate) async fn new(
        node: Option<&str>,
        tls: TlsMaterial,
        directory: Option<Directory>,
        web: Web,
        announce: Box<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Self> {
        let identity = Identity::from_cert_pem(&tls.cert_pem)
            .map_err(|e| BadConfig(format!("profile certificate: {e}")))?;
        let role = match identity.principal {
            Principal::Clerk { .. } => Role::Clerk,
            Principal::Reviewer { .. } => Role::Reviewer,
            Principal::Auditor { .. } => Role::Auditor,
            Principal::Node { .. } => {
                return Err(BadConfig(
                    "the profile's certificate is a node's; the console is for clerks, reviewers and auditors"
                        .to_owned(),
                )
                .into());
            }
        };
        let node = match (role, node) {
            (Role::Auditor, _) => None,
            (_, Some(url)) => Some(crate::client::channel(url, &tls).await?),
            (_, None) => {
                return Err(BadConfig("the profile names no node".to_owned()).into());
            }
        };
        let anchor = tls
            .trust_anchor()
            .map_err(|e| BadConfig(format!("profile ca certificate: {e}")))?
            .with_signature_cache(SIGNATURES_KEPT);
        Ok(Self {
            identity,
            role,
            node,
            anchor,
            tls,
            directory,
            sessions: session::Sessions::new(web.port, web.https, web.limits, announce),
            known: Default::default(),
            verifications: Default::default(),
            audit_channels: Default::default(),
        })
    }
}

/// Signatures the auditor's anchor keeps: a trace checks about ten (its
/// nodes' checkpoints and partner checkpoints, each handoff's receipts),
/// so this holds those of a few hundred recent traces in about 0.5 MiB.
const SIGNATURES_KEPT: std::num::NonZeroUsize = std::num::NonZeroUsize::new(4096).unwrap();

/// For an auditor, verifies every node of the directory in the background
/// (the first trace of a node otherwise pays for its whole ledger); a node
/// that cannot be verified now is left to the first trace, which says why.
fn warm_up(console: &Arc<Console>) {
    let Some(dir) = console
        .directory
        .as_ref()
        .filter(|_| console.role == Role::Auditor)
    else {
        return;
    };
    let nodes: Vec<(String, String)> = dir
        .counties
        .iter()
        .map(|k| (k.endpoint.clone(), k.code.to_string()))
        .collect();
    let console = Arc::clone(console);
    tokio::spawn(async move {
        for (url, county) in nodes {
            let started = std::time::Instant::now();
            match crate::audit::fetch::warm(
                &console.known,
                &url,
                &county,
                &console.tls,
                &console.anchor,
            )
            .await
            {
                Ok(n) => eprintln!(
                    "verified the ledger of {county} ({url}): entries 1..={n} in {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => eprintln!("could not verify the ledger of {county} ({url}) yet: {e:#}"),
            }
        }
    });
}

/// How often ended sessions are looked for when no request comes.
const SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves the console on `listener` (HTTPS when `https` is given) until
/// `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    console: Arc<Console>,
    https: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let sweeper = {
        let console = console.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP);
            loop {
                tick.tick().await;
                console.sessions.sweep();
            }
        })
    };
    let app = routes::router(console);
    let served = match https {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("console server failed"),
        Some(acceptor) => {
            serve_https(listener, acceptor, app, shutdown).await;
            Ok(())
        }
    };
    sweeper.abort();
    served
}

/// Serves `app` over HTTPS/1.1: each finished handshake (done in its own
/// task by tongban-pki) gets a hyper connection of its own.
async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use tokio_stream::StreamExt as _;
    let mut incoming = tongban_pki::tls::incoming(listener, acceptor);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            next = incoming.next() => match next {
                Some(Ok(stream)) => stream,
                Some(Err(_)) => continue,
                None => return,
            },
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "console connection ended");
            }
        });
    }
}
