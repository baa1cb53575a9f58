//! The drain, latency and streaming parts at tiny sizes with nodes A and B
//! as spawned `tongban node` processes (the debug binary of this
//! workspace): each node's own CPU comes from its `/proc/PID`, its sled
//! operations from its `/metrics`, and the drain runs once more with both
//! nodes in the bench process for the comparison.

use std::path::PathBuf;

use tongban_bench::{Options, Part, run};

/// `target/debug/tongban` beside this test's directory. `cargo test
/// --workspace` builds it (tongban-cli's tests need it) before any test
/// runs; a cargo run inside a test would wait forever on the build
/// directory's lock, so alone this test needs `cargo build -p tongban-cli`.
fn tongban_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/debug/deps");
    let bin = dir.join(format!("tongban{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no tongban binary at {}: run `cargo build -p tongban-cli` first (or the whole \
         workspace's tests)",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_run_as_processes_and_are_counted_each() {
    let opts = Options {
        parts: vec![Part::Drain, Part::Latency, Part::Stream],
        spawn_binary: true,
        tongban_bin: Some(tongban_binary()),
        ..Options::smoke()
    };
    let report = run(&opts).await.expect("bench runs");
    let value = |name: &str| {
        report
            .get(name)
            .unwrap_or_else(|| panic!("no figure {name:?} in {:#?}", report.figures))
            .value
    };
    let a = value("CPU per handoff, node A (sender, its process)");
    let b = value("CPU per handoff, node B (receiver, its process)");
    assert!(a > 0.0 && b > 0.0, "A {a} µs, B {b} µs");
    // Both nodes are the two processes: the sum is theirs, not the bench's.
    let both = value("CPU per handoff (both nodes)");
    assert!(
        (both - (a + b)).abs() < 1e-6 * both.max(1.0),
        "{both} ≠ {a} + {b}"
    );
    // Read from each node's /metrics: every handoff commits at both ends.
    assert!(
        value("sled operations per handoff (both nodes, reads + writes in commits)") >= 2.0,
        "{:#?}",
        report.figures
    );
    assert!(value("bytes handed to sled per handoff (keys + values)") > 0.0);
    // (Bytes written depend on the file system: none on a tmpfs.)
    value("bytes written to disk per handoff (/proc/PID/io of the nodes, with materials)");
    // The comparison in one process, beside the figure as processes.
    let one = report
        .get("drain, both nodes in one process: rate (B started → all HANDED_OFF)")
        .expect("the one-process drain");
    assert!(
        one.value > 0.0 && one.ratio().is_some_and(f64::is_finite),
        "{one:?}"
    );
    assert!(value("drain, both nodes in one process: sled operations per handoff") >= 2.0);
    for name in [
        "handoff latency p50 (accept → receipt at A)",
        "handoff A → B (accept → receipt at A)",
        "handoff CPU (A + B, accept → handed off)",
    ] {
        assert!(value(name) > 0.0, "{name}");
    }
    // The streaming handoff's CPU is the nodes' processes, split by thread.
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("streaming: handoff") && n.contains("A ") && n.contains("B ")),
        "{:#?}",
        report.notes
    );
}

/// The ledger part's `audit trace` and `audit verify` run the real CLI on a
/// node holding the bench's synthetic entries plus one real case: both must
/// verify, or the figures are missing and the note says why (the synthetic
/// entries once had a kind no payload decodes as, and every full run
/// silently measured no trace).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_part_traces_and_verifies_with_the_real_cli() {
    let opts = Options {
        parts: vec![Part::Ledger],
        spawn_binary: true,
        tongban_bin: Some(tongban_binary()),
        ..Options::smoke()
    };
    let report = run(&opts).await.expect("bench runs");
    for prefix in [
        "`tongban audit trace` of one case",
        "`tongban audit verify` of the node",
    ] {
        assert!(
            report
                .figures
                .iter()
                .any(|f| f.name.starts_with(prefix) && f.value > 0.0),
            "no figure {prefix:?}; notes: {:#?}",
            report.notes
        );
    }
}

/// The intake, star and evidence parts with their nodes as processes: each
/// node the bench spawns is counted from its own /metrics, so every part's
/// sandbox must give its nodes an admin port (the star's once did not, and
/// the full run stopped there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_star_and_evidence_run_with_node_processes() {
    let opts = Options {
        parts: vec![Part::Intake, Part::Star, Part::Evidence],
        spawn_binary: true,
        tongban_bin: Some(tongban_binary()),
        ..Options::smoke()
    };
    let report = run(&opts).await.expect("bench runs");
    for name in [
        "intake, 2844-county star directory",
        "CPU per case, 2844-county star directory",
        "materials re-hashed by the node (Evidence RPC, every case of A)",
    ] {
        let f = report
            .get(name)
            .unwrap_or_else(|| panic!("no figure {name:?}; notes: {:#?}", report.notes));
        assert!(f.value > 0.0, "{name} is {}", f.value);
    }
}
