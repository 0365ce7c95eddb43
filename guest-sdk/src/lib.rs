//! Write workflow-host plugins in Rust.
//!
//! A plugin is a type that implements [`Plugin`] plus one
//! [`export_plugin!`] line. You implement only the kinds you offer; every
//! other kind answers "not offered". Payloads are [`serde_json::Value`]s;
//! the SDK does the JSON text conversion at the boundary, and you never see
//! wit-bindgen's generated code.
//!
//! Build with `cargo build --target wasm32-wasip2 --release` (the output is
//! already a component) and drop the `.wasm` file into the plugins folder.
//!
//! # Example: a guard and a reducer in one component
//!
//! ```
//! use guest_sdk::{export_plugin, log, CallContext, Entry, Plugin, StepResult, Value};
//!
//! struct Words;
//!
//! impl Plugin for Words {
//!     fn entries() -> Vec<Entry> {
//!         vec![
//!             Entry::guard("long_enough", "runs the step when the input has at least `min` words"),
//!             Entry::reducer("word_count", "sums the word counts of the branch outputs"),
//!         ]
//!     }
//!
//!     fn guard(ctx: &CallContext, input: &Value, _prior: &[StepResult]) -> Result<bool, String> {
//!         let min = ctx.config.get("min").and_then(Value::as_u64).unwrap_or(3);
//!         let words = guest_sdk::text_of(input).split_whitespace().count() as u64;
//!         log::debug(&format!("{words} words, need {min}"));
//!         Ok(words >= min)
//!     }
//!
//!     fn reduce(_ctx: &CallContext, outputs: &[StepResult], _prior: &[StepResult]) -> Result<Value, String> {
//!         let total: usize = outputs
//!             .iter()
//!             .filter(|r| !r.skipped)
//!             .map(|r| guest_sdk::text_of(&r.output).split_whitespace().count())
//!             .sum();
//!         Ok(Value::from(total))
//!     }
//! }
//!
//! export_plugin!(Words);
//! # fn main() {}
//! ```
//!
//! The spec then refers to `words#long_enough` and `words#word_count`
//! (the plugin's name is its file stem).

use serde::de::DeserializeOwned;
pub use serde_json::{self, Value, json};

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit/plugin@0.1.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "guest_sdk::__bindings",
    });
}

use __bindings::exports::workflow::plugin as wit_exports;
use __bindings::workflow::plugin::types as wit;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Guard,
    InputMapper,
    Reducer,
    Tool,
    Guardrail,
}

/// One named entry the plugin offers; the spec refers to it as
/// `plugin#name`, or as `plugin` when it is the only entry of its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    pub description: String,
}

impl Entry {
    pub fn new(name: impl Into<String>, kind: Kind, description: impl Into<String>) -> Self {
        Entry {
            name: name.into(),
            kind,
            description: description.into(),
        }
    }
    pub fn guard(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, Kind::Guard, description)
    }
    pub fn input_mapper(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, Kind::InputMapper, description)
    }
    pub fn reducer(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, Kind::Reducer, description)
    }
    pub fn tool(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, Kind::Tool, description)
    }
    pub fn guardrail(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(name, Kind::Guardrail, description)
    }
}

/// Where and why the host is calling.
#[derive(Debug, Clone, PartialEq)]
pub struct CallContext {
    pub run_id: String,
    pub workflow_key: String,
    pub stage: String,
    pub step: u32,
    /// The entry being called (several entries may share one export).
    pub entry: String,
    /// The per-use `config` object from the spec (`{}` when absent).
    pub config: Value,
}

impl CallContext {
    /// During a tool call of a run: a key naming this one call
    /// (`<run id>/<journal key>`), the same when the host makes the call
    /// again after a crash and `host resume`, different for every other
    /// call. Tools are at-least-once; pass this to whatever you change (a
    /// payment API's idempotency key, a unique column) so a repeated call
    /// does its work once. `None` outside a tool call of a run.
    ///
    /// Needs a host of WIT `workflow:plugin@0.1.1` or later.
    pub fn idempotency_key(&self) -> Option<String> {
        __bindings::workflow::plugin::host::idempotency_key()
    }

    /// `config[key]` as a list of strings: empty when absent, an error
    /// naming the entry and key when it is not an array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.config.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("{}: config.{key} must be an array of strings", self.entry)),
            Some(_) => Err(format!(
                "{}: config.{key} must be an array of strings",
                self.entry
            )),
        }
    }

    /// The config deserialized into your own type, with a clear error.
    pub fn config_as<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_value(self.config.clone())
            .map_err(|e| format!("{}: invalid config: {e}", self.entry))
    }
}

/// The outcome of a step that already ran.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub stage_name: String,
    pub step_index: u32,
    pub agent_key: String,
    pub parallel_group: Option<String>,
    pub branch_index: Option<u32>,
    pub skipped: bool,
    pub output: Value,
    /// Why the step failed (failed branches of a stage that continues).
    pub error: Option<String>,
}

/// What a guardrail is checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The agent's input.
    Input,
    /// The agent's final output.
    Output,
    /// `{"tool": name, "arguments": {...}}` before a tool runs.
    ToolInput,
    /// `{"tool": name, "arguments": {...}, "output": ...}` after it ran.
    ToolOutput,
}

/// A guardrail's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub tripwire: bool,
    pub message: String,
    pub info: Value,
}

impl Verdict {
    /// Let it through.
    pub fn pass() -> Self {
        Verdict {
            tripwire: false,
            message: String::new(),
            info: Value::Null,
        }
    }
    /// Stop the step with `message`; `info` says what was found.
    pub fn trip(message: impl Into<String>, info: Value) -> Self {
        Verdict {
            tripwire: true,
            message: message.into(),
            info,
        }
    }
}

/// How a tool is presented to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// A workflow plugin. Implement `entries` and the methods of the kinds you
/// offer; the defaults answer that the kind is not offered.
pub trait Plugin {
    /// Every entry this plugin offers (the `describe` export).
    fn entries() -> Vec<Entry>;

    /// Guard: `Ok(true)` runs the step, `Ok(false)` skips it.
    fn guard(ctx: &CallContext, input: &Value, prior: &[StepResult]) -> Result<bool, String> {
        let _ = (input, prior);
        Err(not_offered(ctx, "guard"))
    }

    /// Input mapper: the input the step's agent receives.
    fn map_input(ctx: &CallContext, input: &Value, prior: &[StepResult]) -> Result<Value, String> {
        let _ = (input, prior);
        Err(not_offered(ctx, "input_mapper"))
    }

    /// Reducer: merges a parallel stage's branch results (in branch order).
    fn reduce(
        ctx: &CallContext,
        outputs: &[StepResult],
        prior: &[StepResult],
    ) -> Result<Value, String> {
        let _ = (outputs, prior);
        Err(not_offered(ctx, "reducer"))
    }

    /// Tools: the definition of every tool entry.
    fn tool_definitions() -> Vec<ToolDefinition> {
        Vec::new()
    }

    /// Tools: runs tool `name`; the result (or error text) goes to the model.
    fn invoke_tool(ctx: &CallContext, name: &str, arguments: &Value) -> Result<Value, String> {
        let _ = arguments;
        Err(format!("unknown tool `{name}` (entry `{}`)", ctx.entry))
    }

    /// Guardrail: checks `payload` for `phase`.
    fn guardrail(ctx: &CallContext, phase: Phase, payload: &Value) -> Result<Verdict, String> {
        let _ = (phase, payload);
        Err(not_offered(ctx, "guardrail"))
    }
}

fn not_offered(ctx: &CallContext, kind: &str) -> String {
    format!("this plugin offers no {kind} (entry `{}`)", ctx.entry)
}

/// The text of a JSON value: a string as is, anything else as compact JSON.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Structured logging into the host's `tracing` output, under the plugin's
/// name. `println!`/`eprintln!` also work (captured, capped, logged).
pub mod log {
    use super::__bindings::workflow::plugin::host;
    use super::wit::Level;
    use serde_json::Value;

    /// A record with extra fields (a JSON object).
    pub fn record(level: Level, message: &str, fields: &Value) {
        host::log(level, message, &fields.to_string());
    }
    pub fn trace(message: &str) {
        host::log(Level::Trace, message, "");
    }
    pub fn debug(message: &str) {
        host::log(Level::Debug, message, "");
    }
    pub fn info(message: &str) {
        host::log(Level::Info, message, "");
    }
    pub fn warn(message: &str) {
        host::log(Level::Warn, message, "");
    }
    pub fn error(message: &str) {
        host::log(Level::Error, message, "");
    }
    pub use super::wit::Level as LogLevel;
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as this component's
/// plugin. Use it once per crate.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        type __GuestSdkAdapter = $crate::__rt::Adapter<$plugin>;
        $crate::__bindings::__export_plugin_world!(__GuestSdkAdapter with_types_in $crate::__bindings);
    };
}

#[doc(hidden)]
pub mod __rt {
    use super::*;
    use std::marker::PhantomData;

    /// Bridges a [`Plugin`] to the generated WIT traits.
    pub struct Adapter<T>(PhantomData<T>);

    fn parse(what: &str, text: &str) -> Result<Value, String> {
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).map_err(|e| format!("host sent invalid JSON for {what}: {e}"))
    }

    fn ctx(c: wit::CallContext) -> Result<CallContext, String> {
        let config = match parse("config", &c.config)? {
            Value::Null => Value::Object(Default::default()),
            v => v,
        };
        Ok(CallContext {
            run_id: c.run_id,
            workflow_key: c.workflow_key,
            stage: c.stage,
            step: c.step,
            entry: c.entry,
            config,
        })
    }

    fn results(list: Vec<wit::StepResult>) -> Result<Vec<StepResult>, String> {
        list.into_iter()
            .map(|r| {
                Ok(StepResult {
                    output: parse("a step output", &r.output)?,
                    stage_name: r.stage_name,
                    step_index: r.step_index,
                    agent_key: r.agent_key,
                    parallel_group: r.parallel_group,
                    branch_index: r.branch_index,
                    skipped: r.skipped,
                    error: r.error,
                })
            })
            .collect()
    }

    impl<T: Plugin> wit_exports::describe::Guest for Adapter<T> {
        fn describe() -> Vec<wit::Entry> {
            T::entries()
                .into_iter()
                .map(|e| wit::Entry {
                    name: e.name,
                    kind: match e.kind {
                        Kind::Guard => wit::Kind::Guard,
                        Kind::InputMapper => wit::Kind::InputMapper,
                        Kind::Reducer => wit::Kind::Reducer,
                        Kind::Tool => wit::Kind::Tool,
                        Kind::Guardrail => wit::Kind::Guardrail,
                    },
                    description: e.description,
                })
                .collect()
        }
    }

    impl<T: Plugin> wit_exports::guard::Guest for Adapter<T> {
        fn check(
            c: wit::CallContext,
            input: String,
            prior: Vec<wit::StepResult>,
        ) -> Result<bool, String> {
            let c = ctx(c)?;
            T::guard(&c, &parse("input", &input)?, &results(prior)?)
        }
    }

    impl<T: Plugin> wit_exports::input_mapper::Guest for Adapter<T> {
        fn map_input(
            c: wit::CallContext,
            input: String,
            prior: Vec<wit::StepResult>,
        ) -> Result<String, String> {
            let c = ctx(c)?;
            T::map_input(&c, &parse("input", &input)?, &results(prior)?).map(|v| v.to_string())
        }
    }

    impl<T: Plugin> wit_exports::reducer::Guest for Adapter<T> {
        fn reduce(
            c: wit::CallContext,
            outputs: Vec<wit::StepResult>,
            prior: Vec<wit::StepResult>,
        ) -> Result<String, String> {
            let c = ctx(c)?;
            T::reduce(&c, &results(outputs)?, &results(prior)?).map(|v| v.to_string())
        }
    }

    impl<T: Plugin> wit_exports::tool::Guest for Adapter<T> {
        fn definitions() -> Vec<wit_exports::tool::ToolDefinition> {
            T::tool_definitions()
                .into_iter()
                .map(|d| wit_exports::tool::ToolDefinition {
                    name: d.name,
                    description: d.description,
                    parameters: d.parameters.to_string(),
                })
                .collect()
        }

        fn invoke(c: wit::CallContext, name: String, arguments: String) -> Result<String, String> {
            let c = ctx(c)?;
            T::invoke_tool(&c, &name, &parse("arguments", &arguments)?).map(|v| v.to_string())
        }
    }

    impl<T: Plugin> wit_exports::guardrail::Guest for Adapter<T> {
        fn check(
            c: wit::CallContext,
            phase: wit_exports::guardrail::Phase,
            payload: String,
        ) -> Result<wit_exports::guardrail::Verdict, String> {
            use wit_exports::guardrail::Phase as P;
            let c = ctx(c)?;
            let phase = match phase {
                P::Input => Phase::Input,
                P::Output => Phase::Output,
                P::ToolInput => Phase::ToolInput,
                P::ToolOutput => Phase::ToolOutput,
            };
            let v = T::guardrail(&c, phase, &parse("payload", &payload)?)?;
            Ok(wit_exports::guardrail::Verdict {
                tripwire: v.tripwire,
                message: v.message,
                info: v.info.to_string(),
            })
        }
    }
}
