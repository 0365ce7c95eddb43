//! On-disk cache of compiled components.
//!
//! JS and Python components take ~20 s to compile; a cached artifact loads in
//! milliseconds. An entry is keyed by the `.wasm` file's SHA-256, the
//! wasmtime version and a hash of every engine setting that affects code
//! generation, so a changed file, an upgrade or a changed setting never
//! reuses a stale artifact. Entries carry a checksum: a corrupt or truncated
//! file is detected, removed and rebuilt.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

const MAGIC: &[u8; 8] = b"WFHCWSM1";
const HEADER: usize = MAGIC.len() + 8;

#[derive(Debug, Clone)]
pub struct CompileCache {
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
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = Xxh3::new();
        wasmtime_version().hash(&mut h);
        engine.precompile_compatibility_hash().hash(&mut h);
        CompileCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry_path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(format!("{sha256_hex}-{}.cwasm", self.engine_key))
    }

    /// Loads the compiled component for `sha256_hex`, or compiles `wasm` and
    /// stores it. Blocking: call from a blocking thread.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        sha256_hex: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.entry_path(sha256_hex);
        let mut outcome = CacheOutcome::Miss;
        match std::fs::read(&path) {
            Ok(bytes) => match verified_payload(&bytes) {
                // SAFETY: the payload was written by `store` below for an
                // engine with the same compatibility hash (part of the file
                // name) and its checksum matches, so it is an artifact that
                // wasmtime itself produced; wasmtime re-checks its header.
                Some(payload) => match unsafe { Component::deserialize(engine, payload) } {
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "incompatible cache entry; rebuilding");
                        outcome = CacheOutcome::Rebuilt;
                    }
                },
                None => {
                    tracing::warn!(path = %path.display(), "corrupt cache entry (checksum mismatch); rebuilding");
                    outcome = CacheOutcome::Rebuilt;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable cache entry; rebuilding");
                outcome = CacheOutcome::Rebuilt;
            }
        }
        if outcome == CacheOutcome::Rebuilt {
            let _ = std::fs::remove_file(&path);
        }
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&path, &component) {
            // A read-only or full disk costs speed, never correctness.
            tracing::warn!(path = %path.display(), error = %e, "could not write compile cache entry");
        }
        Ok((component, outcome))
    }

    fn store(&self, path: &Path, component: &Component) -> std::io::Result<()> {
        let payload = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        std::fs::create_dir_all(&self.dir)?;
        // Write to a temporary file in the same directory, then rename: a
        // crash mid-write leaves no half-written entry under the real name.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        tmp.write_all(MAGIC)?;
        tmp.write_all(&xxh3_64(&payload).to_le_bytes())?;
        tmp.write_all(&payload)?;
        tmp.as_file().sync_data()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

fn verified_payload(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        return None;
    }
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&bytes[MAGIC.len()..HEADER]);
    let payload = &bytes[HEADER..];
    (xxh3_64(payload) == u64::from_le_bytes(sum)).then_some(payload)
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
    fn checksum_detects_corruption() {
        let payload = b"compiled code".to_vec();
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
        file.extend_from_slice(&payload);
        assert_eq!(verified_payload(&file), Some(&payload[..]));
        let last = file.len() - 1;
        file[last] ^= 1;
        assert_eq!(verified_payload(&file), None);
        assert_eq!(verified_payload(&file[..4]), None);
    }

    #[test]
    fn version_matches_workspace_pin() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("version = \"{}\"", wasmtime_version());
        assert!(manifest.contains(&pin), "update wasmtime_version()");
    }
}
