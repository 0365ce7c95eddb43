//! The Responses API wire format: [`ModelRequest`] → `CreateResponse`,
//! `Response` / SSE events → [`Answer`].

use std::collections::BTreeMap;

use async_openai::types::responses::{
    CreateResponse, CreateResponseArgs, EasyInputContent, EasyInputMessage, FunctionCallOutput,
    FunctionCallOutputItemParam, FunctionTool, FunctionToolCall, InputItem, InputParam,
    Item as WireItem, MCPApprovalRequest, MCPApprovalResponse, MessageType, OutputItem,
    OutputMessageContent, Reasoning, Response, ResponseCompletedEvent, ResponseErrorEvent,
    ResponseFailedEvent, ResponseFormatJsonSchema, ResponseIncompleteEvent,
    ResponseOutputItemAddedEvent, ResponseOutputItemDoneEvent, ResponseTextDeltaEvent,
    ResponseTextParam, Role as WireRole, Status, TextResponseFormatConfiguration, Tool,
};
use serde::Deserialize;

use super::{Answer, DeltaTap, reasoning_effort};
use crate::llm::error::{Failure, json_failure};
use crate::llm::sse::SseEvent;
use crate::llm::{Item, ModelRequest, Role, StreamEvent, Usage};

/// The typed request body.
pub(crate) fn build_request(request: &ModelRequest) -> Result<CreateResponse, Failure> {
    let settings = &request.settings;
    let mut args = CreateResponseArgs::default();
    args.model(settings.model.clone()).input(InputParam::Items(
        request.input.iter().map(input_item).collect(),
    ));
    if let Some(instructions) = &request.instructions {
        args.instructions(instructions.clone());
    }
    if !request.tools.is_empty() {
        args.tools(
            request
                .tools
                .iter()
                .map(|tool| {
                    Tool::Function(FunctionTool {
                        name: tool.name.clone(),
                        parameters: Some(tool.parameters.clone()),
                        strict: Some(tool.strict),
                        description: Some(tool.description.clone()),
                        ..FunctionTool::default()
                    })
                })
                .collect::<Vec<_>>(),
        );
    }
    if let Some(schema) = &request.output_schema {
        args.text(ResponseTextParam {
            format: TextResponseFormatConfiguration::JsonSchema(ResponseFormatJsonSchema {
                description: None,
                name: schema.name.clone(),
                schema: schema.schema.clone(),
                strict: Some(schema.strict),
            }),
            verbosity: None,
        });
    }
    if let Some(t) = settings.temperature {
        args.temperature(t);
    }
    if let Some(p) = settings.top_p {
        args.top_p(p);
    }
    if let Some(n) = settings.max_output_tokens {
        args.max_output_tokens(n);
    }
    if let Some(effort) = &settings.reasoning_effort {
        args.reasoning(Reasoning {
            effort: Some(reasoning_effort(effort)?),
            ..Reasoning::default()
        });
    }
    if request.stream {
        args.stream(true);
    }
    args.build()
        .map_err(|e| Failure::Invalid(format!("cannot build the request: {e}")))
}

fn input_item(item: &Item) -> InputItem {
    match item {
        Item::Message { role, content } => InputItem::EasyMessage(EasyInputMessage {
            r#type: MessageType::Message,
            role: match role {
                Role::System => WireRole::System,
                Role::Developer => WireRole::Developer,
                Role::User => WireRole::User,
                Role::Assistant => WireRole::Assistant,
            },
            content: EasyInputContent::Text(content.clone()),
            phase: None,
        }),
        Item::FunctionCall {
            call_id,
            name,
            arguments,
        } => InputItem::Item(WireItem::FunctionCall(FunctionToolCall {
            arguments: arguments.clone(),
            call_id: call_id.clone(),
            name: name.clone(),
            ..FunctionToolCall::default()
        })),
        Item::FunctionCallOutput { call_id, output } => {
            InputItem::Item(WireItem::FunctionCallOutput(FunctionCallOutputItemParam {
                call_id: Some(call_id.clone()),
                output: FunctionCallOutput::Text(output.clone()),
                id: None,
                status: None,
                name: None,
                namespace: None,
                caller: None,
            }))
        }
        Item::McpApprovalRequest {
            id,
            server_label,
            name,
            arguments,
        } => InputItem::Item(WireItem::McpApprovalRequest(MCPApprovalRequest {
            arguments: arguments.clone(),
            id: id.clone(),
            name: name.clone(),
            server_label: server_label.clone(),
        })),
        Item::McpApprovalResponse {
            approval_request_id,
            approve,
            reason,
        } => InputItem::Item(WireItem::McpApprovalResponse(MCPApprovalResponse {
            approval_request_id: approval_request_id.clone(),
            approve: *approve,
            id: None,
            reason: reason.clone(),
        })),
    }
}

/// A whole (non-streamed) answer.
pub(crate) fn parse_response(body: &[u8]) -> Result<Answer, Failure> {
    let response: Response =
        serde_json::from_slice(body).map_err(|e| json_failure(&e, "the response body", body))?;
    convert_response(response)
}

fn convert_response(response: Response) -> Result<Answer, Failure> {
    if response.status == Status::Failed {
        let (code, message) = match &response.error {
            Some(error) => (
                serde_json::to_value(&error.code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string)),
                error.message.clone(),
            ),
            None => (None, "response status is `failed`".to_string()),
        };
        return Err(Failure::ModelFailed { code, message });
    }
    if response.status == Status::Incomplete {
        tracing::warn!(
            reason = response
                .incomplete_details
                .as_ref()
                .map(|d| d.reason.as_str())
                .unwrap_or("unknown"),
            "the model's response is incomplete"
        );
    }
    let output = response.output.iter().filter_map(output_item).collect();
    Ok(Answer {
        id: Some(response.id),
        model: Some(response.model),
        output,
        usage: response.usage.map(|u| Usage {
            input_tokens: u64::from(u.input_tokens),
            output_tokens: u64::from(u.output_tokens),
            total_tokens: u64::from(u.total_tokens),
        }),
    })
}

/// The neutral item for an output item (`None` for kinds the agent loop does
/// not handle: reasoning, hosted tool calls, …).
fn output_item(item: &OutputItem) -> Option<Item> {
    match item {
        OutputItem::Message(message) => {
            let mut text = String::new();
            for part in &message.content {
                match part {
                    OutputMessageContent::OutputText(t) => text.push_str(&t.text),
                    OutputMessageContent::Refusal(r) => text.push_str(&r.refusal),
                }
            }
            Some(Item::assistant(text))
        }
        OutputItem::FunctionCall(call) => Some(Item::FunctionCall {
            call_id: call.call_id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        }),
        OutputItem::McpApprovalRequest(request) => Some(Item::McpApprovalRequest {
            id: request.id.clone(),
            server_label: request.server_label.clone(),
            name: request.name.clone(),
            arguments: request.arguments.clone(),
        }),
        _ => None,
    }
}

#[derive(Deserialize)]
struct EventType {
    #[serde(rename = "type")]
    kind: String,
}

/// Assembles a streamed answer from its SSE events.
#[derive(Default)]
pub(crate) struct StreamAssembler {
    /// Text deltas per output index (used if the final event lacks output).
    texts: BTreeMap<u32, String>,
    /// Finished output items per output index.
    items: BTreeMap<u32, Item>,
    final_response: Option<Answer>,
}

impl StreamAssembler {
    pub(crate) fn on_event(
        &mut self,
        event: &SseEvent,
        tap: &mut DeltaTap<'_>,
    ) -> Result<(), Failure> {
        let from_data;
        let kind = if event.event.is_empty() {
            from_data = serde_json::from_str::<EventType>(&event.data)
                .map_err(|e| json_failure(&e, "a stream event", event.data.as_bytes()))?;
            from_data.kind.as_str()
        } else {
            event.event.as_str()
        };
        if self.final_response.is_some() {
            return Ok(());
        }
        let data = event.data.as_bytes();
        let parse_err = |e: serde_json::Error| json_failure(&e, kind_label(kind), data);
        match kind {
            "response.output_text.delta" => {
                let ev: ResponseTextDeltaEvent = serde_json::from_slice(data).map_err(parse_err)?;
                self.texts
                    .entry(ev.output_index)
                    .or_default()
                    .push_str(&ev.delta);
                tap.emit(StreamEvent::TextDelta(ev.delta));
            }
            "response.output_item.added" => {
                let ev: ResponseOutputItemAddedEvent =
                    serde_json::from_slice(data).map_err(parse_err)?;
                if let OutputItem::FunctionCall(call) = ev.item {
                    tap.emit(StreamEvent::FunctionCallStarted {
                        call_id: call.call_id,
                        name: call.name,
                    });
                }
            }
            "response.output_item.done" => {
                let ev: ResponseOutputItemDoneEvent =
                    serde_json::from_slice(data).map_err(parse_err)?;
                if let Some(item) = output_item(&ev.item) {
                    self.items.insert(ev.output_index, item);
                }
            }
            "response.completed" => {
                let ev: ResponseCompletedEvent = serde_json::from_slice(data).map_err(parse_err)?;
                self.final_response = Some(convert_response(ev.response)?);
            }
            "response.incomplete" => {
                let ev: ResponseIncompleteEvent =
                    serde_json::from_slice(data).map_err(parse_err)?;
                self.final_response = Some(convert_response(ev.response)?);
            }
            "response.failed" => {
                let ev: ResponseFailedEvent = serde_json::from_slice(data).map_err(parse_err)?;
                // A failed status always yields a ModelFailed error here.
                convert_response(ev.response)?;
                return Err(Failure::ModelFailed {
                    code: None,
                    message: "the response failed".into(),
                });
            }
            "error" => {
                let ev: ResponseErrorEvent = serde_json::from_slice(data).map_err(parse_err)?;
                return Err(Failure::ModelFailed {
                    code: ev.code,
                    message: ev.message,
                });
            }
            _ => {
                // Not needed for the answer; still must be JSON.
                serde_json::from_slice::<serde::de::IgnoredAny>(data).map_err(parse_err)?;
            }
        }
        Ok(())
    }

    /// The answer, once the stream has ended.
    pub(crate) fn finish(self) -> Result<Answer, Failure> {
        let Some(mut answer) = self.final_response else {
            return Err(Failure::Truncated(
                "the stream ended before `response.completed`".into(),
            ));
        };
        if answer.output.is_empty() {
            // Some servers send the final response without its output.
            answer.output = if self.items.is_empty() {
                self.texts.into_values().map(Item::assistant).collect()
            } else {
                self.items.into_values().collect()
            };
        }
        Ok(answer)
    }
}

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "response.output_text.delta" => "a `response.output_text.delta` event",
        "response.output_item.added" => "a `response.output_item.added` event",
        "response.output_item.done" => "a `response.output_item.done` event",
        "response.completed" => "the `response.completed` event",
        "response.incomplete" => "the `response.incomplete` event",
        "response.failed" => "the `response.failed` event",
        "error" => "an `error` event",
        _ => "a stream event",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ModelSettings, OutputSchema, ToolSpec};
    use serde_json::{Value, json};

    fn peer_requests() -> Vec<Value> {
        // The exact bodies the official Python SDK sent (see
        // /work/shared/peer/README.md), the tool-call round trip and the
        // structured-output request.
        vec![
            json!({"model":"gpt-4.1-mini","include":[],"input":[{"content":"[aspect 2] reply 0ef48f27d74c5551","role":"user"},{"arguments":"{\"query\":\"q\",\"limit\":698}","call_id":"call_mock4","name":"lookup_facts","type":"function_call","id":"item_mock4","status":"completed"},{"call_id":"call_mock4","output":"facts[3]","type":"function_call_output"}],"instructions":"You research aspect 2 of the plan. Always consult lookup_facts first. [[use_tool]]","tools":[{"name":"lookup_facts","parameters":{"properties":{"query":{"type":"string"},"limit":{"type":"integer"}},"required":["query","limit"],"type":"object","additionalProperties":false},"strict":true,"type":"function","description":"Look up facts about a topic."}]}),
            json!({"model":"gpt-4.1-mini","include":[],"input":[{"content":"notes","role":"user"}],"instructions":"Write the final report from the research notes.","text":{"format":{"type":"json_schema","name":"final_output","schema":{"type":"object","properties":{"title":{"type":"string"}},"required":["title"],"additionalProperties":false},"strict":true}},"tools":[]}),
        ]
    }

    #[test]
    fn request_matches_the_python_sdk() {
        let [with_tool, structured] = <[Value; 2]>::try_from(peer_requests()).unwrap();
        let tool = &with_tool["tools"][0];
        let request = ModelRequest {
            settings: ModelSettings::new("gpt-4.1-mini"),
            instructions: with_tool["instructions"].as_str().map(str::to_string),
            input: vec![
                Item::user("[aspect 2] reply 0ef48f27d74c5551"),
                Item::FunctionCall {
                    call_id: "call_mock4".into(),
                    name: "lookup_facts".into(),
                    arguments: "{\"query\":\"q\",\"limit\":698}".into(),
                },
                Item::function_call_output("call_mock4", "facts[3]"),
            ],
            tools: vec![ToolSpec {
                name: "lookup_facts".into(),
                description: "Look up facts about a topic.".into(),
                parameters: tool["parameters"].clone(),
                strict: true,
            }],
            ..ModelRequest::default()
        };
        let body = serde_json::to_value(build_request(&request).unwrap()).unwrap();
        assert_eq!(body["model"], with_tool["model"]);
        assert_eq!(body["instructions"], with_tool["instructions"]);
        assert_eq!(body["tools"], with_tool["tools"]);
        let input = body["input"].as_array().unwrap();
        assert_eq!(input[0]["role"], "user");
        assert_eq!(input[0]["content"], with_tool["input"][0]["content"]);
        for key in ["type", "call_id", "name", "arguments"] {
            assert_eq!(input[1][key], with_tool["input"][1][key], "{key}");
        }
        assert_eq!(input[2], with_tool["input"][2]);
        assert!(body.get("stream").is_none());

        let request = ModelRequest {
            settings: ModelSettings::new("gpt-4.1-mini"),
            instructions: Some("Write the final report from the research notes.".into()),
            input: vec![Item::user("notes")],
            output_schema: Some(OutputSchema {
                name: "final_output".into(),
                schema: structured["text"]["format"]["schema"].clone(),
                strict: true,
            }),
            stream: true,
            ..ModelRequest::default()
        };
        let body = serde_json::to_value(build_request(&request).unwrap()).unwrap();
        assert_eq!(body["text"], structured["text"]);
        assert_eq!(body["stream"], true);
        assert!(body.get("tools").is_none());
    }

    #[test]
    fn settings_and_mcp_items() {
        let mut settings = ModelSettings::new("o4-mini");
        settings.temperature = Some(0.5);
        settings.max_output_tokens = Some(100);
        settings.reasoning_effort = Some("High".into());
        let request = ModelRequest {
            settings,
            input: vec![
                Item::McpApprovalRequest {
                    id: "mcpr_1".into(),
                    server_label: "deepwiki".into(),
                    name: "ask".into(),
                    arguments: "{}".into(),
                },
                Item::McpApprovalResponse {
                    approval_request_id: "mcpr_1".into(),
                    approve: true,
                    reason: None,
                },
            ],
            ..ModelRequest::default()
        };
        let body = serde_json::to_value(build_request(&request).unwrap()).unwrap();
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["max_output_tokens"], 100);
        assert_eq!(body["reasoning"], json!({"effort": "high"}));
        assert_eq!(
            body["input"][1],
            json!({"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": true})
        );
        assert_eq!(body["input"][0]["type"], "mcp_approval_request");

        let mut bad = request.clone();
        bad.settings.reasoning_effort = Some("extreme".into());
        assert!(matches!(build_request(&bad), Err(Failure::Invalid(_))));
    }
}
