//! What `host` sends is what the official SDK sends: the peer workflow
//! (`examples/peer_workflow`, the same workflow as
//! `../shared/peer/workflow_bench.py`) runs against the mock over both APIs,
//! and every request body the mock logged equals, modulo ids, the body the
//! OpenAI Agents Python SDK sent for the same step
//! (`tests/mock_openai/tests/data/workflow_requests_*.jsonl`, captured from
//! the peer).
//!
//! The one documented difference: a replayed function call input item
//! carries no `id` and `status` (the SDK echoes the output item's); both are
//! optional in OpenAI's schema (the SDK's own `ResponseFunctionToolCallParam`
//! requires only `type`, `call_id`, `name` and `arguments`), and OpenAI's
//! API accepts the item without them. See docs/PROVIDERS.md.

use serde_json::{Value, json};
use std::path::PathBuf;

/// The peer's captured bodies for `api`, keyed by their instructions.
fn captured(api: &str) -> Vec<Value> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/mock_openai/tests/data")
        .join(format!("workflow_requests_{api}.jsonl"));
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (_, body) = line.split_once(' ').expect("`PATH BODY` lines");
            serde_json::from_str(body).expect("a JSON body")
        })
        .collect()
}

/// The peer workflow's spec with its `openai` provider pointed at `base`.
fn peer_spec(base: &str, api: &str) -> Value {
    let path = e2e::repo_root().join("examples/peer_workflow/spec.json");
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(path).expect("peer spec")).expect("JSON");
    spec["providers"]["openai"] = json!({
        "type": "openai_compatible", "base_url": base, "api": api,
        "api_key_env": "MOCK_API_KEY", "timeout_ms": 10000
    });
    spec["providers"]
        .as_object_mut()
        .expect("providers")
        .remove("offline");
    spec
}

/// A request's identity: its instructions and whether it carries a tool
/// result (researcher_2 asks twice).
fn identity(body: &Value) -> (String, bool) {
    let instructions = body["instructions"]
        .as_str()
        .or_else(|| body["messages"][0]["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    let text = body.to_string();
    (
        instructions,
        text.contains("function_call_output") || text.contains("\"role\":\"tool\""),
    )
}

/// Ids differ between runs (the mock's call ids, the SDK's item ids) and
/// the tool's output text depends on its implementation; neither is wire
/// shape. The documented difference (`id`/`status` on replayed calls) is
/// removed from the SDK's side.
fn normalize(mut body: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                let replayed_call =
                    map.get("type").and_then(Value::as_str) == Some("function_call");
                if replayed_call {
                    map.remove("id");
                    map.remove("status");
                }
                // The mock generated the arguments; their key order is its own.
                if let Some(Value::String(args)) = map.get("arguments")
                    && let Ok(parsed) = serde_json::from_str::<Value>(args)
                {
                    map.insert("arguments".into(), parsed);
                }
                for key in ["call_id", "tool_call_id", "id"] {
                    if map.get(key).is_some_and(Value::is_string) {
                        map.insert(key.into(), json!("<id>"));
                    }
                }
                for (key, value) in map.iter_mut() {
                    if key == "output" || (key == "content" && value.is_string()) {
                        // The tool result's text.
                        if let Some(s) = value.as_str()
                            && s.starts_with("facts[")
                        {
                            *value = json!("<tool output>");
                        }
                    }
                    walk(value);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut body);
    body
}

async fn sent_equals_captured(api: &str) {
    let cx = e2e::test_context!(json!({})).await;
    let path = cx.write_spec(&peer_spec(&cx.mock().base_url(), api));
    let ran = cx
        .host()
        .arg("run")
        .arg(&path)
        .arg("--plugins")
        .arg(e2e::plugins_dir())
        .ran()
        .await;
    assert!(ran.out.status.success(), "{}", ran.stderr);
    let sent: Vec<Value> = cx
        .mock()
        .requests()
        .into_iter()
        .filter_map(|r| r.body)
        .collect();
    let mut expected = captured(api);
    assert_eq!(sent.len(), expected.len(), "requests: {sent:#?}");
    for body in sent {
        let id = identity(&body);
        let at = expected
            .iter()
            .position(|e| identity(e) == id)
            .unwrap_or_else(|| panic!("the SDK sent no request like {body}"));
        let want = normalize(expected.remove(at));
        let got = normalize(body);
        assert_eq!(
            got,
            want,
            "{api}: host sent\n{}\nthe SDK sent\n{}",
            serde_json::to_string_pretty(&got).unwrap_or_default(),
            serde_json::to_string_pretty(&want).unwrap_or_default()
        );
    }
}

#[tokio::test]
async fn responses_bodies_equal_the_sdks() {
    sent_equals_captured("responses").await;
}

#[tokio::test]
async fn chat_bodies_equal_the_sdks() {
    sent_equals_captured("chat").await;
}
