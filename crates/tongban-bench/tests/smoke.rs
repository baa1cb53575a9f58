//! The whole benchmark at tiny sizes, in-process: every figure is positive
//! and the report is written.

use tongban_bench::{Options, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_runs_at_tiny_sizes() {
    let opts = Options::smoke();
    let report = run(&opts).await.expect("bench runs");
    for name in [
        "echo 17 KiB c=1 rate",
        "echo 17 KiB c=64 rate",
        "bare upload, 64 KiB chunks",
        "drain rate (B started → all HANDED_OFF)",
        "handoff latency p50 (accept → receipt at A)",
        "intake at 4 clerks (apply+verify+accept)",
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
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("benchmarks.md");
    report.write_markdown(&out, "").expect("write report");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("## Machine") && text.contains("drain rate"),
        "{text}"
    );
}
