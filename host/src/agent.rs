//! One agent's turn loop: model call → tool calls → model again, until a
//! final output or `max_turns`; guardrails around input, output and every
//! tool call; handoffs as `transfer_to_<agent>` tools.

use crate::engine::durable::{Journal, Mode, keys};
use crate::engine::memory::{self, SessionConfig};
use crate::engine::plan::{Agent, HookRef, Schema, ToolRef, Workflow};
use crate::events::{Emitter, EventType, Scope};
use crate::llm::{
    Item, LlmError, ModelRequest, ModelResponse, OutputSchema, Role, StreamEvent, ToolSpec, Usage,
};
use crate::plugin::{CallContext, CallError, Phase, Registry, Verdict};
use crate::store::{JournalKind, RunStatus, RunUpdate, StoreError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// How often a run waiting in-process for an approval looks for a decision.
const APPROVAL_POLL: Duration = Duration::from_millis(100);

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
        "tool `{tool}` needs approval, which needs a run store (the command line always has one)"
    )]
    ApprovalNeedsStore { tool: String },
    /// Not a failure: the run waits for a human to approve `call_id`.
    #[error("waiting for approval of call `{call_id}` (tool `{tool}`)")]
    Paused { call_id: String, tool: String },
    #[error("the run was cancelled")]
    Cancelled,
    #[error("cannot record the run's progress: {0}")]
    Store(#[from] StoreError),
    #[error("the journal entry `{key}` is unreadable: {reason}")]
    Journal { key: String, reason: String },
    #[error(
        "replay diverged: `{key}` was never recorded (a changed guard or mapper took a path the original run did not)"
    )]
    ReplayDiverged { key: String },
    #[error("session: {0}")]
    Session(String),
}

impl AgentError {
    /// Whether the step only waits (for an approval) rather than failed.
    pub fn is_paused(&self) -> bool {
        matches!(self, AgentError::Paused { .. })
    }
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
    /// What this step adds to the session: its input and every item after.
    pub session_items: Vec<Item>,
}

/// Everything one agent step needs from its run.
pub struct AgentContext<'a> {
    pub workflow: &'a Workflow,
    pub registry: &'a Registry,
    pub emitter: &'a Emitter,
    pub scope: Scope,
    /// Base context for plugin calls (run, workflow, stage, step, time).
    pub call: CallContext,
    pub journal: &'a Journal,
    /// `<stage>/<step index>`: the prefix of this step's journal keys.
    pub step_key: String,
    pub session: Option<&'a SessionConfig>,
    /// Wait in-process for approvals instead of pausing the run.
    pub wait_approval: bool,
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

    check_guardrails(
        cx,
        &scope,
        &agent.input_guardrails,
        Phase::Input,
        input,
        "t0/input",
    )
    .await?;

    let mut items = memory::history(cx, &agent).await?;
    let session_start = items.len();
    items.push(Item::Message {
        role: Role::User,
        content: input_text(input),
    });
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
        // The turn's span covers its model call and its tool calls.
        let turn_span = tracing::info_span!(
            "turn",
            otel.name = %format_args!("turn {turn}"),
            workflow.turn = i64::from(turn),
            gen_ai.agent.name = %agent.key,
        );
        let response = model_call(cx, &scope, &agent, &request, turn)
            .instrument(turn_span.clone())
            .await?;
        *usage.entry(response.model.clone()).or_default() += response.usage;
        last_response_id = response.id.clone().or(last_response_id);

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
        items.extend(response.output.iter().cloned());

        // Hosted MCP tools asking for approval: the same path as our own
        // tools; the answers go back as `mcp_approval_response` items.
        let gates = response.output.iter().filter_map(|item| match item {
            Item::McpApprovalRequest {
                id,
                server_label,
                name,
                arguments,
            } => Some(approval_gate(
                cx,
                &scope,
                turn,
                id,
                format!("{server_label}.{name}"),
                arguments,
                "mcp",
            )),
            _ => None,
        });
        let decisions = futures::future::join_all(gates).await;
        let answered = !decisions.is_empty();
        let requests = response.output.iter().filter_map(|item| match item {
            Item::McpApprovalRequest { id, .. } => Some(id),
            _ => None,
        });
        for (id, decision) in requests.zip(decisions) {
            let decision = decision?;
            items.push(Item::McpApprovalResponse {
                approval_request_id: id.clone(),
                approve: decision.approved,
                reason: decision.reason,
            });
        }
        if answered && calls.is_empty() {
            continue;
        }

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
            check_guardrails(
                cx,
                &scope,
                &agent.output_guardrails,
                Phase::Output,
                &output,
                &format!("t{turn}/output"),
            )
            .await?;
            return Ok(AgentOutput {
                output,
                agent: agent.key.clone(),
                usage,
                turns: turn,
                last_response_id,
                session_items: items.split_off(session_start),
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
                    cx, &scope, &agent, turn, call_id, name, arguments,
                ))),
            }
        }
        let outputs = futures::future::join_all(futures)
            .instrument(turn_span)
            .await;
        for ((call_id, _, _), output) in calls.iter().zip(outputs) {
            items.push(Item::FunctionCallOutput {
                call_id: call_id.clone(),
                output: output?,
            });
        }
        if let Some(next) = handoff {
            agent = next;
            scope.agent = Some(agent.key.clone());
            check_guardrails(
                cx,
                &scope,
                &agent.input_guardrails,
                Phase::Input,
                input,
                &format!("t{turn}/input"),
            )
            .await?;
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

/// One model call, served from the journal when the run already made it.
async fn model_call(
    cx: &AgentContext<'_>,
    scope: &Scope,
    agent: &Agent,
    request: &ModelRequest,
    turn: u32,
) -> Result<ModelResponse, AgentError> {
    let key = keys::model(&cx.step_key, turn);
    if let Some(record) = cx.journal.recorded(JournalKind::ModelResponse, &key) {
        let response: ModelResponse = decode(&key, &record.entry.data["response"])?;
        emit_response(cx, scope, turn, &response, true);
        return Ok(response);
    }
    if cx.journal.mode() == Mode::Replay {
        return Err(AgentError::ReplayDiverged { key });
    }
    if cx.journal.cancelled().await? {
        return Err(AgentError::Cancelled);
    }
    // Everything the run did so far is durable before it pays for a call.
    cx.journal.barrier().await?;
    cx.emitter.emit(
        EventType::LlmRequest,
        scope,
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
    let response = agent
        .provider
        .respond(
            request,
            if cx.emitter.wants_deltas() {
                Some(&on_event)
            } else {
                None
            },
        )
        .await?;
    // Committed before anything acts on it: a crash from here on never
    // pays for this call again.
    cx.journal
        .commit(
            JournalKind::ModelResponse,
            key,
            json!({ "agent": agent.key, "turn": turn, "response": response }),
            None,
            None,
        )
        .await?;
    emit_response(cx, scope, turn, &response, false);
    Ok(response)
}

fn emit_response(
    cx: &AgentContext<'_>,
    scope: &Scope,
    turn: u32,
    response: &ModelResponse,
    recorded: bool,
) {
    cx.emitter.emit(
        EventType::LlmResponse,
        scope,
        json!({
            "turn": turn,
            "response_id": response.id,
            "model": response.model,
            "attempts": response.attempts,
            "recorded": recorded,
            "usage": {
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
            },
        }),
    );
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, value: &Value) -> Result<T, AgentError> {
    serde_json::from_value(value.clone()).map_err(|e| AgentError::Journal {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// A human's answer to an approval request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub approved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Decision {
    pub fn approve() -> Self {
        Decision {
            approved: true,
            reason: None,
        }
    }

    pub fn reject(reason: impl Into<String>) -> Self {
        Decision {
            approved: false,
            reason: Some(reason.into()),
        }
    }
}

/// Waits for a human's decision on call `call_id`: recorded already (a
/// resumed run), or requested now — then the run pauses (the step returns
/// [`AgentError::Paused`]) unless it waits in-process.
async fn approval_gate(
    cx: &AgentContext<'_>,
    scope: &Scope,
    turn: u32,
    call_id: &str,
    tool: String,
    arguments: &str,
    kind: &'static str,
) -> Result<Decision, AgentError> {
    let key = keys::approval(&cx.step_key, turn, call_id);
    if let Some(record) = cx.journal.recorded(JournalKind::ApprovalDecision, &key) {
        return decode(&key, &record.entry.data["decision"]);
    }
    if cx.journal.mode() == Mode::Replay {
        return Err(AgentError::ReplayDiverged { key });
    }
    let Some(store) = cx.journal.store() else {
        return Err(AgentError::ApprovalNeedsStore { tool });
    };
    let waiting = Some(RunUpdate::status(RunStatus::WaitingApproval));
    if cx
        .journal
        .recorded(JournalKind::ApprovalRequested, &key)
        .is_none()
    {
        cx.journal
            .commit(
                JournalKind::ApprovalRequested,
                key.clone(),
                json!({
                    "call_id": call_id,
                    "tool": tool,
                    "arguments": arguments,
                    "kind": kind,
                    "stage": scope.stage,
                    "step": scope.step,
                    "agent": scope.agent,
                }),
                None,
                waiting,
            )
            .await?;
    } else if let Some(update) = waiting {
        store.update_run(cx.journal.run_id(), update).await?;
    }
    // The request is durable before anyone is told about it.
    cx.journal.barrier().await?;
    cx.emitter.emit(
        EventType::ApprovalRequested,
        scope,
        json!({ "call_id": call_id, "tool": tool, "arguments": clip(arguments), "kind": kind }),
    );
    if !cx.wait_approval {
        return Err(AgentError::Paused {
            call_id: call_id.to_owned(),
            tool,
        });
    }
    loop {
        let records = store.journal_by_key(cx.journal.run_id(), &key).await?;
        if let Some(record) = records
            .iter()
            .find(|r| r.entry.kind == JournalKind::ApprovalDecision)
        {
            let decision: Decision = decode(&key, &record.entry.data["decision"])?;
            store
                .update_run(cx.journal.run_id(), RunUpdate::status(RunStatus::Running))
                .await?;
            cx.emitter.emit(
                EventType::ApprovalResolved,
                scope,
                json!({ "call_id": call_id, "tool": tool, "approved": decision.approved, "reason": decision.reason }),
            );
            return Ok(decision);
        }
        if cx.journal.cancelled().await? {
            return Err(AgentError::Cancelled);
        }
        tokio::time::sleep(APPROVAL_POLL).await;
    }
}

/// Runs one tool call. An error the model can fix (bad arguments, a tool
/// that returned an error or trapped) goes back to the model as the tool's
/// output; a tripped tool guardrail fails the step. The result is
/// journaled before the model sees it.
async fn call_tool(
    cx: &AgentContext<'_>,
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
        cx.emitter.emit(
            EventType::ToolCalled,
            scope,
            json!({ "tool": name, "call_id": call_id, "arguments": clip(arguments) }),
        );
        let key = keys::tool(&cx.step_key, turn, call_id);
        let (output, error, digest, recorded) =
            if let Some(record) = cx.journal.recorded(JournalKind::ToolResult, &key) {
                let data = &record.entry.data;
                (
                    data["output"].as_str().unwrap_or_default().to_owned(),
                    data["error"].as_bool().unwrap_or(false),
                    record.entry.plugin_digest.clone(),
                    true,
                )
            } else if cx.journal.mode() == Mode::Replay {
                return Err(AgentError::ReplayDiverged { key });
            } else {
                let tool = agent.tools.iter().find(|t| t.name == name);
                let decision = match tool {
                    Some(t) if t.approval => Some(
                        approval_gate(cx, scope, turn, call_id, name.to_owned(), arguments, "function")
                            .await?,
                    ),
                    _ => None,
                };
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
                        invoke(cx, scope, agent, turn, call_id, name, arguments).await?
                    }
                };
                cx.journal
                    .commit(
                        JournalKind::ToolResult,
                        key,
                        json!({ "tool": name, "call_id": call_id, "output": output, "error": error,
                                "plugin": tool.map(|t| t.plugin.as_str()) }),
                        digest.as_deref(),
                        None,
                    )
                    .await?;
                (output, error, digest, false)
            };
        if error {
            let span = tracing::Span::current();
            span.record("error.type", "tool_error");
            span.record("otel.status_code", "ERROR");
        }
        cx.emitter.emit(
            EventType::ToolResult,
            scope,
            json!({ "tool": name, "call_id": call_id, "output": clip(&output), "error": error, "plugin_digest": digest, "recorded": recorded }),
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
        &format!("t{turn}/{call_id}/tool_output"),
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
/// declaration order, fails the step. Verdicts are journaled under `site`.
async fn check_guardrails(
    cx: &AgentContext<'_>,
    scope: &Scope,
    guardrails: &[HookRef],
    phase: Phase,
    payload: &Value,
    site: &str,
) -> Result<(), AgentError> {
    if guardrails.is_empty() {
        return Ok(());
    }
    let checks = guardrails.iter().enumerate().map(|(i, g)| async move {
        let key = keys::guardrail(&cx.step_key, site, i);
        if let Some(record) = cx.journal.recorded(JournalKind::GuardrailVerdict, &key) {
            return decode::<Verdict>(&key, &record.entry.data["verdict"]);
        }
        let plugin = cx
            .registry
            .get(&g.plugin)
            .ok_or_else(|| AgentError::PluginMissing {
                plugin: g.plugin.clone(),
            })?;
        let mut call = cx.call.clone();
        call.entry = g.entry.clone();
        call.config = g.config.clone();
        let served = plugin
            .check_guardrail(cx.registry.runtime(), &call, phase, payload)
            .await
            .map_err(AgentError::Guardrail)?;
        cx.journal
            .commit(
                JournalKind::GuardrailVerdict,
                key,
                json!({ "plugin": g.plugin, "guardrail": g.label(), "phase": phase.to_string(), "verdict": served.value }),
                Some(&served.digest),
                None,
            )
            .await?;
        Ok(served.value)
    });
    let verdicts = futures::future::join_all(checks).await;
    for (g, verdict) in guardrails.iter().zip(verdicts) {
        let verdict = verdict?;
        if verdict.tripwire {
            cx.emitter.emit(
                EventType::GuardrailTripped,
                scope,
                json!({ "phase": phase.to_string(), "guardrail": g.label(), "message": verdict.message, "info": verdict.info }),
            );
            return Err(AgentError::Tripwire {
                phase,
                guardrail: g.label(),
                message: verdict.message,
                info: verdict.info,
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
