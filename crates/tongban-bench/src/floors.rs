//! The physical floors of this machine, measured in the same run as the
//! figures they bound: disk syncs and bandwidth, ECDSA P-256 (ring, the
//! library the node signs receipts with), SHA-256 bandwidth. With the bare
//! tonic echo (`echo.rs`) they give each tongban figure the best it could do
//! here, now, so a ratio to its floor survives a loaded machine better than
//! the raw figure does.
//!
//! Not here: what a floor is made of for each figure (`flows.rs` combines
//! them where the figure is measured).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use sha2::{Digest, Sha256};

use crate::Report;
use crate::stats::{latencies, mb_per_s};

pub(crate) const SECTION: &str = "0. floors";
/// Figure names the other sections build their floors from.
pub(crate) const FSYNC_P50: &str = "fsync 4 KiB p50";
pub(crate) const FDATASYNC_P50: &str = "fdatasync 4 KiB p50";
pub(crate) const SIGN: &str = "ECDSA P-256 sign (ring)";
pub(crate) const VERIFY: &str = "ECDSA P-256 verify (ring)";
pub(crate) const SHA256: &str = "SHA-256 bandwidth (one core)";
pub(crate) const DISK_BEFORE: &str = "disk write + fdatasync, before streaming";
pub(crate) const DISK_AFTER: &str = "disk write + fdatasync, after streaming";
pub(crate) const HASHED_BEFORE: &str = "bare upload + SHA-256 at the receiver, before streaming";
pub(crate) const HASHED_AFTER: &str = "bare upload + SHA-256 at the receiver, after streaming";
pub(crate) const BOTH_BEFORE: &str = "bare upload + SHA-256 at both ends, before streaming";
pub(crate) const BOTH_AFTER: &str = "bare upload + SHA-256 at both ends, after streaming";

/// Disk syncs a handoff waits for in sequence between A's `case.accepted`
/// entry and A's `handoff.receipted` entry: A's flush of the accept, B's
/// material log, B's commit of the received handoff (A's own flush of the
/// receipt comes after its entry is stamped).
pub(crate) const SYNCS_ON_PATH: f64 = 3.0;

/// Measures the floors into `report` (a second or two at any size).
pub(crate) fn run(dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (fsync, fdatasync) = syncs(&dir.join("sync-probe"), 200)?;
    report.add(SECTION, FSYNC_P50, fsync, "µs");
    report.show_last();
    report.add(SECTION, FDATASYNC_P50, fdatasync, "µs");
    report.show_last();
    let (sign, verify) = ecdsa(2_000)?;
    report.add(SECTION, SIGN, sign, "µs");
    report.show_last();
    report.add(SECTION, VERIFY, verify, "µs");
    report.show_last();
    report.add(SECTION, SHA256, sha256_rate(64 << 20), "MB/s");
    report.show_last();
    Ok(())
}

/// Write + fdatasync of `files` into `dir` (see [`disk_write_rate`]),
/// the best of [`DISK_RUNS`] runs, as a figure named `name`.
pub(crate) fn disk(
    dir: &Path,
    files: &[&[u8]],
    name: &str,
    report: &mut Report,
) -> anyhow::Result<f64> {
    let mut best = 0.0f64;
    for _ in 0..DISK_RUNS {
        best = best.max(disk_write_rate(dir, files)?);
    }
    report.add(SECTION, name, best, "MB/s");
    report.show_last();
    Ok(best)
}

/// p50 of a 4 KiB overwrite followed by fsync, then by fdatasync (µs).
fn syncs(path: &Path, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut file = std::fs::File::create(path)?;
    let page = vec![0xa5u8; 4096];
    let mut run = |data_only: bool| -> anyhow::Result<f64> {
        let mut samples = Vec::with_capacity(n);
        for i in 0..n {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start((i as u64 % 64) * 4096))?;
            file.write_all(&page)?;
            let t = Instant::now();
            if data_only {
                file.sync_data()?;
            } else {
                file.sync_all()?;
            }
            samples.push(t.elapsed());
        }
        Ok(latencies(&mut samples).p50_us)
    };
    let fsync = run(false)?;
    let fdatasync = run(true)?;
    drop(file);
    std::fs::remove_file(path)?;
    Ok((fsync, fdatasync))
}

/// Mean µs of one ECDSA P-256 signature and one verification of a 32-byte
/// message, over `n` each.
fn ecdsa(n: usize) -> anyhow::Result<(f64, f64)> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| anyhow::anyhow!("failed to generate a P-256 key: {e}"))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|e| anyhow::anyhow!("failed to load the P-256 key: {e}"))?;
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref());
    let message = [7u8; 32];
    let mut signatures = Vec::with_capacity(n);
    let t = Instant::now();
    for _ in 0..n {
        signatures.push(
            key.sign(&rng, &message)
                .map_err(|e| anyhow::anyhow!("failed to sign: {e}"))?,
        );
    }
    let sign = per_op_us(t.elapsed(), n);
    let t = Instant::now();
    for s in &signatures {
        public
            .verify(&message, s.as_ref())
            .map_err(|e| anyhow::anyhow!("failed to verify: {e}"))?;
    }
    let verify = per_op_us(t.elapsed(), n);
    Ok((sign, verify))
}

fn per_op_us(elapsed: Duration, n: usize) -> f64 {
    elapsed.as_secs_f64() * 1e6 / n.max(1) as f64
}

/// SHA-256 of `bytes` of incompressible data in 64 KiB updates (MB/s).
fn sha256_rate(bytes: usize) -> f64 {
    let data = crate::flows::pseudo_random(bytes, 5);
    let t = Instant::now();
    let mut h = Sha256::new();
    for chunk in data.chunks(64 * 1024) {
        h.update(chunk);
    }
    std::hint::black_box(h.finalize());
    mb_per_s(bytes, t.elapsed())
}

/// Runs of the disk probe each time it is measured. The best is the floor:
/// this VM's disk moves between about 60 and 2,000 MB/s within seconds
/// (session 5: 59-1,279 MB/s over fifteen runs within three minutes at
/// load 10-11), so one run says more about that moment than the disk.
const DISK_RUNS: usize = 2;

/// Bytes written behind before the written part is synced in the
/// background: the node's blob writer's (`tongban-ledger`, `blobs`).
const WRITE_BEHIND: usize = 8 << 20;

/// The node's blob writer's write size: one gRPC chunk.
const CHUNK: usize = 64 << 10;

/// Files of the disk probe so far: each run writes new names, as the node
/// writes each upload to a new temporary file.
static PROBES: AtomicUsize = AtomicUsize::new(0);

/// Writes each of `files` as the node's blob writer writes a stream's
/// materials, and returns MB/s from the first create to the last sync: a
/// new file each, written in 64 KiB chunks from one thread, the part written
/// so far synced in the background every 8 MiB, then the file's final
/// `fsync` on a thread of its own while the next file is written (the node
/// receives the next material meanwhile), then the directory's. Plain
/// `std::fs`, no tongban code. The files are removed afterwards.
///
/// Why this shape (session 5): the previous probe wrote one 256 MiB file
/// of one repeated byte in 1 MiB pieces to the same name every time, and
/// read 219 and 208 MB/s in the full run in which the node wrote and
/// synced the same 256 MiB at 580 MB/s; this one writes what the node
/// writes, the way it writes it.
pub(crate) fn disk_write_rate(dir: &Path, files: &[&[u8]]) -> anyhow::Result<f64> {
    let run = PROBES.fetch_add(1, Ordering::Relaxed);
    let paths: Vec<PathBuf> = (0..files.len())
        .map(|i| dir.join(format!("disk-probe-{run}-{i}")))
        .collect();
    let started = Instant::now();
    let written = write_all_synced(dir, &paths, files);
    let elapsed = started.elapsed();
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    written?;
    Ok(mb_per_s(files.iter().map(|f| f.len()).sum(), elapsed))
}

/// The writes and syncs of [`disk_write_rate`].
fn write_all_synced(dir: &Path, paths: &[PathBuf], files: &[&[u8]]) -> anyhow::Result<()> {
    let mut last_syncs = Vec::with_capacity(files.len());
    for (path, content) in paths.iter().zip(files) {
        let file = write_synced_behind(path, content)?;
        last_syncs.push(std::thread::spawn(move || file.sync_all()));
    }
    for t in last_syncs {
        t.join()
            .map_err(|_| anyhow::anyhow!("the sync thread panicked"))??;
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// One new file with `content`, written in [`CHUNK`]s, what was written so
/// far synced in the background every [`WRITE_BEHIND`] bytes; returned
/// once the last background sync is over (its final sync is the caller's).
fn write_synced_behind(path: &Path, content: &[u8]) -> anyhow::Result<std::fs::File> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let mut unsynced = 0usize;
    let mut behind: Option<std::thread::JoinHandle<std::io::Result<()>>> = None;
    for chunk in content.chunks(CHUNK) {
        file.write_all(chunk)?;
        unsynced += chunk.len();
        if unsynced >= WRITE_BEHIND && behind.as_ref().is_none_or(|t| t.is_finished()) {
            if let Some(t) = behind.take() {
                t.join()
                    .map_err(|_| anyhow::anyhow!("the sync thread panicked"))??;
            }
            let clone = file.try_clone()?;
            unsynced = 0;
            behind = Some(std::thread::spawn(move || clone.sync_data()));
        }
    }
    if let Some(t) = behind {
        t.join()
            .map_err(|_| anyhow::anyhow!("the sync thread panicked"))??;
    }
    Ok(file)
}

/// The load averages of `/proc/loadavg` (1, 5, 15 min), as text.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}
