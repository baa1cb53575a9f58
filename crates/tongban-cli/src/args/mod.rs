//! The command line, as docs/cli.md names it for users: the top level and
//! the flags every client command shares here, each command group's
//! subcommands in a module of its own.

// Parsed once per process; boxing variants would only obscure the definitions.
#![allow(clippy::large_enum_variant)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod audit;
mod certs;
mod directory;
mod mail;
mod review;
mod window;

pub(crate) use audit::{AuditAuth, AuditCommand};
pub(crate) use certs::{CertsCommand, UserRole};
pub(crate) use directory::DirectoryCommand;
pub(crate) use mail::MailCommand;
pub(crate) use review::ReviewCommand;
pub(crate) use window::{ApplyArgs, WindowCommand};

/// The help heading of the flags that say how to reach a node.
const CONNECTION: &str = "Connection";
/// The help heading of the logging flags.
const LOGGING: &str = "Logging";

/// The name a value has on the command line, which is also its name on the
/// wire (`mail-applicant`, `in-transit`, `QUEUED`).
pub(crate) fn wire<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// `tongban 0.1.0 (COMMIT)`: the commit is read by build.rs, or `unknown`.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TONGBAN_COMMIT"), ")");

/// tongban: cross-region joint handling of government applications (跨域通办)
/// between county nodes over mutual TLS.
#[derive(Debug, Parser)]
#[command(
    name = "tongban",
    version = VERSION,
    about,
    propagate_version = true,
    after_help = "Exit codes: 0 ok, 1 refused or failed, 2 usage, 64 bad configuration or profile.\n\
                  Example: tongban window status 610702-20261201-1 --profile clerk.toml"
)]
pub(crate) struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, help_heading = LOGGING)]
    pub(crate) log_format: LogFormat,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `tongban_node=debug`.
    #[arg(long, global = true, env = "TONGBAN_LOG", default_value = "info", help_heading = LOGGING)]
    pub(crate) log_level: String,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Issue and inspect federation certificates.
    #[command(
        subcommand,
        after_help = "Example: tongban certs create-ca --dir certs --trust-domain shaanxi.tongban"
    )]
    Certs(CertsCommand),
    /// Run a county node (or, with it stopped, re-issue a receipt).
    #[command(after_help = "Example: tongban node --config /etc/tongban/node.toml\n\
        Re-issue a bad receipt (node stopped): tongban node --config node.toml \\\n  \
        --reissue-receipt 0193a5c2-7d4e-7c1a-9f00-6a2b9d1e4f10 --from 610702")]
    Node {
        /// The node's config file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Only check the config, directory, certificates and data dir;
        /// print every problem; exit 0 (warnings allowed) or 64.
        #[arg(long)]
        check: bool,
        /// Instead of serving: re-issue this node's receipt for the handoff
        /// with this id, dated now (the node must be stopped; the sender's
        /// `retry` then gets the new receipt).
        #[arg(long, value_name = "HANDOFF_ID", requires = "from")]
        reissue_receipt: Option<String>,
        /// The county that sent the handoff (with --reissue-receipt).
        #[arg(long, value_name = "COUNTY", requires = "reissue_receipt")]
        from: Option<String>,
    },
    /// Window clerk commands (receiving county).
    #[command(after_help = "Example: tongban window list --state QUEUED --profile clerk.toml")]
    Window {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: WindowCommand,
    },
    /// Reviewer commands (home authority).
    #[command(after_help = "Example: tongban review inbox --profile reviewer.toml")]
    Review {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Auditor commands: trace a case across counties, verify ledgers, export evidence.
    #[command(
        after_help = "Example: tongban audit trace 610702-20261201-1 --node https://10.0.0.5:7001 --node https://10.0.1.5:7001 --profile auditor.toml"
    )]
    Audit {
        #[command(flatten)]
        auth: AuditAuth,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print a formal notice of a case as an HTML page (clerks and reviewers):
    /// the intake receipt (受理回执), the one-time correction notice
    /// (补正材料通知书), the acceptance notice (受理通知书) or the denial
    /// decision (不予许可决定书), with a verification code an auditor checks
    /// with `tongban audit check-notice`.
    #[command(
        after_help = "Example: tongban notice 610702-20261201-1 --kind intake-receipt --out receipt.html --profile clerk.toml"
    )]
    Notice {
        #[command(flatten)]
        conn: ConnArgs,
        /// Case number.
        case: String,
        /// Which notice.
        #[arg(long, value_enum)]
        kind: crate::notice::Kind,
        /// The HTML file to write (A4, prints as it looks).
        #[arg(long)]
        out: PathBuf,
    },
    /// Tracked post, on either side.
    #[command(
        after_help = "Example: tongban mail event --waybill EA473124829CN --status delivered --profile clerk.toml"
    )]
    Mail {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Read the federation directory file offline: item guides (办事指南).
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Run a whole local federation for trying tongban: creates (or reuses)
    /// a CA, certificates, configs and client profiles in DIR, starts three
    /// county nodes on loopback, runs a sample case to CLOSED, prints its
    /// trace and the commands to try by hand, and serves until Ctrl-C.
    #[command(after_help = "Example: tongban dev --dir /tmp/tongban-dev --base-port 7101")]
    Dev {
        /// Directory of the federation (certificates, configs, profiles, data).
        #[arg(long, default_value = "tongban-dev")]
        dir: PathBuf,
        /// The nodes listen on 127.0.0.1 at this port and the next two.
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
    },
    /// Serve a web console for one identity (clerk, reviewer or auditor)
    /// on this machine; prints one URL with a one-time login token.
    #[command(
        after_help = "Example: tongban console --profile tongban-dev/profiles/clerk-610702.toml --listen 127.0.0.1:8080"
    )]
    Console(ConsoleArgs),
    /// Print a shell completion script on stdout.
    #[command(after_help = "Example: tongban completions bash > /etc/bash_completion.d/tongban")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout.
    #[command(after_help = "Example: tongban man > /usr/local/share/man/man1/tongban.1")]
    Man,
}

/// How a client reaches its node: flags, a profile file, or TONGBAN_PROFILE.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnArgs {
    /// Node URL, e.g. https://127.0.0.1:7001.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) node: Option<String>,
    /// Federation CA certificate.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) ca: Option<PathBuf>,
    /// Your certificate.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) cert: Option<PathBuf>,
    /// Your key.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) key: Option<PathBuf>,
    /// A TOML profile with node, ca, cert, key.
    #[arg(long, global = true, env = "TONGBAN_PROFILE", help_heading = CONNECTION)]
    pub(crate) profile: Option<PathBuf>,
    /// One JSON document on stdout instead of human output.
    #[arg(long, global = true, help_heading = "Output")]
    pub(crate) json: bool,
    /// Request id (a UUID) of a state-changing command instead of a new one:
    /// the node applies one id once and answers a repeat with the original
    /// reply. Read-only commands ignore it.
    #[arg(long, global = true, value_name = "UUID", value_parser = request_id, help_heading = "Retries")]
    pub(crate) request_id: Option<uuid::Uuid>,
}

/// A `--request-id`: a UUID in 8-4-4-4-12 hex, as the node requires.
fn request_id(text: &str) -> Result<uuid::Uuid, String> {
    match uuid::Uuid::try_parse(text) {
        Ok(id) if text.len() == 36 => Ok(id),
        _ => Err(
            "expected a UUID in 8-4-4-4-12 hex, e.g. 0192f0c4-8a9b-4c3d-9e1f-0a1b2c3d4e5f".into(),
        ),
    }
}

/// `tongban console`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConsoleArgs {
    /// A TOML profile with node, ca, cert, key; the certificate decides
    /// the role and so the pages.
    #[arg(long, env = "TONGBAN_PROFILE")]
    pub(crate) profile: PathBuf,
    /// Where to listen; port 0 picks a free one. Any address but loopback
    /// needs --tls-cert and --tls-key (the console then serves HTTPS).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// The console's HTTPS certificate (PEM, chain first), for the names
    /// browsers reach it by; with --tls-key the console serves HTTPS, on
    /// loopback too.
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// End a session after this long without a request (s, m or h).
    #[arg(long, default_value = "30m", value_parser = crate::console::parse_duration)]
    pub(crate) session_idle: std::time::Duration,
    /// End a session this long after sign-in, however busy (s, m or h).
    #[arg(long, default_value = "8h", value_parser = crate::console::parse_duration)]
    pub(crate) session_max: std::time::Duration,
    /// The federation directory (items, counties, agreements) for the
    /// application form and the auditor's node list; default:
    /// `federation.toml` beside the profile or in its parent directory.
    #[arg(long)]
    pub(crate) directory: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::mail::{Leg, MailStatus};
    use super::window::{CaseState, Delivery, IdMethod};
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn enumerated_values_have_their_wire_names() {
        assert_eq!(wire(&Delivery::MailApplicant), "mail-applicant");
        assert_eq!(wire(&MailStatus::InTransit), "in-transit");
        assert_eq!(wire(&IdMethod::IdCardReader), "id-card-reader");
        assert_eq!(wire(&CaseState::CorrectionAtWindow), "CORRECTION_AT_WINDOW");
        assert_eq!(wire(&Leg::Result), "result");
        // Every state name the core knows is accepted by --state, and no other.
        let names: Vec<String> = CaseState::value_variants().iter().map(wire).collect();
        assert_eq!(names.len(), 12);
        for d in Delivery::value_variants() {
            assert!(
                wire(d).parse::<tongban_core::DeliveryMode>().is_ok(),
                "{d:?}"
            );
        }
        for name in &names {
            assert!(name.parse::<tongban_core::CaseState>().is_ok(), "{name}");
        }
    }
}
