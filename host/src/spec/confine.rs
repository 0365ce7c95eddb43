//! A spec's own files stay in its folder.
//!
//! A spec may come from someone other than the operator, so the files it
//! names — a `jsonl` callback's `path`, a `scripted` provider's `script` —
//! must resolve inside the spec's folder: relative, no `..`, and no
//! symbolic link (in the part of the path that exists) leading out. The
//! operator writes anywhere from the command line (`--callback jsonl:PATH`).
//!
//! The check runs when the spec is validated and again when a sink is
//! planned; a symbolic link created in the spec's folder between the check
//! and the open is not caught (whoever can do that can write there anyway).

use super::Spec;
use super::error::{SpecError, index, key};
use super::types::{Callback, Provider};
use std::path::{Component, Path, PathBuf};

/// Why a path from a spec is refused; `path` is the path as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Escape {
    #[error("`{path}` is an absolute path; a spec's files must be inside its own folder")]
    Absolute { path: String },
    #[error("`{path}` uses `..`; a spec's files must be inside its own folder")]
    Parent { path: String },
    #[error("`{path}` leads out of the spec's folder through a symbolic link")]
    Symlink { path: String },
}

impl Escape {
    /// What the user can do instead.
    pub fn hint(&self) -> &'static str {
        "give a path relative to the spec's folder, without `..`; the operator names files \
         elsewhere on the command line (`host run --callback jsonl:PATH`)"
    }
}

/// Every file the spec names that is outside its folder, at its JSON path.
pub(super) fn check(spec: &Spec) -> Vec<SpecError> {
    let mut errors = Vec::new();
    let mut refuse = |path: String, e: Escape| {
        errors.push(SpecError::new(path, e.to_string()).with_hint(Some(e.hint().into())));
    };
    for (name, provider) in &spec.providers {
        if let Provider::Scripted { script } = provider
            && !script.as_os_str().is_empty()
            && let Err(e) = confine_joined(&spec.base_dir, script)
        {
            refuse(key(&key("$.providers", name), "script"), e);
        }
    }
    for (i, callback) in spec.run.callback.iter().enumerate() {
        if let Callback::Jsonl { path } = callback
            && !path.is_empty()
            && path != "-"
            && let Err(e) = confine(&spec.base_dir, Path::new(path))
        {
            refuse(key(&index("$.run.callback", i), "path"), e);
        }
    }
    errors
}

/// `path` joined to `base_dir`, if it stays inside it.
pub fn confine(base_dir: &Path, path: &Path) -> Result<PathBuf, Escape> {
    let shown = || path.display().to_string();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => {
                return Err(Escape::Absolute { path: shown() });
            }
            Component::ParentDir => return Err(Escape::Parent { path: shown() }),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    let full = base_dir.join(path);
    // Where the folder really is; a folder that cannot be resolved has no
    // files to reach yet (opening will fail on its own).
    let Ok(root) = base_dir.canonicalize() else {
        return Ok(full);
    };
    let escapes = || Escape::Symlink { path: shown() };
    // A dangling link could be made to point anywhere later.
    if full.symlink_metadata().is_ok_and(|m| m.is_symlink()) && !full.exists() {
        return Err(escapes());
    }
    // The deepest part that exists, with every link in it followed.
    if let Some(existing) = full.ancestors().find(|p| p.exists()) {
        match existing.canonicalize() {
            Ok(real) if real.starts_with(&root) => {}
            _ => return Err(escapes()),
        }
    }
    Ok(full)
}

/// [`confine`] for a path already joined to `base_dir` (a parsed spec's
/// `script`): a path outside `base_dir` was written absolute.
pub(super) fn confine_joined(base_dir: &Path, joined: &Path) -> Result<PathBuf, Escape> {
    match joined.strip_prefix(base_dir) {
        Ok(relative) => confine(base_dir, relative),
        Err(_) => Err(Escape::Absolute {
            path: joined.display().to_string(),
        }),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_folder_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path().join("spec");
        std::fs::create_dir_all(base.join("logs")).expect("mkdir");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, base.join("out")).expect("symlink");
        std::os::unix::fs::symlink(outside.join("nothing"), base.join("dangling"))
            .expect("symlink");
        std::os::unix::fs::symlink(base.join("logs"), base.join("in")).expect("symlink");

        let ok = |p: &str| confine(&base, Path::new(p));
        assert_eq!(ok("events.jsonl"), Ok(base.join("events.jsonl")));
        assert!(ok("logs/new/e.jsonl").is_ok());
        assert!(ok("in/e.jsonl").is_ok(), "a link that stays inside");
        assert!(matches!(ok("/etc/passwd"), Err(Escape::Absolute { .. })));
        assert!(matches!(ok("logs/../../x"), Err(Escape::Parent { .. })));
        assert!(matches!(ok("out/e.jsonl"), Err(Escape::Symlink { .. })));
        assert!(matches!(ok("dangling"), Err(Escape::Symlink { .. })));
        assert!(matches!(
            confine_joined(&base, Path::new("/etc/passwd")),
            Err(Escape::Absolute { .. })
        ));
        assert!(confine_joined(&base, &base.join("script.json")).is_ok());
    }
}
