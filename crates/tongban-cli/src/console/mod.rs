//! `tongban console`: a web console on this machine for the one identity
//! of a client profile. It owns the HTTP side only (sessions, forms,
//! pages); every case operation goes to the node over the same mutual-TLS
//! gRPC API the CLI uses, with the profile's certificate, so the node
//! checks every action exactly as it checks the CLI's.
//!
//! Access: the console listens on loopback only (this version refuses any
//! other address, since it serves plain HTTP) and prints one URL carrying a
//! one-time token; opening it sets a session cookie (HttpOnly,
//! SameSite=Strict) and spends the token. Without the cookie every page is
//! refused (401). The role comes from the certificate's SPIFFE ID and only
//! that role's pages exist.

mod lang;
mod pages;
mod routes;
mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use tokio::net::TcpListener;
use tongban_core::directory::Directory;
use tongban_pki::tls::TlsMaterial;
use tongban_pki::{Identity, Principal};
use tonic::transport::Channel;

use crate::args::ConsoleArgs;
use crate::cmd::BadConfig;

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
}

/// Runs `tongban console`: loads the profile, binds, prints the login URL
/// and serves until Ctrl-C.
pub(crate) async fn run(args: ConsoleArgs) -> Result<()> {
    if !args.listen.ip().is_loopback() {
        return Err(BadConfig(format!(
            "--listen {}: the console serves plain HTTP and so listens on loopback only \
             (127.0.0.1 or ::1) in this version",
            args.listen
        ))
        .into());
    }
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
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let console = Console::new(node.as_deref(), tls, directory, addr.port()).await?;
    let token = console.sessions.token();
    println!("{}", login_url(addr, &token));
    if directory_path.is_none() && console.role == Role::Clerk {
        eprintln!(
            "warning: no federation.toml beside the profile; the application form needs --directory"
        );
    }
    serve(listener, Arc::new(console), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// The URL that opens a session, printed once.
fn login_url(addr: SocketAddr, token: &str) -> String {
    format!("http://{addr}/login?token={token}")
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
    /// The console for the identity in `tls` on `port`; `node` is the
    /// profile's node URL (not needed by an auditor).
    pub(crate) async fn new(
        node: Option<&str>,
        tls: TlsMaterial,
        directory: Option<Directory>,
        port: u16,
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
        Ok(Self {
            identity,
            role,
            node,
            tls,
            directory,
            sessions: session::Sessions::new(port),
        })
    }
}

/// Serves the console on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    console: Arc<Console>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, routes::router(console))
        .with_graceful_shutdown(shutdown)
        .await
        .context("console server failed")
}
