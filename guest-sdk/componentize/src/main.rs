//! `componentize`: the two steps of a Go or C plugin build that need the
//! component-model tooling, done with the same crates `wit-bindgen-cli` and
//! `wasm-tools` are made of (a `cargo install` of those takes minutes; this
//! tool builds in the workspace with the crates it already has).
//!
//! ```text
//! componentize bindings c|go WIT_DIR WORLD OUT_DIR   # generated bindings
//! componentize new WIT_DIR WORLD CORE.wasm OUT.wasm  # embed the world, adapt WASI p1, make a component
//! ```
//!
//! `new` embeds the world's type information (again, if the C bindings'
//! object file already did), then wraps the core module into a component
//! with the WASI preview-1 *reactor* adapter of the wasmtime version the
//! host uses (Go's `wasip1` and C's wasi-libc both target preview 1).

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use wit_bindgen_core::{Files, WorldGenerator};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::{Resolve, WorldId};

const USAGE: &str = "usage:
  componentize bindings c|go WIT_DIR WORLD OUT_DIR
  componentize new WIT_DIR WORLD CORE.wasm OUT.wasm";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bindings", lang, wit, world, out] => {
            bindings(lang, Path::new(wit), world, Path::new(out))
        }
        ["new", wit, world, core, out] => {
            new(Path::new(wit), world, Path::new(core), Path::new(out))
        }
        _ => bail!("{USAGE}"),
    }
}

fn world(wit: &Path, world: &str) -> Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve
        .push_path(wit)
        .with_context(|| format!("failed to read the WIT package {}", wit.display()))?;
    let id = resolve.select_world(&[package], Some(world))?;
    Ok((resolve, id))
}

fn bindings(lang: &str, wit: &Path, world_name: &str, out: &Path) -> Result<()> {
    let (mut resolve, id) = world(wit, world_name)?;
    let mut generator: Box<dyn WorldGenerator> = match lang {
        "c" => wit_bindgen_c::Opts::default().build(),
        "go" => wit_bindgen_go::Opts::default().build(),
        other => bail!("unknown language `{other}` (c or go)\n{USAGE}"),
    };
    let mut files = Files::default();
    generator.generate(&mut resolve, id, &mut files)?;
    for (name, contents) in files.iter() {
        let path: PathBuf = out.join(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(())
}

fn new(wit: &Path, world_name: &str, core: &Path, out: &Path) -> Result<()> {
    let (resolve, id) = world(wit, world_name)?;
    let mut module =
        std::fs::read(core).with_context(|| format!("failed to read {}", core.display()))?;
    embed_component_metadata(&mut module, &resolve, id, StringEncoding::UTF8, false)?;
    let component = ComponentEncoder::default()
        .module(&module)?
        .adapter(
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
        .with_context(|| format!("failed to make a component of {}", core.display()))?;
    std::fs::write(out, component).with_context(|| format!("failed to write {}", out.display()))
}
