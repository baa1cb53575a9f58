//! `tongban-bench`: tongban against bare tonic, side by side in one run.
//!
//! ```sh
//! cargo run --release -p tongban-bench -- [--quick] [--out docs/benchmarks.md]
//! ```

use std::path::PathBuf;

use clap::Parser;
use tongban_bench::{Options, Part};

// The same allocator as the `tongban` binary, so the nodes measured here
// run as they do in production.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where the time goes and what was changed, written by hand after profiling.
const ANALYSIS: &str = include_str!("../analysis.md");

/// Benchmarks tongban's handoffs, intake, material streaming and ledger
/// against bare tonic over the same mutual TLS, on loopback, in one run.
#[derive(Debug, Parser)]
#[command(name = "tongban-bench")]
struct Args {
    /// About a tenth of the full sizes (about a minute).
    #[arg(long)]
    quick: bool,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Do not write the report.
    #[arg(long)]
    no_write: bool,
    /// Only these parts (comma-separated: echo, drain, latency, intake, star, stream, ledger,
    /// evidence, console). The floors and the bare echo run with any of them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Part>,
    /// Cases queued for the drain instead of the size's default (3,000
    /// quick, 10,000 full): counts per handoff from a debug build, say.
    #[arg(long)]
    drain_cases: Option<usize>,
    /// A Markdown file appended to the report instead of the bench's own
    /// hand-written analysis (`crates/tongban-bench/analysis.md`).
    #[arg(long)]
    appendix: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut opts = if args.quick {
        Options::quick()
    } else {
        Options::full()
    };
    if !args.only.is_empty() {
        opts.parts = args.only.clone();
    }
    if let Some(n) = args.drain_cases {
        opts.drain_cases = n;
    }
    println!(
        "tongban-bench ({} sizes): parts {}",
        opts.label,
        opts.parts
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let report = tongban_bench::run(&opts).await?;
    println!("\ntargets (issue 14):");
    for (name, target, met) in report.targets() {
        println!(
            "  {name}: {target} — {}",
            if met { "met" } else { "NOT met" }
        );
    }
    if !args.no_write {
        let appendix = match &args.appendix {
            Some(p) => std::fs::read_to_string(p)?,
            None => ANALYSIS.to_owned(),
        };
        report.write_markdown(&args.out, &appendix)?;
        println!("wrote {}", args.out.display());
    }
    Ok(())
}
