//! Finds where a document fails to deserialize. serde stops at the first
//! problem and knows no path; the spec's own JSON Schema (generated from the
//! same types) reports every problem with its JSON pointer, which becomes a
//! JSONPath here. Branches of `anyOf`/`oneOf` (untagged and tagged enums)
//! are narrowed to the one the user meant, so a typo inside a provider is
//! reported as that field, not as "matches no variant".

use super::Spec;
use super::error::{SpecError, index, key, suggestion};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;
use std::sync::OnceLock;

/// A compiled schema and its source (for the names of allowed fields).
pub(super) struct SchemaCheck {
    schema: Value,
    validator: Validator,
}

pub(super) fn native_check() -> Option<&'static SchemaCheck> {
    static CHECK: OnceLock<Option<SchemaCheck>> = OnceLock::new();
    CHECK
        .get_or_init(|| SchemaCheck::new(Spec::json_schema()))
        .as_ref()
}

pub(super) fn go_check() -> Option<&'static SchemaCheck> {
    static CHECK: OnceLock<Option<SchemaCheck>> = OnceLock::new();
    CHECK
        .get_or_init(|| SchemaCheck::new(Spec::go_request_schema()))
        .as_ref()
}

impl SchemaCheck {
    fn new(schema: Value) -> Option<Self> {
        match jsonschema::validator_for(&schema) {
            Ok(validator) => Some(SchemaCheck { schema, validator }),
            Err(e) => {
                tracing::warn!(error = %e, "the spec's JSON Schema does not compile");
                None
            }
        }
    }

    /// Every schema violation in `doc`, with JSONPaths.
    pub(super) fn locate(&self, doc: &Value) -> Vec<SpecError> {
        let mut out = Vec::new();
        for e in self.validator.iter_errors(doc) {
            self.convert(&e, doc, &mut out);
        }
        out
    }

    fn convert(&self, e: &ValidationError<'_>, doc: &Value, out: &mut Vec<SpecError>) {
        let path = json_path(doc, e.instance_path().as_str());
        match e.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let allowed = self.allowed_fields(e.schema_path().as_str());
                for field in unexpected {
                    let hint = suggestion(field, allowed.iter().map(String::as_str), "fields");
                    out.push(
                        SpecError::new(key(&path, field), format!("unknown field `{field}`"))
                            .with_hint(hint),
                    );
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| property.to_string());
                out.push(SpecError::new(path, format!("missing field `{name}`")));
            }
            ValidationErrorKind::Type { kind } => out.push(SpecError::new(
                path,
                format!(
                    "expected {}, found {}",
                    type_kind(kind),
                    type_name(e.instance())
                ),
            )),
            ValidationErrorKind::Constant { expected_value } => out.push(SpecError::new(
                path,
                format!("expected {expected_value}, found {}", short(e.instance())),
            )),
            ValidationErrorKind::Enum { options } => {
                let options: Vec<Value> = options.as_array().cloned().unwrap_or_default();
                out.push(one_of(path, e.instance(), &options));
            }
            ValidationErrorKind::AnyOf { context }
            | ValidationErrorKind::OneOfNotValid { context } => {
                self.branches(e, context, doc, out);
            }
            _ => {
                let mut message = e.to_string();
                // Not `util::clip_owned`: these messages end in `...`, not `…`.
                if message.len() > 200 {
                    message.truncate(message.floor_char_boundary(200));
                    message.push_str("...");
                }
                out.push(SpecError::new(path, message));
            }
        }
    }

    /// Picks the branch of an `anyOf`/`oneOf` the user meant: branches whose
    /// type or tag (`type`, `strategy`) does not match are dropped, and of
    /// the rest the one with the fewest errors wins.
    fn branches(
        &self,
        e: &ValidationError<'_>,
        context: &[Vec<ValidationError<'static>>],
        doc: &Value,
        out: &mut Vec<SpecError>,
    ) {
        let base = e.instance_path().as_str();
        let depth = |p: &str| p.matches('/').count();
        let tag_depth = depth(base) + 1;
        let mut candidates: Vec<&Vec<ValidationError<'static>>> = Vec::new();
        let mut types: Vec<String> = Vec::new();
        let mut tags: Vec<(String, Value)> = Vec::new();
        for branch in context {
            let mut mismatch = false;
            for be in branch {
                let p = be.instance_path().as_str();
                match be.kind() {
                    ValidationErrorKind::Type { kind } if p == base => {
                        mismatch = true;
                        types.push(type_kind(kind));
                    }
                    ValidationErrorKind::Constant { expected_value } if depth(p) <= tag_depth => {
                        mismatch = true;
                        tags.push((p.to_string(), Value::clone(expected_value)));
                    }
                    ValidationErrorKind::Enum { options } if depth(p) <= tag_depth => {
                        mismatch = true;
                        for o in options.as_array().into_iter().flatten() {
                            tags.push((p.to_string(), o.clone()));
                        }
                    }
                    _ => {}
                }
            }
            if !mismatch {
                candidates.push(branch);
            }
        }

        if let Some(best) = candidates.iter().min_by_key(|b| b.len()) {
            // A field every remaining branch requires (the tag, usually) is
            // the one thing to report.
            if candidates.len() > 1 {
                let shared: Vec<&Value> = best
                    .iter()
                    .filter_map(|be| match be.kind() {
                        ValidationErrorKind::Required { property }
                            if be.instance_path().as_str() == base =>
                        {
                            Some(property)
                        }
                        _ => None,
                    })
                    .filter(|p| candidates.iter().all(|b| requires(b, base, p)))
                    .collect();
                if !shared.is_empty() {
                    let path = json_path(doc, base);
                    for p in shared {
                        let name = p.as_str().unwrap_or_default();
                        out.push(SpecError::new(&path, format!("missing field `{name}`")));
                    }
                    return;
                }
            }
            for be in best.iter() {
                self.convert(be, doc, out);
            }
            return;
        }

        if let Some((pointer, _)) = tags.first() {
            let pointer = pointer.clone();
            let mut options: Vec<Value> = Vec::new();
            for (p, v) in &tags {
                if *p == pointer && !options.contains(v) {
                    options.push(v.clone());
                }
            }
            let found = doc.pointer(&pointer).unwrap_or(&Value::Null);
            out.push(one_of(json_path(doc, &pointer), found, &options));
            return;
        }

        let mut expected: Vec<String> = Vec::new();
        for t in types {
            for part in t.split(" or ") {
                if !expected.iter().any(|x| x == part) {
                    expected.push(part.to_string());
                }
            }
        }
        out.push(SpecError::new(
            json_path(doc, base),
            format!(
                "expected {}, found {}",
                expected.join(" or "),
                type_name(e.instance())
            ),
        ));
    }

    /// The property names of the schema object that holds the keyword at
    /// `schema_path` (`/$defs/Agent/additionalProperties`).
    fn allowed_fields(&self, schema_path: &str) -> Vec<String> {
        let parent = schema_path
            .rsplit_once('/')
            .map(|(p, _)| p)
            .unwrap_or_default();
        self.schema
            .pointer(parent)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|props| props.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn requires(branch: &[ValidationError<'static>], base: &str, property: &Value) -> bool {
    branch.iter().any(|be| {
        be.instance_path().as_str() == base
            && matches!(be.kind(), ValidationErrorKind::Required { property: p } if p == property)
    })
}

/// "unknown value "x"; expected one of ..." with a did-you-mean hint.
fn one_of(path: String, found: &Value, options: &[Value]) -> SpecError {
    let listed: Vec<String> = options.iter().map(Value::to_string).collect();
    let names: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
    let hint = found
        .as_str()
        .and_then(|f| super::error::nearest(f, names.iter().copied()))
        .map(|n| format!("did you mean \"{n}\"?"));
    SpecError::new(
        path,
        format!(
            "unknown value {}; expected one of {}",
            short(found),
            listed.join(", ")
        ),
    )
    .with_hint(hint)
}

/// A JSON pointer into `doc` as a JSONPath: array indices as `[i]`.
pub(super) fn json_path(doc: &Value, pointer: &str) -> String {
    let mut path = "$".to_string();
    let mut current = Some(doc);
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        let as_index = match current {
            Some(Value::Array(_)) => segment.parse::<usize>().ok(),
            _ => None,
        };
        match as_index {
            Some(i) => {
                path = index(&path, i);
                current = current.and_then(|v| v.get(i));
            }
            None => {
                path = key(&path, &segment);
                current = current.and_then(|v| v.get(&segment));
            }
        }
    }
    path
}

fn type_kind(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.as_str().to_string(),
        TypeKind::Multiple(set) => {
            // "number or null" reads better than "null or number".
            let mut names: Vec<&str> = set.iter().map(|t| t.as_str()).collect();
            names.sort_by_key(|n| *n == "null");
            names.join(" or ")
        }
    }
}

/// The JSON type of a value, for messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value for a message, cut short.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() <= 60 {
        text
    } else {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    }
}
