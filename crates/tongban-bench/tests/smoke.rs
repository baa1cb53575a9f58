//! The whole benchmark at tiny sizes, in-process: every figure is positive
//! and the report is written.

use tongban_bench::{Options, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_at_tiny_sizes() {
    let opts = Options::smoke();
    let report = run(&opts).await.expect("bench runs");
    for name in [
        "fdatasync 4 KiB p50",
        "ECDSA P-256 verify (ring)",
        "disk write + fdatasync, after streaming",
        "echo 17 KiB c=1 rate",
        "echo 17 KiB c=64 rate",
        "bare upload, 64 KiB chunks",
        "drain rate (B started → all HANDED_OFF)",
        "handoff latency p50 (accept → receipt at A)",
        "intake at 4 clerks (apply+verify+accept)",
        "intake, 2844-county star directory",
        "handoff A → B (accept → receipt at A)",
        "ledger append (batches of 1000, one flush each)",
    ] {
        let f = report
            .get(name)
            .unwrap_or_else(|| panic!("no figure {name:?} in {:#?}", report.figures));
        assert!(f.value > 0.0, "{name} is {}", f.value);
    }
    for f in &report.figures {
        assert!(f.value.is_finite() && f.value > 0.0, "{f:?}");
    }
    // The figures with a physical floor carry it from this run.
    for name in [
        "drain rate (B started → all HANDED_OFF)",
        "handoff latency p50 (accept → receipt at A)",
        "handoff A → B (accept → receipt at A)",
    ] {
        let f = report.get(name).expect("measured");
        assert!(f.floor_ratio().is_some_and(f64::is_finite), "{f:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("benchmarks.md");
    report.write_markdown(&out, "").expect("write report");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("## Machine")
            && text.contains("drain rate")
            && text.contains("load average at the start")
            && text.contains("ratio to floor"),
        "{text}"
    );
}
