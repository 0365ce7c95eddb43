//! The Responses API request: [`ModelRequest`] → `CreateResponse`, typed
//! with `async-openai` so that the body is exactly what the official SDKs
//! send. Replies are read by [`super::responses_reply`].

use async_openai::types::responses::{
    CreateResponse, CreateResponseArgs, EasyInputContent, EasyInputMessage, FunctionCallOutput,
    FunctionCallOutputItemParam, FunctionTool, FunctionToolCall, InputItem, InputParam,
    Item as WireItem, MCPApprovalRequest, MCPApprovalResponse, MessageType, Prompt, Reasoning,
    ReasoningSummary as WireSummary, ResponseFormatJsonSchema, ResponseTextParam, Role as WireRole,
    TextResponseFormatConfiguration, Tool,
};

use super::{reasoning_effort, set_tool_choice, set_verbosity};
use crate::llm::error::Failure;
use crate::llm::{Item, ModelRequest, ReasoningSummary, Role};

/// The request body as the official SDKs send it: the typed request, with
/// `include` and `tools` always present and input messages without the
/// optional `"type": "message"` (the OpenAI Agents SDK sends both so).
pub(crate) fn body(request: &ModelRequest) -> Result<serde_json::Value, Failure> {
    let typed = build_request(request)?;
    let mut body = serde_json::to_value(typed)
        .map_err(|e| Failure::Invalid(format!("cannot encode the request: {e}")))?;
    if !request.hosted_tools.is_empty()
        && let Some(tools) = body
            .get_mut("tools")
            .and_then(serde_json::Value::as_array_mut)
    {
        tools.extend(request.hosted_tools.iter().map(|tool| tool.wire()));
    }
    if let Some(verbosity) = request.settings.verbosity {
        set_verbosity(&mut body, &["text", "verbosity"], verbosity);
    }
    if let Some(choice) = &request.settings.tool_choice {
        set_tool_choice(&mut body, choice, |name| {
            let hosted = request.hosted_tools.iter().find_map(|tool| match tool {
                crate::llm::HostedTool::Mcp { server_label, .. } if server_label == name => {
                    Some(serde_json::json!({"type": "mcp", "server_label": name}))
                }
                tool if tool.type_name() == name => Some(serde_json::json!({"type": name})),
                _ => None,
            });
            hosted.unwrap_or_else(|| serde_json::json!({"type": "function", "name": name}))
        });
    }
    if let Some(input) = body
        .get_mut("input")
        .and_then(serde_json::Value::as_array_mut)
    {
        for item in input {
            if let Some(item) = item.as_object_mut()
                && item.get("type").and_then(serde_json::Value::as_str) == Some("message")
                && item
                    .get("content")
                    .is_some_and(serde_json::Value::is_string)
            {
                item.remove("type");
            }
        }
    }
    Ok(body)
}

/// The typed request.
pub(crate) fn build_request(request: &ModelRequest) -> Result<CreateResponse, Failure> {
    let settings = &request.settings;
    let mut args = CreateResponseArgs::default();
    args.model(settings.model.clone())
        .input(InputParam::Items(
            request.input.iter().filter_map(input_item).collect(),
        ))
        .include(Vec::new());
    if let Some(instructions) = &request.instructions {
        args.instructions(instructions.clone());
    }
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
    if settings.reasoning_effort.is_some() || settings.reasoning_summary.is_some() {
        args.reasoning(Reasoning {
            effort: settings
                .reasoning_effort
                .as_deref()
                .map(reasoning_effort)
                .transpose()?,
            summary: settings.reasoning_summary.map(|s| match s {
                ReasoningSummary::Auto => WireSummary::Auto,
                ReasoningSummary::Concise => WireSummary::Concise,
                ReasoningSummary::Detailed => WireSummary::Detailed,
            }),
            ..Reasoning::default()
        });
    }
    if !settings.metadata.is_empty() {
        args.metadata(
            settings
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    if let Some(prompt) = &settings.prompt {
        args.prompt(Prompt {
            id: prompt.id.clone(),
            version: prompt.version.clone(),
            variables: None,
        });
    }
    if request.stream {
        args.stream(true);
    }
    args.build()
        .map_err(|e| Failure::Invalid(format!("cannot build the request: {e}")))
}

/// The input item for `item`; `None` for a hosted tool call the typed
/// request cannot carry (it is context only: the next request is valid
/// without it).
fn input_item(item: &Item) -> Option<InputItem> {
    Some(match item {
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
        // Replayed as the server sent it, like the SDKs do, when it has the
        // documented shape.
        Item::HostedToolCall { kind, item, .. } => {
            match serde_json::from_value::<WireItem>(item.clone()) {
                Ok(typed) => InputItem::Item(typed),
                Err(e) => {
                    tracing::debug!(kind, error = %e, "a hosted tool call is not replayed");
                    return None;
                }
            }
        }
    })
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
        let body = super::body(&request).unwrap();
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
        // What differs from the SDK (no `type` on the message, no `id` or
        // `status` on the replayed call) is valid in OpenAI's schema as
        // async-openai types it from OpenAI's OpenAPI document.
        let typed: CreateResponse = serde_json::from_value(body.clone()).expect("OpenAI's schema");
        assert_eq!(
            serde_json::to_value(typed).unwrap()["input"][1]["call_id"],
            "call_mock4"
        );
        assert!(input[1].get("id").is_none() && input[0].get("type").is_none());
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
        let body = super::body(&request).unwrap();
        assert_eq!(body["text"], structured["text"]);
        assert_eq!(body["stream"], true);
        assert_eq!(body["tools"], structured["tools"]);
        assert_eq!(body["include"], structured["include"]);
        assert_eq!(body["input"][0], structured["input"][0]);
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
        let body = super::body(&request).unwrap();
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["max_output_tokens"], 100);
        assert_eq!(body["reasoning"], json!({"effort": "high"}));
        assert_eq!(
            body["input"][1],
            json!({"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": true})
        );
        assert_eq!(body["input"][0]["type"], "mcp_approval_request");

        let mut hosted = request.clone();
        hosted.hosted_tools = vec![crate::llm::HostedTool::FileSearch {
            vector_store_ids: vec!["vs_1".into()],
            max_num_results: Some(3),
        }];
        hosted.input.push(Item::HostedToolCall {
            id: "ws_1".into(),
            kind: "web_search_call".into(),
            item: json!({"type": "web_search_call", "id": "ws_1", "status": "completed",
                         "action": {"type": "search", "query": "q"}}),
        });
        let body = super::body(&hosted).unwrap();
        assert_eq!(
            body["tools"],
            json!([{"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 3}])
        );
        assert_eq!(body["input"][2]["type"], "web_search_call", "{body}");
        assert_eq!(body["input"][2]["id"], "ws_1");

        let mut bad = request.clone();
        bad.settings.reasoning_effort = Some("extreme".into());
        assert!(matches!(build_request(&bad), Err(Failure::Invalid(_))));
    }

    #[test]
    fn request_settings_as_the_api_documents_them() {
        use crate::llm::{ReasoningSummary, StoredPrompt, ToolChoice, Verbosity};
        let mut settings = ModelSettings::new("gpt-5");
        settings.reasoning_summary = Some(ReasoningSummary::Detailed);
        settings.verbosity = Some(Verbosity::High);
        settings.prompt = Some(StoredPrompt {
            id: "pmpt_1".into(),
            version: None,
        });
        settings.tool_choice = Some(ToolChoice::Named("web_search".into()));
        let mut request = ModelRequest {
            settings,
            input: vec![Item::user("hi")],
            output_schema: Some(OutputSchema {
                name: "final_output".into(),
                schema: json!({"type": "object"}),
                strict: true,
            }),
            hosted_tools: vec![
                crate::llm::HostedTool::WebSearch {
                    search_context_size: None,
                    user_location: None,
                },
                crate::llm::HostedTool::Mcp {
                    server_label: "wiki".into(),
                    server_url: "https://mcp.example.com".into(),
                    require_approval: Default::default(),
                    headers: Default::default(),
                    allowed_tools: None,
                },
            ],
            ..ModelRequest::default()
        };
        let body = super::body(&request).unwrap();
        // A summary without an effort; verbosity beside the schema's format.
        assert_eq!(body["reasoning"], json!({"summary": "detailed"}));
        assert_eq!(body["text"]["verbosity"], "high");
        assert_eq!(body["text"]["format"]["type"], "json_schema");
        assert_eq!(body["prompt"], json!({"id": "pmpt_1"}));
        assert_eq!(body["tool_choice"], json!({"type": "web_search"}));
        assert!(body.get("metadata").is_none());

        for (choice, want) in [
            (
                ToolChoice::Named("wiki".into()),
                json!({"type": "mcp", "server_label": "wiki"}),
            ),
            (
                ToolChoice::Named("add".into()),
                json!({"type": "function", "name": "add"}),
            ),
            (ToolChoice::None, json!("none")),
            (ToolChoice::Required, json!("required")),
        ] {
            request.settings.tool_choice = Some(choice);
            assert_eq!(super::body(&request).unwrap()["tool_choice"], want);
        }
        // Still a valid request in OpenAI's schema.
        let typed: Result<CreateResponse, _> =
            serde_json::from_value(super::body(&request).unwrap());
        assert!(typed.is_ok(), "{typed:?}");
    }
}
