//! Test guest: `whoami`, a tool that returns the idempotency key the host
//! gives its call (WIT 0.1.1 `host.idempotency-key`). It logs the key at
//! warn level first and then busy-waits `ms` milliseconds, so a test can
//! read the key of a call that is killed before it is recorded.

use guest_sdk::{CallContext, Entry, Plugin, ToolDefinition, Value, export_plugin, json, log};

struct IdempotencyKey;

impl Plugin for IdempotencyKey {
    fn entries() -> Vec<Entry> {
        vec![Entry::tool("whoami", "returns this call's idempotency key")]
    }

    fn tool_definitions() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "whoami".into(),
            description: "Return this call's idempotency key.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"ms": {"type": "integer"}, "note": {"type": "string"}},
                "additionalProperties": false
            }),
        }]
    }

    fn invoke_tool(ctx: &CallContext, _name: &str, arguments: &Value) -> Result<Value, String> {
        let key = ctx.idempotency_key();
        log::warn(&format!(
            "idempotency key: {}",
            key.as_deref().unwrap_or("<none>")
        ));
        let ms = arguments.get("ms").and_then(Value::as_u64).unwrap_or(0);
        let start = std::time::Instant::now();
        while start.elapsed().as_millis() < u128::from(ms) {
            std::hint::spin_loop();
        }
        Ok(key.map_or(Value::Null, Value::String))
    }
}

export_plugin!(IdempotencyKey);
