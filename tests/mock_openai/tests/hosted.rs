//! Hosted tools of the Responses API: the `hosted` reply kind, the default
//! `[[use_hosted]]` behaviour with MCP approvals, `has_hosted_tool`, and the
//! Chat 400. Shapes are checked as raw JSON and by deserializing into
//! async-openai 0.43's types (`Response`, `ResponseStreamEvent`).

mod common;

use async_openai::types::responses::{OutputItem, Response, ResponseStreamEvent};
use common::{post_json, sse_events, start};
use mock_openai::{
    HostedCallSpec, HostedKind, Match, MockConfig, MockServer, Reply, Rule, TINY_PNG_BASE64,
};
use serde_json::{Value, json};

macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => panic!("{} failed: {e}", stringify!($e)),
        }
    };
}

const MODEL: &str = "gpt-4.1-mini";

async fn responses(server: &MockServer, body: &Value) -> Value {
    let raw = ok!(post_json(server, "/v1/responses", body).await);
    assert_eq!(raw.status, 200, "{}", raw.text());
    let value = raw.json();
    // The whole response is a valid async-openai `Response`.
    let typed: Result<Response, _> = serde_json::from_value(value.clone());
    assert!(typed.is_ok(), "{typed:?}\n{value}");
    value
}

/// Streamed: the event types in order, and the final response.
async fn responses_streamed(server: &MockServer, body: &Value) -> (Vec<String>, Vec<Value>) {
    let mut body = body.clone();
    body["stream"] = json!(true);
    let raw = ok!(post_json(server, "/v1/responses", &body).await);
    assert_eq!(raw.status, 200, "{}", raw.text());
    let mut types = Vec::new();
    let mut datas = Vec::new();
    for (name, data) in sse_events(&raw.text()) {
        let value: Value = ok!(serde_json::from_str(&data));
        let typed: Result<ResponseStreamEvent, _> = serde_json::from_value(value.clone());
        assert!(typed.is_ok(), "{typed:?}\n{data}");
        assert_eq!(name.as_deref(), value["type"].as_str());
        types.push(value["type"].as_str().unwrap_or_default().to_owned());
        datas.push(value);
    }
    let seqs: Vec<u64> = datas
        .iter()
        .filter_map(|d| d["sequence_number"].as_u64())
        .collect();
    assert_eq!(seqs, (0..datas.len() as u64).collect::<Vec<_>>());
    (types, datas)
}

fn output_types(response: &Value) -> Vec<String> {
    response["output"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn hosted_rule(spec: HostedCallSpec) -> Rule {
    Rule::new(Reply::hosted([spec], Some("Done.")))
}

/// The event subsequence expected for one hosted item.
fn progress(kind: HostedKind) -> Vec<&'static str> {
    match kind {
        HostedKind::WebSearch => vec![
            "response.web_search_call.in_progress",
            "response.web_search_call.searching",
            "response.web_search_call.completed",
        ],
        HostedKind::FileSearch => vec![
            "response.file_search_call.in_progress",
            "response.file_search_call.searching",
            "response.file_search_call.completed",
        ],
        HostedKind::CodeInterpreter => vec![
            "response.code_interpreter_call.in_progress",
            "response.code_interpreter_call_code.delta",
            "response.code_interpreter_call_code.done",
            "response.code_interpreter_call.interpreting",
            "response.code_interpreter_call.completed",
        ],
        HostedKind::ImageGeneration => vec![
            "response.image_generation_call.in_progress",
            "response.image_generation_call.generating",
            "response.image_generation_call.completed",
        ],
        HostedKind::Mcp => vec![
            "response.mcp_call.in_progress",
            "response.mcp_call_arguments.delta",
            "response.mcp_call_arguments.done",
            "response.mcp_call.completed",
        ],
        HostedKind::McpListTools => vec![
            "response.mcp_list_tools.in_progress",
            "response.mcp_list_tools.completed",
        ],
        HostedKind::McpApprovalRequest => vec![],
    }
}

fn check_item(kind: HostedKind, item: &Value) {
    let id = item["id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{item}");
    match kind {
        HostedKind::WebSearch => {
            assert_eq!(item["type"], "web_search_call");
            assert_eq!(item["status"], "completed");
            assert_eq!(item["action"]["type"], "search");
            assert_eq!(item["action"]["query"], "weather in Paris");
        }
        HostedKind::FileSearch => {
            assert_eq!(item["type"], "file_search_call");
            assert_eq!(item["status"], "completed");
            assert_eq!(item["queries"], json!(["weather in Paris"]));
        }
        HostedKind::CodeInterpreter => {
            assert_eq!(item["type"], "code_interpreter_call");
            assert_eq!(item["status"], "completed");
            assert_eq!(item["code"], "print(6*7)");
            assert_eq!(item["outputs"], json!([{"type": "logs", "logs": "42\n"}]));
            assert!(item["container_id"].is_string());
        }
        HostedKind::ImageGeneration => {
            assert_eq!(item["type"], "image_generation_call");
            assert_eq!(item["status"], "completed");
            let result = item["result"].as_str().unwrap_or_default();
            assert_eq!(result, TINY_PNG_BASE64);
            // base64 of the PNG signature \x89PNG\r\n\x1a\n
            assert!(result.starts_with("iVBORw0KGgo"));
        }
        HostedKind::Mcp => {
            assert_eq!(item["type"], "mcp_call");
            assert_eq!(item["status"], "completed");
            assert_eq!(item["server_label"], "deepwiki");
            assert_eq!(item["name"], "ask_question");
            assert_eq!(item["arguments"], "{\"q\":\"x\"}");
            assert_eq!(item["output"], "an answer");
        }
        HostedKind::McpListTools => {
            assert_eq!(item["type"], "mcp_list_tools");
            assert_eq!(item["server_label"], "deepwiki");
            assert_eq!(item["tools"][0]["name"], "ask_question");
            assert!(item["tools"][0]["input_schema"].is_object());
        }
        HostedKind::McpApprovalRequest => {
            assert_eq!(item["type"], "mcp_approval_request");
            assert_eq!(item["name"], "ask_question");
        }
    }
}

fn spec(kind: HostedKind) -> HostedCallSpec {
    let base = HostedCallSpec::new(kind);
    match kind {
        HostedKind::CodeInterpreter => base.code("print(6*7)").output("42\n"),
        HostedKind::Mcp => base
            .mcp_tool("deepwiki", "ask_question")
            .arguments(json!({"q": "x"}))
            .output("an answer"),
        HostedKind::McpListTools | HostedKind::McpApprovalRequest => {
            base.mcp_tool("deepwiki", "ask_question")
        }
        _ => base,
    }
}

#[tokio::test]
async fn each_hosted_kind_streamed_and_not() {
    let kinds = [
        HostedKind::WebSearch,
        HostedKind::FileSearch,
        HostedKind::CodeInterpreter,
        HostedKind::ImageGeneration,
        HostedKind::Mcp,
        HostedKind::McpListTools,
        HostedKind::McpApprovalRequest,
    ];
    for kind in kinds {
        let server = start(MockConfig::default().with_rule(hosted_rule(spec(kind)))).await;
        let body = json!({"model": MODEL, "input": "weather in Paris"});
        let response = responses(&server, &body).await;
        let items = response["output"].as_array().cloned().unwrap_or_default();
        assert_eq!(items.len(), 2, "{response}");
        check_item(kind, &items[0]);
        assert_eq!(items[1]["type"], "message");
        assert_eq!(items[1]["content"][0]["text"], "Done.");
        let typed: Response = ok!(serde_json::from_value(response.clone()));
        let is_kind = matches!(
            (&typed.output[0], kind),
            (OutputItem::WebSearchCall(_), HostedKind::WebSearch)
                | (OutputItem::FileSearchCall(_), HostedKind::FileSearch)
                | (
                    OutputItem::CodeInterpreterCall(_),
                    HostedKind::CodeInterpreter
                )
                | (
                    OutputItem::ImageGenerationCall(_),
                    HostedKind::ImageGeneration
                )
                | (OutputItem::McpCall(_), HostedKind::Mcp)
                | (OutputItem::McpListTools(_), HostedKind::McpListTools)
                | (
                    OutputItem::McpApprovalRequest(_),
                    HostedKind::McpApprovalRequest
                )
        );
        assert!(is_kind, "{kind:?}: {:?}", typed.output[0]);

        let (types, datas) = responses_streamed(&server, &body).await;
        let mut expected = vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
        ];
        expected.extend(progress(kind));
        expected.push("response.output_item.done");
        expected.extend(["response.output_item.added", "response.content_part.added"]);
        let mut deduped: Vec<&str> = Vec::new();
        for t in &types {
            if deduped.last() != Some(&t.as_str()) {
                deduped.push(t);
            }
        }
        assert_eq!(&deduped[..expected.len()], &expected[..], "{kind:?}");
        assert_eq!(types.last().map(String::as_str), Some("response.completed"));
        // The announced item is in progress, the done one complete; every
        // progress event names the item and its index.
        let added = &datas[2]["item"];
        let done = datas
            .iter()
            .find(|d| d["type"] == "response.output_item.done")
            .map(|d| d["item"].clone())
            .unwrap_or_default();
        check_item(kind, &done);
        if kind != HostedKind::McpApprovalRequest && kind != HostedKind::McpListTools {
            assert_eq!(added["status"], "in_progress");
        }
        for d in &datas {
            let t = d["type"].as_str().unwrap_or_default();
            if progress(kind).contains(&t) {
                assert_eq!(d["item_id"], done["id"]);
                assert_eq!(d["output_index"], 0);
            }
        }
        let completed = &datas[datas.len() - 1]["response"];
        assert_eq!(
            output_types(completed),
            vec![done["type"].as_str().unwrap_or_default(), "message"]
        );
        ok!(server.shutdown().await);
    }
}

fn hosted_tools(mcp_approval: Option<&str>) -> Value {
    let mut mcp = json!({"type": "mcp", "server_label": "deepwiki",
        "server_url": "https://mcp.deepwiki.com/mcp", "allowed_tools": ["ask_question"]});
    if let Some(a) = mcp_approval {
        mcp["require_approval"] = json!(a);
    }
    json!([
        {"type": "web_search_preview"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "code_interpreter", "container": {"type": "auto"}},
        {"type": "image_generation"},
        mcp,
        {"type": "function", "name": "f", "parameters": {"type": "object"}}
    ])
}

#[tokio::test]
async fn default_use_hosted_answers_one_item_per_hosted_tool() {
    let server = start(MockConfig::default()).await;
    let body = json!({"model": MODEL, "instructions": "Research. [[use_hosted]]",
        "input": "weather in Paris", "tools": hosted_tools(Some("never"))});
    let response = responses(&server, &body).await;
    assert_eq!(
        output_types(&response),
        vec![
            "web_search_call",
            "file_search_call",
            "code_interpreter_call",
            "image_generation_call",
            "mcp_call",
            "message"
        ]
    );
    assert_eq!(response["output"][4]["server_label"], "deepwiki");
    assert_eq!(response["output"][4]["name"], "ask_question");
    assert!(
        response["output"][5]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("reply "))
    );
    let (types, _) = responses_streamed(&server, &body).await;
    for t in [
        "response.web_search_call.searching",
        "response.file_search_call.searching",
        "response.code_interpreter_call.interpreting",
        "response.image_generation_call.generating",
        "response.mcp_call.completed",
        "response.output_text.delta",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing: {types:?}");
    }
    assert_eq!(server.stats().hosted_replies, 2);
    // Without the marker: the usual default text.
    let plain = json!({"model": MODEL, "input": "weather", "tools": hosted_tools(None)});
    assert_eq!(
        output_types(&responses(&server, &plain).await),
        vec!["message"]
    );
}

#[tokio::test]
async fn default_mcp_approval_flow() {
    let server = start(MockConfig::default()).await;
    for approval in [None, Some("always")] {
        let tools = json!([{"type": "mcp", "server_label": "deepwiki",
            "server_url": "https://x", "require_approval": approval}]);
        let mut tools = tools;
        if approval.is_none()
            && let Some(t) = tools[0].as_object_mut()
        {
            t.remove("require_approval");
        }
        let first = json!({"model": MODEL, "input": "ask [[use_hosted]]", "tools": tools});
        let response = responses(&server, &first).await;
        assert_eq!(output_types(&response), vec!["mcp_approval_request"]);
        let request_id = response["output"][0]["id"].as_str().unwrap_or_default();
        assert!(!request_id.is_empty());
        assert_eq!(response["output"][0]["server_label"], "deepwiki");

        for approve in [true, false] {
            let next = json!({"model": MODEL, "tools": tools, "input": [
                {"role": "user", "content": "ask [[use_hosted]]"},
                response["output"][0],
                {"type": "mcp_approval_response", "approval_request_id": request_id,
                 "approve": approve}]});
            let answer = responses(&server, &next).await;
            if approve {
                assert_eq!(output_types(&answer), vec!["mcp_call", "message"]);
                assert_eq!(answer["output"][0]["approval_request_id"], request_id);
                assert_eq!(answer["output"][0]["status"], "completed");
            } else {
                assert_eq!(output_types(&answer), vec!["message"]);
            }
            let (types, _) = responses_streamed(&server, &next).await;
            assert_eq!(
                types.iter().any(|t| t == "response.mcp_call.completed"),
                approve
            );
        }
    }
}

#[tokio::test]
async fn has_hosted_tool_condition() {
    let rule = Rule::new(Reply::text("searched"))
        .when(Match::any().has_hosted_tool("web_search"))
        .named("web");
    let mcp_rule = Rule::new(Reply::text("mcp"))
        .when(Match::any().has_hosted_tool("mcp"))
        .named("mcp");
    let server = start(MockConfig::default().with_rule(rule).with_rule(mcp_rule)).await;
    let text = |r: &Value| r["output"][0]["content"][0]["text"].clone();
    let body = json!({"model": MODEL, "input": "x", "tools": [{"type": "web_search_preview"}]});
    assert_eq!(text(&responses(&server, &body).await), "searched");
    let body = json!({"model": MODEL, "input": "x",
        "tools": [{"type": "mcp", "server_label": "a", "server_url": "https://a"}]});
    assert_eq!(text(&responses(&server, &body).await), "mcp");
    let body = json!({"model": MODEL, "input": "x",
        "tools": [{"type": "function", "name": "web_search", "parameters": {}}]});
    assert!(
        text(&responses(&server, &body).await)
            .as_str()
            .is_some_and(|t| t.starts_with("reply "))
    );
    // JSON form.
    let config = ok!(MockConfig::from_json(
        r#"[{"match": {"has_hosted_tool": "code_interpreter"},
             "reply": {"hosted": [{"type": "code_interpreter", "code": "1+1"}], "text": "2"}}]"#
    ));
    assert_eq!(
        config.rules[0].matcher.has_hosted_tool.as_deref(),
        Some("code_interpreter")
    );
    assert!(matches!(&config.rules[0].reply, Reply::Hosted(h) if h.hosted.len() == 1));
}

#[tokio::test]
async fn chat_rejects_hosted_tools_like_openai() {
    let server = start(MockConfig::default()).await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}, {"type": "web_search"}]});
    let raw = ok!(post_json(&server, "/v1/chat/completions", &body).await);
    assert_eq!(raw.status, 400);
    let error = &raw.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], "tools[1].type");
    assert_eq!(error["code"], "invalid_value");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("'web_search'"))
    );
    // A hosted reply matched by a Chat request gives its text.
    let server = start(
        MockConfig::default().with_rule(hosted_rule(HostedCallSpec::new(HostedKind::WebSearch))),
    )
    .await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}]});
    let raw = ok!(post_json(&server, "/v1/chat/completions", &body).await);
    assert_eq!(raw.json()["choices"][0]["message"]["content"], "Done.");
}

#[test]
fn hosted_reply_json_round_trip() {
    let reply = Reply::hosted(
        [
            HostedCallSpec::new(HostedKind::WebSearch).query("q"),
            spec(HostedKind::Mcp),
        ],
        Some("t"),
    );
    let text = ok!(serde_json::to_string(&reply));
    let value: Value = ok!(serde_json::from_str(&text));
    assert_eq!(value["hosted"][0]["type"], "web_search");
    assert_eq!(value["text"], "t");
    let back: Reply = ok!(serde_json::from_str(&text));
    assert_eq!(back, reply);
    assert!(serde_json::from_str::<Reply>(r#"{"hosted": [{"type": "nope"}]}"#).is_err());
    assert!(serde_json::from_str::<Reply>(r#"{"hosted": [], "txt": "x"}"#).is_err());
    assert!(serde_json::from_str::<Reply>(r#"{"text": "x"}"#).is_ok());
}
