//! One agent's turn loop: model call → tool calls → model again, until a
//! final output or `max_turns`; guardrails around input, output and every
//! tool call; handoffs as `transfer_to_<agent>` tools.

use crate::engine::plan::{Agent, HookRef, Schema, ToolRef, Workflow};
use crate::events::{Emitter, EventType, Scope};
use crate::llm::{Item, LlmError, ModelRequest, OutputSchema, Role, StreamEvent, ToolSpec, Usage};
use crate::plugin::{CallContext, CallError, Phase, Registry};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::Instrument;

/// Prefix of the tool that hands the conversation to another agent.
pub const HANDOFF_PREFIX: &str = "transfer_to_";
/// Longest tool output or argument text copied into an event.
const EVENT_TEXT_LIMIT: usize = 2_000;

/// Why an agent's step failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("model call failed: {0}")]
    Llm(#[from] LlmError),
    #[error("{phase} guardrail `{guardrail}` tripped: {message}")]
    Tripwire {
        phase: Phase,
        guardrail: String,
        message: String,
        info: Value,
    },
    #[error("guardrail failed: {0}")]
    Guardrail(CallError),
    #[error("agent `{agent}` reached max_turns ({max_turns}) without a final output")]
    MaxTurns { agent: String, max_turns: u32 },
    #[error("agent `{agent}` returned output that does not match its output schema: {reason}")]
    Schema { agent: String, reason: String },
    #[error("plugin `{plugin}` is not loaded")]
    PluginMissing { plugin: String },
    #[error("unknown agent `{agent}`")]
    UnknownAgent { agent: String },
    #[error(
        "the model asked for approval of hosted MCP tool `{name}` on `{server}`; approvals need a durable run store"
    )]
    ApprovalRequired { server: String, name: String },
}

/// What a finished agent step produced.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentOutput {
    pub output: Value,
    /// The agent that produced the output (differs after a handoff).
    pub agent: String,
    /// Tokens per model.
    pub usage: BTreeMap<String, Usage>,
    pub turns: u32,
    pub last_response_id: Option<String>,
}

/// Everything one agent step needs from its run.
pub struct AgentContext<'a> {
    pub workflow: &'a Workflow,
    pub registry: &'a Registry,
    pub emitter: &'a Emitter,
    pub scope: Scope,
    /// Base context for plugin calls (run, workflow, stage, step, time).
    pub call: CallContext,
}

/// The text an agent receives for a JSON input: a string as is, anything
/// else as compact JSON.
pub fn input_text(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Runs agent `agent_key` on `input` until it produces a final output.
#[tracing::instrument(name = "invoke_agent", skip_all, fields(
    otel.name = %format_args!("invoke_agent {agent_key}"),
    gen_ai.operation.name = "invoke_agent",
    gen_ai.agent.name = agent_key,
))]
pub async fn run(
    cx: &AgentContext<'_>,
    agent_key: &str,
    input: &Value,
    max_turns: u32,
    step_schema: Option<Arc<Schema>>,
) -> Result<AgentOutput, AgentError> {
    let mut agent = agent_of(cx.workflow, agent_key)?;
    let mut scope = cx.scope.clone();
    scope.agent = Some(agent.key.clone());

    check_guardrails(cx, &scope, &agent.input_guardrails, Phase::Input, input).await?;

    let mut items = vec![Item::Message {
        role: Role::User,
        content: input_text(input),
    }];
    let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
    let mut last_response_id = None;
    for turn in 1..=max_turns {
        let schema = step_schema.clone().or_else(|| agent.output_schema.clone());
        let request = ModelRequest {
            settings: agent.settings.clone(),
            instructions: Some(agent.instructions.clone()).filter(|s| !s.is_empty()),
            input: items.clone(),
            tools: tool_specs(cx.workflow, &agent),
            output_schema: schema.as_ref().map(|s| OutputSchema {
                name: "final_output".into(),
                schema: s.value.clone(),
                strict: is_strict(&s.value),
            }),
            stream: agent.stream,
            agent: agent.key.clone(),
            step: scope.step.clone().unwrap_or_default(),
            turn,
        };
        cx.emitter.emit(
            EventType::LlmRequest,
            &scope,
            json!({
                "turn": turn,
                "provider": agent.provider.name(),
                "offline": agent.provider.is_offline(),
                "model": agent.settings.model,
                "stream": agent.stream,
                "items": request.input.len(),
                "tools": request.tools.len(),
            }),
        );
        let emitter = cx.emitter;
        let delta_scope = scope.clone();
        let on_event = move |ev: StreamEvent| {
            if let StreamEvent::TextDelta(text) = ev {
                emitter.emit(EventType::LlmDelta, &delta_scope, json!({ "text": text }));
            }
        };
        let span = tracing::info_span!(
            "turn",
            otel.name = %format_args!("turn {turn}"),
            workflow.turn = i64::from(turn),
            gen_ai.agent.name = %agent.key,
        );
        let response = agent
            .provider
            .respond(
                &request,
                if cx.emitter.wants_deltas() {
                    Some(&on_event)
                } else {
                    None
                },
            )
            .instrument(span.clone())
            .await?;
        *usage.entry(response.model.clone()).or_default() += response.usage;
        last_response_id = response.id.clone().or(last_response_id);
        cx.emitter.emit(
            EventType::LlmResponse,
            &scope,
            json!({
                "turn": turn,
                "response_id": response.id,
                "model": response.model,
                "attempts": response.attempts,
                "usage": {
                    "input_tokens": response.usage.input_tokens,
                    "output_tokens": response.usage.output_tokens,
                },
            }),
        );

        let calls: Vec<(String, String, String)> = response
            .output
            .iter()
            .filter_map(|item| match item {
                Item::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => Some((call_id.clone(), name.clone(), arguments.clone())),
                _ => None,
            })
            .collect();
        if let Some(Item::McpApprovalRequest {
            server_label, name, ..
        }) = response
            .output
            .iter()
            .find(|i| matches!(i, Item::McpApprovalRequest { .. }))
        {
            return Err(AgentError::ApprovalRequired {
                server: server_label.clone(),
                name: name.clone(),
            });
        }
        items.extend(response.output.iter().cloned());

        if calls.is_empty() {
            let text = response.text().unwrap_or_default();
            let output = match &schema {
                Some(schema) => {
                    let value: Value =
                        serde_json::from_str(&text).map_err(|e| AgentError::Schema {
                            agent: agent.key.clone(),
                            reason: format!("not JSON ({e})"),
                        })?;
                    schema.check(&value).map_err(|reason| AgentError::Schema {
                        agent: agent.key.clone(),
                        reason,
                    })?;
                    value
                }
                None => Value::String(text),
            };
            check_guardrails(cx, &scope, &agent.output_guardrails, Phase::Output, &output).await?;
            return Ok(AgentOutput {
                output,
                agent: agent.key.clone(),
                usage,
                turns: turn,
                last_response_id,
            });
        }

        // Tool calls of one turn run concurrently; results go back in the
        // order the model made the calls.
        let mut handoff: Option<Arc<Agent>> = None;
        let mut futures = Vec::with_capacity(calls.len());
        for (call_id, name, arguments) in &calls {
            let target = name
                .strip_prefix(HANDOFF_PREFIX)
                .filter(|t| cx.workflow.allow_handoffs && agent.handoffs.iter().any(|h| h == t));
            match target {
                Some(target) if handoff.is_none() => {
                    let next = agent_of(cx.workflow, target)?;
                    cx.emitter.emit(
                        EventType::Handoff,
                        &scope,
                        json!({ "from": agent.key, "to": next.key, "call_id": call_id }),
                    );
                    handoff = Some(next);
                    futures.push(futures::future::Either::Left(futures::future::ready(Ok(
                        json!({ "assistant": target }).to_string(),
                    ))));
                }
                Some(_) => futures.push(futures::future::Either::Left(futures::future::ready(Ok(
                    "error: only the first handoff of a turn is followed".to_string(),
                )))),
                None => futures.push(futures::future::Either::Right(call_tool(
                    cx, &scope, &agent, call_id, name, arguments,
                ))),
            }
        }
        let outputs = futures::future::join_all(futures).instrument(span).await;
        for ((call_id, _, _), output) in calls.iter().zip(outputs) {
            items.push(Item::FunctionCallOutput {
                call_id: call_id.clone(),
                output: output?,
            });
        }
        if let Some(next) = handoff {
            agent = next;
            scope.agent = Some(agent.key.clone());
            check_guardrails(cx, &scope, &agent.input_guardrails, Phase::Input, input).await?;
        }
    }
    Err(AgentError::MaxTurns {
        agent: agent.key.clone(),
        max_turns,
    })
}

fn agent_of(workflow: &Workflow, key: &str) -> Result<Arc<Agent>, AgentError> {
    workflow
        .agents
        .get(key)
        .cloned()
        .ok_or_else(|| AgentError::UnknownAgent {
            agent: key.to_string(),
        })
}

/// The tools offered to the model: the agent's tool plugins plus one
/// `transfer_to_<agent>` per allowed handoff.
fn tool_specs(workflow: &Workflow, agent: &Agent) -> Vec<ToolSpec> {
    let mut specs: Vec<ToolSpec> = agent.tools.iter().map(|t| t.spec.clone()).collect();
    if workflow.allow_handoffs {
        for target in &agent.handoffs {
            let description = workflow
                .agents
                .get(target)
                .and_then(|a| a.handoff_description.clone())
                .unwrap_or_else(|| {
                    format!("Hand off to the {target} agent to handle the request.")
                });
            specs.push(ToolSpec {
                name: format!("{HANDOFF_PREFIX}{target}"),
                description,
                parameters: json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false}),
                strict: true,
            });
        }
    }
    specs
}

/// OpenAI's strict mode needs closed objects; use it when the schema is.
fn is_strict(schema: &Value) -> bool {
    schema.get("additionalProperties") == Some(&Value::Bool(false))
}

/// Runs one tool call. An error the model can fix (bad arguments, a tool
/// that returned an error or trapped) goes back to the model as the tool's
/// output; a tripped tool guardrail fails the step.
async fn call_tool(
    cx: &AgentContext<'_>,
    scope: &Scope,
    agent: &Agent,
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
        cx.emitter.emit(
            EventType::ToolCalled,
            scope,
            json!({ "tool": name, "call_id": call_id, "arguments": clip(arguments) }),
        );
        let (output, error, digest) = invoke(cx, scope, agent, name, arguments).await?;
        if error {
            let span = tracing::Span::current();
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "ERROR");
        }
        cx.emitter.emit(
            EventType::ToolResult,
            scope,
            json!({ "tool": name, "call_id": call_id, "output": clip(&output), "error": error, "plugin_digest": digest }),
        );
        Ok(output)
    }
    .instrument(span)
    .await
}

async fn invoke(
    cx: &AgentContext<'_>,
    scope: &Scope,
    agent: &Agent,
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
    )
    .await?;

    let (output, failed, digest) = match run_tool(cx, tool, &args).await? {
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
    )
    .await?;
    Ok((input_text(&output), failed, digest))
}

async fn run_tool(
    cx: &AgentContext<'_>,
    tool: &ToolRef,
    args: &Value,
) -> Result<Result<crate::plugin::Served<Value>, CallError>, AgentError> {
    let plugin = cx
        .registry
        .get(&tool.plugin)
        .ok_or_else(|| AgentError::PluginMissing {
            plugin: tool.plugin.clone(),
        })?;
    let mut call = cx.call.clone();
    call.entry = tool.name.clone();
    call.config = tool.config.clone();
    Ok(plugin.invoke_tool(cx.registry.runtime(), &call, args).await)
}

/// Runs every guardrail of a phase (concurrently); the first tripwire, in
/// declaration order, fails the step.
async fn check_guardrails(
    cx: &AgentContext<'_>,
    scope: &Scope,
    guardrails: &[HookRef],
    phase: Phase,
    payload: &Value,
) -> Result<(), AgentError> {
    if guardrails.is_empty() {
        return Ok(());
    }
    let checks = guardrails.iter().map(|g| async move {
        let plugin = cx
            .registry
            .get(&g.plugin)
            .ok_or_else(|| AgentError::PluginMissing {
                plugin: g.plugin.clone(),
            })?;
        let mut call = cx.call.clone();
        call.entry = g.entry.clone();
        call.config = g.config.clone();
        plugin
            .check_guardrail(cx.registry.runtime(), &call, phase, payload)
            .await
            .map_err(AgentError::Guardrail)
    });
    let verdicts = futures::future::join_all(checks).await;
    for (g, verdict) in guardrails.iter().zip(verdicts) {
        let verdict = verdict?;
        if verdict.value.tripwire {
            cx.emitter.emit(
                EventType::GuardrailTripped,
                scope,
                json!({ "phase": phase.to_string(), "guardrail": g.label(), "message": verdict.value.message, "info": verdict.value.info }),
            );
            return Err(AgentError::Tripwire {
                phase,
                guardrail: g.label(),
                message: verdict.value.message,
                info: verdict.value.info,
            });
        }
    }
    Ok(())
}

fn clip(s: &str) -> String {
    if s.len() <= EVENT_TEXT_LIMIT {
        return s.to_string();
    }
    format!("{}…", &s[..s.floor_char_boundary(EVENT_TEXT_LIMIT)])
}
