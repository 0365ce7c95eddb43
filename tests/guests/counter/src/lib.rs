//! Test guest: increments a global counter.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

use std::sync::atomic::{AtomicU32, Ordering};
static CALLS: AtomicU32 = AtomicU32::new(0);
struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::input_mapper(
            "counter",
            "returns how often it was called in this instance",
        )]
    }
    fn map_input(_: &CallContext, _: &Value, _: &[StepResult]) -> Result<Value, String> {
        Ok(Value::from(CALLS.fetch_add(1, Ordering::SeqCst) + 1))
    }
}

export_plugin!(G);
