//! The Chat Completions request: [`ModelRequest`] →
//! `CreateChatCompletionRequest`, typed with `async-openai` so that the body
//! is exactly what the official SDKs send. Replies are read by
//! [`super::chat_reply`].

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestDeveloperMessage, ChatCompletionRequestDeveloperMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestSystemMessageContent, ChatCompletionRequestToolMessage,
    ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionRequestUserMessageContent, ChatCompletionStreamOptions, ChatCompletionTool,
    ChatCompletionTools, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
    FunctionCall, FunctionObject, ResponseFormat, ResponseFormatJsonSchema,
};

use super::{reasoning_effort, set_tool_choice, set_verbosity};
use crate::llm::error::Failure;
use crate::llm::{Item, ModelRequest, Role};

/// The request body as the official SDKs send it: the typed request, with
/// `"content": null` on an assistant message that only calls tools (the
/// OpenAI Agents SDK sends it so).
pub(crate) fn body(request: &ModelRequest) -> Result<serde_json::Value, Failure> {
    let typed = build_request(request)?;
    let mut body = serde_json::to_value(typed)
        .map_err(|e| Failure::Invalid(format!("cannot encode the request: {e}")))?;
    if let Some(messages) = body
        .get_mut("messages")
        .and_then(serde_json::Value::as_array_mut)
    {
        for message in messages {
            if let Some(message) = message.as_object_mut()
                && message.get("role").and_then(serde_json::Value::as_str) == Some("assistant")
                && !message.contains_key("content")
            {
                message.insert("content".into(), serde_json::Value::Null);
            }
        }
    }
    if let Some(verbosity) = request.settings.verbosity {
        set_verbosity(&mut body, &["verbosity"], verbosity);
    }
    if let Some(choice) = &request.settings.tool_choice {
        set_tool_choice(
            &mut body,
            choice,
            |name| serde_json::json!({"type": "function", "function": {"name": name}}),
        );
    }
    Ok(body)
}

/// The typed request. `instructions` become the first (system)
/// message, like the official SDKs send them; consecutive function calls
/// (and the assistant text right before them) form one assistant message.
pub(crate) fn build_request(
    request: &ModelRequest,
) -> Result<CreateChatCompletionRequest, Failure> {
    let settings = &request.settings;
    let mut messages = Vec::with_capacity(request.input.len() + 1);
    if let Some(instructions) = &request.instructions {
        messages.push(system(instructions));
    }
    for item in &request.input {
        match item {
            Item::Message { role, content } => messages.push(match role {
                Role::System => system(content),
                Role::Developer => {
                    ChatCompletionRequestMessage::Developer(ChatCompletionRequestDeveloperMessage {
                        content: ChatCompletionRequestDeveloperMessageContent::Text(
                            content.clone(),
                        ),
                        name: None,
                    })
                }
                Role::User => {
                    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
                        content: ChatCompletionRequestUserMessageContent::Text(content.clone()),
                        name: None,
                    })
                }
                Role::Assistant => {
                    ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                        content: Some(ChatCompletionRequestAssistantMessageContent::Text(
                            content.clone(),
                        )),
                        ..ChatCompletionRequestAssistantMessage::default()
                    })
                }
            }),
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let call =
                    ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                        id: call_id.clone(),
                        function: FunctionCall {
                            name: name.clone(),
                            arguments: arguments.clone(),
                        },
                    });
                match messages.last_mut() {
                    Some(ChatCompletionRequestMessage::Assistant(assistant)) => {
                        assistant.tool_calls.get_or_insert_with(Vec::new).push(call);
                    }
                    _ => messages.push(ChatCompletionRequestMessage::Assistant(
                        ChatCompletionRequestAssistantMessage {
                            tool_calls: Some(vec![call]),
                            ..ChatCompletionRequestAssistantMessage::default()
                        },
                    )),
                }
            }
            Item::FunctionCallOutput { call_id, output } => messages.push(
                ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
                    content: ChatCompletionRequestToolMessageContent::Text(output.clone()),
                    tool_call_id: call_id.clone(),
                }),
            ),
            // Context from a Responses conversation; Chat has no such item.
            Item::HostedToolCall { .. } => {}
            Item::McpApprovalRequest { .. } | Item::McpApprovalResponse { .. } => {
                return Err(Failure::Invalid(
                    "hosted MCP approval items need the Responses API (set `api: responses`)"
                        .into(),
                ));
            }
        }
    }

    if let Some(tool) = request.hosted_tools.first() {
        return Err(Failure::Invalid(format!(
            "the hosted tool `{}` needs the Responses API (set `api: responses`)",
            tool.type_name()
        )));
    }
    if settings.reasoning_summary.is_some() {
        return Err(Failure::Invalid(
            "`reasoning_summary` needs the Responses API (set `api: responses`)".into(),
        ));
    }
    if settings.prompt.is_some() {
        return Err(Failure::Invalid(
            "a stored `prompt` needs the Responses API (set `api: responses`)".into(),
        ));
    }
    let mut args = CreateChatCompletionRequestArgs::default();
    args.model(settings.model.clone()).messages(messages);
    if !settings.metadata.is_empty() {
        args.metadata(async_openai::types::Metadata::from(serde_json::json!(
            settings.metadata
        )));
    }
    if !request.tools.is_empty() {
        args.tools(
            request
                .tools
                .iter()
                .map(|tool| {
                    ChatCompletionTools::Function(ChatCompletionTool {
                        function: FunctionObject {
                            name: tool.name.clone(),
                            description: Some(tool.description.clone()),
                            parameters: Some(tool.parameters.clone()),
                            strict: Some(tool.strict),
                        },
                    })
                })
                .collect::<Vec<_>>(),
        );
    }
    if let Some(schema) = &request.output_schema {
        args.response_format(ResponseFormat::JsonSchema {
            json_schema: ResponseFormatJsonSchema {
                description: None,
                name: schema.name.clone(),
                schema: schema.schema.clone(),
                strict: Some(schema.strict),
            },
        });
    }
    if let Some(t) = settings.temperature {
        args.temperature(t);
    }
    if let Some(p) = settings.top_p {
        args.top_p(p);
    }
    if let Some(n) = settings.max_output_tokens {
        args.max_completion_tokens(n);
    }
    if let Some(effort) = &settings.reasoning_effort {
        args.reasoning_effort(reasoning_effort(effort)?);
    }
    if request.stream {
        args.stream(true)
            .stream_options(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            });
    }
    args.build()
        .map_err(|e| Failure::Invalid(format!("cannot build the request: {e}")))
}

fn system(content: &str) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
        content: ChatCompletionRequestSystemMessageContent::Text(content.to_string()),
        name: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ModelSettings, OutputSchema, ToolSpec};
    use serde_json::json;

    #[test]
    fn request_matches_the_python_sdk() {
        // From /work/shared/peer/workflow_requests_chat.jsonl (the tool round trip).
        let expected = json!({"model":"gpt-4.1-mini","messages":[{"content":"You research aspect 2. [[use_tool]]","role":"system"},{"role":"user","content":"[aspect 2] reply"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_mock10","type":"function","function":{"name":"lookup_facts","arguments":"{\"query\":\"q\",\"limit\":698}"}}]},{"role":"tool","tool_call_id":"call_mock10","content":"facts[3]"}],"tools":[{"type":"function","function":{"name":"lookup_facts","description":"Look up facts about a topic.","parameters":{"properties":{"query":{"type":"string"}},"required":["query"],"type":"object","additionalProperties":false},"strict":true}}]});
        let request = ModelRequest {
            settings: ModelSettings::new("gpt-4.1-mini"),
            instructions: Some("You research aspect 2. [[use_tool]]".into()),
            input: vec![
                Item::user("[aspect 2] reply"),
                Item::FunctionCall {
                    call_id: "call_mock10".into(),
                    name: "lookup_facts".into(),
                    arguments: "{\"query\":\"q\",\"limit\":698}".into(),
                },
                Item::function_call_output("call_mock10", "facts[3]"),
            ],
            tools: vec![ToolSpec {
                name: "lookup_facts".into(),
                description: "Look up facts about a topic.".into(),
                parameters: expected["tools"][0]["function"]["parameters"].clone(),
                strict: true,
            }],
            ..ModelRequest::default()
        };
        let body = super::body(&request).unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn structured_output_stream_and_settings() {
        let mut settings = ModelSettings::new("m");
        settings.max_output_tokens = Some(7);
        settings.reasoning_effort = Some("low".into());
        let schema = json!({"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false});
        let request = ModelRequest {
            settings,
            input: vec![
                Item::user("hi"),
                Item::assistant("thinking"),
                Item::FunctionCall {
                    call_id: "a".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                },
                Item::FunctionCall {
                    call_id: "b".into(),
                    name: "g".into(),
                    arguments: "{}".into(),
                },
            ],
            output_schema: Some(OutputSchema {
                name: "final_output".into(),
                schema: schema.clone(),
                strict: true,
            }),
            stream: true,
            ..ModelRequest::default()
        };
        let body = super::body(&request).unwrap();
        assert_eq!(
            body["response_format"],
            json!({"type":"json_schema","json_schema":{"name":"final_output","schema":schema,"strict":true}})
        );
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"], json!({"include_usage": true}));
        assert_eq!(body["max_completion_tokens"], 7);
        assert_eq!(body["reasoning_effort"], "low");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[1]["content"], "thinking");
        assert_eq!(messages[1]["tool_calls"].as_array().unwrap().len(), 2);

        let mcp = ModelRequest {
            input: vec![Item::McpApprovalResponse {
                approval_request_id: "x".into(),
                approve: false,
                reason: None,
            }],
            ..ModelRequest::default()
        };
        assert!(matches!(build_request(&mcp), Err(Failure::Invalid(_))));
    }
}
