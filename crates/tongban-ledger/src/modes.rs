//! File modes of the data dir: applicants' personal data is readable only by
//! the node's own user. Directories are `0700`, files `0600`.
//!
//! What this crate creates gets its mode at creation ([`create_dir`],
//! [`create_file`]), so none of it is ever readable by others, whatever the
//! umask; that includes the `ledger.sled` directory, made before sled opens
//! it. sled creates the files inside (`conf`, `db`, snapshots, its blobs)
//! with the process umask. [`secure`] runs when the store opens, after sled
//! has, and puts every entry of the data dir right: a mode that lets group
//! or others in is set to `0700`/`0600`. Outside sled's directory that is
//! someone's mistake (a restore without `-p`, a `chmod -R`), logged as a
//! warning naming the path and the mode it had; inside it, it is sled's
//! umask at work, fixed quietly on every start. (Files sled creates while
//! the node runs sit in the `0700` directory until the next start.)
//! Symbolic links are left alone and not followed.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::StoreError;

/// The mode of every directory in the data dir.
pub(crate) const DIR_MODE: u32 = 0o700;
/// The mode of every file in the data dir.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents with mode `0700`.
pub(crate) fn create_dir(path: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
        .map_err(StoreError::io("failed to create", path))
}

/// Options that create a file with mode `0600` (add read, write, create…).
pub(crate) fn create_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Creates (truncating) a file for writing with mode `0600`.
pub(crate) fn create_new_file(path: &Path) -> Result<File, StoreError> {
    create_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(StoreError::io("failed to create", path))
}

/// Walks `root` and sets every directory that group or others may enter
/// to `0700` and every such file to `0600`, warning of each fix except for
/// entries inside `quiet` (the files sled creates). Returns how many
/// entries it fixed.
pub(crate) fn secure(root: &Path, quiet: &Path) -> Result<usize, StoreError> {
    let mut fixed = 0;
    let mut stack = vec![root.to_path_buf()];
    let fix = |path: &Path, mode: u32| {
        let warn = !(path.starts_with(quiet) && path != quiet);
        fix(path, mode, warn)
    };
    while let Some(dir) = stack.pop() {
        if fix(&dir, DIR_MODE)? {
            fixed += 1;
        }
        let entries = std::fs::read_dir(&dir).map_err(StoreError::io("failed to read", &dir))?;
        for entry in entries {
            let entry = entry.map_err(StoreError::io("failed to read", &dir))?;
            let kind = entry
                .file_type()
                .map_err(StoreError::io("failed to read", entry.path()))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() && fix(&entry.path(), FILE_MODE)? {
                fixed += 1;
            }
        }
    }
    Ok(fixed)
}

/// Sets `path` to `mode` if group or others have any access to it.
fn fix(path: &Path, mode: u32, warn: bool) -> Result<bool, StoreError> {
    let meta = std::fs::symlink_metadata(path).map_err(StoreError::io("failed to read", path))?;
    let old = meta.permissions().mode() & 0o7777;
    if old & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(StoreError::io("failed to set the mode of", path))?;
    let (old, new) = (format_args!("{old:04o}"), format_args!("{mode:04o}"));
    if warn {
        tracing::warn!(path = %path.display(), old_mode = %old, new_mode = %new, "data dir entry was open to other users; mode fixed");
    } else {
        tracing::debug!(path = %path.display(), old_mode = %old, new_mode = %new, "mode of a file sled created fixed");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn created_entries_are_private_and_loose_ones_are_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        create_dir(&root.join("blobs/ab")).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("blobs/ab")), 0o700);
        let file = root.join("blobs/ab/abcd");
        drop(create_new_file(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        let sled = root.join("ledger.sled");
        assert_eq!(secure(&root, &sled).unwrap(), 0, "nothing to fix");

        let set = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        set(&root, 0o755).unwrap();
        set(&file, 0o644).unwrap();
        // Tighter than required is left as it is.
        let read_only = root.join("ro");
        drop(create_new_file(&read_only).unwrap());
        set(&read_only, 0o400).unwrap();
        // sled's own files are fixed as well (without a warning).
        create_dir(&sled).unwrap();
        std::fs::write(sled.join("conf"), "").unwrap();
        set(&sled.join("conf"), 0o644).unwrap();
        assert_eq!(secure(&root, &sled).unwrap(), 3);
        assert_eq!(mode(&sled.join("conf")), 0o600);
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&read_only), 0o400);
        assert_eq!(secure(&root, &sled).unwrap(), 0, "fixed once");
    }
}
