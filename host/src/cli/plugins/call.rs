//! `host plugins check FILE --call CALL.json`: one call into a plugin, made
//! through the host like a run makes it, and its answer compared with the
//! one the file expects (a scaffold's `test-input.json`).
//!
//! ```json
//! {"kind": "guard", "entry": "name", "config": {}, "input": "hello", "expect": true}
//! ```
//! `input` for guards and input mappers; `outputs` (`[{"agent", "output",
//! "skipped"?, "error"?}]`) for reducers; `arguments` for tools; `phase` and
//! `payload` for guardrails. `entry` defaults to the plugin's only entry of
//! that kind. For a guardrail, `expect` lists the verdict fields to compare.

use host::plugin::{CallContext, Kind, Phase, Plugin, Runtime, StepResult};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub(crate) struct Call {
    kind: String,
    #[serde(default)]
    entry: Option<String>,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    outputs: Vec<Branch>,
    #[serde(default)]
    arguments: Value,
    #[serde(default)]
    phase: Option<Phase>,
    #[serde(default)]
    payload: Value,
    expect: Value,
}

#[derive(Debug, Deserialize)]
struct Branch {
    agent: String,
    #[serde(default)]
    output: Value,
    #[serde(default)]
    skipped: bool,
    #[serde(default)]
    error: Option<String>,
}

/// The outcome of a call: what came back, and whether it was expected.
pub(crate) struct Answer {
    pub got: Value,
    pub matches: bool,
}

fn kind_of(name: &str) -> Result<Kind, String> {
    Ok(match name.replace('-', "_").as_str() {
        "guard" => Kind::Guard,
        "input_mapper" => Kind::InputMapper,
        "reducer" => Kind::Reducer,
        "tool" => Kind::Tool,
        "guardrail" => Kind::Guardrail,
        other => return Err(format!("unknown kind `{other}`")),
    })
}

pub(crate) async fn call(rt: &Runtime, plugin: &Plugin, call: Call) -> Result<Answer, String> {
    let kind = kind_of(&call.kind)?;
    let entry = match call.entry {
        Some(entry) => entry,
        None => {
            let mut of_kind = plugin.entries().iter().filter(|e| e.kind == kind);
            match (of_kind.next(), of_kind.next()) {
                (Some(e), None) => e.name.clone(),
                _ => {
                    return Err(format!(
                        "name the `entry`: the plugin has no single {} entry",
                        call.kind
                    ));
                }
            }
        }
    };
    let ctx = CallContext {
        run_id: String::new(),
        workflow_key: "check".into(),
        stage: "test".into(),
        step: 0,
        entry: entry.clone(),
        config: if call.config.is_null() {
            serde_json::json!({})
        } else {
            call.config
        },
        logical_time_ms: 0,
        idempotency_key: None,
        http: None,
        limits: None,
    };
    let failed = |e: host::plugin::CallError| e.to_string();
    let got = match kind {
        Kind::Guard => Value::Bool(
            plugin
                .guard(rt, &ctx, &call.input, &[])
                .await
                .map_err(failed)?
                .value,
        ),
        Kind::InputMapper => {
            plugin
                .map_input(rt, &ctx, &call.input, &[])
                .await
                .map_err(failed)?
                .value
        }
        Kind::Reducer => {
            let outputs: Vec<StepResult> = call
                .outputs
                .into_iter()
                .enumerate()
                .map(|(i, b)| StepResult {
                    stage_name: "test".into(),
                    step_index: i as u32,
                    agent_key: b.agent,
                    parallel_group: Some("test".into()),
                    branch_index: Some(i as u32),
                    skipped: b.skipped,
                    output: b.output,
                    error: b.error,
                })
                .collect();
            plugin
                .reduce(rt, &ctx, &outputs, &[])
                .await
                .map_err(failed)?
                .value
        }
        Kind::Tool => {
            plugin
                .invoke_tool(rt, &ctx, &call.arguments)
                .await
                .map_err(failed)?
                .value
        }
        Kind::Guardrail => {
            let phase = call.phase.unwrap_or(Phase::Input);
            let v = plugin
                .check_guardrail(rt, &ctx, phase, &call.payload)
                .await
                .map_err(failed)?
                .value;
            serde_json::json!({"tripwire": v.tripwire, "message": v.message, "info": v.info})
        }
    };
    let matches = match (&call.expect, &got) {
        // A guardrail's expectation names only the fields it cares about.
        (Value::Object(want), Value::Object(have)) if kind == Kind::Guardrail => {
            want.iter().all(|(k, v)| have.get(k) == Some(v))
        }
        (want, have) => want == have,
    };
    Ok(Answer { got, matches })
}
