//! `tongban certs`: issuing and listing federation certificates.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub(crate) enum CertsCommand {
    /// Create the federation CA (ca.crt, ca.key).
    #[command(
        after_help = "Example: tongban certs create-ca --dir certs --trust-domain shaanxi.tongban"
    )]
    CreateCa {
        /// Directory to write into.
        #[arg(long)]
        dir: PathBuf,
        /// SPIFFE trust domain, e.g. shaanxi.tongban.
        #[arg(long)]
        trust_domain: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Issue a node certificate (node-CODE.crt, node-CODE.key).
    #[command(
        after_help = "Example: tongban certs create-node --dir certs --county 610702 --host node.hantai.example --host 10.0.0.5"
    )]
    CreateNode {
        /// Directory holding ca.crt and ca.key; the certificate is written there.
        #[arg(long)]
        dir: PathBuf,
        /// GB/T 2260 county code.
        #[arg(long)]
        county: String,
        /// DNS name or IP address the node serves on (repeatable).
        #[arg(long = "host", required = true)]
        hosts: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Issue a clerk or reviewer certificate (ROLE-CODE-NAME.crt/.key).
    #[command(
        after_help = "Example: tongban certs create-user --dir certs --county 610702 --role clerk --name wang"
    )]
    CreateUser {
        /// Directory holding ca.crt and ca.key.
        #[arg(long)]
        dir: PathBuf,
        /// GB/T 2260 county code.
        #[arg(long)]
        county: String,
        /// clerk or reviewer.
        #[arg(long, value_enum)]
        role: UserRole,
        /// The person's name (letters, digits, '.', '-', '_').
        #[arg(long)]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// Issue an auditor certificate (auditor-NAME or auditor-CODE-NAME).
    #[command(after_help = "Example: tongban certs create-auditor --dir certs --name zhao")]
    CreateAuditor {
        /// Directory holding ca.crt and ca.key.
        #[arg(long)]
        dir: PathBuf,
        /// The auditor's name.
        #[arg(long)]
        name: String,
        /// Limit the auditor to one county (omit for province-wide).
        #[arg(long)]
        county: Option<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files.
        #[arg(long)]
        overwrite: bool,
    },
    /// List the certificates in a directory with their identity, expiry and problems.
    #[command(after_help = "Example: tongban certs list --dir certs")]
    List {
        /// The directory.
        #[arg(long)]
        dir: PathBuf,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// A user role.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum UserRole {
    /// Window clerk.
    Clerk,
    /// Home-authority reviewer.
    Reviewer,
}
