//! `lookup_facts`: the research tool of the peer benchmark workflow
//! (`../shared/peer/workflow_bench.py`), with the same behaviour: returns
//! `facts[<limit % 5>] about <first 24 characters of query>`. Pure.

use guest_sdk::{CallContext, Entry, Plugin, ToolDefinition, Value, export_plugin, json};

struct LookupFacts;

impl Plugin for LookupFacts {
    fn entries() -> Vec<Entry> {
        vec![Entry::tool("lookup_facts", "looks up facts about a topic")]
    }

    fn tool_definitions() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "lookup_facts".into(),
            description: "Look up facts about a topic.".into(),
            parameters: json!({
                "type": "object",
                "title": "lookup_facts_args",
                "properties": {
                    "query": {"type": "string", "title": "Query", "description": "what to look up."},
                    "limit": {"type": "integer", "title": "Limit", "description": "maximum number of facts."}
                },
                "required": ["query", "limit"],
                "additionalProperties": false
            }),
        }]
    }

    fn invoke_tool(_ctx: &CallContext, name: &str, arguments: &Value) -> Result<Value, String> {
        if name != "lookup_facts" {
            return Err(format!("lookup_facts has no tool `{name}`"));
        }
        let query = arguments
            .get("query")
            .and_then(Value::as_str)
            .ok_or("`query` must be a string")?;
        let limit = arguments
            .get("limit")
            .and_then(Value::as_i64)
            .ok_or("`limit` must be an integer")?;
        let head: String = query.chars().take(24).collect();
        Ok(Value::String(format!(
            "facts[{}] about {head}",
            limit.rem_euclid(5)
        )))
    }
}

export_plugin!(LookupFacts);
