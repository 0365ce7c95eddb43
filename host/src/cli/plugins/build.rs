//! `host plugins build`: plugin folders built from source into
//! `<plugins>/<name>.wasm`, with the same rules as `plugins/build.sh`. The
//! language of a folder is what it holds: a `build.sh` (run as
//! `build.sh OUTPUT.wasm`), a `Cargo.toml` (Rust: `cargo build --profile
//! guest --target wasm32-wasip2`), or `.go`, `.c`, `.js` or `.py` sources
//! (`guest-sdk/<lang>/build.sh SRC_DIR OUTPUT.wasm`, the language's SDK).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A plugin folder's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, strum::Display, strum::AsRefStr)]
#[strum(serialize_all = "lowercase")]
pub(crate) enum Lang {
    Rust,
    Js,
    Python,
    Go,
    C,
}

impl Lang {
    /// The folder of its SDK under `guest-sdk/` (Rust's is `guest-sdk` itself).
    fn sdk_folder(self) -> &'static str {
        match self {
            Lang::Rust => "",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::Go => "go",
            Lang::C => "c",
        }
    }
}

/// How a folder is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recipe {
    /// The folder's own `build.sh OUTPUT.wasm`.
    Script,
    Lang(Lang),
}

impl std::fmt::Display for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Recipe::Script => f.write_str("build.sh"),
            Recipe::Lang(lang) => write!(f, "{lang}"),
        }
    }
}

/// The recipe of a plugin folder, from the files it holds; `None` when it
/// is not a plugin folder.
pub(crate) fn recipe(dir: &Path) -> Option<Recipe> {
    if dir.join("build.sh").is_file() {
        return Some(Recipe::Script);
    }
    if dir.join("Cargo.toml").is_file() {
        return Some(Recipe::Lang(Lang::Rust));
    }
    let has = |ext: &str| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == ext) && e.path().is_file())
        })
    };
    [
        ("go", Lang::Go),
        ("c", Lang::C),
        ("js", Lang::Js),
        ("py", Lang::Python),
    ]
    .into_iter()
    .find(|(ext, _)| has(ext))
    .map(|(_, lang)| Recipe::Lang(lang))
}

/// Every plugin folder of `plugins` (sorted by name).
pub(crate) fn folders(plugins: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(plugins)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.is_dir() && !matches!(name, "node_modules" | "target") && recipe(&path).is_some() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The folder holding `wit/` and `guest-sdk/`: `given`, else `$HOST_SDK_DIR`,
/// else the first ancestor of `start` (or of the working directory) that
/// holds both.
pub(crate) fn sdk_root(given: Option<&Path>, start: &Path) -> Result<PathBuf, String> {
    let is_root = |dir: &Path| dir.join("guest-sdk").is_dir() && dir.join("wit").is_dir();
    if let Some(dir) = given {
        return if is_root(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(format!(
                "--sdk {}: no guest-sdk/ and wit/ folders there",
                dir.display()
            ))
        };
    }
    let cwd = std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?;
    let start = std::path::absolute(start).unwrap_or_else(|_| cwd.join(start));
    start
        .ancestors()
        .chain(cwd.ancestors())
        .find(|dir| is_root(dir))
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            "cannot find the plugin SDKs (a folder with guest-sdk/ and wit/) above the plugins \
             folder or the working directory; give --sdk DIR (or HOST_SDK_DIR)"
                .to_owned()
        })
}

/// A finished build.
#[derive(Debug)]
pub(crate) struct Built {
    pub output: PathBuf,
    pub bytes: u64,
    pub recipe: Recipe,
    pub took: Duration,
}

/// A build that failed: the reason and what the toolchain printed.
#[derive(Debug, thiserror::Error)]
#[error("building plugin `{name}` ({recipe}) failed: {reason}\n{log}")]
pub(crate) struct BuildError {
    pub name: String,
    pub recipe: String,
    pub reason: String,
    pub log: String,
}

/// Builds plugin folder `plugins/name` into `plugins/name.wasm`. The new
/// file replaces the old one only when the build succeeded (it is built
/// beside it and renamed), so a failed build leaves the previous version.
pub(crate) fn build(sdk: &Path, plugins: &Path, name: &str) -> Result<Built, BuildError> {
    let started = Instant::now();
    let dir = plugins.join(name);
    let fail = |recipe: &str, reason: String, log: String| BuildError {
        name: name.to_owned(),
        recipe: recipe.to_owned(),
        reason,
        log,
    };
    let Some(recipe) = recipe(&dir) else {
        return Err(fail(
            "?",
            format!(
                "{} has no Cargo.toml, build.sh or .go/.c/.js/.py sources",
                dir.display()
            ),
            String::new(),
        ));
    };
    let output = plugins.join(format!("{name}.wasm"));
    let staging = plugins.join(format!(".{name}.wasm.building"));
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let result = match recipe {
        Recipe::Script => run(Command::new("bash")
            .arg(dir.join("build.sh"))
            .arg(abs(&staging))),
        Recipe::Lang(Lang::Rust) => cargo(&dir, &staging),
        Recipe::Lang(lang) => run(Command::new("bash")
            .arg(
                sdk.join("guest-sdk")
                    .join(lang.sdk_folder())
                    .join("build.sh"),
            )
            .arg(abs(&dir))
            .arg(abs(&staging))),
    };
    let finish = result.and_then(|()| {
        std::fs::rename(&staging, &output).map_err(|e| {
            (
                format!("cannot move the component into place: {e}"),
                String::new(),
            )
        })
    });
    if let Err((reason, log)) = finish {
        let _ = std::fs::remove_file(&staging);
        return Err(fail(&recipe.to_string(), reason, log));
    }
    let bytes = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    Ok(Built {
        output,
        bytes,
        recipe,
        took: started.elapsed(),
    })
}

type Step = Result<(), (String, String)>;

fn log_of(out: &Output) -> String {
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    log
}

fn run(cmd: &mut Command) -> Step {
    // The nested builds must not inherit the host's rustflags (coverage or
    // sanitizer runs).
    cmd.env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let out = cmd.output().map_err(|e| {
        (
            format!("cannot start {:?}: {e}", cmd.get_program()),
            String::new(),
        )
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err((out.status.to_string(), log_of(&out)))
    }
}

/// A Rust plugin: its crate built for wasm32-wasip2 with the `guest`
/// profile; the component is the `.wasm` artifact cargo reports.
fn cargo(dir: &Path, staging: &Path) -> Step {
    let manifest = dir.join("Cargo.toml");
    let manifest = std::fs::canonicalize(&manifest).unwrap_or(manifest);
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args([
        "build",
        "--quiet",
        "--profile",
        "guest",
        "--target",
        "wasm32-wasip2",
    ])
    .arg("--message-format=json-render-diagnostics")
    .arg("--manifest-path")
    .arg(&manifest)
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let out = cmd
        .output()
        .map_err(|e| (format!("cannot start cargo: {e}"), String::new()))?;
    if !out.status.success() {
        return Err((
            format!("cargo: {}", out.status),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let artifact = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .filter_map(|m| m["filenames"].as_array().cloned())
        .flatten()
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|x| x == "wasm"));
    let Some(artifact) = artifact else {
        return Err((
            "cargo built no .wasm (is the crate a `cdylib`?)".to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    };
    std::fs::copy(&artifact, staging).map(drop).map_err(|e| {
        (
            format!("cannot copy {}: {e}", artifact.display()),
            String::new(),
        )
    })
}
