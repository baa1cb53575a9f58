//! Where a process's CPU goes, read from `/proc`: this one's (the client)
//! and each spawned node's: seconds per thread name and thread states
//! sampled from `/proc/PID/task`, and the process's total, so the drain
//! can say which threads of which node were busy while it ran; and the
//! bytes it wrote to storage (`/proc/PID/io`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A process read from `/proc`: this one or a spawned node, with the
/// label its figures are printed under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proc {
    dir: PathBuf,
    /// "bench", "A", "B".
    pub(crate) label: String,
}

impl Proc {
    /// This process (the bench: clients, and the nodes it runs in itself).
    pub(crate) fn myself() -> Self {
        Self {
            dir: "/proc/self".into(),
            label: "bench".into(),
        }
    }

    /// Process `pid`, printed as `label`.
    pub(crate) fn pid(pid: u32, label: &str) -> Self {
        Self {
            dir: format!("/proc/{pid}").into(),
            label: label.into(),
        }
    }

    /// CPU seconds (user + system) it has used, 0 once it is gone.
    pub(crate) fn cpu_s(&self) -> f64 {
        let stat = std::fs::read_to_string(self.dir.join("stat")).unwrap_or_default();
        let Some(close) = stat.rfind(')') else {
            return 0.0;
        };
        let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let f = |i: usize| {
            rest.get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (f(11) + f(12)) / ticks_per_s()
    }

    /// Bytes it has caused to be written to storage (`write_bytes` of
    /// `/proc/PID/io`), 0 where the kernel does not say.
    pub(crate) fn written_bytes(&self) -> u64 {
        std::fs::read_to_string(self.dir.join("io"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("write_bytes: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// CPU seconds per thread name of a process, and thread states seen.
#[derive(Default, Clone)]
pub(crate) struct Threads {
    /// `None`: not read yet (a node not started: every thread is new).
    proc: Option<Proc>,
    cpu: BTreeMap<String, f64>,
    running: BTreeMap<String, usize>,
    samples: usize,
}

fn ticks_per_s() -> f64 {
    100.0
}

impl Threads {
    /// Reads `/proc/PID/task/*/stat` of `proc` once.
    pub(crate) fn read(proc: &Proc) -> Self {
        let mut t = Threads {
            proc: Some(proc.clone()),
            ..Threads::default()
        };
        t.sample();
        t.running.clear();
        t.samples = 0;
        t
    }

    /// `proc` before it has run: every thread read later is new.
    pub(crate) fn unread(proc: &Proc) -> Self {
        Threads {
            proc: Some(proc.clone()),
            ..Threads::default()
        }
    }

    /// Adds a sample of thread states (which names are running) and
    /// refreshes the CPU counters.
    pub(crate) fn sample(&mut self) {
        let Some(proc) = &self.proc else {
            return;
        };
        let Ok(dir) = std::fs::read_dir(proc.dir.join("task")) else {
            return;
        };
        let mut cpu: BTreeMap<String, f64> = BTreeMap::new();
        for task in dir.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = stat[open + 1..close].to_owned();
            let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            // rest[0] is the state (field 3); utime, stime are fields 14, 15.
            let (Some(state), Some(u), Some(s)) = (rest.first(), rest.get(11), rest.get(12)) else {
                continue;
            };
            let secs =
                (u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0)) / ticks_per_s();
            *cpu.entry(name.clone()).or_default() += secs;
            if *state == "R" || *state == "D" {
                *self.running.entry(format!("{name} [{state}]")).or_default() += 1;
            }
        }
        self.cpu = cpu;
        self.samples += 1;
    }

    /// CPU per thread name between `before` and `self` (threads that ended
    /// meanwhile are not counted), as text, and the total.
    pub(crate) fn since(&self, before: &Threads) -> (f64, String) {
        let mut rows: Vec<(String, f64)> = self
            .cpu
            .iter()
            .map(|(k, v)| (k.clone(), v - before.cpu.get(k).copied().unwrap_or(0.0)))
            .filter(|(_, v)| *v > 0.005)
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = rows.iter().map(|r| r.1).sum();
        let text = rows
            .iter()
            .map(|(k, v)| format!("{k} {v:.2} s"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut states: Vec<(&String, &usize)> = self.running.iter().collect();
        states.sort_by(|a, b| b.1.cmp(a.1));
        let states = states
            .iter()
            .map(|(k, v)| format!("{k} {v}/{}", self.samples))
            .collect::<Vec<_>>()
            .join(", ");
        (
            total,
            format!("CPU by thread: {text}; runnable/blocked samples: {states}"),
        )
    }
}

/// CPU seconds (user + system) this process has used.
pub(crate) fn process_cpu_s() -> f64 {
    Proc::myself().cpu_s()
}

/// CPU per thread over a phase in which threads come and go (a blob
/// writer per material), in each of a few processes: `/proc/PID/task`
/// sampled every 10 ms on a thread of its own, so a thread that ended is
/// counted up to its last sample (`Threads` counts only the threads alive
/// at the end).
pub(crate) struct PhaseCpu {
    procs: Vec<(Proc, f64)>,
    /// Which of them is this process (where the sampler runs).
    me: Option<usize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<(ByThread, f64)>,
}

/// CPU seconds by process (its index) and thread name; with it, the
/// sampler's own.
type ByThread = BTreeMap<(usize, String), f64>;

/// CPU seconds and name of every thread of each of `procs`, by its index
/// in `procs` and thread id.
fn tasks(procs: &[Proc]) -> BTreeMap<(usize, u64), (String, f64)> {
    let mut out = BTreeMap::new();
    for (i, proc) in procs.iter().enumerate() {
        let Ok(dir) = std::fs::read_dir(proc.dir.join("task")) else {
            continue;
        };
        for task in dir.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let (Some(u), Some(s)) = (rest.get(11), rest.get(12)) else {
                continue;
            };
            let secs =
                (u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0)) / ticks_per_s();
            out.insert((i, tid), (stat[open + 1..close].to_owned(), secs));
        }
    }
    out
}

impl PhaseCpu {
    /// Starts counting the CPU of `procs` (this process and the nodes).
    pub(crate) fn start(procs: &[Proc]) -> std::io::Result<Self> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let list = procs.to_vec();
        // The sampler is a thread of this process.
        let me = procs.iter().position(|p| p.dir == Path::new("/proc/self"));
        let at_start = tasks(&list);
        let procs = procs.iter().map(|p| (p.clone(), p.cpu_s())).collect();
        let sampler = std::thread::Builder::new()
            .name("cpu-sampler".into())
            .spawn(move || {
                let mut last = at_start.clone();
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    last.extend(tasks(&list));
                }
                last.extend(tasks(&list));
                let mut by_name = ByThread::new();
                for (key, (name, secs)) in last {
                    let before = at_start.get(&key).map_or(0.0, |t| t.1);
                    *by_name.entry((key.0, name)).or_default() += secs - before;
                }
                // Reading three processes' threads every 10 ms is not what
                // the phase costs: the sampler's own CPU is left out.
                let own = match me {
                    Some(i) => by_name.remove(&(i, "cpu-sampler".to_owned())),
                    None => None,
                };
                let own = own.unwrap_or(0.0);
                (by_name, own)
            });
        Ok(Self {
            procs,
            me,
            stop,
            sampler: sampler?,
        })
    }

    /// Stops counting: the CPU seconds of all the processes over the phase,
    /// and as text each one's and its split by thread name (the sampler's
    /// own thread left out of both).
    pub(crate) fn stop(self) -> (f64, String) {
        let mut used: Vec<(String, f64)> = self
            .procs
            .iter()
            .map(|(p, before)| (p.label.clone(), p.cpu_s() - before))
            .collect();
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (by_name, own) = self.sampler.join().unwrap_or_default();
        if let Some(mine) = self.me.and_then(|i| used.get_mut(i)) {
            mine.1 = (mine.1 - own).max(0.0);
        }
        let total = used.iter().map(|u| u.1).sum();
        let text = used
            .iter()
            .enumerate()
            .map(|(i, (label, secs))| {
                let mut rows: Vec<(&String, f64)> = by_name
                    .iter()
                    .filter(|((p, _), v)| *p == i && **v > 0.005)
                    .map(|((_, name), v)| (name, *v))
                    .collect();
                rows.sort_by(|a, b| b.1.total_cmp(&a.1));
                let rows = rows
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.2} s"))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{label} {secs:.2} s CPU ({rows})")
            })
            .collect::<Vec<_>>()
            .join("; ");
        (total, text)
    }
}
