//! The spec document kept with a run, without its secret values.
//!
//! A run keeps the document it was started from (for `host resume` and
//! `host replay`). Some values in it may be secrets and are never stored in
//! clear: a Go request's `session.credentials.api_key` and
//! `callback.secret`, and the values of custom HTTP headers (a callback's
//! `headers`, a model's `extra_headers`, a hosted MCP server's `headers`:
//! `Authorization`, `api-key`, …), and of a model's `extra_query`
//! parameters (`?key=…`).
//! [`redact`] replaces each with [`REDACTED`] and lists where it did, so a
//! resume knows it needs the original document (see `host resume --spec`).
//! Header names stay.

use serde_json::Value;

/// What a secret value is replaced with.
pub const REDACTED: &str = "***";

/// A document fit to store, and the JSON paths of the values replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub doc: Value,
    pub paths: Vec<String>,
}

/// `doc` (a native spec or a Go request) with its secret values replaced.
pub fn redact(doc: &Value) -> Redacted {
    let mut doc = doc.clone();
    let mut paths = Vec::new();
    // Native: agents.<name>.model / .memory.model, run.callback[i].
    if let Some(agents) = doc.get_mut("agents").and_then(Value::as_object_mut) {
        for (name, agent) in agents.iter_mut() {
            let at = format!("$.agents.{name}");
            model(agent.get_mut("model"), &format!("{at}.model"), &mut paths);
            let memory = agent.get_mut("memory").and_then(|m| m.get_mut("model"));
            model(memory, &format!("{at}.memory.model"), &mut paths);
            each(agent.get_mut("hosted_tools"), |k, tool| {
                let at = format!("{at}.hosted_tools[{k}].headers");
                values(tool.get_mut("headers"), &at, &mut paths);
            });
        }
    }
    // An MCP server's literal headers (secrets belong in `headers_env`,
    // which holds variable names only; a value here may still be one).
    if let Some(servers) = doc.get_mut("mcp_servers").and_then(Value::as_object_mut) {
        for (name, server) in servers.iter_mut() {
            let at = format!("$.mcp_servers.{name}.headers");
            values(server.get_mut("headers"), &at, &mut paths);
        }
    }
    if let Some(callbacks) = doc
        .pointer_mut("/run/callback")
        .and_then(Value::as_array_mut)
    {
        for (i, callback) in callbacks.iter_mut().enumerate() {
            let at = format!("$.run.callback[{i}].headers");
            values(callback.get_mut("headers"), &at, &mut paths);
        }
    }
    // The Go request: workflow.agents[i].model, session.credentials, callback.
    if let Some(agents) = doc
        .pointer_mut("/workflow/agents")
        .and_then(Value::as_array_mut)
    {
        for (i, agent) in agents.iter_mut().enumerate() {
            let at = format!("$.workflow.agents[{i}]");
            model(agent.get_mut("model"), &format!("{at}.model"), &mut paths);
            each(agent.get_mut("tools"), |j, tool| {
                let headers = tool.get_mut("config").and_then(|c| c.get_mut("headers"));
                values(
                    headers,
                    &format!("{at}.tools[{j}].config.headers"),
                    &mut paths,
                );
            });
            each(agent.get_mut("mcp"), |k, mcp| {
                let headers = mcp.get_mut("additional").and_then(|c| c.get_mut("headers"));
                values(
                    headers,
                    &format!("{at}.mcp[{k}].additional.headers"),
                    &mut paths,
                );
            });
        }
    }
    if let Some(credentials) = doc.pointer_mut("/session/credentials") {
        one(
            credentials.get_mut("api_key"),
            "$.session.credentials.api_key",
            &mut paths,
        );
    }
    if let Some(callback) = doc.get_mut("callback") {
        one(callback.get_mut("secret"), "$.callback.secret", &mut paths);
        values(
            callback.get_mut("headers"),
            "$.callback.headers",
            &mut paths,
        );
    }
    Redacted { doc, paths }
}

/// A model object's `extra_headers` and `extra_query` (a model given as a
/// name has none): a query parameter may carry a key (`?key=…`).
fn model(model: Option<&mut Value>, at: &str, paths: &mut Vec<String>) {
    if let Some(model) = model.filter(|m| m.is_object()) {
        for field in ["extra_headers", "extra_query"] {
            values(model.get_mut(field), &format!("{at}.{field}"), paths);
        }
    }
}

/// `f(index, item)` for every item of an array.
fn each(array: Option<&mut Value>, mut f: impl FnMut(usize, &mut Value)) {
    if let Some(items) = array.and_then(Value::as_array_mut) {
        for (i, item) in items.iter_mut().enumerate() {
            f(i, item);
        }
    }
}

/// Every value of an object.
fn values(object: Option<&mut Value>, at: &str, paths: &mut Vec<String>) {
    if let Some(object) = object.and_then(Value::as_object_mut) {
        for (name, value) in object.iter_mut() {
            one(Some(value), &format!("{at}.{name}"), paths);
        }
    }
}

fn one(value: Option<&mut Value>, at: &str, paths: &mut Vec<String>) {
    if let Some(value) = value.filter(|v| !v.is_null()) {
        *value = Value::String(REDACTED.into());
        paths.push(at.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_go_names_stay() {
        let native = json!({
            "agents": {
                "a": {"model": {"name": "m", "extra_headers": {"api-key": "xh-1"}},
                      "memory": {"strategy": "summarize", "model": {"name": "m",
                          "extra_headers": {"X-Proxy-Token": "xh-2"}}}},
                "b": {"model": "gpt-4o"}
            },
            "plugins": {"concat": {"timeout_ms": 5}},
            "workflow": {"steps": [{"agent": "a",
                "input_mapper": {"plugin": "concat", "config": {"headers": true}}}]},
            "run": {"callback": [{"type": "http", "url": "http://x",
                "headers": {"Authorization": "Bearer cb-3"}}]}
        });
        let r = redact(&native);
        let text = r.doc.to_string();
        for secret in ["xh-1", "xh-2", "cb-3"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("api-key") && text.contains("Authorization"));
        assert_eq!(
            r.doc["workflow"], native["workflow"],
            "plugin config untouched"
        );
        assert_eq!(r.paths.len(), 3, "{:?}", r.paths);
        assert!(
            r.paths
                .contains(&"$.run.callback[0].headers.Authorization".to_string())
        );

        let go = json!({
            "query": "q",
            "session": {"session_id": "s", "credentials": {"user_id": "u", "account_id": "a",
                "api_key": "sk-4", "base_url": "http://b"}},
            "callback": {"target": "http://x", "secret": "hs-5", "headers": {"X-K": "h-6"}},
            "workflow": {"starting_agent": "a", "agents": [{"name": "a",
                "model": {"model": "m", "extra_headers": {"K": "xh-7"}},
                "tools": [{"type": "hosted_mcp", "config": {"server_url": "http://m",
                    "headers": {"Authorization": "Bearer mcp-8"}}}],
                "mcp": [{"address": "http://m", "additional": {"headers": {"X-Key": "mcp-9"}}}]}]}
        });
        let r = redact(&go);
        let text = r.doc.to_string();
        for secret in ["sk-4", "hs-5", "h-6", "xh-7", "mcp-8", "mcp-9"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(r.doc["session"]["credentials"]["base_url"], "http://b");
        assert_eq!(r.paths.len(), 6, "{:?}", r.paths);
        assert!(
            r.paths
                .contains(&"$.workflow.agents[0].mcp[0].additional.headers.X-Key".to_string())
        );
        let native = json!({"agents": {"a": {"hosted_tools": [{"type": "mcp",
            "headers": {"Authorization": "Bearer mcp-10"}}]}}});
        let r = redact(&native);
        assert!(!r.doc.to_string().contains("mcp-10"));
        assert_eq!(
            r.paths,
            ["$.agents.a.hosted_tools[0].headers.Authorization"]
        );
        assert!(redact(&json!({"workflow": {}})).paths.is_empty());
    }
}
