//! Validation: every problem, at its JSON path, with a hint where one helps.

use super::*;

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

#[test]
fn mcp_servers_and_references_are_checked_at_their_paths() {
    let mut doc = base();
    doc["mcp_servers"] = json!({
        "ok": {"command": "node", "args": ["s.js"], "env": ["TOKEN_A"]},
        "web": {"url": "http://127.0.0.1:3001/mcp", "headers_env": {"Authorization": "TOK"}},
        "mixed": {"url": "https://x.example/mcp", "args": ["a"]},
        "badenv": {"command": "node", "env": ["1BAD", "A-B"], "headers": {"X": "y"}},
        "badurl": {"url": "ftp://x/mcp", "timeout_ms": 0}
    });
    doc["agents"]["a"]["tools"] = json!([
        "mcp:ok", "mcp:web#echo", "mcp:nope", {"plugin": "mcp:ok#", "approval": "always"}
    ]);
    let errors = check(&doc);
    assert_eq!(
        paths(&errors),
        [
            "$.agents.a.tools[2]",
            "$.agents.a.tools[3]",
            "$.mcp_servers.badenv.env[0]",
            "$.mcp_servers.badenv.env[1]",
            "$.mcp_servers.badenv.headers",
            "$.mcp_servers.badurl.timeout_ms",
            "$.mcp_servers.badurl.url",
            "$.mcp_servers.mixed",
        ],
        "{errors:#?}"
    );
    assert!(errors[0].message.contains("unknown MCP server `nope`"));
    assert!(errors[1].message.contains("empty tool name"));
    // `mcp:` references are not plugins: no "unknown plugin" error.
    assert!(errors.iter().all(|e| !e.message.contains("unknown plugin")));
}
