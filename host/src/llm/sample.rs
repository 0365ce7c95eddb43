//! A deterministic value satisfying a JSON Schema, for offline replies.

use serde_json::{Map, Value, json};

/// Deepest nesting followed (guards against recursive `$ref`s).
const MAX_DEPTH: usize = 24;
/// Most values (objects, arrays, scalars) one sample may hold: breadth
/// times depth of a hostile schema (a recursive `$ref` under `minItems`)
/// would otherwise grow exponentially. Past it, arrays get fewer items and
/// further values are `null`.
pub(crate) const MAX_NODES: usize = 10_000;
/// Longest string padded to a `minLength`.
pub(crate) const MAX_STRING_CHARS: usize = 64 << 10;
/// Most padding characters in one sample, over all its strings.
pub(crate) const MAX_TOTAL_CHARS: usize = 1 << 20;
/// Most items generated for one array (below `minItems` when it is larger).
const MAX_ITEMS: u64 = 64;

/// A deterministic instance of `schema` (the subset used for structured
/// outputs and tool parameters): every property of an object, one item per
/// array (or `minItems`), `enum`/`const` → the first value, numbers within
/// `minimum`/`maximum`, strings `"sample <property>"` padded/cut to
/// `minLength`/`maxLength` (or a valid example for common `format`s),
/// `$ref` into the schema itself, `anyOf`/`oneOf` → the first non-null
/// branch, `allOf` → the merged objects.
///
/// Bounded whatever the schema: [`MAX_DEPTH`] levels, [`MAX_NODES`] values,
/// strings padded to at most [`MAX_STRING_CHARS`] and [`MAX_TOTAL_CHARS`]
/// padding in all (so a huge `minLength` or `minItems` yields a value that
/// may not satisfy it, promptly, rather than hanging the run).
pub fn sample_value(schema: &Value) -> Value {
    let mut budget = Budget {
        nodes: MAX_NODES,
        chars: MAX_TOTAL_CHARS,
    };
    generate(schema, schema, "text", 0, &mut budget)
}

/// What is left to spend on one sample.
struct Budget {
    nodes: usize,
    chars: usize,
}

fn generate(schema: &Value, root: &Value, name: &str, depth: usize, budget: &mut Budget) -> Value {
    if budget.nodes == 0 {
        return Value::Null;
    }
    budget.nodes -= 1;
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(obj) = schema.as_object() else {
        // `true` / `{}` accept anything.
        return Value::String(format!("sample {name}"));
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        return match resolve(root, reference) {
            Some(target) => generate(target, root, name, depth + 1, budget),
            None => Value::Null,
        };
    }
    if let Some(value) = obj.get("const") {
        return value.clone();
    }
    if let Some(first) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|v| v.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = obj.get(key).and_then(Value::as_array) {
            let branch = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .or_else(|| branches.first());
            if let Some(branch) = branch {
                return generate(branch, root, name, depth + 1, budget);
            }
        }
    }
    if let Some(parts) = obj.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        let mut other = None;
        for part in parts {
            match generate(part, root, name, depth + 1, budget) {
                Value::Object(fields) => merged.extend(fields),
                value => other = other.or(Some(value)),
            }
        }
        return if merged.is_empty() {
            other.unwrap_or(Value::Null)
        } else {
            Value::Object(merged)
        };
    }
    let kind = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if obj.contains_key("properties") => "object",
        _ if obj.contains_key("items") || obj.contains_key("prefixItems") => "array",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut fields = Map::new();
            if let Some(properties) = obj.get("properties").and_then(Value::as_object) {
                for (key, sub) in properties {
                    if budget.nodes == 0 {
                        break;
                    }
                    fields.insert(key.clone(), generate(sub, root, key, depth + 1, budget));
                }
            }
            Value::Object(fields)
        }
        "array" => {
            let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(1);
            let max = obj
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            let count = min.max(1).min(max).min(MAX_ITEMS) as usize;
            let prefix = obj
                .get("prefixItems")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let items = obj.get("items").cloned().unwrap_or(json!({}));
            let count = count.max(prefix.len().min(max as usize));
            let mut out = Vec::with_capacity(count.min(budget.nodes));
            for i in 0..count {
                if budget.nodes == 0 {
                    break;
                }
                let item = prefix.get(i).unwrap_or(&items);
                out.push(generate(item, root, name, depth + 1, budget));
            }
            Value::Array(out)
        }
        "integer" => Value::from(integer(obj)),
        "number" => number(obj),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::String(string(obj, name, &mut budget.chars)),
    }
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    root.pointer(pointer)
}

fn bound(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key).and_then(Value::as_f64)
}

fn integer(obj: &Map<String, Value>) -> i64 {
    let mut low = bound(obj, "minimum").map(|m| m.ceil());
    if let Some(m) = bound(obj, "exclusiveMinimum") {
        low = Some(low.unwrap_or(f64::MIN).max(m.floor() + 1.0));
    }
    let mut high = bound(obj, "maximum").map(|m| m.floor());
    if let Some(m) = bound(obj, "exclusiveMaximum") {
        high = Some(high.unwrap_or(f64::MAX).min(m.ceil() - 1.0));
    }
    let mut value = 1.0f64;
    if let Some(low) = low {
        value = value.max(low);
    }
    if let Some(high) = high {
        value = value.min(high);
    }
    value as i64
}

fn number(obj: &Map<String, Value>) -> Value {
    let low = bound(obj, "minimum").or(bound(obj, "exclusiveMinimum"));
    let high = bound(obj, "maximum").or(bound(obj, "exclusiveMaximum"));
    let exclusive_low = bound(obj, "exclusiveMinimum").is_some();
    let exclusive_high = bound(obj, "exclusiveMaximum").is_some();
    let value = match (low, high) {
        (Some(l), Some(h)) if exclusive_low || exclusive_high || !(l..=h).contains(&1.0) => {
            (l + h) / 2.0
        }
        (Some(l), None) if exclusive_low && l >= 1.0 => l + 1.0,
        (Some(l), None) if l > 1.0 => l,
        (None, Some(h)) if exclusive_high && h <= 1.0 => h - 1.0,
        (None, Some(h)) if h < 1.0 => h,
        _ => 1.0,
    };
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// A string for `obj`; padding to `minLength` is linear and spends `chars`.
fn string(obj: &Map<String, Value>, name: &str, chars: &mut usize) -> String {
    let mut text = match obj.get("format").and_then(Value::as_str) {
        Some("date-time") => "2024-01-01T00:00:00Z".to_string(),
        Some("date") => "2024-01-01".to_string(),
        Some("time") => "00:00:00Z".to_string(),
        Some("email") => "user@example.com".to_string(),
        Some("uri" | "url") => "https://example.com/".to_string(),
        Some("uuid") => "00000000-0000-4000-8000-000000000000".to_string(),
        Some("ipv4") => "127.0.0.1".to_string(),
        _ => format!("sample {name}"),
    };
    let min = obj
        .get("minLength")
        .and_then(Value::as_u64)
        .map_or(0, |m| usize::try_from(m).unwrap_or(usize::MAX))
        .min(MAX_STRING_CHARS);
    let max = obj
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| usize::try_from(m).unwrap_or(usize::MAX));
    let have = text.chars().count();
    let pad = min.saturating_sub(have).min(*chars);
    *chars -= pad;
    text.extend(std::iter::repeat_n('x', pad));
    if let Some(max) = max
        && max < have + pad
    {
        text = text.chars().take(max).collect();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "summary": {"type": "string", "minLength": 20},
                "key_points": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "count": {"type": "integer", "exclusiveMinimum": 5},
                "level": {"enum": ["low", "high"]},
                "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 3}]},
                "when": {"type": ["string", "null"], "format": "date"},
                "child": {"$ref": "#/$defs/child"},
            },
            "required": ["title"],
            "additionalProperties": false,
            "$defs": {"child": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}
        });
        let value = sample_value(&schema);
        assert_eq!(value["title"], "sample title");
        assert!(value["summary"].as_str().unwrap().len() >= 20);
        assert_eq!(value["key_points"].as_array().unwrap().len(), 2);
        let confidence = value["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&confidence));
        assert_eq!(value["count"], 6);
        assert_eq!(value["level"], "low");
        assert_eq!(value["note"], "sam");
        assert_eq!(value["when"], "2024-01-01");
        assert_eq!(value["child"], json!({"ok": true}));
        // Deterministic.
        assert_eq!(value, sample_value(&schema));
    }

    #[test]
    fn recursive_refs_terminate() {
        let schema = json!({"$ref": "#", "type": "object"});
        assert_eq!(sample_value(&schema), Value::Null);
        let schema = json!({
            "type": "object",
            "properties": {"next": {"$ref": "#"}}
        });
        let _ = sample_value(&schema);
    }

    /// Runs the generator on `schema` in a thread and fails (instead of
    /// hanging the suite) when it takes longer than a few seconds.
    fn sample_within(schema: Value) -> Value {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(sample_value(&schema));
        });
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("sample_value did not return within 5 s")
    }

    fn nodes(value: &Value) -> usize {
        1 + match value {
            Value::Array(items) => items.iter().map(nodes).sum(),
            Value::Object(fields) => fields.values().map(nodes).sum(),
            _ => 0,
        }
    }

    #[test]
    fn huge_min_length_is_capped_and_linear() {
        let value = sample_within(json!({"type": "string", "minLength": 200_000}));
        assert_eq!(value.as_str().unwrap().len(), MAX_STRING_CHARS);
        let value = sample_within(json!({"type": "string", "minLength": 4_000_000_000u64}));
        assert_eq!(value.as_str().unwrap().len(), MAX_STRING_CHARS);
        // Short ones are still met exactly.
        let value = sample_within(json!({"type": "string", "minLength": 30}));
        assert_eq!(value.as_str().unwrap().chars().count(), 30);
    }

    #[test]
    fn padding_over_all_strings_is_bounded() {
        let value = sample_within(json!({
            "type": "array", "minItems": 64,
            "items": {"type": "string", "minLength": 60_000}
        }));
        let total: usize = value
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap_or("").len())
            .sum();
        assert!(total <= MAX_TOTAL_CHARS + 64 * 16, "{total} bytes");
    }

    #[test]
    fn recursive_breadth_is_bounded_by_the_node_budget() {
        // Today's generator would build ~64^12 values for this.
        let schema = json!({
            "$defs": {"t": {"type": "object", "properties": {
                "a": {"type": "array", "minItems": 64, "items": {"$ref": "#/$defs/t"}},
                "b": {"type": "array", "minItems": 64, "items": {"$ref": "#/$defs/t"}}
            }}},
            "$ref": "#/$defs/t"
        });
        let value = sample_within(schema);
        assert!(nodes(&value) <= MAX_NODES + 1, "{} nodes", nodes(&value));
    }

    #[test]
    fn numbers_respect_bounds() {
        assert_eq!(integer(json!({"maximum": -3}).as_object().unwrap()), -3);
        assert_eq!(integer(json!({"minimum": 10}).as_object().unwrap()), 10);
        assert_eq!(number(json!({"minimum": 5}).as_object().unwrap()), 5.0);
        assert_eq!(
            number(
                json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1})
                    .as_object()
                    .unwrap()
            ),
            0.5
        );
    }
}
