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
pub(crate) const EXAMPLES: [&str; 16] = [
    "c_keywords",
    "c_word_count",
    "calculator",
    "concat",
    "go_keywords",
    "js_collect",
    "js_keywords",
    "js_weather",
    "keyword_guard",
    "lookup_facts",
    "pii_guardrail",
    "py_keywords",
    "py_regex_guard",
    "rs_keywords",
    "template_mapper",
    "weather",
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
        http: None,
        limits: None,
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

/// The stand-in HTTP API an example brings (`api.py`, on the port its spec
/// grants), running until dropped.
pub(crate) struct ExampleApi {
    child: std::process::Child,
    _port: std::sync::MutexGuard<'static, ()>,
}

/// The token `web_tools`' stand-in API wants and its plugin never holds.
const EXAMPLE_API_TOKEN: &str = "example-weather-token";

/// One stand-in API at a time: they all listen on the port their spec grants.
static EXAMPLE_API_PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl ExampleApi {
    /// The token, in the environment of the API and of `host`.
    pub(crate) const ENV: (&str, &str) = ("WEATHER_API_TOKEN", EXAMPLE_API_TOKEN);

    /// The operator's pairing of the token with the API, as `run.sh` gives.
    pub(crate) fn args(&self) -> [&'static str; 2] {
        ["--credential", "WEATHER_API_TOKEN=http://127.0.0.1:8765"]
    }

    pub(crate) fn start(name: &str) -> Option<ExampleApi> {
        let script = e2e::repo_root().join("examples").join(name).join("api.py");
        if !script.is_file() {
            return None;
        }
        let port = EXAMPLE_API_PORT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let child = std::process::Command::new("python3")
            .arg(&script)
            .arg("8765")
            .env("WEATHER_API_TOKEN", EXAMPLE_API_TOKEN)
            .spawn()
            .expect("start the example's api.py");
        let api = ExampleApi { child, _port: port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", 8765)).is_ok() {
                return Some(api);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("{} did not listen on 127.0.0.1:8765", script.display());
    }
}

impl Drop for ExampleApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
