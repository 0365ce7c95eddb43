//! The published JSON Schemas and the kind names they share with plugins.

use super::*;

#[test]
fn json_schema_is_valid_and_accepts_the_examples() {
    let schema = Spec::json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
    let full = full_example();
    let problems: Vec<String> = validator
        .iter_errors(&full)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(validator.is_valid(&base()));
    assert!(validator.is_valid(&staged()));
    // And it rejects what parsing rejects.
    let mut typo = base();
    typo["workflow"]["stepz"] = json!([]);
    assert!(!validator.is_valid(&typo));

    let go =
        jsonschema::validator_for(&Spec::go_request_schema()).unwrap_or_else(|e| panic!("{e}"));
    assert!(go.is_valid(&go_example()));
}

#[test]
fn json_schema_output_of_host_schema_is_pretty_json() {
    let text = serde_json::to_string_pretty(&Spec::json_schema()).expect("encode");
    let back: Value = serde_json::from_str(&text).expect("decode");
    assert_eq!(back["title"], "host workflow spec");
    assert!(back["properties"]["workflow"].is_object());
}

#[test]
fn kind_names_are_the_ones_specs_and_plugins_use() {
    use strum::IntoEnumIterator;
    let names: Vec<&str> = Kind::iter().map(Kind::as_str).collect();
    assert_eq!(
        names,
        ["guard", "input_mapper", "reducer", "tool", "guardrail"]
    );
    for kind in Kind::iter() {
        assert_eq!(kind.to_string(), kind.as_str());
        assert_eq!(serde_json::to_value(kind).ok(), Some(json!(kind.as_str())));
        assert_eq!(kind.is_hook(), kind != Kind::Tool);
    }
}
