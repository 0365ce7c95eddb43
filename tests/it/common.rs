//! Helpers shared by the plugin tests (`plugins`, `hostile`): one plugin
//! runtime and one registry of the example plugins per test process.

pub(crate) use e2e::within;
use host::plugin::{CallContext, LoadOptions, Registry, Runtime, RuntimeOptions, StepResult};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// One plugin runtime per test process, as in the real host.
pub(crate) fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeOptions {
            cache_dir: Some(e2e::test_cache_dir()),
            cache_key_file: Some(e2e::test_cache_key()),
            ..RuntimeOptions::default()
        })
        .expect("plugin runtime")
    })
    .clone()
}

/// The example plugins in `plugins/`, loaded once per test process.
pub(crate) async fn examples() -> &'static Registry {
    static REG: tokio::sync::OnceCell<Registry> = tokio::sync::OnceCell::const_new();
    REG.get_or_init(|| async {
        let registry = Registry::new(runtime());
        let report = registry
            .load_dir(&e2e::plugins_dir(), &LoadOptions::default())
            .await
            .expect("plugins directory");
        assert!(
            report.failed.is_empty(),
            "example plugins failed to load: {:#?}",
            report.failed
        );
        for name in EXAMPLES {
            assert!(
                registry.get(name).is_some(),
                "plugins/{name}.wasm is missing: run plugins/build.sh"
            );
        }
        registry
    })
    .await
}

/// Every example plugin `plugins/build.sh` builds, in every language.
pub(crate) const EXAMPLES: [&str; 14] = [
    "c_keywords",
    "c_word_count",
    "calculator",
    "concat",
    "go_keywords",
    "js_collect",
    "js_keywords",
    "keyword_guard",
    "lookup_facts",
    "pii_guardrail",
    "py_keywords",
    "py_regex_guard",
    "rs_keywords",
    "template_mapper",
];

pub(crate) fn ctx(config: Value) -> CallContext {
    CallContext {
        run_id: "01JTESTRUN".into(),
        workflow_key: "test".into(),
        stage: "stage".into(),
        step: 0,
        entry: String::new(),
        config,
        logical_time_ms: 1_700_000_000_000,
        idempotency_key: None,
    }
}

pub(crate) fn result(stage: &str, agent: &str, branch: Option<u32>, output: Value) -> StepResult {
    StepResult {
        stage_name: stage.into(),
        step_index: branch.unwrap_or(0),
        agent_key: agent.into(),
        parallel_group: branch.map(|_| format!("{stage}-group")),
        branch_index: branch,
        skipped: false,
        output,
        error: None,
    }
}
