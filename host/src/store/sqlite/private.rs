//! The run database is its owner's: every tenant's inputs, outputs and
//! sessions are in it. A directory the store creates for it is 0700, a new
//! database file 0600 (SQLite gives its `-wal` and `-shm` files the
//! database file's mode). What exists already keeps its mode: the operator
//! chose it.

use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, each readable by its owner only.
pub(super) fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the empty database file at `path` (0600) unless it exists.
pub(super) fn create_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
