//! `tongban directory`: the federation directory file, read offline.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum DirectoryCommand {
    /// An item's guide (办事指南): category, materials (which paper originals
    /// are mailed), promised working days, delivery modes, and which counties
    /// take it in for which.
    Guide {
        /// The item's code, e.g. GT-0001.
        item: String,
        /// The federation directory file.
        #[arg(long, default_value = "federation.toml")]
        directory: PathBuf,
        /// One JSON document on stdout instead of human output.
        #[arg(long)]
        json: bool,
    },
    /// The item catalogue: code, name, category, promised working days.
    Items {
        /// The federation directory file.
        #[arg(long, default_value = "federation.toml")]
        directory: PathBuf,
        /// One JSON document on stdout instead of human output.
        #[arg(long)]
        json: bool,
    },
}
