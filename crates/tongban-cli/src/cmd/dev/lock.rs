//! `D/dev.lock`: one `tongban dev` per directory.
//!
//! The lock is an advisory file lock (fd-lock) held for the whole run, so the
//! kernel releases it however the process ends: a killed run leaves no
//! stale lock to judge. The file holds the pid only so that a second run can
//! say who has the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fd_lock::{RwLock, RwLockWriteGuard};

/// The lock file of a directory, open.
pub(super) struct LockFile {
    dir: PathBuf,
    path: PathBuf,
    lock: RwLock<File>,
}

/// The lock, held until dropped; the file goes with it.
pub(super) struct Held<'a> {
    path: &'a Path,
    _guard: RwLockWriteGuard<'a, File>,
}

impl LockFile {
    pub(super) fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("dev.lock");
        // Not truncated: it may be another run's, with its pid.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
            path,
            lock: RwLock::new(file),
        })
    }

    /// Takes the lock and writes our pid into the file, or says which run
    /// has it.
    pub(super) fn hold(&mut self) -> Result<Held<'_>> {
        let (dir, path) = (&self.dir, &self.path);
        let mut file = match self.lock.try_write() {
            Ok(guard) => guard,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let holder = match holder(path) {
                    Some(pid) => format!("another tongban dev (pid {pid})"),
                    None => "another tongban dev".to_owned(),
                };
                bail!("{holder} is running in {}", dir.display());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        };
        // A run that was stopping may have removed the file we opened just
        // before it let go: then the lock is on a file nobody else sees.
        if !same_file(&file, path) {
            bail!(
                "{} changed while this run was taking it: run tongban dev again",
                path.display()
            );
        }
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())?;
            file.flush()
        };
        write(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Held { path, _guard: file })
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // While still locked (the guard goes after this), so no other run
        // can have taken it.
        let _ = fs::remove_file(self.path);
    }
}

/// The pid in a lock file another run holds. That run writes it right
/// after taking the lock: give it a moment if it is not there yet.
fn holder(path: &Path) -> Option<u32> {
    for _ in 0..10 {
        let mut text = String::new();
        if let Ok(mut file) = File::open(path) {
            let _ = file.read_to_string(&mut text);
        }
        if let Ok(pid) = text.trim().parse() {
            return Some(pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_hold_names_the_first_and_the_file_goes_with_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = LockFile::open(dir.path()).unwrap();
        let held = first.hold().unwrap();
        let path = dir.path().join("dev.lock");
        let pid = std::process::id().to_string();
        assert_eq!(fs::read_to_string(&path).unwrap().trim(), pid);

        // A lock is per open file, so a second open in this process is
        // refused like another run would be.
        let mut second = LockFile::open(dir.path()).unwrap();
        let err = second.hold().err().expect("refused").to_string();
        assert!(
            err.contains(&format!("another tongban dev (pid {pid}) is running in")),
            "{err}"
        );
        drop(second);
        drop(held);
        assert!(!path.exists(), "the lock file is left behind");
        let mut again = LockFile::open(dir.path()).unwrap();
        again.hold().expect("free again");
    }

    #[test]
    fn a_file_left_by_a_killed_run_is_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("dev.lock"), "999999\n").unwrap();
        let mut lock = LockFile::open(dir.path()).unwrap();
        lock.hold().expect("a stale file is not held");
    }
}
