//! The Go runner's request shape, accepted as a spec.
//!
//! A document is taken for this shape when it has a top-level `query` or a
//! `workflow.starting_agent`. It becomes a [`Spec`] like this:
//!
//! | Go request | spec |
//! |---|---|
//! | `query` | `run.input` |
//! | `session.{id,user_id,account_id,history_size,max_turns}` | `run.session.*` |
//! | `session.credentials` (`api_key`, `base_url`) | `run.session.credentials` (a [`Secret`] key, redacted), and `base_url` also becomes the `openai` provider's `base_url`; compiling refuses a `base_url` without `api_key` (the server's key never goes to a URL a request names) |
//! | — | `providers`: one `openai` provider (Responses API, key from `OPENAI_API_KEY` for the OpenAI API or the operator's `OPENAI_BASE_URL`, unless the credentials carry one) |
//! | `callback.{url,secret,headers}` | `run.callback[0]`: an `http` callback whose `secret` is a [`Secret`] |
//! | `workflow.name`, `description` | `workflow.name`, `description`; `workflow.key` is a slug of the name |
//! | `workflow.agents[i]` (`name`, `instructions`, `model`, `tools`, `handoffs`, `handoff_description`, `output_type` or `output_schema`) | `agents.<name>` |
//! | `workflow.starting_agent` | one sequential stage `main` with one step running it |
//! | `workflow.max_turns` | that step's `max_turns` |
//! | — | `workflow.allow_handoff_agents: true`: the other agents are reachable as handoffs |
//!
//! Validation errors of a converted spec name paths of the Go document
//! (`$.workflow.agents[1].tools[0]`, `$.workflow.starting_agent`).

use super::error::{SpecError, SpecErrors, index, key};
use super::types::{
    Agent, Callback, Credentials, Mode, Model, PluginRef, Provider, Run, SHORTHAND_STAGE, Secret,
    Session, Stage, Step, Workflow,
};
use super::{Origin, Spec};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The Go runner's request.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Go runner request")]
pub struct GoRequest {
    /// The user's input (text, or any JSON).
    #[serde(default)]
    pub query: Value,
    #[serde(default)]
    pub session: Option<GoSession>,
    #[serde(default)]
    pub callback: Option<GoCallback>,
    pub workflow: GoWorkflow,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoSession {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub history_size: Option<u32>,
    #[serde(default)]
    pub max_turns: Option<u32>,
    #[serde(default)]
    pub credentials: Option<Credentials>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoCallback {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoWorkflow {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub starting_agent: String,
    #[serde(default)]
    pub max_turns: Option<u32>,
    #[serde(default)]
    pub agents: Vec<GoAgent>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoAgent {
    pub name: String,
    #[serde(default)]
    pub instructions: String,
    pub model: Model,
    #[serde(default)]
    pub tools: Vec<PluginRef>,
    #[serde(default)]
    pub handoffs: Vec<String>,
    #[serde(default)]
    pub handoff_description: Option<String>,
    /// JSON Schema of the final output (alias of `output_schema`).
    #[serde(default)]
    pub output_type: Option<Value>,
    #[serde(default)]
    pub output_schema: Option<Value>,
}

/// Whether `doc` is in the Go runner's request shape.
pub(super) fn is_go_request(doc: &Value) -> bool {
    doc.get("query").is_some() || doc.pointer("/workflow/starting_agent").is_some()
}

impl GoRequest {
    /// Converts to a native spec (not yet normalized). Fails on duplicate or
    /// empty agent names and on both `output_type` and `output_schema`.
    pub(super) fn into_spec(self) -> Result<Spec, SpecErrors> {
        let mut errors = Vec::new();
        let mut agents = BTreeMap::new();
        let mut origin = BTreeMap::new();
        for (i, a) in self.workflow.agents.into_iter().enumerate() {
            let path = index("$.workflow.agents", i);
            if a.name.is_empty() {
                errors.push(SpecError::new(
                    key(&path, "name"),
                    "agent name must not be empty",
                ));
                continue;
            }
            if let Some((first, _)) = origin.get(&a.name) {
                errors.push(
                    SpecError::new(
                        key(&path, "name"),
                        format!("duplicate agent name `{}`", a.name),
                    )
                    .with_hint(Some(format!("workflow.agents[{first}] has the same name"))),
                );
                continue;
            }
            let (output_schema, schema_key) = match (a.output_type, a.output_schema) {
                (Some(_), Some(s)) => {
                    errors.push(SpecError::new(
                        key(&path, "output_schema"),
                        "give either `output_type` or `output_schema`, not both",
                    ));
                    (Some(s), "output_schema")
                }
                (Some(t), None) => (Some(t), "output_type"),
                (None, s) => (s, "output_schema"),
            };
            origin.insert(a.name.clone(), (i, schema_key));
            agents.insert(
                a.name,
                Agent {
                    instructions: a.instructions,
                    model: a.model,
                    tools: a.tools,
                    input_guardrails: Vec::new(),
                    output_guardrails: Vec::new(),
                    tool_guardrails: Vec::new(),
                    handoffs: a.handoffs,
                    handoff_description: a.handoff_description,
                    output_schema,
                    memory: None,
                },
            );
        }
        if !errors.is_empty() {
            return Err(SpecErrors::new(errors));
        }

        let credentials = self.session.as_ref().and_then(|s| s.credentials.clone());
        let base_url = credentials.as_ref().and_then(|c| c.base_url.clone());
        let providers = BTreeMap::from([(
            "openai".to_string(),
            Provider::Openai {
                base_url,
                api_key_env: None,
                api: None,
                timeout_ms: None,
                retry: None,
            },
        )]);

        let mut step = Step::new(self.workflow.starting_agent);
        step.max_turns = self.workflow.max_turns;
        let workflow = Workflow {
            key: String::new(),
            name: Some(self.workflow.name).filter(|n| !n.is_empty()),
            description: self.workflow.description,
            steps: Vec::new(),
            stages: vec![Stage {
                name: SHORTHAND_STAGE.to_string(),
                mode: Mode::Sequential,
                steps: vec![step],
                reducer: None,
                on_branch_error: None,
            }],
            output_schema: None,
            allow_handoff_agents: true,
        };

        let run = Run {
            input: self.query,
            session: self.session.map(|s| Session {
                id: s.id,
                user_id: s.user_id,
                account_id: s.account_id,
                history_size: s.history_size,
                max_turns: s.max_turns,
                credentials: s.credentials,
            }),
            callback: self
                .callback
                .map(|c| Callback::Http {
                    url: c.url,
                    secret_env: None,
                    headers: c.headers,
                    secret: c.secret,
                })
                .into_iter()
                .collect(),
            metadata: BTreeMap::new(),
        };

        Ok(Spec {
            providers,
            plugins: BTreeMap::new(),
            agents,
            workflow,
            run,
            base_dir: Default::default(),
            origin: Origin::Go { agents: origin },
        })
    }
}
