//! What makes the compile cache trustworthy: a directory only its owner can
//! write, and a secret key, kept outside it, that authenticates every entry.
//!
//! A cached artifact is native code that wasmtime maps and runs, so whoever
//! can write an entry can run code as the host's user. Two checks stand
//! between a file and execution:
//!
//! - the directory: owned by the effective user and writable by nobody else,
//!   and every directory above it owned by that user or root and writable by
//!   nobody else unless sticky (`/tmp`), as ssh checks `~/.ssh`. The cache
//!   directory is created `0700`;
//! - the key: 32 random bytes in a file created `0600` on first use, outside
//!   the cache directory, refused when others may read it or it is not the
//!   user's own. Each entry carries an HMAC-SHA256 under this key (see
//!   `cache`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of the cache key.
pub(super) const KEY_LEN: usize = 32;

/// Why the compile cache cannot be used. The host refuses to start rather
/// than run artifacts it cannot trust; `--no-cache` works without one.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "compile cache {}: {reason}\n  hint: other users could plant native code there; choose a directory only you can write (--cache-dir / HOST_CACHE_DIR), fix its mode (chmod 700), or pass --no-cache",
        path.display()
    )]
    Unsafe { path: PathBuf, reason: String },
    #[error("compile cache {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "compile cache key {}: {reason}\n  hint: the key authenticates cached native code; give it a file only you can read (--cache-key / HOST_CACHE_KEY), or pass --no-cache",
        path.display()
    )]
    Key { path: PathBuf, reason: String },
    #[error(
        "no place for the compile cache key (no home directory)\n  hint: pass --cache-key FILE (or set HOST_CACHE_KEY), or --no-cache"
    )]
    NoKeyPath,
}

/// The secret that authenticates cache entries.
#[derive(Clone)]
pub(super) struct CacheKey(pub(super) [u8; KEY_LEN]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(<redacted>)")
    }
}

/// Creates `dir` (mode `0700`) if needed and checks that only its owner, the
/// effective user, can write it or any directory above it.
pub(super) fn private_dir(dir: &Path) -> Result<(), CacheError> {
    create_private_dirs(dir)?;
    check_private_dir(dir)
}

fn create_private_dirs(dir: &Path) -> Result<(), CacheError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| CacheError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// The key at `path`: read, or created (`0600`, 32 random bytes) when the
/// file does not exist. `cache_dir` is where the entries live; the key may
/// not be inside it.
pub(super) fn load_or_create_key(path: &Path, cache_dir: &Path) -> Result<CacheKey, CacheError> {
    let bad = |reason: String| CacheError::Key {
        path: path.to_owned(),
        reason,
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dirs(&parent)?;
    let real_parent = std::fs::canonicalize(&parent).map_err(|source| CacheError::Io {
        path: parent.clone(),
        source,
    })?;
    if let Ok(real_cache) = std::fs::canonicalize(cache_dir)
        && real_parent.starts_with(&real_cache)
    {
        return Err(bad(format!(
            "is inside the cache directory {}; whoever can write entries could then also forge them",
            cache_dir.display()
        )));
    }
    check_private_dir(&parent)?;
    match std::fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(path, &parent)?,
        Err(source) => {
            return Err(CacheError::Io {
                path: path.to_owned(),
                source,
            });
        }
    }
    read_key(path)
}

/// Writes a fresh key beside its final name and links it into place, so a
/// concurrent `host` never reads a half-written key; whoever links first
/// wins and the other reads that key.
fn create_key(path: &Path, parent: &Path) -> Result<(), CacheError> {
    let io = |source| CacheError::Io {
        path: path.to_owned(),
        source,
    };
    let mut key = [0u8; KEY_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(io)?;
    // NamedTempFile creates the file 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(io)?;
    tmp.write_all(&key).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            tracing::info!(path = %path.display(), "created the compile cache key");
            Ok(())
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e.error)),
    }
}

fn read_key(path: &Path) -> Result<CacheKey, CacheError> {
    let bad = |reason: String| CacheError::Key {
        path: path.to_owned(),
        reason,
    };
    let meta = std::fs::symlink_metadata(path).map_err(|source| CacheError::Io {
        path: path.to_owned(),
        source,
    })?;
    if !meta.file_type().is_file() {
        return Err(bad(
            "is not a regular file (symbolic links are refused)".into()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != euid() {
            return Err(bad(format!(
                "belongs to user {}, not to the user running host ({})",
                meta.uid(),
                euid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(bad(format!(
                "is accessible to other users (mode {:04o}); chmod 600 it",
                meta.mode() & 0o7777
            )));
        }
    }
    let bytes = std::fs::read(path).map_err(|source| CacheError::Io {
        path: path.to_owned(),
        source,
    })?;
    let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
        bad(format!(
            "holds {} bytes, not a {KEY_LEN}-byte key; remove it to make a new one (the cache is then rebuilt)",
            bytes.len()
        ))
    })?;
    Ok(CacheKey(key))
}

/// `dir` must be the effective user's and writable by nobody else; the
/// directories above it must be the user's or root's and writable by nobody
/// else unless sticky (others cannot then rename what is ours).
#[cfg(unix)]
pub(super) fn check_private_dir(dir: &Path) -> Result<(), CacheError> {
    use std::os::unix::fs::MetadataExt;
    let real = std::fs::canonicalize(dir).map_err(|source| CacheError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let me = euid();
    let unsafe_dir = |path: &Path, reason: String| CacheError::Unsafe {
        path: path.to_owned(),
        reason,
    };
    let stat = |path: &Path| {
        std::fs::metadata(path).map_err(|source| CacheError::Io {
            path: path.to_owned(),
            source,
        })
    };
    let meta = stat(&real)?;
    if !meta.is_dir() {
        return Err(unsafe_dir(&real, "is not a directory".into()));
    }
    if meta.uid() != me {
        return Err(unsafe_dir(
            &real,
            format!(
                "belongs to user {}, not to the user running host ({me})",
                meta.uid()
            ),
        ));
    }
    if let Some(who) = writable_by_others(meta.mode()) {
        return Err(unsafe_dir(
            &real,
            format!("is writable by {who} (mode {:04o})", meta.mode() & 0o7777),
        ));
    }
    for ancestor in real.ancestors().skip(1) {
        let meta = stat(ancestor)?;
        if meta.uid() != me && meta.uid() != 0 {
            return Err(unsafe_dir(
                &real,
                format!(
                    "its parent {} belongs to user {}, who could replace it",
                    ancestor.display(),
                    meta.uid()
                ),
            ));
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if let Some(who) = writable_by_others(meta.mode())
            && !sticky
        {
            return Err(unsafe_dir(
                &real,
                format!(
                    "its parent {} is writable by {who} (mode {:04o}), who could replace it",
                    ancestor.display(),
                    meta.mode() & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

/// Without Unix ownership and modes there is nothing to check.
#[cfg(not(unix))]
pub(super) fn check_private_dir(_dir: &Path) -> Result<(), CacheError> {
    Ok(())
}

#[cfg(unix)]
fn writable_by_others(mode: u32) -> Option<&'static str> {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (_, true) => Some("all users"),
        (true, false) => Some("its group"),
        (false, false) => None,
    }
}

#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Where the key lives unless the operator says: `$HOST_CACHE_KEY`, else
/// `compile-cache.key` in the user's data directory (not the cache
/// directory, which is often shared or cleaned).
pub fn default_cache_key_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HOST_CACHE_KEY") {
        return Some(PathBuf::from(path));
    }
    directories::ProjectDirs::from("dev", "wasm-workflow", "host")
        .map(|d| d.data_dir().join("compile-cache.key"))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_new_cache_dir_is_private() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b/components");
        private_dir(&dir).expect("created");
        use std::os::unix::fs::MetadataExt;
        let mode = std::fs::metadata(&dir).expect("stat").mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_dir_others_can_write_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("cache");
        private_dir(&dir).expect("created");
        chmod(&dir, 0o770);
        let e = private_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("writable by its group (mode 0770)"), "{e}");
        chmod(&dir, 0o757);
        let e = private_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("writable by all users"), "{e}");
        // A parent others may write (and not sticky) is refused too.
        chmod(&dir, 0o700);
        chmod(root.path(), 0o777);
        let e = private_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("its parent") && e.contains("0777"), "{e}");
        // Sticky, as /tmp: others cannot rename what is ours.
        chmod(root.path(), 0o1777);
        private_dir(&dir).expect("sticky parent is fine");
        chmod(root.path(), 0o700);
    }

    #[test]
    fn the_key_is_created_once_0600_and_kept() {
        let root = tempfile::tempdir().expect("tempdir");
        let cache = root.path().join("cache");
        private_dir(&cache).expect("cache");
        let path = root.path().join("keys/cache.key");
        let a = load_or_create_key(&path, &cache).expect("created");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&path).expect("stat").mode() & 0o777,
            0o600
        );
        let b = load_or_create_key(&path, &cache).expect("read");
        assert_eq!(a.0, b.0);
        assert_ne!(a.0, [0u8; KEY_LEN]);

        chmod(&path, 0o644);
        let e = load_or_create_key(&path, &cache).unwrap_err().to_string();
        assert!(e.contains("accessible to other users (mode 0644)"), "{e}");
        chmod(&path, 0o600);

        std::fs::write(&path, b"short").expect("write");
        let e = load_or_create_key(&path, &cache).unwrap_err().to_string();
        assert!(e.contains("holds 5 bytes"), "{e}");

        let inside = cache.join("cache.key");
        let e = load_or_create_key(&inside, &cache).unwrap_err().to_string();
        assert!(e.contains("inside the cache directory"), "{e}");
    }
}
