//! A deterministic value satisfying a JSON Schema, for offline replies.

use serde_json::{Map, Value, json};

/// Deepest nesting followed (guards against recursive `$ref`s).
const MAX_DEPTH: usize = 24;

/// A deterministic instance of `schema` (the subset used for structured
/// outputs and tool parameters): every property of an object, one item per
/// array (or `minItems`), `enum`/`const` → the first value, numbers within
/// `minimum`/`maximum`, strings `"sample <property>"` padded/cut to
/// `minLength`/`maxLength` (or a valid example for common `format`s),
/// `$ref` into the schema itself, `anyOf`/`oneOf` → the first non-null
/// branch, `allOf` → the merged objects.
pub fn sample_value(schema: &Value) -> Value {
    generate(schema, schema, "text", 0)
}

fn generate(schema: &Value, root: &Value, name: &str, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(obj) = schema.as_object() else {
        // `true` / `{}` accept anything.
        return Value::String(format!("sample {name}"));
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        return match resolve(root, reference) {
            Some(target) => generate(target, root, name, depth + 1),
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
                return generate(branch, root, name, depth + 1);
            }
        }
    }
    if let Some(parts) = obj.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        let mut other = None;
        for part in parts {
            match generate(part, root, name, depth + 1) {
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
                    fields.insert(key.clone(), generate(sub, root, key, depth + 1));
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
            let count = min.max(1).min(max).min(64) as usize;
            let prefix = obj
                .get("prefixItems")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let items = obj.get("items").cloned().unwrap_or(json!({}));
            let count = count.max(prefix.len().min(max as usize));
            (0..count)
                .map(|i| generate(prefix.get(i).unwrap_or(&items), root, name, depth + 1))
                .collect()
        }
        "integer" => Value::from(integer(obj)),
        "number" => number(obj),
        "boolean" => Value::Bool(true),
        "null" => Value::Null,
        _ => Value::String(string(obj, name)),
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

fn string(obj: &Map<String, Value>, name: &str) -> String {
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
    let min = obj.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = obj
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    while text.chars().count() < min {
        text.push('x');
    }
    if let Some(max) = max {
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
