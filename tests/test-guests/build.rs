//! Builds every crate in `tests/guests/` for `wasm32-wasip2` and generates
//! one path constant per guest, so `cargo test` needs no script run first
//! (Spin `tests/test-components/build.rs`, wasmtime
//! `crates/test-programs/artifacts/build.rs`).
//!
//! The guests are built by a nested `cargo build --profile guest`. It uses a
//! target directory of its own (`<target>/guest-build`): the outer build holds
//! the lock on its own target directory while this script runs, so sharing it
//! would deadlock. Flags meant for the host (`RUSTFLAGS`, a clippy wrapper)
//! are removed: they would not fit the wasm target, or would rebuild the
//! guests every time the outer command changes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const TARGET: &str = "wasm32-wasip2";
const PROFILE: &str = "guest";

fn main() {
    let manifest_dir = PathBuf::from(env_var("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("tests/test-guests sits two folders below the repository root")
        .to_path_buf();
    let out_dir = PathBuf::from(env_var("OUT_DIR"));
    for watched in [
        "tests/guests",
        "guest-sdk",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }

    let guests = guest_names(&root.join("tests/guests"));
    if !target_installed() {
        println!(
            "cargo::error=the test guests need the {TARGET} target: run `rustup target add {TARGET}`"
        );
        return;
    }

    let target_dir = guest_target_dir(&out_dir);
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(&root)
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["--profile", PROFILE, "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    for guest in &guests {
        build.args(["-p", guest]);
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        build.env_remove(var);
    }
    let out = build
        .output()
        .unwrap_or_else(|e| panic!("cannot start cargo for the test guests: {e}"));
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!(
            "building the test guests failed ({}); the nested build's output is above",
            out.status
        );
    }

    let dir = out_dir.join("guests");
    fs::create_dir_all(&dir).expect("create the guests folder");
    let built = target_dir.join(TARGET).join(PROFILE);
    let mut code = String::new();
    code.push_str(&format!(
        "/// The folder holding every test guest and [`NOT_WASM`], nothing else.\n\
         pub const DIR: &str = {:?};\n\n",
        path_str(&dir)
    ));
    for guest in &guests {
        let file = format!("{}.wasm", guest.replace('-', "_"));
        let to = dir.join(&file);
        fs::copy(built.join(&file), &to)
            .unwrap_or_else(|e| panic!("copy {} from {}: {e}", file, built.display()));
        code.push_str(&format!(
            "/// `tests/guests/{guest}`, built.\npub const {}: &str = {:?};\n\n",
            const_name(guest),
            path_str(&to)
        ));
    }
    let not_wasm = dir.join("not_wasm.wasm");
    fs::write(&not_wasm, "this is not a WebAssembly module\n").expect("write not_wasm.wasm");
    code.push_str(&format!(
        "/// A `.wasm` file that is not WebAssembly at all.\npub const NOT_WASM: &str = {:?};\n\n",
        path_str(&not_wasm)
    ));

    code.push_str("/// Every guest: its name (the crate's) and the path of its `.wasm`.\n");
    code.push_str("pub const GUESTS: &[(&str, &str)] = &[\n");
    for guest in &guests {
        code.push_str(&format!("    ({guest:?}, {}),\n", const_name(guest)));
    }
    code.push_str("];\n\n");

    code.push_str(
        "/// Calls `$mac!(guest_name)` once per guest, in name order.\n\
         #[macro_export]\n\
         macro_rules! foreach_guest {\n    ($mac:ident) => {\n",
    );
    for guest in &guests {
        code.push_str(&format!("        $mac!({});\n", guest.replace('-', "_")));
    }
    code.push_str("    };\n}\n");
    fs::write(out_dir.join("guests.rs"), code).expect("write guests.rs");
}

fn env_var(name: &str) -> String {
    env::var(name).unwrap_or_else(|_| panic!("cargo sets {name} for build scripts"))
}

/// The package names of `tests/guests/*` (each folder is named after its
/// crate), sorted.
fn guest_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether the compiler has the standard library for [`TARGET`] (rustup or
/// not: the target's library folder exists).
fn target_installed() -> bool {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .is_some_and(|dir| dir.is_dir())
}

/// `<target>/guest-build`, beside the outer build's profile folders.
/// `OUT_DIR` is `<target>[/<triple>]/<profile>/build/<pkg>-<hash>/out`.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    let mut target = out_dir.ancestors().nth(4).unwrap_or(out_dir);
    if env::var("TARGET").is_ok_and(|t| target.file_name().is_some_and(|n| *n == *t)) {
        target = target.parent().unwrap_or(target);
    }
    target.join("guest-build")
}

fn const_name(guest: &str) -> String {
    guest.replace('-', "_").to_uppercase()
}

fn path_str(path: &Path) -> &str {
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
}
