//! Deterministic values conforming to a JSON Schema (the subset used by
//! OpenAI structured outputs and function parameters).
//!
//! Without constraints the values are the same as the peer Python mock's:
//! strings `"<seed>:<8 hex>"`, integers from the first 4 hex digits of
//! `sha256(seed)`, numbers that integer / 16, booleans `true`, arrays of one
//! item, enums their first value.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const MAX_DEPTH: usize = 24;

/// Lowercase hex of `sha256(text)`, first `n` digits (n <= 64).
pub(crate) fn hash_hex(text: &str, n: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(n);
    for byte in digest.iter() {
        if out.len() >= n {
            break;
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        if out.len() < n {
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

/// `sha256(text)[:16]`, as the peer mock's `_h`.
pub(crate) fn short_hash(text: &str) -> String {
    hash_hex(text, 16)
}

fn hash_u16(seed: &str) -> u64 {
    let digest = Sha256::digest(seed.as_bytes());
    u64::from(digest[0]) << 8 | u64::from(digest[1])
}

/// A value conforming to `schema`, derived deterministically from `seed`.
pub(crate) fn generate(schema: &Value, seed: &str) -> Value {
    gen_value(schema, seed, schema, 0)
}

fn resolve<'a>(reference: &str, root: &'a Value) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    root.pointer(pointer).or_else(|| {
        let name = pointer.rsplit('/').next()?;
        root.get("$defs")
            .and_then(|d| d.get(name))
            .or_else(|| root.get("definitions").and_then(|d| d.get(name)))
    })
}

fn first_non_null(options: &[Value]) -> Option<&Value> {
    options
        .iter()
        .find(|s| s.get("type").and_then(Value::as_str) != Some("null"))
        .or_else(|| options.first())
}

fn gen_value(schema: &Value, seed: &str, root: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let Some(obj) = schema.as_object() else {
        // `true` / `{}`-like schemas accept anything: use a string.
        return gen_string(&Map::new(), seed);
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        return match resolve(reference, root) {
            Some(target) => gen_value(target, seed, root, depth + 1),
            None => gen_string(obj, seed),
        };
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = obj.get(key).and_then(Value::as_array)
            && let Some(option) = first_non_null(options)
        {
            return gen_value(option, seed, root, depth + 1);
        }
    }
    if let Some(parts) = obj.get("allOf").and_then(Value::as_array) {
        let values: Vec<Value> = parts
            .iter()
            .map(|p| gen_value(p, seed, root, depth + 1))
            .collect();
        if !values.is_empty() && values.iter().all(Value::is_object) {
            let mut merged = Map::new();
            for value in values {
                if let Value::Object(map) = value {
                    merged.extend(map);
                }
            }
            return Value::Object(merged);
        }
        if let Some(first) = values.into_iter().next() {
            return first;
        }
    }
    if let Some(constant) = obj.get("const") {
        return constant.clone();
    }
    if let Some(first) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .or(Some("null")),
        _ => None,
    };
    match ty {
        Some("object") => gen_object(obj, seed, root, depth),
        None if obj.contains_key("properties") => gen_object(obj, seed, root, depth),
        Some("array") => gen_array(obj, seed, root, depth),
        None if obj.contains_key("items") => gen_array(obj, seed, root, depth),
        Some("integer") => Value::from(gen_integer(obj, seed)),
        Some("number") => gen_number(obj, seed),
        Some("boolean") => Value::Bool(true),
        Some("null") => Value::Null,
        _ => gen_string(obj, seed),
    }
}

fn gen_object(obj: &Map<String, Value>, seed: &str, root: &Value, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (key, sub) in props {
            out.insert(
                key.clone(),
                gen_value(sub, &format!("{seed}.{key}"), root, depth + 1),
            );
        }
    }
    Value::Object(out)
}

fn gen_array(obj: &Map<String, Value>, seed: &str, root: &Value, depth: usize) -> Value {
    let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(1);
    let max = obj
        .get("maxItems")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let count = min.max(1).min(max).min(16);
    let default_items = serde_json::json!({"type": "string"});
    let prefix = obj.get("prefixItems").and_then(Value::as_array);
    let items = obj.get("items").filter(|i| i.is_object());
    (0..count)
        .map(|i| {
            let sub = prefix
                .and_then(|p| p.get(usize::try_from(i).unwrap_or(usize::MAX)))
                .or(items)
                .unwrap_or(&default_items);
            gen_value(sub, &format!("{seed}[{i}]"), root, depth + 1)
        })
        .collect()
}

fn bound(obj: &Map<String, Value>, key: &str) -> Option<f64> {
    obj.get(key).and_then(Value::as_f64)
}

fn gen_integer(obj: &Map<String, Value>, seed: &str) -> i64 {
    let raw = i64::try_from(hash_u16(seed)).unwrap_or(0);
    let mut lo = bound(obj, "minimum").map(|v| v.ceil());
    if let Some(x) = bound(obj, "exclusiveMinimum") {
        lo = Some(lo.map_or(x.floor() + 1.0, |l| l.max(x.floor() + 1.0)));
    }
    let mut hi = bound(obj, "maximum").map(|v| v.floor());
    if let Some(x) = bound(obj, "exclusiveMaximum") {
        hi = Some(hi.map_or(x.ceil() - 1.0, |h| h.min(x.ceil() - 1.0)));
    }
    let (lo, hi) = (lo.map(|v| v as i64), hi.map(|v| v as i64));
    match (lo, hi) {
        (Some(lo), Some(hi)) if hi >= lo => {
            let span = hi.saturating_sub(lo).saturating_add(1);
            lo.saturating_add(raw % span.max(1))
        }
        (Some(lo), _) if raw < lo => lo.saturating_add(raw),
        (_, Some(hi)) if raw > hi => hi.saturating_sub(raw % 1000),
        _ => raw,
    }
}

fn gen_number(obj: &Map<String, Value>, seed: &str) -> Value {
    let raw = hash_u16(seed) as f64 / 16.0;
    let lo = bound(obj, "minimum").or_else(|| bound(obj, "exclusiveMinimum"));
    let hi = bound(obj, "maximum").or_else(|| bound(obj, "exclusiveMaximum"));
    let value = match (lo, hi) {
        (Some(lo), Some(hi)) if hi > lo => lo + (hi - lo) * (raw / 4096.0).fract().max(0.0625),
        (Some(lo), Some(hi)) => (lo + hi) / 2.0,
        (Some(lo), None) if raw <= lo => lo + raw + 1.0,
        (None, Some(hi)) if raw >= hi => hi - 1.0 - raw.fract(),
        _ => raw,
    };
    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn gen_string(obj: &Map<String, Value>, seed: &str) -> Value {
    let h8 = hash_hex(seed, 8);
    let mut text = match obj.get("format").and_then(Value::as_str) {
        Some("date-time") => "2025-01-01T00:00:00Z".to_owned(),
        Some("date") => "2025-01-01".to_owned(),
        Some("time") => "12:00:00".to_owned(),
        Some("email") => format!("user{h8}@example.com"),
        Some("uri" | "url") => format!("https://example.com/{h8}"),
        Some("uuid") => {
            let h = hash_hex(seed, 32);
            format!(
                "{}-{}-4{}-8{}-{}",
                &h[0..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            )
        }
        Some("ipv4") => "192.0.2.1".to_owned(),
        _ => format!("{seed}:{h8}"),
    };
    let min = obj
        .get("minLength")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok());
    let max = obj
        .get("maxLength")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok());
    if let Some(max) = max
        && text.chars().count() > max
    {
        text = text.chars().take(max).collect();
    }
    if let Some(min) = min {
        let len = text.chars().count();
        if len < min {
            text.extend(std::iter::repeat_n('x', min - len));
        }
    }
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn matches_peer_mock_values() {
        // From the peer's recorded workflow: tool arguments for
        // last user "[aspect 2] reply 0ef48f27d74c5551".
        let params = json!({"properties":{"query":{"type":"string"},"limit":{"type":"integer"}},
                            "required":["query","limit"],"type":"object"});
        let seed = format!("arg:{}", short_hash("[aspect 2] reply 0ef48f27d74c5551"));
        assert_eq!(seed, "arg:b935634aad675ba2");
        let value = generate(&params, &seed);
        assert_eq!(
            value,
            json!({"query": "arg:b935634aad675ba2.query:06c790e5", "limit": 698})
        );
        assert_eq!(
            format!("reply {}", short_hash("topic #0")),
            "reply 0ef48f27d74c5551"
        );
    }

    #[test]
    fn handles_refs_unions_enums_and_bounds() {
        let schema = json!({
            "type": "object",
            "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 5}}}},
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
                "kind": {"enum": ["a", "b"]},
                "maybe": {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
                "opt": {"type": ["null", "number"], "minimum": 0, "maximum": 1},
                "when": {"type": "string", "format": "date-time"},
                "short": {"type": "string", "maxLength": 3}
            }
        });
        let v = generate(&schema, "s");
        let items = v["items"].as_array().map(Vec::len);
        assert_eq!(items, Some(2));
        let n = v["items"][0]["n"].as_i64().unwrap_or(0);
        assert!((1..=5).contains(&n), "{v}");
        assert_eq!(v["kind"], "a");
        assert_eq!(v["maybe"], true);
        let opt = v["opt"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&opt), "{v}");
        assert_eq!(v["when"], "2025-01-01T00:00:00Z");
        assert_eq!(v["short"].as_str().map(str::len), Some(3));
    }

    #[test]
    fn recursive_schema_terminates() {
        let schema = json!({"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object",
            "properties": {"next": {"$ref": "#/$defs/Node"}}}}});
        let v = generate(&schema, "r");
        assert!(v.is_object());
    }
}
