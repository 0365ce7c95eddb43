//! Tool calls: approval, guardrails around the call, the plugin, and the
//! journaled result the model receives.

use super::*;
use crate::events::Scope;
use crate::events::data::{ToolCalled, ToolResult};
use crate::journal::{Decision, Key, ToolCall, decode};
use crate::llm::ReplyLimits;
use crate::plan::{Agent, ToolRef};
use crate::plugin::{CallError, Phase};
use crate::store::JournalKind;
use serde_json::{Value, json};
use std::collections::HashMap;
use tracing::Instrument;

/// Refuses a turn's reply before any of it runs when two of its calls (tool
/// calls or hosted-MCP approval requests) share an id — their journal
/// entries and approvals would be confused — or when it makes more calls
/// than the operator's `max_tool_calls_per_turn`.
pub(super) fn check_calls(
    limits: &ReplyLimits,
    agent: &str,
    turn: u32,
    output: &[Item],
) -> Result<(), AgentError> {
    let refused = |message: String| AgentError::ReplyRefused {
        agent: agent.to_owned(),
        turn,
        message,
    };
    let ids: Vec<&str> = output
        .iter()
        .filter_map(|item| match item {
            Item::FunctionCall { call_id, .. } => Some(call_id.as_str()),
            Item::McpApprovalRequest { id, .. } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    limits.check_tool_calls(ids.len()).map_err(refused)?;
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(ids.len());
    for (position, id) in ids.iter().enumerate() {
        if let Some(first) = seen.insert(id, position) {
            return Err(refused(format!(
                "calls {} and {} share the call id `{id}`",
                first + 1,
                position + 1
            )));
        }
    }
    Ok(())
}

/// Runs one tool call. An error the model can fix (bad arguments, a tool
/// that returned an error or trapped) goes back to the model as the tool's
/// output; a tripped tool guardrail fails the step. The result is
/// journaled before the model sees it.
pub(super) async fn call_tool(
    cx: &AgentContext,
    scope: &Scope,
    agent: &Agent,
    turn: u32,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Result<String, AgentError> {
    let span = tracing::info_span!(
        "tool_call",
        otel.name = %format_args!("execute_tool {name}"),
        otel.status_code = tracing::field::Empty,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = name,
        gen_ai.tool.call.id = call_id,
        gen_ai.tool.type = "function",
        error.type = tracing::field::Empty,
    );
    async {
        emit_called(cx, scope, call_id, name, arguments);
        let key = Key::tool(&cx.step_key, turn, call_id);
        let (output, error, digest, recorded) = if let Some(record) =
            cx.journal.record(JournalKind::ToolResult, &key)
        {
            let call: ToolCall = decode(record)?;
            (
                call.output,
                call.error,
                record.entry.plugin_digest.clone(),
                true,
            )
        } else if !cx.journal.may_call() {
            return Err(AgentError::ReplayDiverged {
                key: key.to_string(),
            });
        } else {
            let tool = agent.tools.iter().find(|t| t.name == name);
            let mcp = if tool.is_none() {
                super::mcp_tools::find(&cx.workflow, agent, name)
            } else {
                None
            };
            let approval = match (tool, &mcp) {
                (Some(t), _) => t.approval,
                (None, Some((_, approval))) => *approval,
                (None, None) => false,
            };
            let decision = if approval {
                Some(
                    approval_gate(
                        cx,
                        scope,
                        turn,
                        call_id,
                        name.to_owned(),
                        arguments,
                        "function",
                    )
                    .await?,
                )
            } else {
                None
            };
            let mut structured = None;
            let (output, error, digest) = match decision {
                Some(Decision {
                    approved: false,
                    reason,
                }) => (
                    format!(
                        "error: a human rejected this call: {}",
                        reason.as_deref().unwrap_or("no reason given")
                    ),
                    true,
                    None,
                ),
                _ => {
                    // Durable before the tool touches the world.
                    cx.journal.barrier().await?;
                    match &mcp {
                        Some((t, _)) => {
                            let called = super::mcp_tools::invoke(
                                cx, scope, agent, turn, call_id, t, arguments,
                            )
                            .await?;
                            structured = called.structured;
                            (called.output, called.error, None)
                        }
                        None => invoke(cx, scope, agent, turn, call_id, name, arguments).await?,
                    }
                }
            };
            let plugin = match (tool, &mcp) {
                (Some(t), _) => Some(t.plugin.clone()),
                (None, Some((t, _))) => Some(format!("{}{}", crate::spec::MCP_PREFIX, t.server)),
                (None, None) => None,
            };
            let call = ToolCall {
                tool: name.to_owned(),
                call_id: call_id.to_owned(),
                output,
                error,
                plugin,
                agent: None,
                usage: BTreeMap::new(),
                structured,
            };
            cx.journal
                .commit(&key, &call, digest.as_deref(), None)
                .await?;
            (call.output, error, digest, false)
        };
        if error {
            let span = tracing::Span::current();
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "ERROR");
        }
        cx.emitter.emit(
            scope,
            ToolResult {
                call_id: call_id.to_owned(),
                error,
                hosted: false,
                output: clip(&output),
                plugin_digest: digest,
                recorded,
                tool: name.to_owned(),
            },
        );
        Ok(output)
    }
    .instrument(span)
    .await
}

/// `tool.called` for a call the host runs (a plugin tool or an agent).
pub(super) fn emit_called(
    cx: &AgentContext,
    scope: &Scope,
    call_id: &str,
    name: &str,
    arguments: &str,
) {
    cx.emitter.emit(
        scope,
        ToolCalled {
            arguments: clip(arguments),
            call_id: call_id.to_owned(),
            hosted: false,
            tool: name.to_owned(),
        },
    );
}

pub(super) async fn invoke(
    cx: &AgentContext,
    scope: &Scope,
    agent: &Agent,
    turn: u32,
    call_id: &str,
    name: &str,
    arguments: &str,
) -> Result<(String, bool, Option<String>), AgentError> {
    let Some(tool) = agent.tools.iter().find(|t| t.name == name) else {
        let known: Vec<&str> = agent.tools.iter().map(|t| t.name.as_str()).collect();
        return Ok((
            format!(
                "error: unknown tool `{name}` (available: {})",
                known.join(", ")
            ),
            true,
            None,
        ));
    };
    let args: Value = match serde_json::from_str(if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    }) {
        Ok(v) => v,
        Err(e) => {
            return Ok((
                format!("error: arguments are not valid JSON: {e}"),
                true,
                None,
            ));
        }
    };
    if let Err(reason) = tool.arguments.check(&args) {
        return Ok((format!("error: invalid arguments: {reason}"), true, None));
    }
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

    let key = Key::tool(&cx.step_key, turn, call_id);
    let (output, failed, digest) = match run_tool(cx, tool, &args, &key).await? {
        Ok(served) => (served.value, false, Some(served.digest.to_string())),
        Err(e) => (Value::String(format!("error: {e}")), true, None),
    };
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
    Ok((input_text(&output), failed, digest))
}

/// Calls `tool`'s plugin; the call context carries the idempotency key of
/// the journal entry `key` the result will be recorded under.
pub(super) async fn run_tool(
    cx: &AgentContext,
    tool: &ToolRef,
    args: &Value,
    key: &Key,
) -> Result<Result<crate::plugin::Served<Value>, CallError>, AgentError> {
    let plugin = cx
        .registry
        .get(&tool.plugin)
        .ok_or_else(|| AgentError::PluginMissing {
            plugin: tool.plugin.clone(),
        })?;
    let call = cx
        .call
        .for_entry(&tool.name, &tool.config)
        .with_idempotency_key(format!("{}/{key}", cx.journal.run_id()))
        .with_http(tool.http.clone())
        .with_limits(cx.workflow.limits_of(&tool.plugin));
    Ok(plugin.invoke_tool(cx.registry.runtime(), &call, args).await)
}
