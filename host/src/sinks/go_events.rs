//! The Go runner's callback events, made from this host's events, so that a
//! consumer written for the Go runner keeps working (an `http` callback
//! with `format: go`, and the Go printer of `stdout` / `stdout_verbose`).
//!
//! The Go envelope is `{type, timestamp, payload, metadata}`:
//!
//! | host event | Go event | payload |
//! |---|---|---|
//! | `run.started` | `run.started` | `{workflow, session, query}` |
//! | `step.started` | `run.event` | `{event_kind: "agent_updated", agent_name}` |
//! | `llm.delta` | `run.event` | `{event_kind: "raw", type: "response.output_text.delta", data: {type, delta}}` |
//! | `tool.called` | `run.event` | `{event_kind: "run_item", name: "tool_called", item: {type: "tool_call_item", agent, tool_call, function_name}}` |
//! | `tool.result` | `run.event` | `{event_kind: "run_item", name: "tool_output", item: {type: "tool_call_output_item", agent, output}}` |
//! | `handoff` | two `run.event`s | `run_item` `handoff_occured` (`{type: "handoff_output_item", agent, source_agent, target_agent}`), then `agent_updated` |
//! | `approval.requested` / `.resolved` | `run.event` | `run_item` `mcp_approval_requested` / `mcp_approval_response` |
//! | `step.completed` | `run.event` | `run_item` `message_output_created` (`{type: "message_output_item", agent, text}`: the agent's final output) |
//! | `run.completed` | `run.completed` | `{final_output, last_response_id}` |
//! | `run.failed` / `run.cancelled` | `run.failed` | `{error}` |
//!
//! Events of an agent offered as a tool (`tool_call_id` set) are not sent,
//! as the Go runner does not stream that run, except its approvals (a
//! person must see them). Other host events have no Go counterpart and are
//! not sent. Agent names
//! are display names where the spec gives one (as the Go runner names
//! agents by `display_name`). `metadata` carries `run_id` and the host
//! event's `seq`, which Go consumers ignore.

use crate::events::{Data, Event};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One Go callback event (`CallbackEvent`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoEvent {
    #[serde(rename = "type")]
    pub kind: GoEventType,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub payload: GoPayload,
    pub metadata: GoMetadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GoEventType {
    #[serde(rename = "run.started")]
    RunStarted,
    #[serde(rename = "run.event")]
    RunEvent,
    #[serde(rename = "run.completed")]
    RunCompleted,
    #[serde(rename = "run.failed")]
    RunFailed,
}

impl GoEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            GoEventType::RunStarted => "run.started",
            GoEventType::RunEvent => "run.event",
            GoEventType::RunCompleted => "run.completed",
            GoEventType::RunFailed => "run.failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoMetadata {
    pub run_id: String,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GoPayload {
    Started {
        workflow: String,
        session: String,
        query: Value,
    },
    Stream(GoStreamEvent),
    Completed {
        final_output: Value,
        last_response_id: String,
    },
    Failed {
        error: String,
    },
}

/// A `run.event` payload, by `event_kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event_kind", rename_all = "snake_case")]
pub enum GoStreamEvent {
    Raw {
        #[serde(rename = "type")]
        kind: String,
        data: Value,
    },
    AgentUpdated {
        agent_name: String,
    },
    RunItem {
        name: String,
        item: GoItem,
    },
}

/// A run item, summarised as the Go runner summarises it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GoItem {
    MessageOutputItem {
        agent: String,
        text: String,
    },
    ToolCallItem {
        agent: String,
        tool_call: String,
        function_name: String,
    },
    ToolCallOutputItem {
        agent: String,
        output: String,
    },
    HandoffOutputItem {
        agent: String,
        source_agent: String,
        target_agent: String,
    },
    McpApprovalRequestItem {
        agent: String,
        request_id: String,
        tool_name: String,
        arguments: String,
    },
    McpApprovalResponseItem {
        agent: String,
        approval_request_id: String,
        approve: bool,
    },
}

/// Turns a run's host events into Go events; keeps what a later event
/// needs (the last response id, the current agent).
#[derive(Debug, Clone, Default)]
pub struct GoTranslator {
    display_names: BTreeMap<String, String>,
    last_response_id: String,
    agent: String,
}

impl GoTranslator {
    /// `display_names`: agent key → the name people see.
    pub fn new(display_names: BTreeMap<String, String>) -> Self {
        GoTranslator {
            display_names,
            ..Default::default()
        }
    }

    fn name(&self, agent: &str) -> String {
        self.display_names
            .get(agent)
            .cloned()
            .unwrap_or_else(|| agent.to_string())
    }

    /// The Go events for `e`, in order; none for most host events.
    pub fn translate(&mut self, e: &Event) -> Vec<GoEvent> {
        // The Go runner does not stream the run of an agent offered as a
        // tool, only its result; its approvals still need a person.
        let nested = e.tool_call_id.is_some();
        if nested
            && !matches!(
                e.data,
                Data::ApprovalRequested(_) | Data::ApprovalResolved(_)
            )
        {
            return Vec::new();
        }
        let agent = match (&e.agent, nested) {
            (Some(agent), false) => {
                self.agent = agent.clone();
                self.name(agent)
            }
            (Some(agent), true) => self.name(agent),
            (None, _) => self.name(&self.agent),
        };
        let item = |name: &str, item: GoItem| {
            GoPayload::Stream(GoStreamEvent::RunItem {
                name: name.into(),
                item,
            })
        };
        let payloads = match &e.data {
            Data::RunStarted(d) => vec![(
                GoEventType::RunStarted,
                GoPayload::Started {
                    workflow: d.workflow_name.clone(),
                    session: d.session.clone().unwrap_or_default(),
                    query: d.input.clone(),
                },
            )],
            Data::StepStarted => vec![(
                GoEventType::RunEvent,
                GoPayload::Stream(GoStreamEvent::AgentUpdated { agent_name: agent }),
            )],
            Data::LlmDelta(d) => vec![(
                GoEventType::RunEvent,
                GoPayload::Stream(GoStreamEvent::Raw {
                    kind: "response.output_text.delta".into(),
                    data: json!({"type": "response.output_text.delta", "delta": d.text}),
                }),
            )],
            Data::LlmResponse(d) => {
                if let Some(id) = &d.response_id {
                    self.last_response_id = id.clone();
                }
                Vec::new()
            }
            Data::ToolCalled(d) => vec![(
                GoEventType::RunEvent,
                item(
                    "tool_called",
                    GoItem::ToolCallItem {
                        agent,
                        tool_call: "responses.ResponseFunctionToolCall".into(),
                        function_name: d.tool.clone(),
                    },
                ),
            )],
            Data::ToolResult(d) => vec![(
                GoEventType::RunEvent,
                item(
                    "tool_output",
                    GoItem::ToolCallOutputItem {
                        agent,
                        output: d.output.clone(),
                    },
                ),
            )],
            Data::Handoff(d) => {
                let to = self.name(&d.to);
                self.agent = d.to.clone();
                vec![
                    (
                        GoEventType::RunEvent,
                        item(
                            "handoff_occured",
                            GoItem::HandoffOutputItem {
                                agent: self.name(&d.from),
                                source_agent: self.name(&d.from),
                                target_agent: to.clone(),
                            },
                        ),
                    ),
                    (
                        GoEventType::RunEvent,
                        GoPayload::Stream(GoStreamEvent::AgentUpdated { agent_name: to }),
                    ),
                ]
            }
            Data::ApprovalRequested(d) => vec![(
                GoEventType::RunEvent,
                item(
                    "mcp_approval_requested",
                    GoItem::McpApprovalRequestItem {
                        agent,
                        request_id: d.call_id.clone(),
                        tool_name: d.tool.clone(),
                        arguments: d.arguments.clone(),
                    },
                ),
            )],
            Data::ApprovalResolved(d) => vec![(
                GoEventType::RunEvent,
                item(
                    "mcp_approval_response",
                    GoItem::McpApprovalResponseItem {
                        agent,
                        approval_request_id: d.call_id.clone(),
                        approve: d.approved,
                    },
                ),
            )],
            Data::StepCompleted(d) => vec![(
                GoEventType::RunEvent,
                item(
                    "message_output_created",
                    GoItem::MessageOutputItem {
                        agent,
                        text: text_of(&d.output),
                    },
                ),
            )],
            Data::RunCompleted(d) => vec![(
                GoEventType::RunCompleted,
                GoPayload::Completed {
                    final_output: d.output.clone(),
                    last_response_id: self.last_response_id.clone(),
                },
            )],
            Data::RunFailed(d) => vec![(
                GoEventType::RunFailed,
                GoPayload::Failed {
                    error: d.error.clone(),
                },
            )],
            Data::RunCancelled => vec![(
                GoEventType::RunFailed,
                GoPayload::Failed {
                    error: "run cancelled".into(),
                },
            )],
            Data::StageStarted(_)
            | Data::StepSkipped(_)
            | Data::LlmRequest(_)
            | Data::GuardrailTripped(_)
            | Data::StepFailed(_)
            | Data::StageCompleted(_)
            | Data::PluginReloaded(_)
            | Data::PluginReloadFailed(_) => Vec::new(),
        };
        payloads
            .into_iter()
            .map(|(kind, payload)| GoEvent {
                kind,
                timestamp: e.timestamp.clone(),
                payload,
                metadata: GoMetadata {
                    run_id: e.run_id.clone(),
                    seq: e.seq,
                },
            })
            .collect()
    }
}

/// An output as text: a string as it is, other JSON as JSON text.
pub fn text_of(output: &Value) -> String {
    match output {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
