//! Test guest: a reducer whose output says which build made it (v2), so a
//! hot-swap test can tell which build served each run.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin};

const BUILD: &str = "v2";

struct G;
impl Plugin for G {
    fn entries() -> Vec<Entry> {
        vec![Entry::reducer(
            "tagged",
            "joins the outputs and names its build",
        )]
    }
    fn reduce(_: &CallContext, outputs: &[StepResult], _: &[StepResult]) -> Result<Value, String> {
        let joined: Vec<String> = outputs.iter().map(|o| o.output.to_string()).collect();
        Ok(Value::String(format!("{BUILD}: {}", joined.join(" | "))))
    }
}

export_plugin!(G);
