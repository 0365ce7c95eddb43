//! On-disk cache of compiled components.
//!
//! JS and Python components take ~20 s to compile; a cached artifact loads in
//! milliseconds. An entry is keyed by the `.wasm` file's SHA-256, the
//! wasmtime version and a hash of every engine setting that affects code
//! generation, so a changed file, an upgrade or a changed setting never
//! reuses a stale artifact. Entries carry a checksum: a corrupt or truncated
//! file is detected, removed and rebuilt.

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// Version of the cache's entry layout (2: artifact + sidecar checksum).
const CACHE_FORMAT: u32 = 2;

/// Suffix of the checksum file beside each artifact.
const SUM_SUFFIX: &str = "xxh3";

#[derive(Debug, Clone)]
pub(super) struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

/// What a cache lookup found, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    /// An entry was present but corrupt or incompatible; it was rebuilt.
    Rebuilt,
    Disabled,
}

impl CompileCache {
    pub(super) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = Xxh3::new();
        // Bumped when the entry layout changes, so old entries are misses.
        CACHE_FORMAT.hash(&mut h);
        wasmtime_version().hash(&mut h);
        engine.precompile_compatibility_hash().hash(&mut h);
        CompileCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifact (exactly what wasmtime serialized, so it can be mapped
    /// straight from disk) and its checksum file.
    fn entry_paths(&self, sha256_hex: &str) -> (PathBuf, PathBuf) {
        let artifact = self
            .dir
            .join(format!("{sha256_hex}-{}.cwasm", self.engine_key));
        let sum = artifact.with_extension(format!("cwasm.{SUM_SUFFIX}"));
        (artifact, sum)
    }

    /// Loads the compiled component for `sha256_hex`, or compiles `wasm` and
    /// stores it. Blocking: call from a blocking thread.
    pub(super) fn load_or_compile(
        &self,
        engine: &Engine,
        sha256_hex: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let (artifact, sum) = self.entry_paths(sha256_hex);
        let outcome = match lookup(engine, &artifact, &sum) {
            Lookup::Hit(component) => return Ok((component, CacheOutcome::Hit)),
            Lookup::Missing => CacheOutcome::Miss,
            Lookup::Bad(why) => {
                tracing::warn!(path = %artifact.display(), why, "bad compile cache entry; rebuilding");
                let _ = std::fs::remove_file(&sum);
                let _ = std::fs::remove_file(&artifact);
                CacheOutcome::Rebuilt
            }
        };
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&artifact, &sum, &component) {
            // A read-only or full disk costs speed, never correctness.
            tracing::warn!(path = %artifact.display(), error = %e, "could not write compile cache entry");
        }
        Ok((component, outcome))
    }

    fn store(&self, artifact: &Path, sum: &Path, component: &Component) -> std::io::Result<()> {
        let payload = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        std::fs::create_dir_all(&self.dir)?;
        // Temporary file + rename for both files, checksum last: a crash at
        // any point leaves either a complete entry or one that fails its
        // check, never a half-written one under the real name.
        write_atomic(&self.dir, artifact, &payload)?;
        write_atomic(
            &self.dir,
            sum,
            format!("{:016x}\n", xxh3_64(&payload)).as_bytes(),
        )
    }
}

enum Lookup {
    Hit(Component),
    Missing,
    Bad(&'static str),
}

fn lookup(engine: &Engine, artifact: &Path, sum: &Path) -> Lookup {
    let expected = match std::fs::read_to_string(sum) {
        Ok(text) => match u64::from_str_radix(text.trim(), 16) {
            Ok(v) => v,
            Err(_) => return Lookup::Bad("unreadable checksum file"),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if artifact.exists() {
                Lookup::Bad("checksum file missing")
            } else {
                Lookup::Missing
            };
        }
        Err(_) => return Lookup::Bad("unreadable checksum file"),
    };
    match file_xxh3(artifact) {
        Ok(actual) if actual == expected => {}
        Ok(_) => return Lookup::Bad("checksum mismatch"),
        Err(_) => return Lookup::Bad("unreadable artifact"),
    }
    // SAFETY: the file is an artifact that wasmtime serialized for an engine
    // with the same compatibility hash (part of its name), and its checksum
    // was just verified; wasmtime re-checks its header and engine settings.
    // Entries are only ever replaced by rename, so the mapped inode does not
    // change under us.
    match unsafe { Component::deserialize_file(engine, artifact) } {
        Ok(component) => Lookup::Hit(component),
        Err(_) => Lookup::Bad("incompatible artifact"),
    }
}

/// xxh3 of a file, streamed through a small buffer (no large allocation).
fn file_xxh3(path: &Path) -> std::io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.digest());
        }
        hasher.update(&buf[..n]);
    }
}

fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The wasmtime version compiled into this binary.
pub fn wasmtime_version() -> &'static str {
    // Kept in step with `[workspace.dependencies] wasmtime` by a unit test.
    "48.0.8"
}

/// The default cache directory: the user's cache dir, or `$HOST_CACHE_DIR`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HOST_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("dev", "wasm-workflow", "host")
        .map(|d| d.cache_dir().join("components"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_checksum_matches_one_shot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        assert_eq!(file_xxh3(&path).expect("hash"), xxh3_64(&data));
    }

    #[test]
    fn version_matches_workspace_pin() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("version = \"{}\"", wasmtime_version());
        assert!(manifest.contains(&pin), "update wasmtime_version()");
    }
}
