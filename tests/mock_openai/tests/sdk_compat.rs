//! The mock against async-openai 0.43 as a real client: every reply and every
//! stream event must deserialize into its typed structs.

mod common;

use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessageArgs,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessageArgs,
    ChatCompletionRequestToolMessageArgs, ChatCompletionRequestUserMessageArgs,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionTools,
    CreateChatCompletionRequestArgs, FinishReason, FunctionObject,
    ResponseFormat as ChatResponseFormat, ResponseFormatJsonSchema,
};
use async_openai::types::responses::{
    CreateResponseArgs, FunctionTool, InputItem, InputParam, OutputItem, ResponseStreamEvent,
    ResponseTextParam, Status, TextResponseFormatConfiguration, Tool,
};
use common::{API_KEY, client, start};
use futures::StreamExt;
use mock_openai::{ApprovalMatch, Match, McpApprovalSpec, MockConfig, Reply, Rule, ToolCallSpec};
use serde_json::{Value, json};

const MODEL: &str = "gpt-4.1-mini";

fn lookup_params() -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["query", "limit"],
           "properties": {"query": {"type": "string", "description": "what to look up."},
                          "limit": {"type": "integer"}}})
}

fn report_schema() -> Value {
    json!({"type": "object", "additionalProperties": false,
           "required": ["title", "summary", "key_points", "confidence", "level"],
           "properties": {"title": {"type": "string"}, "summary": {"type": "string"},
                          "key_points": {"type": "array", "items": {"type": "string"}},
                          "confidence": {"type": "number"},
                          "level": {"type": "string", "enum": ["low", "high"]}}})
}

fn responses_tool() -> Tool {
    Tool::Function(FunctionTool {
        name: "lookup_facts".into(),
        parameters: Some(lookup_params()),
        strict: Some(true),
        description: Some("Look up facts.".into()),
        ..Default::default()
    })
}

fn chat_tool() -> ChatCompletionTools {
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject {
            name: "lookup_facts".into(),
            description: Some("Look up facts.".into()),
            parameters: Some(lookup_params()),
            strict: Some(true),
        },
    })
}

fn item(value: Value) -> InputItem {
    match serde_json::from_value(value) {
        Ok(i) => i,
        Err(e) => panic!("bad input item: {e}"),
    }
}

macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {e}", stringify!($e)),
        }
    };
}

#[tokio::test]
async fn responses_create_default_text() {
    let server = start(MockConfig::default()).await;
    let request = ok!(CreateResponseArgs::default()
        .model(MODEL)
        .instructions("Be brief.")
        .input("topic #0")
        .build());
    let response = ok!(client(&server).responses().create(request).await);
    assert_eq!(response.status, Status::Completed);
    assert_eq!(response.model, MODEL);
    assert_eq!(
        response.output_text().as_deref(),
        Some("reply 0ef48f27d74c5551")
    );
    assert_eq!(
        response.output_text(),
        Some(mock_openai::default_text("topic #0"))
    );
    let usage = response
        .usage
        .as_ref()
        .map(|u| (u.input_tokens, u.output_tokens));
    assert!(matches!(usage, Some((i, o)) if i > 0 && o > 0), "{usage:?}");

    let log = server.requests();
    assert_eq!(log.len(), 1);
    assert!(log[0].has_authorization);
    assert_eq!(log[0].auth_scheme.as_deref(), Some("Bearer"));
    assert_eq!(log[0].path, "/v1/responses");
    let dumped = ok!(serde_json::to_string(&log));
    assert!(
        !dumped.contains(API_KEY),
        "the API key must never be logged"
    );
    assert_eq!(
        log[0].body.as_ref().and_then(|b| b.get("input")),
        Some(&json!("topic #0"))
    );
    let stats = server.stats();
    assert_eq!((stats.requests, stats.responses, stats.streamed), (1, 1, 0));
    assert_eq!(stats.per_model.get(MODEL), Some(&1));
    ok!(server.shutdown().await);
}

#[tokio::test]
async fn responses_stream_text_events() {
    let server = start(MockConfig::default()).await;
    let request = ok!(CreateResponseArgs::default()
        .model(MODEL)
        .input("stream me, with ünïcödé")
        .build());
    let mut stream = ok!(common::responses_stream(&client(&server), request).await);
    let mut kinds = Vec::new();
    let mut deltas = String::new();
    let mut seqs = Vec::new();
    let mut final_text = None;
    while let Some(event) = stream.next().await {
        let event = ok!(event);
        match &event {
            ResponseStreamEvent::ResponseCreated(e) => seqs.push(e.sequence_number),
            ResponseStreamEvent::ResponseInProgress(e) => seqs.push(e.sequence_number),
            ResponseStreamEvent::ResponseOutputItemAdded(e) => seqs.push(e.sequence_number),
            ResponseStreamEvent::ResponseContentPartAdded(e) => seqs.push(e.sequence_number),
            ResponseStreamEvent::ResponseOutputTextDelta(e) => {
                seqs.push(e.sequence_number);
                deltas.push_str(&e.delta);
            }
            ResponseStreamEvent::ResponseOutputTextDone(e) => seqs.push(e.sequence_number),
            ResponseStreamEvent::ResponseContentPartDone(e) => seqs.push(e.sequence_number),
            ResponseStreamEvent::ResponseOutputItemDone(e) => seqs.push(e.sequence_number),
            ResponseStreamEvent::ResponseCompleted(e) => {
                seqs.push(e.sequence_number);
                final_text = e.response.output_text();
                assert!(e.response.usage.is_some());
            }
            other => panic!("unexpected event {other:?}"),
        }
        kinds.push(
            serde_json::to_value(&event)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned)),
        );
    }
    let expected = mock_openai::default_text("stream me, with ünïcödé");
    assert_eq!(deltas, expected);
    assert_eq!(final_text.as_deref(), Some(expected.as_str()));
    let expected_seqs: Vec<u64> = (0..u64::try_from(seqs.len()).unwrap_or(0)).collect();
    assert_eq!(seqs, expected_seqs);
    let kinds: Vec<String> = kinds.into_iter().flatten().collect();
    assert_eq!(kinds.first().map(String::as_str), Some("response.created"));
    assert_eq!(kinds.last().map(String::as_str), Some("response.completed"));
    assert!(
        kinds
            .iter()
            .filter(|k| *k == "response.output_text.delta")
            .count()
            >= 2
    );
    let stats = server.stats();
    assert_eq!(
        (stats.responses, stats.responses_stream, stats.streamed),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn chat_create_and_stream() {
    let server = start(MockConfig::default()).await;
    let openai = client(&server);
    let messages: Vec<ChatCompletionRequestMessage> = vec![
        ok!(ChatCompletionRequestSystemMessageArgs::default()
            .content("You are terse.")
            .build())
        .into(),
        ok!(ChatCompletionRequestUserMessageArgs::default()
            .content("hello chat")
            .build())
        .into(),
    ];
    let request = ok!(CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(messages.clone())
        .build());
    let response = ok!(openai.chat().create(request).await);
    let choice = &response.choices[0];
    let expected = mock_openai::default_text("hello chat");
    assert_eq!(choice.message.content.as_deref(), Some(expected.as_str()));
    assert_eq!(choice.finish_reason, Some(FinishReason::Stop));
    assert!(response.usage.as_ref().is_some_and(|u| u.prompt_tokens > 0));

    let request = ok!(CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(messages)
        .stream_options(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        })
        .build());
    let mut stream = ok!(common::chat_stream(&openai, request).await);
    let mut text = String::new();
    let mut finish = None;
    let mut usage = None;
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = ok!(chunk);
        chunks += 1;
        for choice in &chunk.choices {
            if let Some(c) = &choice.delta.content {
                text.push_str(c);
            }
            if choice.finish_reason.is_some() {
                finish = choice.finish_reason;
            }
        }
        if let Some(u) = chunk.usage {
            assert!(chunk.choices.is_empty());
            usage = Some(u);
        }
    }
    assert_eq!(text, expected);
    assert_eq!(finish, Some(FinishReason::Stop));
    assert!(usage.is_some_and(|u| u.total_tokens == u.prompt_tokens + u.completion_tokens));
    assert!(chunks >= 4);
    let stats = server.stats();
    assert_eq!((stats.chat, stats.chat_stream), (2, 1));
}

#[tokio::test]
async fn models_list() {
    let server = start(MockConfig::default()).await;
    let models = ok!(client(&server).models().list().await);
    assert!(models.data.iter().any(|m| m.id == MODEL));
    assert_eq!(server.stats().models, 1);
}

#[tokio::test]
async fn responses_tool_round_trip() {
    let server = start(MockConfig::default()).await;
    let openai = client(&server);
    let instructions = "Always consult lookup_facts first. [[use_tool]]";
    let request = ok!(CreateResponseArgs::default()
        .model(MODEL)
        .instructions(instructions)
        .input("what about cats?")
        .tools(vec![responses_tool()])
        .build());
    let first = ok!(openai.responses().create(request).await);
    let Some(OutputItem::FunctionCall(call)) = first.output.first().cloned() else {
        panic!("expected a function call, got {:?}", first.output);
    };
    assert_eq!(call.name, "lookup_facts");
    let args: Value = ok!(serde_json::from_str(&call.arguments));
    assert!(
        args["query"].is_string() && args["limit"].is_i64(),
        "{args}"
    );
    assert_eq!(
        args,
        mock_openai::default_tool_arguments(&lookup_params(), "what about cats?")
    );

    // Second turn: replay the call and give its output.
    let input = vec![
        item(json!({"role": "user", "content": "what about cats?"})),
        InputItem::from(OutputItem::FunctionCall(call.clone())),
        item(
            json!({"type": "function_call_output", "call_id": call.call_id, "output": "cats purr"}),
        ),
    ];
    let request = ok!(CreateResponseArgs::default()
        .model(MODEL)
        .instructions(instructions)
        .input(InputParam::Items(input))
        .tools(vec![responses_tool()])
        .build());
    let second = ok!(openai.responses().create(request).await);
    assert_eq!(
        second.output_text(),
        Some(mock_openai::default_text("what about cats?"))
    );

    // The same first turn, streamed: function-call argument events.
    let request = ok!(CreateResponseArgs::default()
        .model(MODEL)
        .instructions(instructions)
        .input("what about cats?")
        .tools(vec![responses_tool()])
        .build());
    let mut stream = ok!(common::responses_stream(&openai, request).await);
    let mut args_delta = String::new();
    let mut done_args = None;
    let mut completed = false;
    while let Some(event) = stream.next().await {
        match ok!(event) {
            ResponseStreamEvent::ResponseFunctionCallArgumentsDelta(e) => {
                args_delta.push_str(&e.delta);
            }
            ResponseStreamEvent::ResponseFunctionCallArgumentsDone(e) => {
                assert_eq!(e.name.as_deref(), Some("lookup_facts"));
                done_args = Some(e.arguments);
            }
            ResponseStreamEvent::ResponseCompleted(e) => {
                completed = true;
                assert!(matches!(
                    e.response.output.first(),
                    Some(OutputItem::FunctionCall(_))
                ));
            }
            _ => {}
        }
    }
    assert!(completed);
    assert_eq!(done_args.as_deref(), Some(args_delta.as_str()));
    assert_eq!(ok!(serde_json::from_str::<Value>(&args_delta)), args);
    assert_eq!(server.stats().tool_calls, 2);
}

#[tokio::test]
async fn chat_tool_round_trip() {
    let server = start(MockConfig::default()).await;
    let openai = client(&server);
    let system: ChatCompletionRequestMessage =
        ok!(ChatCompletionRequestSystemMessageArgs::default()
            .content("Use tools. [[use_tool]]")
            .build())
        .into();
    let user: ChatCompletionRequestMessage = ok!(ChatCompletionRequestUserMessageArgs::default()
        .content("facts about dogs")
        .build())
    .into();
    let request = ok!(CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(vec![system.clone(), user.clone()])
        .tools(vec![chat_tool()])
        .build());
    let first = ok!(openai.chat().create(request).await);
    let choice = &first.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    let calls = choice.message.tool_calls.clone().unwrap_or_default();
    let Some(ChatCompletionMessageToolCalls::Function(call)) = calls.first().cloned() else {
        panic!("expected a function tool call: {:?}", choice.message);
    };
    assert_eq!(call.function.name, "lookup_facts");
    let args: Value = ok!(serde_json::from_str(&call.function.arguments));
    assert_eq!(
        args,
        mock_openai::default_tool_arguments(&lookup_params(), "facts about dogs")
    );

    let assistant: ChatCompletionRequestMessage =
        ok!(ChatCompletionRequestAssistantMessageArgs::default()
            .tool_calls(calls.clone())
            .build())
        .into();
    let tool: ChatCompletionRequestMessage = ok!(ChatCompletionRequestToolMessageArgs::default()
        .tool_call_id(call.id.clone())
        .content("dogs bark")
        .build())
    .into();
    let request = ok!(CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(vec![system.clone(), user.clone(), assistant, tool])
        .tools(vec![chat_tool()])
        .build());
    let second = ok!(openai.chat().create(request).await);
    assert_eq!(
        second.choices[0].message.content,
        Some(mock_openai::default_text("facts about dogs"))
    );

    // Streamed tool call: id + name first, then argument pieces.
    let request = ok!(CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(vec![system, user])
        .tools(vec![chat_tool()])
        .build());
    let mut stream = ok!(common::chat_stream(&openai, request).await);
    let mut name = None;
    let mut streamed_args = String::new();
    let mut finish = None;
    while let Some(chunk) = stream.next().await {
        for choice in ok!(chunk).choices {
            for tc in choice.delta.tool_calls.unwrap_or_default() {
                if let Some(f) = tc.function {
                    if f.name.is_some() {
                        name = f.name;
                    }
                    streamed_args.push_str(f.arguments.as_deref().unwrap_or(""));
                }
            }
            if choice.finish_reason.is_some() {
                finish = choice.finish_reason;
            }
        }
    }
    assert_eq!(name.as_deref(), Some("lookup_facts"));
    assert_eq!(ok!(serde_json::from_str::<Value>(&streamed_args)), args);
    assert_eq!(finish, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn structured_output_both_apis() {
    let server = start(MockConfig::default()).await;
    let openai = client(&server);
    let format = ResponseFormatJsonSchema {
        name: "Report".into(),
        description: None,
        schema: report_schema(),
        strict: Some(true),
    };
    let request = ok!(CreateResponseArgs::default()
        .model(MODEL)
        .input("notes")
        .text(ResponseTextParam {
            format: TextResponseFormatConfiguration::JsonSchema(format.clone()),
            verbosity: None,
        })
        .build());
    let response = ok!(openai.responses().create(request).await);
    let text = response.output_text().unwrap_or_default();
    let report: Value = ok!(serde_json::from_str(&text));
    for key in ["title", "summary"] {
        assert!(report[key].is_string(), "{report}");
    }
    assert_eq!(report["key_points"].as_array().map(Vec::len), Some(1));
    assert!(report["confidence"].is_number());
    assert_eq!(report["level"], "low");
    assert_eq!(report, mock_openai::default_json(&report_schema(), "notes"));

    let messages: Vec<ChatCompletionRequestMessage> = vec![
        ok!(ChatCompletionRequestUserMessageArgs::default()
            .content("notes")
            .build())
        .into(),
    ];
    let request = ok!(CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .messages(messages)
        .response_format(ChatResponseFormat::JsonSchema {
            json_schema: format
        })
        .build());
    let response = ok!(openai.chat().create(request).await);
    let text = response.choices[0]
        .message
        .content
        .clone()
        .unwrap_or_default();
    let chat_report: Value = ok!(serde_json::from_str(&text));
    assert_eq!(chat_report, report);
    assert_eq!(server.stats().structured, 2);
}

#[tokio::test]
async fn scripted_rules_multi_tool_calls_and_mcp_approval() {
    let config = MockConfig::default()
        .with_rule(
            Rule::new(Reply::text("all tools done"))
                .named("after-weather")
                .when(Match::any().tool_result_for("get_weather")),
        )
        .with_rule(
            Rule::new(Reply::ToolCalls(vec![
                ToolCallSpec::new("get_weather", json!({"city": "Paris"})),
                ToolCallSpec::new("get_time", json!({"tz": "CET"})),
            ]))
            .named("two-calls")
            .when(Match::any().user_contains("weather").has_tool_result(false)),
        )
        .with_rule(
            Rule::new(Reply::text("approved and ran"))
                .named("approved")
                .when(Match::any().mcp_approval(ApprovalMatch::Approved)),
        )
        .with_rule(
            Rule::new(Reply::McpApprovalRequest(McpApprovalSpec {
                server_label: "deepwiki".into(),
                name: "ask_question".into(),
                arguments: json!({"repo": "x/y"}),
                id: None,
            }))
            .named("needs-approval")
            .when(Match::any().model("mcp-model")),
        )
        .with_rule(
            Rule::new(Reply::text("second and third"))
                .named("counted")
                .when(Match::any().user_contains("count").after(1).times(2)),
        );
    let server = start(config).await;
    let openai = client(&server);

    let request = ok!(CreateResponseArgs::default()
        .model(MODEL)
        .input("weather please")
        .build());
    let first = ok!(openai.responses().create(request).await);
    let calls: Vec<_> = first
        .output
        .iter()
        .filter_map(|o| match o {
            OutputItem::FunctionCall(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].name, "get_time");
    assert_eq!(calls[0].arguments, r#"{"city":"Paris"}"#);
    // Outputs referencing only the call id: the mock resolves the name.
    let input = vec![
        item(
            json!({"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny"}),
        ),
        item(
            json!({"type": "function_call_output", "call_id": calls[1].call_id, "output": "noon"}),
        ),
    ];
    let request = ok!(CreateResponseArgs::default()
        .model(MODEL)
        .previous_response_id(first.id.clone())
        .input(InputParam::Items(input))
        .build());
    let second = ok!(openai.responses().create(request).await);
    assert_eq!(second.output_text().as_deref(), Some("all tools done"));

    // Hosted MCP approval round trip.
    let request = ok!(CreateResponseArgs::default()
        .model("mcp-model")
        .input("ask the wiki")
        .build());
    let approval = ok!(openai.responses().create(request).await);
    let Some(OutputItem::McpApprovalRequest(req)) = approval.output.first().cloned() else {
        panic!("expected an approval request: {:?}", approval.output);
    };
    assert_eq!(
        (req.server_label.as_str(), req.name.as_str()),
        ("deepwiki", "ask_question")
    );
    let request = ok!(
        CreateResponseArgs::default()
            .model("mcp-model")
            .previous_response_id(approval.id.clone())
            .input(InputParam::Items(vec![item(json!({
                "type": "mcp_approval_response", "approval_request_id": req.id, "approve": true}))]))
            .build()
    );
    let approved = ok!(openai.responses().create(request).await);
    assert_eq!(approved.output_text().as_deref(), Some("approved and ran"));

    // after/times counters: 1st default, 2nd and 3rd scripted, 4th default.
    let mut texts = Vec::new();
    for _ in 0..4 {
        let request = ok!(CreateResponseArgs::default()
            .model(MODEL)
            .input("count")
            .build());
        texts.push(ok!(openai.responses().create(request).await).output_text());
    }
    let default = Some(mock_openai::default_text("count"));
    let scripted = Some("second and third".to_owned());
    assert_eq!(
        texts,
        vec![default.clone(), scripted.clone(), scripted, default]
    );

    let hits = server.stats().rule_hits;
    assert_eq!(hits.get("two-calls"), Some(&1));
    assert_eq!(hits.get("after-weather"), Some(&1));
    assert_eq!(hits.get("needs-approval"), Some(&1));
    assert_eq!(hits.get("approved"), Some(&1));
    assert_eq!(hits.get("counted"), Some(&2));
    server.reset();
    assert_eq!(server.stats().requests, 0);
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn every_reply_kind_streams_through_async_openai() {
    let rule = |word: &str, reply: Reply| Rule::new(reply).when(Match::any().user_contains(word));
    let config = MockConfig::default()
        .with_rule(rule("kind-text", Reply::text("héllo wörld, streamed")))
        .with_rule(rule(
            "kind-calls",
            Reply::ToolCalls(vec![
                ToolCallSpec::new("a", json!({"x": 1})),
                ToolCallSpec::new("b", json!("not json, sent verbatim")),
            ]),
        ))
        .with_rule(rule(
            "kind-json",
            Reply::Json(json!({"k": [1, 2, {"z": null}]})),
        ))
        .with_rule(rule(
            "kind-approval",
            Reply::McpApprovalRequest(McpApprovalSpec {
                server_label: "srv".into(),
                name: "tool".into(),
                arguments: json!({}),
                id: Some("mcpr_fixed".into()),
            }),
        ));
    let server = start(config).await;
    let openai = client(&server);
    for word in [
        "kind-text",
        "kind-calls",
        "kind-json",
        "kind-approval",
        "kind-default",
    ] {
        let request = ok!(CreateResponseArgs::default()
            .model(MODEL)
            .input(word)
            .build());
        let mut stream = ok!(common::responses_stream(&openai, request).await);
        let mut completed = None;
        while let Some(event) = stream.next().await {
            if let ResponseStreamEvent::ResponseCompleted(e) = ok!(event) {
                completed = Some(e.response);
            }
        }
        let Some(response) = completed else {
            panic!("{word}: no response.completed");
        };
        // The streamed final response equals the non-streamed one, ids aside.
        let request = ok!(CreateResponseArgs::default()
            .model(MODEL)
            .input(word)
            .build());
        let plain = ok!(openai.responses().create(request).await);
        assert_eq!(response.output.len(), plain.output.len(), "{word}");
        assert_eq!(response.output_text(), plain.output_text(), "{word}");

        let messages: Vec<ChatCompletionRequestMessage> = vec![
            ok!(ChatCompletionRequestUserMessageArgs::default()
                .content(word)
                .build())
            .into(),
        ];
        let request = ok!(CreateChatCompletionRequestArgs::default()
            .model(MODEL)
            .messages(messages)
            .build());
        let mut stream = ok!(common::chat_stream(&openai, request).await);
        let mut finish = None;
        while let Some(chunk) = stream.next().await {
            for choice in ok!(chunk).choices {
                finish = choice.finish_reason.or(finish);
            }
        }
        let expected = if word == "kind-calls" {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        };
        assert_eq!(finish, Some(expected), "{word}");
    }
}
