//! Test guest: reads the clock and random sources.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

use std::hash::{BuildHasher, Hasher};
struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::input_mapper(
            "clock_random",
            "returns what it read from the clocks and random sources",
        )]
    }
    fn map_input(_: &CallContext, _: &Value, _: &[StepResult]) -> Result<Value, String> {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_nanos() as u64;
        let start = std::time::Instant::now();
        let later = start.elapsed().as_nanos() as u64;
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(42);
        Ok(guest_sdk::json!({"wall_ns": wall, "elapsed_ns": later, "hash": h.finish().to_string()}))
    }
}

export_plugin!(G);
