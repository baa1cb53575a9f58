//! The auditor's node verifications, run in the background and kept while
//! the console runs: at most one per node at a time, so asking again while
//! one runs shows the running one (a verification is of the node, not of
//! the browser that asked, and every session of a console is the same
//! auditor). Each runs [`crate::audit::node::verify`] over the whole ledger
//! and its evidence and records its steps for the page to poll; when it
//! ends, a chain that verified goes into the console's kept prefixes
//! ([`crate::audit::known`]) through [`Verdict::keep`], so the traces and
//! this page agree on what was verified.
//!
//! Only the latest verification of each node is kept (a handful of nodes:
//! the directory's counties).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::Console;
use crate::audit::node::{self, Finding, Kept, Step, Verdict};

/// How many problems the progress JSON carries (the page shows every
/// problem once the verification has ended).
const PROBLEMS_SHOWN: usize = 50;

/// What a verification is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Phase {
    /// Asking for and checking the node's signed checkpoint.
    Checkpoint,
    /// Streaming and checking the hash chain.
    Chain,
    /// The node re-hashes its materials; the receipts are checked.
    Evidence,
    /// Ended with a verdict.
    Done,
    /// Could not be done (the node unreachable, its checkpoint bad).
    Failed,
}

/// How far one verification got.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Progress {
    pub(crate) phase: Option<Phase>,
    /// Entries come in so far, of `total` (the checkpoint's seq).
    pub(crate) checked: u64,
    pub(crate) total: u64,
    /// Material bytes re-hashed so far, of `material_bytes`.
    pub(crate) rehashed: u64,
    pub(crate) material_bytes: u64,
    /// Problems found so far, marked at their entries.
    pub(crate) problems: Vec<Finding>,
    /// Why it could not be done, when `Failed`.
    pub(crate) error: String,
    /// When it ended (RFC 3339), empty while it runs.
    pub(crate) finished_at: String,
    /// The verdict, when `Done`.
    #[serde(skip)]
    pub(crate) verdict: Option<Arc<Verdict>>,
    /// What became of the kept prefix, when `Done`.
    #[serde(skip)]
    pub(crate) kept: Option<Kept>,
}

impl Progress {
    /// Whether it has ended, either way.
    pub(crate) fn ended(&self) -> bool {
        matches!(self.phase, Some(Phase::Done | Phase::Failed))
    }

    /// The small JSON the page polls.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "phase": self.phase.unwrap_or(Phase::Checkpoint),
            "checked": self.checked,
            "total": self.total,
            "rehashed": self.rehashed,
            "material_bytes": self.material_bytes,
            "problem_count": self.problems.len(),
            // Each with its words in the page's language beside the CLI's.
            "problems": self.problems[..self.problems.len().min(PROBLEMS_SHOWN)]
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "seq": f.seq, "case_no": f.case_no, "text": f.text,
                        "words": super::findings::words(f),
                    })
                })
                .collect::<Vec<_>>(),
            "error": self.error,
            "ended": self.ended(),
            "verified": self.verdict.as_ref().map(|v| v.verified()),
        })
    }
}

/// What the console had verified of a node when its verification started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Before {
    /// Entries 1..=head, their checkpoint signed at (RFC 3339); or nothing.
    Kept(Option<(u64, String)>),
    /// The warm-up or a trace was using the kept prefixes just then.
    Busy,
}

/// One verification of one node.
#[derive(Debug)]
pub(crate) struct Job {
    /// The node's county code and name (from the directory).
    pub(crate) county: String,
    pub(crate) name: String,
    /// The node's URL.
    pub(crate) url: String,
    /// Whether the evidence is left out (`audit verify --quick`).
    pub(crate) quick: bool,
    /// When it started (RFC 3339).
    pub(crate) started_at: String,
    /// What the console had verified of the node when it started: (last
    /// entry, when its checkpoint was signed), if anything.
    pub(crate) kept_before: Before,
    progress: Mutex<Progress>,
}

impl Job {
    /// A copy of how far it got.
    pub(crate) fn progress(&self) -> Progress {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        // A panic while holding it left plain numbers, still worth showing.
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn step(&self, step: Step<'_>) {
        let mut p = self.lock();
        match step {
            Step::Checkpoint { total, .. } => {
                p.total = total;
                p.phase = Some(Phase::Chain);
            }
            Step::Entry => p.checked += 1,
            Step::ChainDone => {}
            Step::Evidence { material_bytes } => {
                p.material_bytes = material_bytes;
                p.phase = Some(Phase::Evidence);
            }
            Step::Rehashed { bytes } => p.rehashed += bytes,
            Step::Problem(f) => p.problems.push(f.clone()),
        }
    }

    fn finish(&self, outcome: Result<(Verdict, Kept), String>) {
        let mut p = self.lock();
        p.finished_at = crate::console::routes::now_rfc3339();
        match outcome {
            Ok((verdict, kept)) => {
                p.problems = verdict.findings();
                p.phase = Some(Phase::Done);
                p.verdict = Some(Arc::new(verdict));
                p.kept = Some(kept);
            }
            Err(error) => {
                p.phase = Some(Phase::Failed);
                p.error = error;
            }
        }
    }
}

/// The latest verification of each node, by county code.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    by_county: Mutex<BTreeMap<String, Arc<Job>>>,
}

/// A node to verify, from the directory.
pub(crate) struct Node<'a> {
    pub(crate) county: &'a str,
    pub(crate) name: &'a str,
    pub(crate) url: &'a str,
}

impl Jobs {
    /// The latest verification of `county`, if any.
    pub(crate) fn get(&self, county: &str) -> Option<Arc<Job>> {
        self.lock().get(county).cloned()
    }

    /// Every node's latest verification.
    pub(crate) fn all(&self) -> Vec<Arc<Job>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Job>>> {
        self.by_county.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts verifying `node` in the background, unless a verification of
    /// it runs already: the running one, then. Whether it was started.
    pub(crate) fn start(
        &self,
        console: &Arc<Console>,
        node: Node<'_>,
        quick: bool,
    ) -> (Arc<Job>, bool) {
        if let Some(running) = self.get(node.county).filter(|j| !j.lock().ended()) {
            return (running, false);
        }
        // What was kept before; the start-up warm-up or a trace may hold
        // the prefixes for a while (a big ledger), and the page is not
        // made to wait for them.
        let kept_before = match console.known.try_lock() {
            Ok(known) => Before::Kept(
                known
                    .get(node.url)
                    .filter(|p| p.county == node.county)
                    .map(|p| (p.head(), p.signed_at.clone())),
            ),
            Err(_) => Before::Busy,
        };
        let job = Arc::new(Job {
            county: node.county.to_owned(),
            name: node.name.to_owned(),
            url: node.url.to_owned(),
            quick,
            started_at: crate::console::routes::now_rfc3339(),
            kept_before,
            progress: Mutex::new(Progress {
                phase: Some(Phase::Checkpoint),
                ..Progress::default()
            }),
        });
        // Another request may have started one meanwhile.
        let (job, started) = self.begin(job);
        if !started {
            return (job, false);
        }
        let (console, running) = (console.clone(), job.clone());
        tokio::spawn(async move {
            let steps = running.clone();
            let mut on = move |step: Step<'_>| steps.step(step);
            let outcome = match node::verify(&running.url, &console.tls, quick, true, &mut on).await
            {
                Ok(mut verdict) => {
                    let kept = verdict.keep(&mut *console.known.lock().await, &running.url);
                    Ok((verdict, kept))
                }
                Err(e) => Err(format!("{e:#}")),
            };
            running.finish(outcome);
        });
        (job, true)
    }

    /// Records `job` as its node's latest, unless one of that node runs:
    /// that one then. Whether `job` was recorded.
    fn begin(&self, job: Arc<Job>) -> (Arc<Job>, bool) {
        let mut jobs = self.lock();
        if let Some(running) = jobs.get(&job.county).filter(|j| !j.lock().ended()) {
            return (running.clone(), false);
        }
        jobs.insert(job.county.clone(), job.clone());
        (job, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(county: &str, started_at: &str) -> Arc<Job> {
        Arc::new(Job {
            county: county.into(),
            name: String::new(),
            url: String::new(),
            quick: false,
            started_at: started_at.into(),
            kept_before: Before::Kept(None),
            progress: Mutex::new(Progress {
                phase: Some(Phase::Checkpoint),
                ..Progress::default()
            }),
        })
    }

    #[test]
    fn a_second_verification_of_a_node_while_one_runs_is_the_running_one() {
        let jobs = Jobs::default();
        let (first, started) = jobs.begin(job("610113", "t1"));
        assert!(started);
        let (shown, started) = jobs.begin(job("610113", "t2"));
        assert!(!started);
        assert_eq!(shown.started_at, "t1");
        // Another node's runs beside it.
        assert!(jobs.begin(job("610702", "t3")).1);
        first.step(Step::Checkpoint { total: 2 });
        first.step(Step::Entry);
        assert_eq!(jobs.get("610113").unwrap().progress().checked, 1);
        first.finish(Err("the node did not answer".into()));
        assert_eq!(first.progress().phase, Some(Phase::Failed));
        // Once it ended, asking again starts a new one.
        let (again, started) = jobs.begin(job("610113", "t4"));
        assert!(started);
        assert_eq!(again.started_at, "t4");
        assert_eq!(jobs.all().len(), 2);
    }
}
