//! Test guest: a panic.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::guard("hostile_panic", "panics")]
    }
    fn guard(_: &CallContext, input: &Value, _: &[StepResult]) -> Result<bool, String> {
        panic!("hostile_panic: deliberate panic on input {input}");
    }
}

export_plugin!(G);
