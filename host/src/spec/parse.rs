//! From JSON text to a normalized [`Spec`].

use super::error::{SpecError, SpecErrors};
use super::go::{self, GoRequest};
use super::locate::{self, SchemaCheck};
use super::types::{Model, Provider, SHORTHAND_STAGE, Stage};
use super::{Mode, Origin, Spec, default_provider};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

impl Spec {
    /// Parses and normalizes a spec (native or Go request shape). Relative
    /// paths in it are resolved against `base_dir`. Syntax errors are
    /// reported at `$` with line and column; shape errors (unknown fields,
    /// wrong types, missing fields) at the path of the bad value, all at once.
    pub fn from_json_str(text: &str, base_dir: &Path) -> Result<Spec, SpecErrors> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| SpecErrors::one("$", format!("invalid JSON: {e}")))?;
        Spec::from_value(&doc, base_dir)
    }

    /// [`Spec::from_json_str`] for an already parsed document.
    pub fn from_value(doc: &Value, base_dir: &Path) -> Result<Spec, SpecErrors> {
        if !doc.is_object() {
            return Err(SpecErrors::one(
                "$",
                format!("a spec is a JSON object, found {}", locate::type_name(doc)),
            ));
        }
        let mut spec = if go::is_go_request(doc) {
            let request: GoRequest = deserialize(doc, locate::go_check())?;
            request.into_spec()?
        } else {
            deserialize::<Spec>(doc, locate::native_check())?
        };
        spec.base_dir = base_dir.to_owned();
        spec.normalize();
        Ok(spec)
    }

    /// Reads and parses the spec file at `path`; its folder is the base
    /// directory.
    pub fn from_path(path: &Path) -> Result<Spec, SpecErrors> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpecErrors::one("$", format!("cannot read {}: {e}", path.display())))?;
        Spec::from_json_str(&text, Spec::base_dir_of(path))
    }

    /// Where the relative paths of the spec file at `path` start: its
    /// folder, or the current one.
    pub fn base_dir_of(path: &Path) -> &Path {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    fn normalize(&mut self) {
        if self.providers.is_empty() {
            self.providers.insert(
                "openai".into(),
                Provider::Openai {
                    base_url: None,
                    api_key_env: None,
                    api: None,
                    timeout_ms: None,
                    retry: None,
                },
            );
        }
        for provider in self.providers.values_mut() {
            if let Provider::Scripted { script } = provider
                && !script.as_os_str().is_empty()
                && script.is_relative()
            {
                *script = self.base_dir.join(&*script);
            }
        }
        let default = default_provider(&self.providers).map(str::to_owned);
        let fill = |model: &mut Model| {
            if model.provider.is_empty()
                && let Some(d) = &default
            {
                model.provider = d.clone();
            }
        };
        for agent in self.agents.values_mut() {
            fill(&mut agent.model);
            if let Some(super::Memory::Summarize {
                model: Some(model), ..
            }) = &mut agent.memory
            {
                fill(model);
            }
        }
        let workflow = &mut self.workflow;
        if workflow.stages.is_empty() && !workflow.steps.is_empty() {
            workflow.stages.push(Stage {
                name: SHORTHAND_STAGE.into(),
                mode: Mode::Sequential,
                steps: std::mem::take(&mut workflow.steps),
                reducer: None,
                on_branch_error: None,
            });
            if self.origin == Origin::Native {
                self.origin = Origin::NativeSteps;
            }
        }
        if workflow.key.is_empty() {
            workflow.key = workflow
                .name
                .as_deref()
                .map(slug)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "workflow".into());
        }
    }
}

/// `Trip Planner (v2)` → `trip_planner_v2`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

/// Deserializes `doc`; on failure, finds every offending value with the
/// type's JSON Schema so each error carries its path.
fn deserialize<T: DeserializeOwned>(
    doc: &Value,
    check: Option<&SchemaCheck>,
) -> Result<T, SpecErrors> {
    match T::deserialize(doc) {
        Ok(value) => Ok(value),
        Err(e) => {
            let mut errors = check.map(|c| c.locate(doc)).unwrap_or_default();
            if errors.is_empty() {
                errors.push(SpecError::new("$", e.to_string()));
            }
            Err(SpecErrors::new(errors))
        }
    }
}
