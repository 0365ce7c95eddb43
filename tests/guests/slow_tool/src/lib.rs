//! Test guest: `slow_echo`, a tool that takes `ms` milliseconds of wall time
//! (busy-waiting on the real clock, which tools get) and then returns a
//! deterministic answer. Lets tests interrupt a run in the middle of a
//! tool call.

use guest_sdk::{CallContext, Entry, Plugin, ToolDefinition, Value, export_plugin, json};

struct SlowTool;

impl Plugin for SlowTool {
    fn entries() -> Vec<Entry> {
        vec![Entry::tool("slow_echo", "echoes its text after a delay")]
    }

    fn tool_definitions() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "slow_echo".into(),
            description: "Echo a text, slowly.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "ms": {"type": "integer"}
                },
                "required": ["text", "ms"],
                "additionalProperties": false
            }),
        }]
    }

    fn invoke_tool(_ctx: &CallContext, _name: &str, arguments: &Value) -> Result<Value, String> {
        let text = arguments.get("text").and_then(Value::as_str).unwrap_or("");
        let ms = arguments
            .get("ms")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(900);
        let start = std::time::Instant::now();
        while start.elapsed().as_millis() < u128::from(ms) {
            std::hint::spin_loop();
        }
        Ok(Value::String(format!("echo: {text}")))
    }
}

export_plugin!(SlowTool);
