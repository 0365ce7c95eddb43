//! `get_weather`: the current weather for a city from an HTTP API, sent
//! through `wasi:http` with `wstd`. The plugin holds no token and no
//! network of its own: the spec grants it hosts
//! (`plugins.weather.allowed_hosts`) and the host adds the API token to
//! requests to them (`plugins.weather.secrets`).
//!
//! Per-use config: `base_url` (default `https://api.weather.example`).

use guest_sdk::{CallContext, Entry, Plugin, ToolDefinition, Value, export_plugin, json};
use wstd::http::{Body, Client, Request};

struct Weather;

async fn get(url: &str) -> Result<Value, String> {
    let request = Request::get(url)
        .header("accept", "application/json")
        .body(Body::empty())
        .map_err(|e| format!("bad request: {e}"))?;
    let mut response = Client::new()
        .send(request)
        .await
        .map_err(|e| format!("the weather API is unreachable: {e:#}"))?;
    let status = response.status();
    let text = response
        .body_mut()
        .str_contents()
        .await
        .map_err(|e| format!("reading the weather API's answer failed: {e:#}"))?
        .to_owned();
    if !status.is_success() {
        return Err(format!("the weather API answered {status}: {text}"));
    }
    guest_sdk::serde_json::from_str(&text).map_err(|e| format!("the weather API sent no JSON: {e}"))
}

impl Plugin for Weather {
    fn entries() -> Vec<Entry> {
        vec![Entry::tool("get_weather", "current weather for a city")]
    }

    fn tool_definitions() -> Vec<ToolDefinition> {
        vec![ToolDefinition {
            name: "get_weather".into(),
            description: "Current weather (temperature in °C, conditions) for a city.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": false
            }),
        }]
    }

    fn invoke_tool(ctx: &CallContext, _name: &str, arguments: &Value) -> Result<Value, String> {
        let city = arguments.get("city").and_then(Value::as_str).unwrap_or("");
        let base = ctx
            .config
            .get("base_url")
            .and_then(Value::as_str)
            .unwrap_or("https://api.weather.example");
        let city: String = city
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        wstd::runtime::block_on(get(&format!(
            "{}/v1/weather?city={city}",
            base.trim_end_matches('/')
        )))
    }
}

export_plugin!(Weather);
