//! MCP servers' tools in the turn loop: offered to the model from each
//! server's current list, called through the process's [`McpHub`] with
//! the arguments checked and the tool guardrails around the call.

use super::*;
use crate::events::Scope;
use crate::mcp::McpTool;
use crate::plugin::Phase;

/// The MCP tool the model called `name`, if one of `agent`'s references
/// offers it, and whether its calls need approval.
pub(super) fn find(workflow: &Workflow, agent: &Agent, name: &str) -> Option<(McpTool, bool)> {
    let hub = workflow.mcp.as_ref()?;
    agent.mcp_tools.iter().find_map(|r| {
        let tools = hub.tools(&r.server).ok()?;
        tools
            .iter()
            .find(|t| t.model_name == name && r.offers(&t.server, &t.name))
            .map(|t| (t.clone(), r.approval))
    })
}

/// The MCP tools offered to the model this turn.
pub(super) fn specs(workflow: &Workflow, agent: &Agent) -> Vec<ToolSpec> {
    let Some(hub) = workflow.mcp.as_ref() else {
        return Vec::new();
    };
    let mut specs = Vec::new();
    for r in &agent.mcp_tools {
        let Ok(tools) = hub.tools(&r.server) else {
            continue;
        };
        for t in tools.iter().filter(|t| r.offers(&t.server, &t.name)) {
            if specs.iter().any(|s: &ToolSpec| s.name == t.model_name) {
                continue; // offered twice (`mcp:s` and `mcp:s#t`)
            }
            specs.push(ToolSpec {
                name: t.model_name.clone(),
                description: t.description.clone(),
                parameters: t.parameters.clone(),
                // MCP schemas rarely meet strict mode's rules.
                strict: false,
            });
        }
    }
    specs
}

/// What an MCP call gave the model: its text, whether it is an error, and
/// the structured result to journal.
pub(super) struct McpCalled {
    pub output: String,
    pub error: bool,
    pub structured: Option<Value>,
}

/// Calls `tool` with the model's `arguments`. Bad arguments, a tool error,
/// a timeout and a dead server go back to the model as the tool's output;
/// a tripped tool guardrail fails the step.
pub(super) async fn invoke(
    cx: &AgentContext,
    scope: &Scope,
    agent: &Agent,
    turn: u32,
    call_id: &str,
    tool: &McpTool,
    arguments: &str,
) -> Result<McpCalled, AgentError> {
    let model_error = |output: String| McpCalled {
        output,
        error: true,
        structured: None,
    };
    let raw = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let args: Value = match serde_json::from_str(raw) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Ok(model_error("error: arguments must be a JSON object".into())),
        Err(e) => {
            return Ok(model_error(format!(
                "error: arguments are not valid JSON: {e}"
            )));
        }
    };
    if let Err(reason) = tool.check(&args) {
        return Ok(model_error(format!("error: invalid arguments: {reason}")));
    }
    let name = &tool.model_name;
    let payload = json!({ "tool": name, "arguments": args });
    check_guardrails(
        cx,
        scope,
        &agent.tool_guardrails,
        Phase::ToolInput,
        &payload,
        &format!("t{turn}/{call_id}/tool_input"),
    )
    .await?;
    let Some(hub) = cx.workflow.mcp.as_ref() else {
        return Ok(model_error("error: no MCP servers are running".into()));
    };
    let called = match hub.call(&tool.server, &tool.name, &args).await {
        Ok(out) => McpCalled {
            output: if out.text.is_empty() {
                out.structured
                    .as_ref()
                    .map(Value::to_string)
                    .unwrap_or_default()
            } else {
                out.text
            },
            error: out.is_error,
            structured: out.structured,
        },
        Err(e) => {
            tracing::warn!(target: "host::mcp", error = %e, "MCP tool call failed");
            model_error(format!("error: {e}"))
        }
    };
    let output = called
        .structured
        .clone()
        .unwrap_or_else(|| Value::String(called.output.clone()));
    let payload = json!({ "tool": name, "arguments": args, "output": output });
    check_guardrails(
        cx,
        scope,
        &agent.tool_guardrails,
        Phase::ToolOutput,
        &payload,
        &format!("t{turn}/{call_id}/tool_output"),
    )
    .await?;
    Ok(called)
}
