//! Go-style requests: conversion to a workflow, secret redaction, and errors
//! reported at the paths of the Go request, not the converted spec.

use super::*;

#[test]
fn go_request_becomes_a_single_agent_workflow() {
    let spec = parse(&go_example());
    assert!(spec.is_go_request());
    spec.validate(Some(&catalog()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.run.input, json!("What is 2+2?"));
    assert_eq!(spec.workflow.key, "math_helper");
    assert_eq!(spec.workflow.name.as_deref(), Some("Math Helper"));
    assert!(spec.workflow.allow_handoff_agents);
    assert_eq!(spec.workflow.stages.len(), 1);
    assert_eq!(spec.workflow.stages[0].mode, Mode::Sequential);
    assert_eq!(spec.workflow.stages[0].steps, vec![Step::new("assistant")]);
    assert_eq!(
        spec.agents.keys().collect::<Vec<_>>(),
        ["assistant", "other"]
    );
    let assistant = &spec.agents["assistant"];
    assert_eq!(assistant.model.provider, "openai");
    assert_eq!(assistant.model.name, "gpt-4.1-mini");
    assert_eq!(assistant.tools, vec![PluginRef::parse("calculator")]);
    assert_eq!(assistant.handoffs, ["other"]);
    assert_eq!(
        spec.agents["other"].output_schema,
        Some(json!({"type": "object"}))
    );
    assert_eq!(
        spec.providers["openai"].base_url(),
        Some("https://proxy.test/v1")
    );
    let session = spec.run.session.as_ref().expect("session");
    assert_eq!(
        (
            session.id.as_str(),
            session.user_id.as_deref(),
            session.account_id.as_deref()
        ),
        ("s1", Some("u1"), Some("a1"))
    );
    let key = session
        .credentials
        .as_ref()
        .and_then(|c| c.api_key.as_ref())
        .expect("api key");
    assert_eq!(key.expose(), "sk-SECRET-123");
    match &spec.run.callback[..] {
        [
            Callback::Http {
                url,
                secret: Some(secret),
                ..
            },
        ] => {
            assert_eq!(url, "http://127.0.0.1:9/hook");
            assert_eq!(secret.expose(), "hook-SECRET-456");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn go_secrets_never_appear_in_debug_or_serialized_output() {
    let spec = parse(&go_example());
    let debug = format!("{spec:?} {spec:#?}");
    let json = serde_json::to_string(&spec).expect("serialize");
    let pretty = serde_json::to_string_pretty(&spec).expect("serialize");
    for out in [&debug, &json, &pretty] {
        assert!(!out.contains("sk-SECRET-123"), "api key leaked: {out}");
        assert!(
            !out.contains("hook-SECRET-456"),
            "callback secret leaked: {out}"
        );
        assert!(out.contains("***"));
    }
    let value: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["run"]["session"]["credentials"]["api_key"], "***");
    assert_eq!(value["run"]["callback"][0]["secret"], "***");
    // The Go request type itself redacts too.
    let request: GoRequest = serde_json::from_value(go_example()).expect("go request");
    assert!(!format!("{request:?}").contains("SECRET"));
}

#[test]
fn a_native_spec_cannot_carry_credentials() {
    let mut doc = base();
    doc["run"] = json!({"session": {"id": "s", "credentials": {"api_key": "sk-x"}}});
    let errors = shape_errors(&doc);
    assert_eq!(paths(&errors), ["$.run.session.credentials"]);
    let mut doc = base();
    doc["run"] = json!({"callback": [{"type": "http", "url": "http://127.0.0.1/", "secret": "x"}]});
    assert_eq!(paths(&shape_errors(&doc)), ["$.run.callback[0].secret"]);
}

#[test]
fn go_shape_errors_use_go_paths() {
    let mut doc = go_example();
    doc["workflow"]["agents"][1]["modle"] = json!("x");
    let errors = shape_errors(&doc);
    assert_eq!(paths(&errors), ["$.workflow.agents[1].modle"]);
    let mut doc = go_example();
    doc["workflow"]["agents"][1]["name"] = json!("assistant");
    doc["workflow"]["agents"][0]["output_type"] = json!({});
    doc["workflow"]["agents"][0]["output_schema"] = json!({});
    let errors = shape_errors(&doc);
    assert_eq!(
        paths(&errors),
        [
            "$.workflow.agents[0].output_schema",
            "$.workflow.agents[1].name"
        ]
    );
}

#[test]
fn go_validation_errors_use_go_paths() {
    let mut doc = go_example();
    doc["workflow"]["starting_agent"] = json!("asistant");
    doc["workflow"]["agents"][0]["tools"] = json!(["calculater"]);
    doc["workflow"]["agents"][1]["output_type"] = json!({"type": "objekt"});
    doc["workflow"]["max_turns"] = json!(0);
    let spec = parse(&doc);
    let errors = spec
        .validate(Some(&catalog()))
        .expect_err("invalid")
        .into_errors();
    assert_eq!(
        paths(&errors),
        [
            "$.workflow.agents[0].tools[0]",
            "$.workflow.agents[1].output_type",
            "$.workflow.max_turns",
            "$.workflow.starting_agent",
        ],
        "{errors:#?}"
    );
    assert_eq!(
        errors[0].hint.as_deref(),
        Some("did you mean `calculator`?")
    );
    assert_eq!(errors[3].hint.as_deref(), Some("did you mean `assistant`?"));
}
