//! Agents offered as tools (`agent_tools`): the model calls one with an
//! `input` text; that agent runs its own loop on it — its turns, tools and
//! guardrails, without session history — and its final output is the
//! tool's result. The conversation stays with the caller (unlike a
//! handoff).
//!
//! Journal: the nested loop's entries live under the step key
//! `<step>/t<turn>/agent<k>` (`k`: the call's position in the turn), so an
//! interrupted call resumes where it stopped; the caller's `tool_result`
//! entry records the output and the tokens the nested calls took, and a
//! resume serves a recorded one without running the agent again. A replay
//! runs the agent again (its model answers come from the recording while
//! its input matches), so a changed hook inside it is seen.

use super::*;
use crate::events::data::ToolResult;
use crate::journal::{Key, Mode, ToolCall, decode};
use crate::plan::AgentToolRef;
use crate::store::JournalKind;
use futures::future::BoxFuture;
use tracing::Instrument;

/// The parameters every agent tool takes (as the Agents SDK's `as_tool`).
pub(super) fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {"input": {"type": "string"}},
        "required": ["input"],
        "additionalProperties": false,
    })
}

/// The agent tool `name` of `agent`, if it has one.
pub(super) fn find<'a>(agent: &'a Agent, name: &str) -> Option<&'a AgentToolRef> {
    agent.agent_tools.iter().find(|t| t.name == name)
}

/// What one agent-tool call gave the caller.
pub(super) struct Called {
    pub output: String,
    pub usage: BTreeMap<String, Usage>,
}

impl Called {
    /// An answer known without running anything (a handoff's).
    pub(super) fn ready(output: String) -> BoxFuture<'static, Result<Called, AgentError>> {
        Box::pin(futures::future::ready(Ok(Called {
            output,
            usage: BTreeMap::new(),
        })))
    }
}

/// Runs the agent tool `tool` for call `call_id`, the `position`-th call
/// of turn `turn`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn call_agent_tool(
    cx: &AgentContext,
    scope: &Scope,
    tool: &AgentToolRef,
    turn: u32,
    position: usize,
    call_id: &str,
    arguments: &str,
    max_turns: u32,
) -> Result<Called, AgentError> {
    let span = tracing::info_span!(
        "tool_call",
        otel.name = %format_args!("execute_tool {}", tool.name),
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %tool.name,
        gen_ai.tool.call.id = call_id,
        gen_ai.tool.type = "agent",
    );
    async {
        super::tools::emit_called(cx, scope, call_id, &tool.name, arguments);
        let key = Key::tool(&cx.step_key, turn, call_id);
        // A resume serves the recorded result; a replay runs the agent again,
        // so its hooks run with the current plugins and its model calls are
        // checked against the recording (served, or the replay diverges).
        let recorded = match cx.journal.mode() {
            Mode::Replay => None,
            _ => cx.journal.record(JournalKind::ToolResult, &key),
        };
        let (call, recorded) = match recorded {
            Some(record) => (decode::<ToolCall>(record)?, true),
            None => {
                let (output, error, usage) = match input_of(arguments) {
                    Err(message) => (message, true, BTreeMap::new()),
                    Ok(input) => {
                        let nested = nested_context(cx, scope, turn, position, call_id);
                        match run_boxed(&nested, &tool.agent, Value::String(input), max_turns).await
                        {
                            Ok(out) => (input_text(&out.output), false, out.usage),
                            Err(e) if returns_to_model(&e) => {
                                (format!("error: {e}"), true, BTreeMap::new())
                            }
                            Err(e) => return Err(e),
                        }
                    }
                };
                let call = ToolCall {
                    tool: tool.name.clone(),
                    call_id: call_id.to_owned(),
                    output,
                    error,
                    plugin: None,
                    agent: Some(tool.agent.clone()),
                    usage,
                    structured: None,
                };
                cx.journal.commit(&key, &call, None, None).await?;
                (call, false)
            }
        };
        cx.emitter.emit(
            scope,
            ToolResult {
                call_id: call_id.to_owned(),
                error: call.error,
                hosted: false,
                output: clip(&call.output),
                plugin_digest: None,
                recorded,
                tool: tool.name.clone(),
            },
        );
        Ok(Called {
            output: call.output,
            usage: call.usage,
        })
    }
    .instrument(span)
    .await
}

/// The `input` argument, or the error the model receives.
fn input_of(arguments: &str) -> Result<String, String> {
    let args: Value = serde_json::from_str(arguments)
        .map_err(|e| format!("error: arguments are not valid JSON: {e}"))?;
    match args.get("input") {
        Some(Value::String(input)) => Ok(input.clone()),
        _ => Err("error: invalid arguments: `input` (a string) is required".into()),
    }
}

/// Failures of the nested agent that its caller's model can act on; the
/// rest (a tripped guardrail, a pause for approval, a store or journal
/// error, a cancel) end the step as they would at the top.
fn returns_to_model(e: &AgentError) -> bool {
    matches!(
        e,
        AgentError::Llm(_)
            | AgentError::MaxTurns { .. }
            | AgentError::Schema { .. }
            | AgentError::ReplyRefused { .. }
    )
}

/// The context of the nested loop: its own journal keys, no session.
fn nested_context(
    cx: &AgentContext,
    scope: &Scope,
    turn: u32,
    position: usize,
    call_id: &str,
) -> AgentContext {
    AgentContext {
        workflow: cx.workflow.clone(),
        registry: cx.registry.clone(),
        emitter: cx.emitter.clone(),
        scope: Scope {
            tool_call_id: Some(call_id.to_owned()),
            ..scope.clone()
        },
        call: cx.call.clone(),
        journal: cx.journal.clone(),
        step_key: StepKey::new(format!("{}/t{turn}/agent{position}", cx.step_key), 0),
        session: None,
        wait_approval: cx.wait_approval,
    }
}

/// [`run`], boxed: an agent tool's agent may offer agent tools itself
/// (validation refuses cycles, so the nesting ends).
fn run_boxed<'a>(
    cx: &'a AgentContext,
    agent: &'a str,
    input: Value,
    max_turns: u32,
) -> BoxFuture<'a, Result<AgentOutput, AgentError>> {
    Box::pin(async move { run(cx, agent, &input, max_turns, None).await })
}
