//! Test guest: returns 100 MB of output.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::input_mapper("hostile_output", "returns 100 MB")]
    }
    fn map_input(_: &CallContext, _: &Value, _: &[StepResult]) -> Result<Value, String> {
        Ok(Value::String("x".repeat(100 << 20)))
    }
}

export_plugin!(G);
