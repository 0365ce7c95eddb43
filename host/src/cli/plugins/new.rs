//! `host plugins new`: a plugin folder from templates embedded in the
//! binary, one per language × kind (`../scaffold/`), that builds and passes
//! `host plugins check` as it is, with a README and a test input.

use super::build::Lang;
use std::path::{Path, PathBuf};

/// What the scaffolded plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, strum::Display)]
#[strum(serialize_all = "kebab-case")]
pub(crate) enum ScaffoldKind {
    Guard,
    InputMapper,
    Reducer,
    Tool,
    Guardrail,
}

impl ScaffoldKind {
    fn description(self) -> &'static str {
        match self {
            ScaffoldKind::Guard => "runs the step when its input is not empty",
            ScaffoldKind::InputMapper => "wraps the step input as {input, stage}",
            ScaffoldKind::Reducer => "joins the branch outputs, one a line",
            ScaffoldKind::Tool => "echoes its text argument",
            ScaffoldKind::Guardrail => "trips when the payload mentions forbidden",
        }
    }

    fn test_input(self) -> &'static str {
        match self {
            ScaffoldKind::Guard => include_str!("../scaffold/inputs/guard.json"),
            ScaffoldKind::InputMapper => include_str!("../scaffold/inputs/input-mapper.json"),
            ScaffoldKind::Reducer => include_str!("../scaffold/inputs/reducer.json"),
            ScaffoldKind::Tool => include_str!("../scaffold/inputs/tool.json"),
            ScaffoldKind::Guardrail => include_str!("../scaffold/inputs/guardrail.json"),
        }
    }
}

macro_rules! per_kind {
    ($kind:expr, $lang:literal) => {
        match $kind {
            ScaffoldKind::Guard => include_str!(concat!("../scaffold/", $lang, "/guard.tmpl")),
            ScaffoldKind::InputMapper => {
                include_str!(concat!("../scaffold/", $lang, "/input-mapper.tmpl"))
            }
            ScaffoldKind::Reducer => include_str!(concat!("../scaffold/", $lang, "/reducer.tmpl")),
            ScaffoldKind::Tool => include_str!(concat!("../scaffold/", $lang, "/tool.tmpl")),
            ScaffoldKind::Guardrail => {
                include_str!(concat!("../scaffold/", $lang, "/guardrail.tmpl"))
            }
        }
    };
}

/// The source files of a scaffold: (path inside the folder, template).
fn sources(lang: Lang, kind: ScaffoldKind, name: &str) -> Vec<(String, &'static str)> {
    match lang {
        Lang::Rust => vec![
            (
                "Cargo.toml".into(),
                include_str!("../scaffold/rust/Cargo.toml.tmpl"),
            ),
            ("src/lib.rs".into(), per_kind!(kind, "rust")),
        ],
        Lang::Js => vec![(format!("{name}.js"), per_kind!(kind, "js"))],
        Lang::Python => vec![(format!("{name}.py"), per_kind!(kind, "python"))],
        Lang::Go => vec![(format!("{name}.go"), per_kind!(kind, "go"))],
        Lang::C => vec![(format!("{name}.c"), per_kind!(kind, "c"))],
    }
}

fn lang_name(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "Rust",
        Lang::Js => "JavaScript",
        Lang::Python => "Python",
        Lang::Go => "Go",
        Lang::C => "C",
    }
}

fn sdk_folder(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "src (the guest-sdk crate)",
        Lang::Js => "js",
        Lang::Python => "python",
        Lang::Go => "go",
        Lang::C => "c",
    }
}

/// A plugin name: a letter, then letters, digits and `_` (a file stem, a
/// crate, a Python module and a tool name all at once), at most 64.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "plugin name `{name}`: use a lower-case letter, then lower-case letters, digits \
             and `_` (at most 64), e.g. `my_guard`"
        ))
    }
}

/// Writes the scaffold into `plugins/name`; returns the files written.
/// Refuses an existing folder.
pub(crate) fn scaffold(
    sdk: &Path,
    plugins: &Path,
    name: &str,
    lang: Lang,
    kind: ScaffoldKind,
) -> Result<Vec<PathBuf>, String> {
    check_name(name)?;
    let dir = plugins.join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let sdk = std::path::absolute(sdk).unwrap_or_else(|_| sdk.to_path_buf());
    let fill = |template: &str, source: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{description}}", kind.description())
            .replace("{{kind}}", &kind.to_string())
            .replace("{{lang_name}}", lang_name(lang))
            .replace("{{sdk_folder}}", sdk_folder(lang))
            .replace("{{source}}", source)
            .replace("{{plugins}}", &plugins.display().to_string())
            .replace("{{sdk}}", &sdk.display().to_string())
    };
    let files = sources(lang, kind, name);
    let main = files
        .last()
        .map(|(path, _)| path.clone())
        .unwrap_or_default();
    let mut all: Vec<(String, String)> = files
        .iter()
        .map(|(path, template)| (path.clone(), fill(template, &main)))
        .collect();
    all.push((
        "README.md".into(),
        fill(include_str!("../scaffold/README.md.tmpl"), &main),
    ));
    all.push(("test-input.json".into(), kind.test_input().to_owned()));
    let mut written = Vec::new();
    for (path, text) in all {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_file_stems_modules_and_tool_names() {
        assert!(check_name("my_guard2").is_ok());
        for bad in ["", "2guard", "My", "a-b", "a.b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_template_is_filled() {
        let dir = tempfile::tempdir().unwrap();
        for lang in [Lang::Rust, Lang::Js, Lang::Python, Lang::Go, Lang::C] {
            for kind in [
                ScaffoldKind::Guard,
                ScaffoldKind::InputMapper,
                ScaffoldKind::Reducer,
                ScaffoldKind::Tool,
                ScaffoldKind::Guardrail,
            ] {
                let name = format!("p_{lang}_{}", kind.to_string().replace('-', "_"));
                let files = scaffold(Path::new("/sdk"), dir.path(), &name, lang, kind).unwrap();
                for f in &files {
                    let text = std::fs::read_to_string(f).unwrap();
                    assert!(!text.contains("{{"), "{}: {text}", f.display());
                }
                let input: serde_json::Value = serde_json::from_str(kind.test_input()).unwrap();
                assert!(input.get("expect").is_some());
            }
        }
        let again = scaffold(
            Path::new("/sdk"),
            dir.path(),
            "p_c_guard",
            Lang::C,
            ScaffoldKind::Guard,
        );
        assert!(again.unwrap_err().contains("already exists"));
    }
}
