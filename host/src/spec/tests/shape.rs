//! Shape errors: what `Spec::from_json_str` reports before validation.

use super::*;

#[test]
fn syntax_errors_have_line_and_column() {
    let errors = Spec::from_json_str("{\n  \"workflow\": [\n", Path::new("."))
        .expect_err("invalid")
        .into_errors();
    only(errors, "$", "line 3");
    let errors = Spec::from_json_str("[1]", Path::new("."))
        .expect_err("not an object")
        .into_errors();
    only(errors, "$", "a spec is a JSON object, found array");
}

#[test]
fn unknown_enum_value_is_reported_at_its_path() {
    let mut doc = staged();
    doc["workflow"]["stages"][1]["mode"] = json!("paralel");
    let e = only(
        shape_errors(&doc),
        "$.workflow.stages[1].mode",
        "unknown value \"paralel\"; expected one of \"sequential\", \"parallel\"",
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean \"parallel\"?"));
}

#[test]
fn unknown_fields_are_reported_with_the_nearest_field() {
    let mut doc = base();
    doc["agents"]["a"] = json!({"modle": "m"});
    let errors = shape_errors(&doc);
    assert_eq!(paths(&errors), ["$.agents.a", "$.agents.a.modle"]);
    assert_eq!(errors[0].message, "missing field `model`");
    assert_eq!(errors[1].message, "unknown field `modle`");
    assert_eq!(errors[1].hint.as_deref(), Some("did you mean `model`?"));
}

#[test]
fn errors_inside_tagged_and_untagged_enums_point_into_the_variant() {
    let mut doc = base();
    doc["providers"] = json!({
        "openai": {"type": "opnai"},
        "local": {"type": "openai_compatible", "base_url": "http://127.0.0.1:1/v1", "timeout": 5}
    });
    doc["agents"]["a"]["model"] = json!({"name": "m", "temprature": 0.5});
    doc["agents"]["a"]["memory"] = json!({"max_turns": 3});
    doc["agents"]["b"]["tools"] = json!([7, {"plugin": "calculator", "confg": {}}]);
    doc["agents"]["b"]["model"] = json!({"name": "m", "temperature": "hot"});
    let errors = shape_errors(&doc);
    let got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("$.agents.a.memory", "missing field `strategy`"),
            ("$.agents.a.model.temprature", "unknown field `temprature`"),
            (
                "$.agents.b.model.temperature",
                "expected number or null, found string"
            ),
            (
                "$.agents.b.tools[0]",
                "expected string or object, found integer"
            ),
            ("$.agents.b.tools[1].confg", "unknown field `confg`"),
            ("$.providers.local.timeout", "unknown field `timeout`"),
            (
                "$.providers.openai.type",
                "unknown value \"opnai\"; expected one of \"openai\", \"openai_compatible\", \"scripted\""
            ),
        ],
        "{errors:#?}"
    );
    assert_eq!(
        errors[5].hint.as_deref(),
        Some("did you mean `timeout_ms`?")
    );
}
