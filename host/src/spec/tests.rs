//! Tests of parsing, normalization, validation paths and the JSON Schema.

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
      "session": {"id": "s1", "user_id": "u1", "account_id": "a1",
                  "credentials": {"api_key": "sk-SECRET-123", "base_url": "https://proxy.test/v1"}},
      "callback": {"url": "http://127.0.0.1:9/hook", "secret": "hook-SECRET-456"},
      "workflow": {
        "name": "Math Helper",
        "starting_agent": "assistant",
        "agents": [
          {"name": "assistant", "instructions": "Help with math.", "model": "gpt-4.1-mini",
           "tools": ["calculator"], "handoffs": ["other"]},
          {"name": "other", "instructions": "Answer in prose.", "model": "gpt-4.1-mini",
           "handoff_description": "For non-math questions", "output_type": {"type": "object"}}
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

// ---- parsing and normalization -------------------------------------------

#[test]
fn full_example_parses_validates_and_normalizes() {
    let dir = example_dir();
    let spec = parse_in(&full_example(), dir.path());
    spec.validate(Some(&catalog()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!spec.is_go_request());
    assert_eq!(spec.base_dir(), dir.path());
    assert_eq!(spec.workflow.key, "analysis");
    assert_eq!(spec.workflow.stages.len(), 3);
    assert_eq!(spec.step_count(), 4);
    assert_eq!(spec.workflow.stages[2].mode, Mode::Sequential);
    assert_eq!(
        spec.workflow.stages[1].on_branch_error,
        Some(OnBranchError::Continue)
    );

    let openai = &spec.providers["openai"];
    assert_eq!(openai.base_url(), Some(DEFAULT_OPENAI_BASE_URL));
    assert_eq!(openai.api(), Some(Api::Responses));
    assert_eq!(openai.retry().max_attempts, 4);
    let local = &spec.providers["local"];
    assert_eq!(local.api(), Some(Api::Chat));
    assert_eq!(local.api_key_env(), Some("OLLAMA_KEY"));
    match &spec.providers["offline"] {
        Provider::Scripted { script } => assert_eq!(script, &dir.path().join("script.json")),
        other => panic!("{other:?}"),
    }

    let planner = &spec.agents["planner"];
    assert_eq!(planner.model.temperature, Some(0.2));
    assert_eq!(planner.model.reasoning_effort, Some(ReasoningEffort::Low));
    assert_eq!(planner.model.extra_headers["x-team"], "a");
    assert_eq!(planner.memory, Some(Memory::Trim { max_turns: 10 }));
    // A bare model string in a memory uses the default provider.
    match &spec.agents["researcher"].memory {
        Some(Memory::Summarize {
            model: Some(m),
            keep_last: 4,
            ..
        }) => {
            assert_eq!(
                (m.provider.as_str(), m.name.as_str()),
                ("openai", "gpt-4.1-mini")
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(spec.plugins["calculator"].memory_bytes(), Some(128 << 20));
    assert_eq!(spec.run.callback.len(), 4);
    assert_eq!(spec.run.session.as_ref().map(|s| s.id.as_str()), Some("s1"));

    let uses: Vec<(String, Kind, String)> = spec
        .plugin_uses()
        .into_iter()
        .map(|u| (u.path, u.kind, u.reference.reference()))
        .collect();
    assert!(uses.contains(&(
        "$.agents.planner.tools[1]".into(),
        Kind::Tool,
        "calculator#add".into()
    )));
    assert!(uses.contains(&(
        "$.workflow.stages[1].reducer".into(),
        Kind::Reducer,
        "concat".into()
    )));
    assert!(uses.contains(&(
        "$.workflow.stages[1].steps[1].input_mapper".into(),
        Kind::InputMapper,
        "template_mapper#template".into()
    )));
}

#[test]
fn serialized_spec_parses_back_to_the_same_spec() {
    let dir = example_dir();
    let spec = parse_in(&full_example(), dir.path());
    let text = serde_json::to_string(&spec).expect("serialize");
    let again = Spec::from_json_str(&text, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again, spec);
}

#[test]
fn plugin_refs_normalize_to_one_shape() {
    let mut doc = base();
    doc["agents"]["a"]["tools"] = json!([
        "calculator",
        "calculator#add",
        {"plugin": "calculator#sub", "config": {"precision": 2}},
        {"plugin": "calculator"},
        " calculator # add "
    ]);
    let spec = parse(&doc);
    let tools = &spec.agents["a"].tools;
    let empty = json!({});
    assert_eq!(
        tools[0],
        PluginRef {
            plugin: "calculator".into(),
            entry: None,
            config: empty.clone(),
            approval: Default::default(),
        }
    );
    assert_eq!(tools[1], PluginRef::parse("calculator#add"));
    assert_eq!(tools[1].entry.as_deref(), Some("add"));
    assert_eq!(tools[1].config, empty);
    assert_eq!(
        tools[2],
        PluginRef {
            plugin: "calculator".into(),
            entry: Some("sub".into()),
            config: json!({"precision": 2}),
            approval: Default::default(),
        }
    );
    assert_eq!(tools[3], tools[0]);
    assert_eq!(tools[4], tools[1]);
    // Serialized: a string unless there is config.
    assert_eq!(
        serde_json::to_value(&tools[..3]).expect("serialize"),
        json!(["calculator", "calculator#add", {"plugin": "calculator#sub", "config": {"precision": 2}}])
    );
}

#[test]
fn steps_shorthand_is_one_sequential_stage_named_main() {
    let spec = parse(&base());
    assert_eq!(spec.workflow.stages.len(), 1);
    let stage = &spec.workflow.stages[0];
    assert_eq!(stage.name, SHORTHAND_STAGE);
    assert_eq!(stage.mode, Mode::Sequential);
    assert_eq!(stage.steps[0].agent, "a");
    assert_eq!(stage.steps[0].name(), "a");
    assert!(spec.workflow.steps.is_empty());
    assert_eq!(spec.workflow.key, "workflow");
    // No providers: an implicit `openai`, used by bare model names.
    assert!(matches!(spec.providers["openai"], Provider::Openai { .. }));
    assert_eq!(spec.agents["a"].model, {
        let mut m = Model::named("m");
        m.provider = "openai".into();
        m
    });
}

#[test]
fn workflow_key_defaults_to_a_slug_of_the_name() {
    let mut doc = base();
    doc["workflow"]["name"] = json!("Trip Planner (v2)");
    assert_eq!(parse(&doc).workflow.key, "trip_planner_v2");
}

#[test]
fn bare_model_uses_the_default_provider() {
    let provider_of = |providers: Value| {
        let mut doc = base();
        doc["providers"] = providers;
        parse(&doc).agents["a"].model.provider.clone()
    };
    let compat = json!({"type": "openai_compatible", "base_url": "http://127.0.0.1:1/v1"});
    let openai = json!({"type": "openai"});
    // The only provider.
    assert_eq!(provider_of(json!({"local": compat})), "local");
    // Else the one named `default`.
    assert_eq!(
        provider_of(json!({"default": compat, "openai": openai, "x": compat})),
        "default"
    );
    // Else `openai`.
    assert_eq!(
        provider_of(json!({"openai": openai, "x": compat})),
        "openai"
    );
    // Else none: an error at the model.
    let mut doc = base();
    doc["providers"] = json!({"x": compat, "y": compat});
    let errors = check(&doc);
    assert_eq!(paths(&errors), ["$.agents.a.model", "$.agents.b.model"]);
    assert!(errors[0].message.contains("no default provider"));
    assert!(
        errors[0]
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("`x`, `y`"))
    );
}

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

// ---- shape errors (from_json_str) ----------------------------------------

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

// ---- validation ----------------------------------------------------------

#[test]
fn unknown_agent_in_a_step_suggests_the_nearest() {
    let mut doc = staged();
    doc["workflow"]["stages"][1]["steps"][1]["agent"] = json!("writter");
    let e = only(
        check(&doc),
        "$.workflow.stages[1].steps[1].agent",
        "unknown agent `writter`",
    );
    assert_eq!(e.hint.as_deref(), Some("did you mean `writer`?"));

    let mut doc = base();
    doc["workflow"]["steps"][0]["agent"] = json!("zzz");
    let e = only(
        check(&doc),
        "$.workflow.steps[0].agent",
        "unknown agent `zzz`",
    );
    assert_eq!(e.hint.as_deref(), Some("known agents: `a`, `b`"));
}

#[test]
fn handoff_errors() {
    let mut doc = base();
    doc["workflow"]["allow_handoff_agents"] = json!(true);
    doc["agents"]["a"]["handoffs"] = json!(["b", "c", "a"]);
    let errors = check(&doc);
    assert_eq!(
        paths(&errors),
        ["$.agents.a.handoffs[1]", "$.agents.a.handoffs[2]"]
    );
    assert!(errors[0].message.contains("unknown agent `c`"));
    assert!(errors[1].message.contains("hands off to itself"));

    let mut doc = base();
    doc["agents"]["a"]["handoffs"] = json!(["b"]);
    let e = only(check(&doc), "$.agents.a.handoffs", "handoffs are off");
    assert!(e.hint.is_some_and(|h| h.contains("allow_handoff_agents")));
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

#[test]
fn unknown_provider_and_model_ranges() {
    let mut doc = base();
    doc["providers"] = json!({"openai": {"type": "openai"}, "local": {"type": "openai_compatible", "base_url": "http://127.0.0.1:1/v1"}});
    doc["agents"]["a"]["model"] = json!({"provider": "locl", "name": "m", "temperature": 2.5, "top_p": 1.5, "max_output_tokens": 0});
    let errors = check(&doc);
    assert_eq!(
        paths(&errors),
        [
            "$.agents.a.model.max_output_tokens",
            "$.agents.a.model.provider",
            "$.agents.a.model.temperature",
            "$.agents.a.model.top_p",
        ]
    );
    assert_eq!(errors[1].message, "unknown provider `locl`");
    assert_eq!(errors[1].hint.as_deref(), Some("did you mean `local`?"));
    assert!(errors[2].message.contains("between 0 and 2, found 2.5"));
    assert!(errors[3].message.contains("between 0 and 1, found 1.5"));
}

#[test]
fn provider_errors() {
    let mut doc = base();
    doc["providers"] = json!({
        "offline": {"type": "scripted", "script": "no-such-script.json"},
        "empty": {"type": "scripted"},
        "local": {"type": "openai_compatible"},
        "bad": {"type": "openai_compatible", "base_url": "localhost:1", "retry": {"max_attempts": 0}},
        "openai": {"type": "openai", "api_key_env": "", "timeout_ms": 0}
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = parse_in(&doc, dir.path());
    let errors = spec.validate(None).expect_err("invalid").into_errors();
    assert_eq!(
        paths(&errors),
        [
            "$.providers.bad.base_url",
            "$.providers.bad.retry.max_attempts",
            "$.providers.empty",
            "$.providers.local",
            "$.providers.offline.script",
            "$.providers.openai.api_key_env",
            "$.providers.openai.timeout_ms",
        ],
        "{errors:#?}"
    );
    assert_eq!(errors[3].message, "missing field `base_url`");
    assert!(errors[4].message.contains("script file not found"));
    assert!(errors[4].message.contains("no-such-script.json"));
}

#[test]
fn plugin_reference_errors() {
    let mut doc = base();
    doc["agents"]["a"]["tools"] = json!([
        "calculater",
        "calculator#mul",
        "keyword_guard",
        "multi",
        "calculator",
        "pii_guardrail#pii",
        "#x",
        "calculator#"
    ]);
    doc["agents"]["a"]["input_guardrails"] = json!(["pii_guardrail"]);
    doc["agents"]["a"]["output_guardrails"] = json!(["calculator"]);
    doc["workflow"]["steps"][0]["guard"] = json!("multi");
    doc["workflow"]["steps"][0]["input_mapper"] = json!("template_mapper#template");
    let errors = check(&doc);
    let got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "$.agents.a.output_guardrails[0]",
                "plugin `calculator` offers no guardrail"
            ),
            ("$.agents.a.tools[0]", "unknown plugin `calculater`"),
            (
                "$.agents.a.tools[1]",
                "plugin `calculator` has no entry `mul`"
            ),
            (
                "$.agents.a.tools[2]",
                "plugin `keyword_guard` offers no tool"
            ),
            (
                "$.agents.a.tools[5]",
                "`pii_guardrail#pii` is a guardrail, not a tool"
            ),
            ("$.agents.a.tools[6]", "empty plugin name"),
            (
                "$.agents.a.tools[7]",
                "empty entry name after `calculator#`"
            ),
            (
                "$.workflow.steps[0].guard",
                "plugin `multi` offers several guards (a, b); name one"
            ),
        ],
        "{errors:#?}"
    );
    assert_eq!(
        errors[1].hint.as_deref(),
        Some("did you mean `calculator`?")
    );
    assert_eq!(
        errors[2].hint.as_deref(),
        Some("plugin `calculator` offers tool `add`, tool `sub`")
    );
    assert_eq!(errors[7].hint.as_deref(), Some("write `multi#a`"));

    // Without a catalog only the form of references is checked.
    let spec = parse(&doc);
    let errors = spec.validate(None).expect_err("invalid").into_errors();
    assert_eq!(
        paths(&errors),
        ["$.agents.a.tools[6]", "$.agents.a.tools[7]"]
    );
}

#[test]
fn output_schemas_must_compile() {
    let bad = json!({"type": "objekt"});
    let mut doc = staged();
    doc["agents"]["planner"]["output_schema"] = bad.clone();
    doc["workflow"]["stages"][1]["steps"][0]["output_schema"] = bad.clone();
    doc["workflow"]["output_schema"] = json!({"minimum": "zero"});
    let errors = check(&doc);
    assert_eq!(
        paths(&errors),
        [
            "$.agents.planner.output_schema",
            "$.workflow.output_schema",
            "$.workflow.stages[1].steps[0].output_schema",
        ]
    );
    assert!(
        errors
            .iter()
            .all(|e| e.message.starts_with("invalid JSON Schema"))
    );
}

#[test]
fn stage_and_step_structure_errors() {
    let mut doc = staged();
    let stages = &mut doc["workflow"]["stages"];
    stages[0]["reducer"] = json!("concat");
    stages[0]["on_branch_error"] = json!("continue");
    stages[0]["steps"]
        .as_array_mut()
        .expect("steps")
        .push(json!({"agent": "planner"}));
    stages[1]["steps"][1]["name"] = json!("p1");
    stages[1]["steps"][0]["max_turns"] = json!(0);
    stages
        .as_array_mut()
        .expect("stages")
        .push(json!({"name": "one", "steps": []}));
    let errors = check(&doc);
    let got: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.path.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "$.workflow.stages[0].on_branch_error",
                "`on_branch_error` only applies to a parallel stage"
            ),
            (
                "$.workflow.stages[0].reducer",
                "a reducer only runs in a parallel stage"
            ),
            (
                "$.workflow.stages[0].steps[1]",
                "duplicate step name `planner` in stage `one` (steps[0] has it too)"
            ),
            (
                "$.workflow.stages[1].steps[0].max_turns",
                "`max_turns` must be at least 1"
            ),
            (
                "$.workflow.stages[1].steps[1].name",
                "duplicate step name `p1` in stage `two` (steps[0] has it too)"
            ),
            ("$.workflow.stages[2].name", "duplicate stage name `one`"),
            ("$.workflow.stages[2].steps", "stage `one` has no steps"),
        ],
        "{errors:#?}"
    );
}

#[test]
fn workflow_shape_errors() {
    let mut doc = base();
    doc["workflow"]["stages"] = json!([{"name": "s", "steps": [{"agent": "a"}]}]);
    only(
        check(&doc),
        "$.workflow.steps",
        "either `steps` or `stages`",
    );

    let mut doc = base();
    doc["workflow"] = json!({"key": "k"});
    let e = only(check(&doc), "$.workflow", "the workflow has no steps");
    assert!(e.hint.is_some());

    let mut doc = base();
    doc["workflow"]["steps"][0]["max_turns"] = json!(0);
    only(check(&doc), "$.workflow.steps[0].max_turns", "at least 1");
}

#[test]
fn plugin_limit_errors() {
    let mut doc = base();
    doc["plugins"] = json!({
        "calculater": {"timeout_ms": 10},
        "calculator": {"memory_mib": 2048, "output_kib": 0}
    });
    let errors = check(&doc);
    assert_eq!(
        paths(&errors),
        [
            "$.plugins.calculater",
            "$.plugins.calculator.memory_mib",
            "$.plugins.calculator.output_kib",
        ]
    );
    assert_eq!(
        errors[0].hint.as_deref(),
        Some("did you mean `calculator`?")
    );
    assert!(errors[1].message.contains("at most 1024"));
    // Without a catalog, unknown plugin names cannot be told.
    let errors = parse(&doc)
        .validate(None)
        .expect_err("invalid")
        .into_errors();
    assert_eq!(errors.len(), 2);
}

#[test]
fn run_errors() {
    let mut doc = base();
    doc["run"] = json!({
        "session": {"id": "", "max_turns": 0},
        "callback": [
            {"type": "http"},
            {"type": "jsonl"},
            {"type": "http", "url": "ftp://x", "secret_env": ""},
            {"type": "stdout"}
        ]
    });
    let errors = check(&doc);
    assert_eq!(
        paths(&errors),
        [
            "$.run.callback[0]",
            "$.run.callback[1]",
            "$.run.callback[2].secret_env",
            "$.run.callback[2].url",
            "$.run.session.id",
            "$.run.session.max_turns",
        ],
        "{errors:#?}"
    );
    assert_eq!(errors[0].message, "missing field `url`");
    assert_eq!(errors[1].message, "missing field `path`");
}

#[test]
fn memory_errors() {
    let mut doc = base();
    doc["agents"]["a"]["memory"] = json!({"strategy": "trim", "max_turns": 0});
    doc["agents"]["b"]["memory"] = json!({"strategy": "summarize", "keep_last": 2, "max_summary_tokens": 0, "model": {"provider": "nope", "name": "m"}});
    let errors = check(&doc);
    assert_eq!(
        paths(&errors),
        [
            "$.agents.a.memory.max_turns",
            "$.agents.b.memory.max_summary_tokens",
            "$.agents.b.memory.model.provider",
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once_sorted_by_path() {
    let mut doc = staged();
    doc["workflow"]["stages"][1]["steps"][1]["agent"] = json!("nobody");
    doc["agents"]["planner"]["model"] = json!({"name": "m", "temperature": 9});
    doc["agents"]["writer"]["tools"] = json!(["nope"]);
    doc["run"] = json!({"callback": [{"type": "jsonl"}]});
    let errors = parse(&doc).validate(Some(&catalog())).expect_err("invalid");
    assert_eq!(
        paths(errors.errors()),
        [
            "$.agents.planner.model.temperature",
            "$.agents.writer.tools[0]",
            "$.run.callback[0]",
            "$.workflow.stages[1].steps[1].agent",
        ]
    );
    let text = errors.to_string();
    assert!(text.starts_with("error: $.agents.planner.model.temperature: "));
    assert!(text.contains(
        "\nerror: $.workflow.stages[1].steps[1].agent: unknown agent `nobody`\n  hint: "
    ));
}

#[test]
fn approval_is_for_tools_only() {
    let mut doc = staged();
    doc["agents"]["writer"]["tools"] = json!([{"plugin": "calculator#add", "approval": "always"}]);
    let spec = parse(&doc);
    assert_eq!(
        spec.agents["writer"].tools[0].approval,
        crate::spec::Approval::Always
    );
    spec.validate(Some(&catalog()))
        .expect("approval on a tool is fine");
    doc["agents"]["writer"]["input_guardrails"] =
        json!([{"plugin": "pii_guardrail", "approval": "always"}]);
    let errors = parse(&doc).validate(Some(&catalog())).expect_err("invalid");
    assert_eq!(
        paths(errors.errors()),
        ["$.agents.writer.input_guardrails[0].approval"]
    );
    doc["agents"]["writer"]["tools"] =
        json!([{"plugin": "calculator#add", "approval": "sometimes"}]);
    let errors = Spec::from_value(&doc, Path::new(".")).expect_err("bad value");
    assert!(errors.to_string().contains("tools[0]"), "{errors}");
}

// ---- JSON Schema -----------------------------------------------------------

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
