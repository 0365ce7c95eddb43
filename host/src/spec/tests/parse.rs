//! Parsing and normalization of native specs.

use super::*;

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
            target: None,
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
            target: None,
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
