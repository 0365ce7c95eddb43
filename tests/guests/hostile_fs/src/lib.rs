//! Test guest: reads /etc/passwd.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::input_mapper(
            "hostile_fs",
            "tries to read /etc/passwd",
        )]
    }
    fn map_input(_: &CallContext, _: &Value, _: &[StepResult]) -> Result<Value, String> {
        let text = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| format!("cannot read /etc/passwd: {e}"))?;
        Ok(Value::String(text))
    }
}

export_plugin!(G);
