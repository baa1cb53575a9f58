//! A node's held sockets as a sandbox hands them to a `tongban node`
//! process of its own, and (feature `processes`) passing them to a command
//! the way systemd's socket activation does: as fds 3, 4, … with
//! `LISTEN_FDS` set to their number.

use std::os::fd::OwnedFd;

/// Duplicates of one node's held sockets, in the order it takes them.
/// Each [`Passed::pass_to`] passes fresh duplicates, so one value serves
/// every restart of the process.
#[derive(Debug)]
pub struct Passed(Vec<OwnedFd>);

impl Passed {
    pub(crate) fn new(fds: Vec<OwnedFd>) -> Self {
        Self(fds)
    }

    /// Duplicates of the same sockets (for another thread or task).
    pub fn try_clone(&self) -> std::io::Result<Self> {
        self.0
            .iter()
            .map(OwnedFd::try_clone)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Gives `command` duplicates of the sockets as fds 3, 4, … and sets
    /// `LISTEN_FDS` (no `LISTEN_PID`: the child's pid is not known before
    /// it is spawned, and `tongban node` takes the sockets without it). The
    /// command holds the duplicates until it is dropped.
    #[cfg(feature = "processes")]
    pub fn pass_to(&self, command: &mut std::process::Command) -> std::io::Result<()> {
        use command_fds::{CommandFdExt, FdMapping};
        let mut mappings = Vec::new();
        for (child_fd, fd) in (3..).zip(&self.0) {
            mappings.push(FdMapping {
                parent_fd: fd.try_clone()?,
                child_fd,
            });
        }
        command
            .fd_mappings(mappings)
            .map_err(std::io::Error::other)?
            .env("LISTEN_FDS", self.0.len().to_string())
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES");
        Ok(())
    }
}
