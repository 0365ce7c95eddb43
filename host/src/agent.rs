//! One agent's turn loop: model call → tool calls → model again, until a
//! final output or `max_turns`; guardrails around input, output and every
//! tool call; handoffs as `transfer_to_<agent>` tools.

mod agent_tools;
mod approval;
mod error;
mod guardrails;
mod history;
mod mcp_tools;
mod model;
mod tools;

use agent_tools::{Called, call_agent_tool};
use approval::approval_gate;
pub use error::AgentError;
use guardrails::check_guardrails;
pub use history::SessionConfig;
use model::model_call;
use tools::{call_tool, check_calls};

use crate::events::data::Handoff;
use crate::events::{Emitter, Scope};
use crate::journal::{Journal, StepKey};
use crate::llm::{Item, ModelRequest, OutputSchema, Role, ToolSpec, Usage};
use crate::plan::{Agent, Schema, Workflow};
use crate::plugin::{CallContext, Phase, Registry};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::Instrument;

/// Prefix of the tool that hands the conversation to another agent; it
/// lives in `llm`, whose scripted provider recognises handoff calls too.
pub(crate) use crate::llm::HANDOFF_PREFIX;
/// Longest tool output or argument text copied into an event.
const EVENT_TEXT_LIMIT: usize = 2_000;

/// What a finished agent step produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AgentOutput {
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

/// Everything one step needs from its run: the engine makes one per step
/// and hands it to the agent. Owned, so parallel branches run as tasks.
pub(crate) struct AgentContext {
    pub workflow: Arc<Workflow>,
    pub registry: Arc<Registry>,
    pub emitter: Emitter,
    pub scope: Scope,
    /// Base context for plugin calls (run, workflow, stage, step, time).
    pub call: CallContext,
    pub journal: Arc<Journal>,
    /// `<stage>/<step index>`: the prefix of this step's journal keys.
    pub step_key: StepKey,
    pub session: Option<Arc<SessionConfig>>,
    /// Wait in-process for approvals instead of pausing the run.
    pub wait_approval: bool,
}

/// The text an agent receives for a JSON input: a string as is, anything
/// else as compact JSON.
pub(crate) fn input_text(input: &Value) -> String {
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
pub(crate) async fn run(
    cx: &AgentContext,
    agent_key: &str,
    input: &Value,
    max_turns: u32,
    step_schema: Option<Arc<Schema>>,
) -> Result<AgentOutput, AgentError> {
    let mut agent = agent_of(&cx.workflow, agent_key)?;
    if let Some(hub) = &cx.workflow.mcp {
        // Once per process in practice: at once after the first start.
        hub.ready(crate::mcp::START_TIMEOUT).await;
    }
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

    let mut items = history::history(cx, &agent).await?;
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
            tools: tool_specs(&cx.workflow, &agent),
            hosted_tools: agent.hosted_tools.clone(),
            output_schema: schema.as_ref().map(|s| OutputSchema {
                name: "final_output".into(),
                schema: s.value.clone(),
                strict: Schema::is_strict(&s.value),
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
        check_calls(&cx.workflow.replies, &agent.key, turn, &response.output)?;

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
        let mut futures: Vec<BoxFuture<'_, Result<Called, AgentError>>> =
            Vec::with_capacity(calls.len());
        for (position, (call_id, name, arguments)) in calls.iter().enumerate() {
            let target = name
                .strip_prefix(HANDOFF_PREFIX)
                .filter(|t| cx.workflow.allow_handoffs && agent.handoffs.iter().any(|h| h == t));
            match target {
                Some(target) if handoff.is_none() => {
                    let next = agent_of(&cx.workflow, target)?;
                    cx.emitter.emit(
                        &scope,
                        Handoff {
                            call_id: call_id.clone(),
                            from: agent.key.clone(),
                            to: next.key.clone(),
                        },
                    );
                    handoff = Some(next);
                    futures.push(Called::ready(json!({ "assistant": target }).to_string()));
                }
                Some(_) => futures.push(Called::ready(
                    "error: only the first handoff of a turn is followed".to_string(),
                )),
                None => match agent_tools::find(&agent, name) {
                    Some(tool) => futures.push(Box::pin(call_agent_tool(
                        cx, &scope, tool, turn, position, call_id, arguments, max_turns,
                    ))),
                    None => {
                        let call = call_tool(cx, &scope, &agent, turn, call_id, name, arguments);
                        futures.push(Box::pin(async move {
                            call.await.map(|output| Called {
                                output,
                                usage: BTreeMap::new(),
                            })
                        }));
                    }
                },
            }
        }
        let outputs = futures::future::join_all(futures)
            .instrument(turn_span)
            .await;
        for ((call_id, _, _), called) in calls.iter().zip(outputs) {
            let called = called?;
            for (model, used) in called.usage {
                *usage.entry(model).or_default() += used;
            }
            items.push(Item::FunctionCallOutput {
                call_id: call_id.clone(),
                output: called.output,
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

pub(crate) fn agent_of(workflow: &Workflow, key: &str) -> Result<Arc<Agent>, AgentError> {
    workflow
        .agents
        .get(key)
        .cloned()
        .ok_or_else(|| AgentError::UnknownAgent {
            agent: key.to_string(),
        })
}

/// The tools offered to the model: the agent's tool plugins, its MCP
/// servers' tools as they list them now, the agents
/// offered to it as tools, and one `transfer_to_<agent>` per allowed
/// handoff.
fn tool_specs(workflow: &Workflow, agent: &Agent) -> Vec<ToolSpec> {
    let mut specs: Vec<ToolSpec> = agent.tools.iter().map(|t| t.spec.clone()).collect();
    specs.extend(mcp_tools::specs(workflow, agent));
    specs.extend(agent.agent_tools.iter().map(|t| ToolSpec {
        name: t.name.clone(),
        description: t.description.clone(),
        parameters: agent_tools::parameters(),
        strict: true,
    }));
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

/// `s` cut to what an event carries.
fn clip(s: &str) -> String {
    crate::util::clip(s, EVENT_TEXT_LIMIT)
}
