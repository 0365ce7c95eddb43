//! Test guest: unbounded recursion.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

struct G;
#[allow(unconditional_recursion, reason = "the point of this guest")]
fn dive(n: u64, pad: [u64; 16]) -> u64 {
    let pad = std::hint::black_box(pad);
    dive(n + 1, pad) + pad[(n % 16) as usize]
}
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::input_mapper("hostile_recursion", "recurses forever")]
    }
    fn map_input(_: &CallContext, _: &Value, _: &[StepResult]) -> Result<Value, String> {
        Ok(Value::from(dive(0, [1; 16])))
    }
}

export_plugin!(G);
