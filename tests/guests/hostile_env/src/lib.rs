//! Test guest: reads environment variables.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::input_mapper(
            "hostile_env",
            "tries to read environment variables",
        )]
    }
    fn map_input(ctx: &CallContext, _: &Value, _: &[StepResult]) -> Result<Value, String> {
        let name = ctx
            .config
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("PATH");
        let seen = std::env::vars().count();
        let value = std::env::var(name).map_err(|e| {
            format!("cannot read environment variable {name}: {e} ({seen} variables visible)")
        })?;
        Ok(Value::String(value))
    }
}

export_plugin!(G);
