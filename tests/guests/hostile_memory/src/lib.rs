//! Test guest: a memory bomb: allocates and touches 1 GiB.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::input_mapper("hostile_memory", "allocates 1 GiB")]
    }
    fn map_input(_: &CallContext, _: &Value, _: &[StepResult]) -> Result<Value, String> {
        let mut chunks = Vec::new();
        for _ in 0..1024 {
            let mut v = vec![0u8; 1 << 20];
            v[4096] = 1;
            chunks.push(std::hint::black_box(v));
        }
        Ok(Value::from(chunks.len()))
    }
}

export_plugin!(G);
