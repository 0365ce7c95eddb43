//! On-disk cache of compiled components.
//!
//! JS and Python components take ~20 s to compile; a cached artifact loads in
//! milliseconds. An entry is keyed by the `.wasm` file's SHA-256, the
//! wasmtime version and a hash of every engine setting that affects code
//! generation, so a changed file, an upgrade or a changed setting never
//! reuses a stale artifact.
//!
//! An artifact is native code that wasmtime maps and runs as it is, so an
//! entry is used only when it is authentic: a sidecar file holds the
//! HMAC-SHA256 of the entry's name and the artifact's bytes, keyed by a
//! secret outside the cache (see `trust`), and it is verified before the
//! artifact is deserialized. An entry that fails (corrupt, truncated, or
//! written by anyone without the key, including an artifact copied under
//! another plugin's name) is removed and rebuilt. The directory itself must
//! be writable by its owner only.

use super::trust::{self, CacheError, CacheKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::Xxh3;

/// Version of the cache's entry layout (3: artifact + sidecar HMAC).
const CACHE_FORMAT: u32 = 3;

/// Suffix of the MAC file beside each artifact.
const MAC_SUFFIX: &str = "mac";

#[derive(Debug, Clone)]
pub(super) struct CompileCache {
    dir: PathBuf,
    engine_key: String,
    key: CacheKey,
}

/// What a cache lookup found, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Miss,
    /// An entry was present but corrupt, unauthentic or incompatible; it
    /// was rebuilt.
    Rebuilt,
    Disabled,
}

impl CompileCache {
    /// The cache in `dir` (created `0700` if missing, refused when others
    /// can write it), its entries authenticated with the key in `key_file`
    /// (created on first use).
    pub(super) fn open(dir: PathBuf, key_file: &Path, engine: &Engine) -> Result<Self, CacheError> {
        trust::private_dir(&dir)?;
        let key = trust::load_or_create_key(key_file, &dir)?;
        let mut h = Xxh3::new();
        // Bumped when the entry layout changes, so old entries are misses.
        CACHE_FORMAT.hash(&mut h);
        wasmtime_version().hash(&mut h);
        engine.precompile_compatibility_hash().hash(&mut h);
        Ok(CompileCache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            key,
        })
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry's name, the artifact (exactly what wasmtime serialized, so
    /// it can be mapped straight from disk) and its MAC file.
    fn entry_paths(&self, sha256_hex: &str) -> (String, PathBuf, PathBuf) {
        let name = format!("{sha256_hex}-{}", self.engine_key);
        let artifact = self.dir.join(format!("{name}.cwasm"));
        let mac = artifact.with_extension(format!("cwasm.{MAC_SUFFIX}"));
        (name, artifact, mac)
    }

    /// Loads the compiled component for `sha256_hex`, or compiles `wasm` and
    /// stores it. Blocking: call from a blocking thread.
    pub(super) fn load_or_compile(
        &self,
        engine: &Engine,
        sha256_hex: &str,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let (name, artifact, mac) = self.entry_paths(sha256_hex);
        let outcome = match self.lookup(engine, &name, &artifact, &mac) {
            Lookup::Hit(component) => return Ok((component, CacheOutcome::Hit)),
            Lookup::Missing => CacheOutcome::Miss,
            Lookup::Bad(why) => {
                tracing::warn!(path = %artifact.display(), why, "bad compile cache entry; rebuilding");
                let _ = std::fs::remove_file(&mac);
                let _ = std::fs::remove_file(&artifact);
                CacheOutcome::Rebuilt
            }
        };
        let component = Component::new(engine, wasm)?;
        if let Err(e) = self.store(&name, &artifact, &mac, &component) {
            // A read-only or full disk costs speed, never correctness.
            tracing::warn!(path = %artifact.display(), error = %e, "could not write compile cache entry");
        }
        Ok((component, outcome))
    }

    fn store(
        &self,
        name: &str,
        artifact: &Path,
        mac: &Path,
        component: &Component,
    ) -> std::io::Result<()> {
        let payload = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut tag = self.mac(name);
        tag.update(&payload);
        let tag = hex::encode(tag.finalize().into_bytes());
        // Temporary file + rename for both files, MAC last: a crash at any
        // point leaves either a complete entry or one that fails its check,
        // never a half-written one under the real name.
        write_atomic(&self.dir, artifact, &payload)?;
        write_atomic(&self.dir, mac, format!("{tag}\n").as_bytes())
    }

    /// The MAC of entry `name`, before the artifact's bytes: the name is
    /// covered so that an authentic artifact copied under another plugin's
    /// name fails.
    fn mac(&self, name: &str) -> Hmac<Sha256> {
        // A 32-byte key always fits HMAC-SHA256.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"host compile cache entry\0");
        mac.update(name.as_bytes());
        mac.update(b"\0");
        mac
    }

    fn lookup(&self, engine: &Engine, name: &str, artifact: &Path, mac: &Path) -> Lookup {
        let expected = match std::fs::read_to_string(mac) {
            Ok(text) => match hex::decode(text.trim()) {
                Ok(v) => v,
                Err(_) => return Lookup::Bad("unreadable MAC file"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return if std::fs::symlink_metadata(artifact).is_ok() {
                    Lookup::Bad("MAC file missing")
                } else {
                    Lookup::Missing
                };
            }
            Err(_) => return Lookup::Bad("unreadable MAC file"),
        };
        match std::fs::symlink_metadata(artifact) {
            Ok(meta) if meta.file_type().is_file() => {}
            Ok(_) => return Lookup::Bad("artifact is not a regular file"),
            Err(_) => return Lookup::Bad("unreadable artifact"),
        }
        let mut tag = self.mac(name);
        if stream_into(artifact, &mut tag).is_err() {
            return Lookup::Bad("unreadable artifact");
        }
        if tag.verify_slice(&expected).is_err() {
            return Lookup::Bad("MAC mismatch: corrupt, or not written by this host's key");
        }
        // SAFETY: the file's HMAC under our secret key, over its name (the
        // `.wasm`'s SHA-256 and the engine's compatibility hash) and its
        // bytes, was just verified: we serialized it ourselves, for this
        // plugin, with an engine of these settings. wasmtime re-checks its
        // header and engine settings. The directory is writable by its owner
        // only and entries are only ever replaced by rename, so the mapped
        // inode does not change under us.
        match unsafe { Component::deserialize_file(engine, artifact) } {
            Ok(component) => Lookup::Hit(component),
            Err(_) => Lookup::Bad("incompatible artifact"),
        }
    }
}

enum Lookup {
    Hit(Component),
    Missing,
    Bad(&'static str),
}

/// Feeds a file to `mac` through a small buffer (no large allocation).
fn stream_into(path: &Path, mac: &mut Hmac<Sha256>) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        mac.update(&buf[..n]);
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
    fn version_matches_workspace_pin() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("version = \"{}\"", wasmtime_version());
        assert!(manifest.contains(&pin), "update wasmtime_version()");
    }
}
