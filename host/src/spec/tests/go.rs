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
                format: EventFormat::Go,
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
    doc["workflow"]["agents"][0]["output_type"] = json!({"name": "nope"});
    let errors = shape_errors(&doc);
    assert_eq!(
        paths(&errors),
        [
            "$.workflow.agents[0].handoff[0]",
            "$.workflow.agents[0].output_type.name",
            "$.workflow.agents[1].name"
        ],
        "{errors:#?}"
    );
    // The old shape's names are unknown fields now.
    let mut doc = go_example();
    doc["session"]["id"] = json!("s");
    doc["workflow"]["agents"][0]["handoffs"] = json!([]);
    let errors = shape_errors(&doc);
    assert_eq!(
        paths(&errors),
        ["$.session.id", "$.workflow.agents[0].handoffs"],
        "{errors:#?}"
    );
}

#[test]
fn go_validation_errors_use_go_paths() {
    let mut doc = go_example();
    doc["workflow"]["agents"][0]["tools"] = json!([{"type": "plugin", "name": "calculater"}]);
    doc["workflow"]["agents"][1]["output_type"]["schema"] = json!({"type": "objekt"});
    doc["workflow"]["agents"][1]["model"]["temperature"] = json!(3);
    doc["session"]["max_turns"] = json!(0);
    let spec = parse(&doc);
    assert_eq!(
        spec.workflow.stages[0].steps[0].max_turns, None,
        "0 = default"
    );
    let errors = spec
        .validate(Some(&catalog()))
        .expect_err("invalid")
        .into_errors();
    assert_eq!(
        paths(&errors),
        [
            "$.workflow.agents[0].tools[0]",
            "$.workflow.agents[1].model.temperature",
            "$.workflow.agents[1].output_type.schema",
        ],
        "{errors:#?}"
    );
    assert_eq!(
        errors[0].hint.as_deref(),
        Some("did you mean `calculator`?")
    );
}

#[test]
fn a_plugin_tool_keeps_its_go_index_among_hosted_tools() {
    let mut doc = go_example();
    doc["workflow"]["agents"][0]["tools"] = json!([
        {"type": "web_search"},
        {"type": "plugin", "name": "calculater"},
        {"type": "code_interpreter"}
    ]);
    let spec = parse(&doc);
    assert_eq!(spec.agents["assistant"].hosted_tools.len(), 2);
    let errors = spec
        .validate(Some(&catalog()))
        .expect_err("invalid")
        .into_errors();
    assert_eq!(paths(&errors), ["$.workflow.agents[0].tools[1]"]);
}

#[test]
fn every_go_field_lands_where_the_table_says() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/go/valid/every_field.json"),
    )
    .expect("corpus");
    let spec = Spec::from_json_str(&text, Path::new(".")).unwrap_or_else(|e| panic!("{e}"));
    let session = spec.run.session.as_ref().expect("session");
    assert_eq!(session.id, "corpus-every-field");
    assert_eq!(session.user_id.as_deref(), Some("user-1"));
    assert_eq!(session.account_id.as_deref(), Some("acct-1"));
    assert_eq!(session.history_size, Some(5));
    assert_eq!(session.credentials, None);
    assert_eq!(spec.workflow.stages[0].steps[0].max_turns, Some(6));
    assert_eq!(spec.workflow.stages[0].steps[0].agent, "triage");
    assert_eq!(spec.workflow.key, "every_field");
    assert_eq!(spec.run.metadata["requested_by"], "corpus");
    assert_eq!(
        spec.run.callback,
        [Callback::StdoutVerbose {
            format: EventFormat::Go
        }]
    );
    let triage = &spec.agents["triage"];
    assert_eq!(triage.display_name.as_deref(), Some("Triage Desk"));
    assert_eq!(triage.model.name, "gpt-4.1-mini");
    assert_eq!(triage.model.temperature, Some(0.2));
    assert_eq!(triage.model.top_p, Some(0.9));
    assert_eq!(triage.model.max_output_tokens, Some(400));
    assert_eq!(triage.model.reasoning_effort, Some(ReasoningEffort::Low));
    assert_eq!(triage.model.extra_headers["X-Team"], "a");
    assert_eq!(triage.handoffs, ["writer"]);
    assert_eq!(
        triage.handoff_description.as_deref(),
        Some("Routes requests")
    );
    assert_eq!(triage.tools, [PluginRef::parse("calculator")]);
    let mut targeted = PluginRef::parse("math_homework_input");
    targeted.target = Some("query".into());
    assert_eq!(
        triage.input_guardrails,
        [targeted, PluginRef::parse("basic_profanity_input")]
    );
    // Stored prompt, request settings and an agent offered as a tool.
    assert_eq!(
        triage.prompt,
        Some(crate::spec::StoredPrompt {
            id: "pmpt_triage".into(),
            version: None
        })
    );
    assert_eq!(
        triage.model.reasoning_summary,
        Some(crate::spec::ReasoningSummary::Auto)
    );
    assert_eq!(triage.model.verbosity, Some(crate::spec::Verbosity::Low));
    assert_eq!(triage.model.metadata["team"], "a");
    assert_eq!(triage.model.extra_query["api-version"], "2025-01-01");
    assert_eq!(
        triage.model.tool_choice,
        Some(crate::spec::ToolChoice::Auto)
    );
    assert_eq!(
        triage.agent_tools,
        [crate::spec::AgentTool {
            agent: "json_helper".into(),
            tool_name: Some("ask_json_helper".into()),
            description: Some("Ask for facts as a JSON object.".into()),
        }]
    );
    assert_eq!(triage.annotations["reviewed"], true);
    let writer = &spec.agents["writer"];
    assert_eq!(writer.output_guardrails[1].target.as_deref(), Some("title"));
    assert_eq!(
        writer.output_guardrails[1].config,
        json!({"pattern": "\\bSECRET-\\d+\\b"})
    );
    assert_eq!(
        writer
            .output_schema
            .as_ref()
            .and_then(|s| s.get("required")),
        Some(&json!(["title"]))
    );
    let types: Vec<&str> = writer
        .hosted_tools
        .iter()
        .map(HostedTool::type_name)
        .collect();
    assert_eq!(
        types,
        [
            "web_search",
            "file_search",
            "code_interpreter",
            "image_generation",
            "mcp",
            "mcp",
            "mcp"
        ]
    );
    match &writer.hosted_tools[4..] {
        [
            HostedTool::Mcp {
                server_label: wiki,
                allowed_tools: Some(wiki_tools),
                ..
            },
            HostedTool::Mcp {
                server_label,
                server_url,
                require_approval: McpApproval::Always,
                headers,
                allowed_tools: Some(allowed),
            },
            HostedTool::Mcp {
                server_label: unlabelled,
                require_approval: McpApproval::Never,
                ..
            },
        ] => {
            assert_eq!(wiki, "wiki");
            assert_eq!(wiki_tools, &["lookup"]);
            assert_eq!(server_label, "docs");
            assert_eq!(server_url, "https://mcp.example.com/sse");
            assert_eq!(headers["Authorization"].expose(), "Bearer corpus-mcp-token");
            assert_eq!(allowed, &["search"]);
            assert_eq!(unlabelled, "every_field_writer");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        writer.hosted_tools[3],
        HostedTool::ImageGeneration {
            options: BTreeMap::from([("quality".to_string(), json!("low"))])
        }
    );
    assert_eq!(
        spec.agents["json_helper"].model.name,
        crate::spec::GO_DEFAULT_MODEL
    );
    assert_eq!(
        spec.agents["json_helper"].output_schema,
        Some(json!({"type": "object"}))
    );
    assert!(!format!("{spec:?}").contains("corpus-mcp-token"));
}
