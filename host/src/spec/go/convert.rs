//! From a [`GoRequest`] to a native [`Spec`]: the Go runner's validation
//! rules, and every field either honoured or refused, each problem at its
//! path in the Go request. All problems are reported at once.

use super::tools::{self, Converted, Names};
use super::types::{
    GoAgent, GoCallback, GoCallbackMode, GoCallbackObject, GoGuardrail, GoModel, GoOutputType,
    GoRequest, GoSession,
};
use super::{DEFAULT_MODEL, GoOrigin};
use crate::spec::error::{SpecError, SpecErrors, index, key, suggestion};
use crate::spec::hosted::is_http_url;
use crate::spec::model::{ReasoningSummary, StoredPrompt, ToolChoice, Verbosity};
use crate::spec::types::{
    Agent, AgentTool, Callback, Credentials, EventFormat, Mode, Model, PluginRef, Provider,
    ReasoningEffort, Run, SHORTHAND_STAGE, Session, Stage, Step, Workflow,
};
use crate::spec::{Origin, Spec};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Problems found so far, with their paths.
#[derive(Default)]
pub(super) struct Problems(Vec<SpecError>);

impl Problems {
    pub(super) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(SpecError::new(path, message));
    }

    pub(super) fn hint(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.0
            .push(SpecError::new(path, message).with_hint(Some(hint.into())));
    }
}

impl GoRequest {
    /// Converts to a native spec (not yet normalized), or every problem.
    pub(in crate::spec) fn into_spec(self) -> Result<Spec, SpecErrors> {
        let mut p = Problems::default();
        if self.query.is_null() || self.query.as_str().is_some_and(|q| q.trim().is_empty()) {
            p.add("$.query", "query is required");
        }
        let (session, max_turns) = session(&self.session, &mut p);
        let callback = callback(self.callback.as_ref(), &mut p);
        let credentials = &self.session.credentials;
        let base_url = credentials.base_url.clone();
        let wf = &self.workflow;
        if wf.name.trim().is_empty() {
            p.add("$.workflow.name", "name is required");
        }
        if wf.agents.is_empty() {
            p.add("$.workflow.agents", "agents cannot be empty");
        }

        let mut agents = BTreeMap::new();
        let mut origins = BTreeMap::new();
        let mut first_at: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, a) in wf.agents.iter().enumerate() {
            let path = index("$.workflow.agents", i);
            if a.name.trim().is_empty() {
                p.add(key(&path, "name"), "agent name is required");
                continue;
            }
            if let Some(first) = first_at.get(a.name.as_str()) {
                p.hint(
                    key(&path, "name"),
                    format!("duplicate agent name `{}`", a.name),
                    format!("workflow.agents[{first}] has the same name"),
                );
                continue;
            }
            first_at.insert(&a.name, i);
            let names = Names {
                workflow: &wf.name,
                agent: &a.name,
            };
            let (agent, origin) = agent(a, i, &path, &names, &mut p);
            agents.insert(a.name.clone(), agent);
            origins.insert(a.name.clone(), origin);
        }

        // References between agents, once every name is known.
        let known: BTreeSet<&str> = first_at.keys().copied().collect();
        let reference = |path: String, name: &str, p: &mut Problems| {
            if !known.contains(name) {
                let error = SpecError::new(path, format!("unknown agent `{name}`"))
                    .with_hint(suggestion(name, known.iter().copied(), "agents"));
                p.0.push(error);
                false
            } else {
                true
            }
        };
        if wf.starting_agent.trim().is_empty() {
            p.add("$.workflow.starting_agent", "starting_agent is required");
        } else {
            reference(
                "$.workflow.starting_agent".into(),
                &wf.starting_agent,
                &mut p,
            );
        }
        for (i, a) in wf.agents.iter().enumerate() {
            let path = index("$.workflow.agents", i);
            for (k, h) in a.handoffs.iter().enumerate() {
                reference(index(&key(&path, "handoff"), k), h, &mut p);
            }
            for (k, t) in a.agent_tools.iter().enumerate() {
                let tp = index(&key(&path, "agent_tools"), k);
                if t.agent_name.trim().is_empty() {
                    p.add(key(&tp, "agent_name"), "agent_name is required");
                } else {
                    reference(key(&tp, "agent_name"), &t.agent_name, &mut p);
                }
            }
        }
        if let Some(key) = &credentials.api_key
            && key.expose().trim().is_empty()
        {
            p.add(
                "$.session.credentials.api_key",
                "`api_key` must not be empty",
            );
        }
        if let Some(url) = &credentials.base_url
            && !is_http_url(url)
        {
            p.add(
                "$.session.credentials.base_url",
                format!("`{url}` is not an http(s) URL"),
            );
        }
        if !p.0.is_empty() {
            return Err(SpecErrors::new(p.0));
        }

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
        let mut step = Step::new(wf.starting_agent.clone());
        step.max_turns = max_turns;
        let workflow = Workflow {
            key: String::new(),
            name: Some(wf.name.clone()),
            description: None,
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
            session: Some(Session {
                credentials: Some(Credentials {
                    api_key: credentials.api_key.clone(),
                    base_url: credentials.base_url.clone(),
                })
                .filter(|c| c.api_key.is_some() || c.base_url.is_some()),
                ..session
            }),
            callback: vec![callback].into_iter().flatten().collect(),
            metadata: self.metadata,
        };
        Ok(Spec {
            providers,
            plugins: BTreeMap::new(),
            mcp_servers: BTreeMap::new(),
            agents,
            workflow,
            run,
            base_dir: Default::default(),
            origin: Origin::Go { agents: origins },
        })
    }
}

/// The session, and the run's turn budget (`max_turns`, 0 = default).
fn session(s: &GoSession, p: &mut Problems) -> (Session, Option<u32>) {
    if s.session_id.trim().is_empty() {
        p.add("$.session.session_id", "session_id is required");
    }
    let c = &s.credentials;
    if c.user_id.trim().is_empty() {
        p.add(
            "$.session.credentials.user_id",
            "credentials.user_id is required",
        );
    }
    if c.account_id.trim().is_empty() {
        p.add(
            "$.session.credentials.account_id",
            "credentials.account_id is required",
        );
    }
    let mut size = |value: i64, field: &str| -> Option<u32> {
        let path = key("$.session", field);
        match u32::try_from(value) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) if value < 0 => {
                p.add(path, format!("{field} cannot be negative"));
                None
            }
            Err(_) => {
                p.add(path, format!("{field} is too large"));
                None
            }
        }
    };
    let history_size = size(s.history_size, "history_size");
    let max_turns = size(s.max_turns, "max_turns");
    let session = Session {
        id: s.session_id.clone(),
        user_id: Some(c.user_id.clone()),
        account_id: Some(c.account_id.clone()),
        history_size,
        max_turns: None,
        credentials: None,
    };
    (session, max_turns)
}

fn callback(c: Option<&GoCallback>, p: &mut Problems) -> Option<Callback> {
    let plain;
    // A bare string is the target itself.
    let target_path = match c {
        Some(GoCallback::Target(_)) => "$.callback",
        _ => "$.callback.target",
    };
    let c = match c {
        None => {
            p.hint(
                "$.callback",
                "callback target is required",
                "give `callback.target` (an http(s) URL), or `\"mode\": \"stdout\"`",
            );
            return None;
        }
        Some(GoCallback::Target(target)) => {
            plain = GoCallbackObject {
                target: target.clone(),
                ..Default::default()
            };
            &plain
        }
        Some(GoCallback::Full(c)) => c,
    };
    let format = c.format.unwrap_or(EventFormat::Go);
    let mode = c.mode.unwrap_or(GoCallbackMode::Default);
    if mode == GoCallbackMode::Default || mode == GoCallbackMode::Http {
        if c.target.trim().is_empty() {
            p.hint(
                target_path,
                "callback target is required",
                "give an http(s) URL, or `\"mode\": \"stdout\"`",
            );
        } else if !is_http_url(&c.target) {
            p.add(
                target_path,
                format!("callback target `{}` is not a valid http(s) URL", c.target),
            );
        }
        return Some(Callback::Http {
            url: c.target.clone(),
            secret_env: None,
            headers: c.headers.clone(),
            format,
            secret: c.secret.clone(),
        });
    }
    let mut only_http = |field: &str, given: bool| {
        if given {
            p.add(
                key("$.callback", field),
                format!("`{field}` applies to the `http` mode only"),
            );
        }
    };
    only_http("target", !c.target.is_empty());
    only_http("secret", c.secret.is_some());
    only_http("headers", !c.headers.is_empty());
    Some(match mode {
        GoCallbackMode::StdoutVerbose => Callback::StdoutVerbose { format },
        _ => Callback::Stdout { format },
    })
}

/// One agent at `path`, and where its parts came from.
fn agent(
    a: &GoAgent,
    i: usize,
    path: &str,
    names: &Names<'_>,
    p: &mut Problems,
) -> (Agent, GoOrigin) {
    let model = model(a.model.as_ref(), &key(path, "model"), p);
    let prompt = Some(a.prompt_id.trim())
        .filter(|id| !id.is_empty())
        .map(|id| StoredPrompt {
            id: id.to_string(),
            version: None,
        });
    let agent_tools = a
        .agent_tools
        .iter()
        .map(|t| AgentTool {
            agent: t.agent_name.clone(),
            tool_name: Some(t.tool_name.clone()).filter(|n| !n.trim().is_empty()),
            description: Some(t.description.clone()).filter(|d| !d.trim().is_empty()),
        })
        .collect();
    let mut origin = GoOrigin {
        index: i,
        ..Default::default()
    };
    let mut plugin_tools = Vec::new();
    let mut hosted = Vec::new();
    for (j, t) in a.tools.iter().enumerate() {
        let tp = index(&key(path, "tools"), j);
        match tools::tool(t, &tp, names, p) {
            Some(Converted::Plugin(r)) => {
                origin.tools.push(j);
                plugin_tools.push(r);
            }
            Some(Converted::Hosted(h)) => {
                origin.hosted.push(tp);
                hosted.push(h);
            }
            None => {}
        }
    }
    for (k, m) in a.mcp.iter().enumerate() {
        let mp = index(&key(path, "mcp"), k);
        if let Some(Converted::Hosted(h)) = tools::mcp(m, &mp, names, p) {
            origin.hosted.push(mp);
            hosted.push(h);
        }
    }
    let guardrails = |field: &str, list: &[GoGuardrail], p: &mut Problems| -> Vec<PluginRef> {
        let mut out = Vec::new();
        for (k, g) in list.iter().enumerate() {
            let gp = index(&key(path, field), k);
            if g.name.trim().is_empty() {
                p.add(key(&gp, "name"), "guardrail missing name");
                continue;
            }
            let config = Value::Object(g.config.clone().into_iter().collect());
            let mut r = PluginRef::parse(&g.name).with_config(config);
            r.target = Some(g.target.clone()).filter(|t| !t.trim().is_empty());
            out.push(r);
        }
        out
    };
    let input_guardrails = guardrails("input_guardrails", &a.input_guardrails, p);
    let output_guardrails = guardrails("output_guardrails", &a.output_guardrails, p);
    let output_schema = a
        .output_type
        .as_ref()
        .and_then(|o| output_type(o, &key(path, "output_type"), p));
    let agent = Agent {
        display_name: Some(a.display_name.clone()).filter(|n| !n.trim().is_empty()),
        instructions: a.instructions.clone(),
        prompt,
        model,
        tools: plugin_tools,
        hosted_tools: hosted,
        input_guardrails,
        output_guardrails,
        tool_guardrails: Vec::new(),
        agent_tools,
        handoffs: a.handoffs.clone(),
        handoff_description: Some(a.handoff_description.clone()).filter(|d| !d.is_empty()),
        output_schema,
        memory: None,
        annotations: a.annotations.clone(),
    };
    (agent, origin)
}

/// The model of an agent; the Agents SDK's default model when absent.
fn model(m: Option<&GoModel>, path: &str, p: &mut Problems) -> Model {
    let Some(m) = m else {
        return Model {
            provider: "openai".into(),
            ..Model::named(DEFAULT_MODEL)
        };
    };
    if !(m.provider.trim().is_empty() || m.provider.trim().eq_ignore_ascii_case("openai")) {
        p.hint(
            key(path, "provider"),
            format!("provider `{}` is not supported", m.provider),
            "a Go request's agents run on `openai` (or leave `provider` out)",
        );
    }
    if m.model.trim().is_empty() {
        p.add(
            key(path, "model"),
            "model.model is required when model is present",
        );
    }
    let max_output_tokens = m.max_tokens.and_then(|n| match u32::try_from(n) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            p.add(
                key(path, "max_tokens"),
                format!("`max_tokens` must be between 1 and {}, found {n}", u32::MAX),
            );
            None
        }
    });
    let mut reasoning_effort = None;
    let mut reasoning_summary = None;
    if let Some(r) = &m.reasoning {
        let rp = key(path, "reasoning");
        let effort = r.effort.trim().to_ascii_lowercase();
        if !effort.is_empty() {
            match serde_json::from_value::<ReasoningEffort>(json!(effort)) {
                Ok(e) => reasoning_effort = Some(e),
                Err(_) => p.add(
                    key(&rp, "effort"),
                    format!(
                        "`effort` is `none`, `minimal`, `low`, `medium`, `high` or `xhigh`, not `{}`",
                        r.effort
                    ),
                ),
            }
        }
        if !r.summary.is_empty() {
            let summary = r.summary.trim().to_ascii_lowercase();
            match serde_json::from_value::<ReasoningSummary>(json!(summary)) {
                Ok(s) => reasoning_summary = Some(s),
                Err(_) => p.add(
                    key(&rp, "summary"),
                    format!(
                        "`summary` is `auto`, `concise` or `detailed`, not `{}`",
                        r.summary
                    ),
                ),
            }
        }
    }
    let mut verbosity = None;
    if !m.verbosity.is_empty() {
        match serde_json::from_value::<Verbosity>(json!(m.verbosity.to_ascii_lowercase())) {
            Ok(v) => verbosity = Some(v),
            Err(_) => p.add(
                key(path, "verbosity"),
                format!("unsupported verbosity `{}`", m.verbosity),
            ),
        }
    }
    let tool_choice = match &m.tool_choice {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) if c.is_empty() => None,
        Some(Value::String(c)) => Some(ToolChoice::from(c.clone())),
        Some(_) => {
            p.add(
                key(path, "tool_choice"),
                "`tool_choice` is a string: `auto`, `required`, `none` or a tool's name",
            );
            None
        }
    };
    Model {
        provider: "openai".into(),
        name: m.model.clone(),
        temperature: m.temperature,
        top_p: m.top_p,
        max_output_tokens,
        reasoning_effort,
        reasoning_summary,
        verbosity,
        metadata: m.metadata.clone(),
        tool_choice,
        extra_headers: m.extra_headers.clone(),
        extra_query: m.extra_query.clone(),
    }
}

/// The JSON Schema of the final output: the inline `schema`, or the
/// registered name `json_object` (any JSON object).
fn output_type(o: &GoOutputType, path: &str, p: &mut Problems) -> Option<Value> {
    match &o.schema {
        Some(schema) if schema.is_empty() => {
            p.add(key(path, "schema"), "output type schema cannot be empty");
            None
        }
        Some(schema) => Some(Value::Object(schema.clone().into_iter().collect())),
        None if o.name == "json_object" => Some(json!({"type": "object"})),
        None => {
            p.hint(
                key(path, "name"),
                format!("output type `{}` not registered", o.name),
                "give an inline `schema`, or the name `json_object`",
            );
            None
        }
    }
}
