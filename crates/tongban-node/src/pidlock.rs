//! A pid lock: one process per directory. The node takes
//! `DATA_DIR/node.pid` before the store opens, so a second node on the same
//! data dir is told who has it instead of getting sled's raw lock error;
//! `tongban dev` takes `D/dev.lock` the same way for its whole run.
//!
//! The lock is an advisory file lock (fd-lock, `flock(2)`) held while the
//! process runs, so the kernel releases it however the process ends: a
//! killed process leaves no stale lock. The file holds the pid only so that
//! a second process can name the first; it is left in place when the lock
//! drops, because removing it would let a process that had just opened the
//! old file and one that creates a new one both hold "the" lock.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fd_lock::RwLock;

use crate::NodeError;

/// The node's lock file's name in the data dir.
pub(crate) const PID_FILE: &str = "node.pid";

/// A directory's lock, held until dropped.
pub struct PidLock {
    _file: RwLock<File>,
}

/// Why a [`PidLock`] was not taken.
#[derive(Debug, thiserror::Error)]
pub enum PidLockError {
    /// Another process holds the lock.
    #[error("{} is locked by another process", path.display())]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, from the lock file.
        pid: Option<u32>,
    },
    /// The directory or the lock file could not be created, opened, locked
    /// or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: `create`, `open`, `lock` or `write`.
        action: &'static str,
        /// The directory or lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl PidLock {
    /// Creates `dir` if needed, takes the lock of `dir/file_name` and
    /// writes this process's pid into it; [`PidLockError::Held`], naming
    /// the holder's pid, if another process has it.
    pub fn acquire(dir: &Path, file_name: &str) -> Result<Self, PidLockError> {
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| PidLockError::Io {
                action,
                path,
                source,
            }
        };
        // With the store's modes (0700 / 0600): personal data lives here.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create", dir))?;
        let path = dir.join(file_name);
        // Not truncated: it may be another process's, with its pid.
        let file = OpenOptions::new()
            .mode(0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open", &path))?;
        let mut lock = RwLock::new(file);
        let mut guard = match lock.try_write() {
            Ok(guard) => guard,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let pid = holder(&path);
                return Err(PidLockError::Held { path, pid });
            }
            Err(e) => return Err(io("lock", &path)(e)),
        };
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())?;
            file.flush()
        };
        write(&mut guard).map_err(io("write", &path))?;
        // The flock stays until the file is closed, when `PidLock` drops:
        // the guard need not live on for that.
        std::mem::forget(guard);
        Ok(Self { _file: lock })
    }
}

/// The node's lock on its data dir ([`PID_FILE`]):
/// [`NodeError::DataDirInUse`] if another node holds it.
pub(crate) fn data_dir(data_dir: &Path) -> Result<PidLock, NodeError> {
    PidLock::acquire(data_dir, PID_FILE).map_err(|e| match e {
        PidLockError::Held { pid, .. } => NodeError::DataDirInUse {
            dir: data_dir.to_path_buf(),
            pid,
        },
        PidLockError::Io {
            action,
            path,
            source,
        } => NodeError::Server(format!("cannot {action} {}: {source}", path.display())),
    })
}

/// The pid in the lock file, if it holds one.
fn holder(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_the_first_and_is_free_once_it_drops() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = data_dir(&data).unwrap();
        let pid = std::process::id();
        // The store's modes: it would fix (and warn about) anything else.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(PID_FILE)), 0o600);
        assert_eq!(
            std::fs::read_to_string(data.join(PID_FILE)).unwrap().trim(),
            pid.to_string()
        );
        // A lock is per open file, so a second open in this process is
        // refused like another process would be.
        let err = data_dir(&data).err().expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "data dir {} is in use by another tongban node (pid {pid})",
                data.display()
            )
        );
        drop(first);
        data_dir(&data).expect("free again");
    }

    #[test]
    fn a_file_left_by_a_killed_process_is_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dev.lock"), "999999\n").unwrap();
        let lock = PidLock::acquire(dir.path(), "dev.lock").expect("a stale file is not held");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("dev.lock"))
                .unwrap()
                .trim(),
            std::process::id().to_string()
        );
        // Held by this one now, and said so with its pid.
        match PidLock::acquire(dir.path(), "dev.lock") {
            Err(PidLockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("not refused as held: {:?}", other.err()),
        }
        drop(lock);
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_named_with_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let err = PidLock::acquire(&file.join("sub"), "x.lock")
            .err()
            .expect("refused");
        assert!(
            matches!(
                err,
                PidLockError::Io {
                    action: "create",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("cannot create {}", file.join("sub").display())
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
