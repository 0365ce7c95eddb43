//! Test guest: an infinite loop.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::guard("hostile_loop", "never returns")]
    }
    fn guard(_: &CallContext, _: &Value, _: &[StepResult]) -> Result<bool, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export_plugin!(G);
