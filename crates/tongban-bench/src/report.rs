//! The figures of one run, printed as they come and written as Markdown.

use std::fmt::Write as _;
use std::path::Path;

use crate::Options;

/// One measured figure, with its baseline from the same run if it has one.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Section, e.g. "2. handoff drain".
    pub section: String,
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The baseline's name and value, if compared with one.
    pub baseline: Option<(String, f64)>,
    /// The physical floor of this figure measured in the same run (what it
    /// is made of, and its value in the figure's unit), if it has one.
    pub floor: Option<(String, f64)>,
    /// The target (issue 14) as text (e.g. "≥ 0.5"), with whether it is met.
    pub target: Option<(String, bool)>,
}

impl Figure {
    /// value / baseline.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .filter(|(_, b)| *b > 0.0)
            .map(|(_, b)| self.value / b)
    }

    /// value / floor: ≤ 1 for a rate (1 is the floor reached), ≥ 1 for a latency.
    pub fn floor_ratio(&self) -> Option<f64> {
        self.floor
            .as_ref()
            .filter(|(_, f)| *f > 0.0)
            .map(|(_, f)| self.value / f)
    }
}

/// Everything a run measured, and what it could not.
#[derive(Debug, Clone)]
pub struct Report {
    /// "full", "quick" or "smoke".
    pub label: String,
    /// The figures, in the order measured.
    pub figures: Vec<Figure>,
    /// Observations and things not measured.
    pub notes: Vec<String>,
    /// Machine description lines.
    pub machine: Vec<(String, String)>,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// Wall time of the whole run, seconds.
    pub elapsed_s: f64,
    verbose: bool,
    started: std::time::Instant,
}

fn fmt_value(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

impl Report {
    pub(crate) fn new(opts: &Options) -> Self {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let mut machine = machine();
        machine.push((
            "load average at the start (1, 5, 15 min)".into(),
            crate::floors::load_average(),
        ));
        Self {
            label: opts.label.clone(),
            figures: Vec::new(),
            notes: Vec::new(),
            machine,
            date,
            elapsed_s: 0.0,
            verbose: opts.verbose,
            started: std::time::Instant::now(),
        }
    }

    pub(crate) fn finish(&mut self) {
        self.elapsed_s = self.started.elapsed().as_secs_f64();
        self.machine.push((
            "load average at the end (1, 5, 15 min)".into(),
            crate::floors::load_average(),
        ));
    }

    /// Finds a figure by section prefix and name.
    pub fn get(&self, name: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.name == name)
    }

    pub(crate) fn value(&self, name: &str) -> Option<f64> {
        self.get(name).map(|f| f.value)
    }

    /// Records a figure (and prints it when verbose).
    pub(crate) fn add(&mut self, section: &str, name: &str, value: f64, unit: &str) -> &mut Figure {
        self.figures.push(Figure {
            section: section.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            baseline: None,
            floor: None,
            target: None,
        });
        self.figures.last_mut().expect("just pushed")
    }

    /// Prints the last figure (after its baseline and target are set).
    pub(crate) fn show_last(&self) {
        if !self.verbose {
            return;
        }
        if let Some(f) = self.figures.last() {
            println!("{}", line(f));
        }
    }

    pub(crate) fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        if self.verbose {
            println!("  note: {text}");
        }
        self.notes.push(text);
    }

    /// The targets (issue 14) and whether each is met.
    pub fn targets(&self) -> Vec<(String, String, bool)> {
        self.figures
            .iter()
            .filter_map(|f| {
                f.target
                    .as_ref()
                    .map(|(t, met)| (f.name.clone(), t.clone(), *met))
            })
            .collect()
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Written by `cargo run --release -p tongban-bench --{}` on {} ({} sizes, {:.0} s).\n\
             Everything runs on loopback on this one machine. Nodes A and B of sections 2 to 5 (drain,\n\
             latency, intake, star, streaming) and of the evidence re-hash are real `tongban node`\n\
             processes, one per node as in production, and so is the node of the start-up, memory\n\
             and `audit trace` figures; the\n\
             clients, the bare-tonic baseline and the console's nodes run in the bench process, and\n\
             so does the drain's comparison \"drain, both nodes in one process\" (sled's lock is\n\
             process-wide). Per-node CPU and bytes written come from `/proc/PID`, sled operations\n\
             from each node's `/metrics`. Each figure stands beside its baseline and its physical\n\
             floor (section 0: disk syncs and bandwidth, ECDSA, SHA-256, with the bare echo),\n\
             all measured in the same run; the load average shows how busy the machine was.\n",
            if self.label == "quick" {
                " --quick"
            } else {
                ""
            },
            self.date,
            self.label,
            self.elapsed_s
        );
        let _ = writeln!(md, "## Machine\n");
        for (k, v) in &self.machine {
            let _ = writeln!(md, "- {k}: {v}");
        }
        let _ = writeln!(md, "\n## Figures\n");
        let _ = writeln!(
            md,
            "| section | figure | value | unit | baseline (same run) | ratio | floor (same run) | ratio to floor | target | met |"
        );
        let _ = writeln!(md, "|---|---|---:|---|---|---:|---|---:|---|---|");
        for f in &self.figures {
            let baseline = f
                .baseline
                .as_ref()
                .map(|(n, v)| format!("{n} = {}", fmt_value(*v)))
                .unwrap_or_default();
            let ratio = f.ratio().map(|r| format!("{r:.3}")).unwrap_or_default();
            let floor = f
                .floor
                .as_ref()
                .map(|(n, v)| format!("{n} = {}", fmt_value(*v)))
                .unwrap_or_default();
            let floor_ratio = f
                .floor_ratio()
                .map(|r| format!("{r:.3}"))
                .unwrap_or_default();
            let (target, met) = f
                .target
                .as_ref()
                .map(|(t, m)| (t.clone(), if *m { "yes" } else { "**no**" }.to_owned()))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                f.section,
                f.name,
                fmt_value(f.value),
                f.unit,
                baseline,
                ratio,
                floor,
                floor_ratio,
                target,
                met
            );
        }
        let targets = self.targets();
        if !targets.is_empty() {
            let _ = writeln!(md, "\n## Targets (issue 14)\n");
            for (name, t, met) in targets {
                let _ = writeln!(
                    md,
                    "- {name}: target {t} — {}",
                    if met { "met" } else { "**not met**" }
                );
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(md, "\n## Notes from the run\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }

    /// Writes [`Report::markdown`] to `path`, followed by `appendix` (hand-written analysis).
    pub fn write_markdown(&self, path: &Path, appendix: &str) -> std::io::Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = self.markdown();
        if !appendix.is_empty() {
            text.push('\n');
            text.push_str(appendix);
        }
        std::fs::write(path, text)
    }
}

/// One printed line: figure, baseline, ratio, target.
fn line(f: &Figure) -> String {
    let mut s = format!(
        "[{}] {:<44} {:>12} {}",
        f.section,
        f.name,
        fmt_value(f.value),
        f.unit
    );
    if let Some((n, v)) = &f.baseline {
        let _ = write!(s, "   vs {n} = {}", fmt_value(*v));
        if let Some(r) = f.ratio() {
            let _ = write!(s, "   ratio {r:.3}");
        }
    }
    if let Some((n, v)) = &f.floor {
        let _ = write!(s, "   floor {n} = {}", fmt_value(*v));
        if let Some(r) = f.floor_ratio() {
            let _ = write!(s, "   ratio to floor {r:.3}");
        }
    }
    if let Some((t, met)) = &f.target {
        let _ = write!(s, "   target {t}: {}", if *met { "MET" } else { "NOT MET" });
    }
    s
}

fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    vec![
        ("nproc".into(), nproc),
        ("CPU".into(), model),
        ("memory".into(), mem),
        ("rustc".into(), rustc),
        ("kernel".into(), kernel),
        (
            "profile".into(),
            if cfg!(debug_assertions) {
                "debug (dev profile)".into()
            } else {
                "release".into()
            },
        ),
    ]
}
