//! `tongban audit`: the auditor's credentials and commands.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::CONNECTION;

/// The auditor's credentials (the node URLs are given per command).
#[derive(Debug, Clone, Args)]
pub(crate) struct AuditAuth {
    /// Federation CA certificate.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) ca: Option<PathBuf>,
    /// Your auditor certificate.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) cert: Option<PathBuf>,
    /// Your key.
    #[arg(long, global = true, help_heading = CONNECTION)]
    pub(crate) key: Option<PathBuf>,
    /// A TOML profile with ca, cert, key (its node is not used).
    #[arg(long, global = true, env = "TONGBAN_PROFILE", help_heading = CONNECTION)]
    pub(crate) profile: Option<PathBuf>,
    /// One JSON document on stdout instead of human output.
    #[arg(long, global = true, help_heading = "Output")]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Trace one case across the nodes it touched and verify everything.
    #[command(
        after_help = "Example: tongban audit trace 610702-20261201-1 --node https://10.0.0.5:7001 --node https://10.0.1.5:7001 --html trace.html"
    )]
    Trace {
        /// Case number.
        case: String,
        /// A node's URL (repeatable: every county the case touched).
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
        /// Also write the timeline as a self-contained HTML page.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Show personal data unmasked (province auditors; recorded by the nodes).
        #[arg(long)]
        reveal: bool,
    },
    /// Verify a node's whole ledger against its signed checkpoint, and the
    /// evidence behind it: every stored material re-hashed by the node
    /// against the digest its ledger names, every receipt it holds or gave.
    #[command(after_help = "Example: tongban audit verify --node https://10.0.0.5:7001")]
    Verify {
        /// The node's URL.
        #[arg(long)]
        node: String,
        /// Check only the hash chain, not the materials and receipts.
        #[arg(long)]
        quick: bool,
    },
    /// Write the evidence of one case (entries, receipts, checkpoints,
    /// certificates) to a bundle that verify-bundle checks offline.
    #[command(
        after_help = "Example: tongban audit export 610702-20261201-1 --node https://10.0.0.5:7001 --node https://10.0.1.5:7001 --out case.bundle.json"
    )]
    Export {
        /// Case number.
        case: String,
        /// A node's URL (repeatable).
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// Include personal data unmasked (province auditors; recorded).
        #[arg(long)]
        reveal: bool,
    },
    /// Check a notice's verification code against the case's ledger entries:
    /// it must name a real entry, of the kind the notice rests on, in a
    /// ledger that verifies.
    #[command(
        name = "check-notice",
        after_help = "Example: tongban audit check-notice 610702-20261201-1 3f2a-9c41-0b7e-d215 --node https://10.0.0.5:7001 --node https://10.0.1.5:7001"
    )]
    CheckNotice {
        /// Case number.
        case: String,
        /// The verification code printed on the notice (dashes optional).
        code: String,
        /// A node's URL (repeatable: the counties the case touched).
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
    },
    /// Verify an exported bundle with no network.
    #[command(after_help = "Example: tongban audit verify-bundle case.bundle.json --ca ca.crt")]
    VerifyBundle {
        /// The bundle file.
        file: PathBuf,
        /// Also write the timeline as HTML.
        #[arg(long)]
        html: Option<PathBuf>,
    },
}
