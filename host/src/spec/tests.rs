//! Tests of parsing, normalization, validation paths and the JSON Schema,
//! one submodule per concern; the fixtures and helpers they share live here.

use super::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The spec from the design brief, with every section filled in.
fn full_example() -> Value {
    json!({
      "providers": {
        "openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY", "api": "responses", "timeout_ms": 60000,
                   "retry": {"max_attempts": 4, "initial_backoff_ms": 500, "max_backoff_ms": 8000}},
        "local": {"type": "openai_compatible", "base_url": "http://localhost:11434/v1", "api": "chat", "api_key_env": "OLLAMA_KEY"},
        "offline": {"type": "scripted", "script": "script.json"}
      },
      "plugins": {"calculator": {"timeout_ms": 2000, "memory_mib": 128, "output_kib": 1024}},
      "agents": {
        "planner": {
          "instructions": "You plan research.",
          "model": {"provider": "openai", "name": "gpt-4.1-mini", "temperature": 0.2, "top_p": 1.0,
                    "max_output_tokens": 800, "reasoning_effort": "low", "extra_headers": {"x-team": "a"}},
          "tools": ["calculator", "calculator#add"],
          "input_guardrails": ["pii_guardrail"],
          "output_guardrails": [{"plugin": "pii_guardrail", "config": {"detect": ["email"]}}],
          "tool_guardrails": [],
          "handoffs": ["writer"], "handoff_description": "Hands off to the writer",
          "output_schema": {"type": "object", "properties": {}},
          "memory": {"strategy": "trim", "max_turns": 10}
        },
        "researcher": {
          "instructions": "You research one aspect.",
          "model": {"provider": "local", "name": "llama3"},
          "memory": {"strategy": "summarize", "keep_last": 4, "max_summary_tokens": 300, "model": "gpt-4.1-mini"}
        },
        "writer": {
          "instructions": "You write.",
          "model": {"provider": "offline", "name": "scripted"},
          "memory": {"strategy": "compact", "max_tokens": 4000}
        }
      },
      "workflow": {
        "key": "analysis", "name": "Analysis", "description": "Plan, research in parallel, write.",
        "stages": [
          {"name": "plan", "mode": "sequential", "steps": [{"agent": "planner"}]},
          {"name": "fanout", "mode": "parallel", "on_branch_error": "continue",
           "steps": [
             {"agent": "researcher", "name": "r1",
              "guard": {"plugin": "keyword_guard", "config": {"keywords": ["x"]}},
              "input_mapper": {"plugin": "template_mapper", "config": {"template": "[aspect 1] {{input}}"}},
              "max_turns": 5, "output_schema": {}},
             {"agent": "researcher", "name": "r2", "input_mapper": "template_mapper#template"}
           ],
           "reducer": {"plugin": "concat", "config": {"separator": " | "}}},
          {"name": "write", "steps": [{"agent": "writer"}]}
        ],
        "output_schema": {},
        "allow_handoff_agents": true
      },
      "run": {
        "input": "text or any JSON",
        "session": {"id": "s1", "user_id": "u1", "account_id": "a1", "history_size": 20, "max_turns": 10},
        "callback": [
          {"type": "stdout"}, {"type": "stdout_verbose"}, {"type": "jsonl", "path": "-"},
          {"type": "http", "url": "http://127.0.0.1:8080/hook", "secret_env": "HOOK_SECRET", "headers": {"x-a": "b"}}
        ],
        "metadata": {"team": "a"}
      }
    })
}

fn go_example() -> Value {
    json!({
      "query": "What is 2+2?",
      "session": {"session_id": "s1", "credentials": {"user_id": "u1", "account_id": "a1",
                  "api_key": "sk-SECRET-123", "base_url": "https://proxy.test/v1"}},
      "callback": {"target": "http://127.0.0.1:9/hook", "secret": "hook-SECRET-456"},
      "workflow": {
        "name": "Math Helper",
        "starting_agent": "assistant",
        "agents": [
          {"name": "assistant", "instructions": "Help with math.", "model": {"model": "gpt-4.1-mini"},
           "tools": [{"type": "plugin", "name": "calculator"}], "handoff": ["other"]},
          {"name": "other", "instructions": "Answer in prose.", "model": {"model": "gpt-4.1-mini"},
           "handoff_description": "For non-math questions",
           "output_type": {"name": "answer", "schema": {"type": "object"}}}
        ]
      }
    })
}

fn catalog() -> BTreeMap<String, Vec<(String, Kind)>> {
    let entries = |list: &[(&str, Kind)]| -> Vec<(String, Kind)> {
        list.iter().map(|(n, k)| (n.to_string(), *k)).collect()
    };
    BTreeMap::from([
        (
            "calculator".into(),
            entries(&[("add", Kind::Tool), ("sub", Kind::Tool)]),
        ),
        ("pii_guardrail".into(), entries(&[("pii", Kind::Guardrail)])),
        ("keyword_guard".into(), entries(&[("keyword", Kind::Guard)])),
        (
            "template_mapper".into(),
            entries(&[("template", Kind::InputMapper)]),
        ),
        ("concat".into(), entries(&[("concat", Kind::Reducer)])),
        (
            "multi".into(),
            entries(&[("a", Kind::Guard), ("b", Kind::Guard), ("x", Kind::Tool)]),
        ),
    ])
}

/// A folder with the example's `script.json`.
fn example_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("script.json"), "[]").expect("write script");
    dir
}

fn parse_in(doc: &Value, dir: &Path) -> Spec {
    Spec::from_json_str(&doc.to_string(), dir).unwrap_or_else(|e| panic!("parse failed:\n{e}"))
}

fn parse(doc: &Value) -> Spec {
    parse_in(doc, Path::new("."))
}

/// Shape errors as (path, message).
fn shape_errors(doc: &Value) -> Vec<SpecError> {
    match Spec::from_json_str(&doc.to_string(), Path::new(".")) {
        Ok(spec) => panic!("expected shape errors, parsed {spec:?}"),
        Err(e) => e.into_errors(),
    }
}

/// Validation errors (with the fake catalog).
fn check(doc: &Value) -> Vec<SpecError> {
    let spec = parse(doc);
    match spec.validate(Some(&catalog())) {
        Ok(()) => Vec::new(),
        Err(e) => e.into_errors(),
    }
}

fn paths(errors: &[SpecError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

/// Exactly one error, at `path`, whose message contains `message`.
#[track_caller]
fn only(errors: Vec<SpecError>, path: &str, message: &str) -> SpecError {
    assert_eq!(paths(&errors), [path], "errors: {errors:#?}");
    let e = errors.into_iter().next().expect("one error");
    assert!(
        e.message.contains(message),
        "message {:?} lacks {message:?}",
        e.message
    );
    e
}

/// The smallest valid spec, to break one thing at a time.
fn base() -> Value {
    json!({
      "agents": {"a": {"model": "m"}, "b": {"model": "m"}},
      "workflow": {"steps": [{"agent": "a"}]}
    })
}

fn staged() -> Value {
    json!({
      "agents": {"planner": {"model": "m"}, "writer": {"model": "m"}},
      "workflow": {"stages": [
        {"name": "one", "steps": [{"agent": "planner"}]},
        {"name": "two", "mode": "parallel", "steps": [{"agent": "planner", "name": "p1"}, {"agent": "writer"}]}
      ]}
    })
}

mod go;
mod parse;
mod schema;
mod shape;
mod validate;
