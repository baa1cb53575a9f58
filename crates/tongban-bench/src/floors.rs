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
use std::path::Path;
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

/// Write + fdatasync of `bytes` into `dir`, as a figure named `name`.
pub(crate) fn disk(
    dir: &Path,
    bytes: usize,
    name: &str,
    report: &mut Report,
) -> anyhow::Result<f64> {
    let rate = disk_write_rate(&dir.join("disk-probe"), bytes)?;
    report.add(SECTION, name, rate, "MB/s");
    report.show_last();
    Ok(rate)
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

/// Sequential write of `bytes` in 1 MiB pieces, the part written so far
/// synced in the background every 8 MiB, then one fdatasync (MB/s): the
/// best way the node's blob writer knows to put a large file on disk (it
/// does the same). One fdatasync of the whole file at the end was no floor:
/// with 256 MiB dirty at once this VM's disk gave 312-367 MB/s while the
/// node's intake, syncing behind, stored 778 MB/s. The file is removed
/// afterwards.
pub(crate) fn disk_write_rate(path: &Path, bytes: usize) -> anyhow::Result<f64> {
    const BEHIND: usize = 8 << 20;
    let piece = vec![0x5au8; 1 << 20];
    let started = Instant::now();
    let mut file = std::fs::File::create(path)?;
    let mut left = bytes;
    let mut unsynced = 0usize;
    let mut behind: Option<std::thread::JoinHandle<std::io::Result<()>>> = None;
    while left > 0 {
        let n = left.min(piece.len());
        file.write_all(&piece[..n])?;
        left -= n;
        unsynced += n;
        if unsynced >= BEHIND && behind.as_ref().is_none_or(|t| t.is_finished()) {
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
    file.sync_data()?;
    let rate = mb_per_s(bytes, started.elapsed());
    drop(file);
    std::fs::remove_file(path)?;
    Ok(rate)
}

/// The load averages of `/proc/loadavg` (1, 5, 15 min), as text.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}
