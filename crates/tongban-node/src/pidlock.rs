//! `DATA_DIR/node.pid`: one node per data dir. Taken before the store
//! opens, so a second node on the same data dir is told who has it instead
//! of getting sled's raw lock error.
//!
//! The lock is an advisory file lock (fd-lock, `flock(2)`) held while the
//! node runs, so the kernel releases it however the process ends: a killed
//! node leaves no stale lock. The file holds the pid only so that a second
//! node can name the first; it is left in place when the node stops,
//! because removing it would let a node that had just opened the old file
//! and a node that creates a new one both hold "the" lock.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use fd_lock::RwLock;

use crate::NodeError;

/// The lock file's name in the data dir.
pub(crate) const PID_FILE: &str = "node.pid";

/// The data dir's lock, held until dropped.
pub(crate) struct PidLock {
    _file: RwLock<File>,
}

impl PidLock {
    /// Creates `data_dir` if needed, takes its lock and writes this
    /// process's pid into the lock file; [`NodeError::DataDirInUse`] if
    /// another node holds it.
    pub(crate) fn acquire(data_dir: &Path) -> Result<Self, NodeError> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            NodeError::Server(format!("cannot {what} {}: {e}", path.display()))
        };
        // With the store's modes (0700 / 0600): personal data lives here.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| io("create", data_dir, e))?;
        let path = data_dir.join(PID_FILE);
        // Not truncated: it may be another node's, with its pid.
        let file = OpenOptions::new()
            .mode(0o600)
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("open", &path, e))?;
        let mut lock = RwLock::new(file);
        let mut guard = match lock.try_write() {
            Ok(guard) => guard,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Err(NodeError::DataDirInUse {
                    dir: data_dir.to_path_buf(),
                    pid: holder(&path),
                });
            }
            Err(e) => return Err(io("lock", &path, e)),
        };
        let write = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())?;
            file.flush()
        };
        write(&mut guard).map_err(|e| io("write", &path, e))?;
        // The flock stays until the file is closed, when `PidLock` drops:
        // the guard need not live on for that.
        std::mem::forget(guard);
        Ok(Self { _file: lock })
    }
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
        let first = PidLock::acquire(&data).unwrap();
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
        let err = PidLock::acquire(&data).err().expect("refused");
        assert_eq!(
            err.to_string(),
            format!(
                "data dir {} is in use by another tongban node (pid {pid})",
                data.display()
            )
        );
        drop(first);
        PidLock::acquire(&data).expect("free again");
    }

    #[test]
    fn a_file_left_by_a_killed_node_is_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PID_FILE), "999999\n").unwrap();
        PidLock::acquire(dir.path()).expect("a stale file is not held");
    }
}
