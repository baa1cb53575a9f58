//! Where this process's CPU goes: seconds per thread name and thread states
//! sampled from `/proc/self/task`, and the process's total, so the drain
//! can say which threads were busy while it ran; and the bytes it wrote to
//! storage (`/proc/self/io`).

use std::collections::BTreeMap;

/// CPU seconds per thread name of this process, and thread states seen.
#[derive(Default, Clone)]
pub(crate) struct Threads {
    cpu: BTreeMap<String, f64>,
    running: BTreeMap<String, usize>,
    samples: usize,
}

fn ticks_per_s() -> f64 {
    100.0
}

impl Threads {
    /// Reads `/proc/self/task/*/stat` once.
    pub(crate) fn read() -> Self {
        let mut t = Threads::default();
        t.sample();
        t.running.clear();
        t.samples = 0;
        t
    }

    /// Adds a sample of thread states (which names are running) and
    /// refreshes the CPU counters.
    pub(crate) fn sample(&mut self) {
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
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

/// Bytes this process has caused to be written to storage
/// (`write_bytes` of `/proc/self/io`), 0 where the kernel does not say.
pub(crate) fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process has used.
pub(crate) fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
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

/// CPU per thread over a phase in which threads come and go (a blob
/// writer per material): `/proc/self/task` sampled every 10 ms on a thread
/// of its own, so a thread that ended is counted up to its last sample
/// (`Threads` counts only the threads alive at the end).
pub(crate) struct PhaseCpu {
    process: f64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    sampler: std::thread::JoinHandle<BTreeMap<String, f64>>,
}

/// CPU seconds and name of every thread of this process, by thread id.
fn tasks() -> BTreeMap<u64, (String, f64)> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
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
        out.insert(tid, (stat[open + 1..close].to_owned(), secs));
    }
    out
}

impl PhaseCpu {
    /// Starts counting.
    pub(crate) fn start() -> std::io::Result<Self> {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let at_start = tasks();
        let process = process_cpu_s();
        let sampler = std::thread::Builder::new()
            .name("cpu-sampler".into())
            .spawn(move || {
                let mut last = at_start.clone();
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    last.extend(tasks());
                }
                last.extend(tasks());
                let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
                for (tid, (name, secs)) in last {
                    let before = at_start.get(&tid).map_or(0.0, |t| t.1);
                    *by_name.entry(name).or_default() += secs - before;
                }
                by_name.remove("cpu-sampler");
                by_name
            });
        Ok(Self {
            process,
            stop,
            sampler: sampler?,
        })
    }

    /// Stops counting: the process's CPU seconds over the phase, and the
    /// split by thread name as text (the sampler's own thread left out).
    pub(crate) fn stop(self) -> (f64, String) {
        let process = process_cpu_s() - self.process;
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let by_name = self.sampler.join().unwrap_or_default();
        let mut rows: Vec<(String, f64)> =
            by_name.into_iter().filter(|(_, v)| *v > 0.005).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let text = rows
            .iter()
            .map(|(k, v)| format!("{k} {v:.2} s"))
            .collect::<Vec<_>>()
            .join(", ");
        (process, text)
    }
}
