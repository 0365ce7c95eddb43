//! Turns a validated [`Spec`] into an executable [`Workflow`]: providers
//! built, plugin references resolved against the registry, tool definitions
//! read, schemas compiled — once, before any run starts.

use super::credentials::{BASE_URL_ENV, CredentialPolicy};
use super::{self as plan, DEFAULT_MAX_TURNS, HookRef, Schema, ToolRef, Workflow};
use crate::llm::{self, ModelSettings, Provider, ProviderConfig, RetryPolicy, ToolSpec};
use crate::plugin::{Kind, Limits, LimitsOverride, LoadOptions, Registry};
use crate::secret::Secret;
use crate::spec::{self, PluginRef, Spec, SpecError, SpecErrors};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to compile a workflow.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    /// Run every agent on the spec's offline (`scripted`) provider, or on
    /// `script.json` beside the spec when it declares none.
    pub offline: bool,
    /// Stream model responses.
    pub stream: bool,
    /// The operator's caps on model replies (host config `[models]`).
    pub replies: llm::ReplyLimits,
    /// Which keys from the environment may go to which base URLs (the
    /// operator's pairs; see [`super::credentials`]).
    pub credentials: CredentialPolicy,
    /// The operator's egress allowances for providers' base URLs (the
    /// operator's own `OPENAI_BASE_URL` may always be private).
    pub egress: llm::Egress,
    /// The process's MCP servers, started once and shared by runs; None
    /// starts the spec's own when it declares any.
    pub mcp: Option<Arc<crate::mcp::McpHub>>,
}

/// Why a spec could not become a runnable workflow.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("{0}")]
    Spec(SpecErrors),
    #[error("provider `{provider}`: {message}")]
    Provider { provider: String, message: String },
    /// The error names its provider.
    #[error(transparent)]
    Llm(llm::LlmError),
    #[error(
        "--offline needs a `scripted` provider in the spec or a script file at {}",
        path.display()
    )]
    NoOfflineScript { path: PathBuf },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Per-plugin limits from the spec's `plugins` section.
pub fn load_options(spec: &Spec) -> LoadOptions {
    let mut options = LoadOptions::default();
    for (name, l) in &spec.plugins {
        let limits = limits_override(l).apply(Limits::default());
        options.limits.insert(name.clone(), limits);
    }
    options
}

/// The call limits a plugin's spec settings set (what they leave out stays
/// as the plugin was loaded with).
fn limits_override(l: &spec::PluginSettings) -> LimitsOverride {
    LimitsOverride {
        timeout: l.timeout(),
        memory_bytes: l.memory_bytes(),
        output_bytes: l.output_bytes(),
    }
}

/// Validates `spec` against the loaded plugins and builds its workflow.
pub fn compile(
    spec: &Spec,
    registry: &Registry,
    options: &CompileOptions,
) -> Result<Workflow, CompileError> {
    spec.validate(Some(registry)).map_err(CompileError::Spec)?;
    let providers = providers(spec, options)?;
    let mcp = super::mcp::hub(spec, options)?;
    let grants = super::grants::http_grants(spec, options)?;

    let mut agents = HashMap::new();
    for (key, a) in &spec.agents {
        let path = format!("$.agents.{key}");
        // Parsing gives every model a provider (the default one when none
        // is named) and validation checks that it exists.
        let provider_name = &a.model.provider;
        let provider = if options.offline {
            providers.get(OFFLINE).cloned()
        } else {
            providers.get(provider_name).cloned()
        }
        .ok_or_else(|| CompileError::Invalid {
            path: format!("{path}.model.provider"),
            message: format!("unknown provider `{provider_name}`"),
        })?;
        let mut tools = Vec::new();
        for (i, r) in a.tools.iter().enumerate() {
            if r.mcp_server().is_some() {
                continue;
            }
            tools.extend(tool_refs(
                registry,
                r,
                &grants,
                &format!("{path}.tools[{i}]"),
            )?);
        }
        let mut seen = std::collections::HashSet::new();
        for t in &tools {
            if !seen.insert(t.name.clone()) {
                return Err(CompileError::Invalid {
                    path: format!("{path}.tools"),
                    message: format!(
                        "two tools are named `{}`; the model could not tell them apart",
                        t.name
                    ),
                });
            }
        }
        let hooks = |refs: &[PluginRef], field: &str| -> Result<Vec<HookRef>, CompileError> {
            refs.iter()
                .enumerate()
                .map(|(i, r)| {
                    hook(
                        registry,
                        r,
                        Kind::Guardrail,
                        &format!("{path}.{field}[{i}]"),
                    )
                })
                .collect()
        };
        let agent = plan::Agent {
            key: key.clone(),
            instructions: a.instructions.clone(),
            provider,
            settings: ModelSettings {
                model: a.model.name.clone(),
                temperature: a.model.temperature.map(|t| t as f32),
                top_p: a.model.top_p.map(|t| t as f32),
                max_output_tokens: a.model.max_output_tokens,
                reasoning_effort: a.model.reasoning_effort.map(|r| {
                    serde_json::to_value(r)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                }),
                reasoning_summary: a.model.reasoning_summary,
                verbosity: a.model.verbosity,
                metadata: a.model.metadata.clone(),
                tool_choice: a.model.tool_choice.clone(),
                prompt: a.prompt.clone(),
                extra_headers: a.model.extra_headers.clone(),
                extra_query: a.model.extra_query.clone(),
            },
            agent_tools: agent_tools(spec, a, &tools, &path)?,
            tools,
            mcp_tools: super::mcp::refs(mcp.as_deref(), &a.tools, &format!("{path}.tools"))?,
            hosted_tools: hosted_tools(spec, a, &path)?,
            input_guardrails: hooks(&a.input_guardrails, "input_guardrails")?,
            output_guardrails: hooks(&a.output_guardrails, "output_guardrails")?,
            tool_guardrails: hooks(&a.tool_guardrails, "tool_guardrails")?,
            handoffs: a.handoffs.clone(),
            handoff_description: a.handoff_description.clone(),
            memory: a.memory.clone(),
            output_schema: schema(a.output_schema.as_ref(), &format!("{path}.output_schema"))?,
            stream: options.stream,
        };
        agents.insert(key.clone(), Arc::new(agent));
    }

    let mut stages = Vec::new();
    for (si, s) in spec.workflow.stages.iter().enumerate() {
        let path = format!("$.workflow.stages[{si}]");
        let mut steps = Vec::new();
        for (i, st) in s.steps.iter().enumerate() {
            let sp = format!("{path}.steps[{i}]");
            steps.push(plan::Step {
                name: st.name().to_string(),
                agent: st.agent.clone(),
                guard: st
                    .guard
                    .as_ref()
                    .map(|r| hook(registry, r, Kind::Guard, &format!("{sp}.guard")))
                    .transpose()?,
                input_mapper: st
                    .input_mapper
                    .as_ref()
                    .map(|r| {
                        hook(
                            registry,
                            r,
                            Kind::InputMapper,
                            &format!("{sp}.input_mapper"),
                        )
                    })
                    .transpose()?,
                max_turns: st.max_turns.unwrap_or(DEFAULT_MAX_TURNS),
                output_schema: schema(st.output_schema.as_ref(), &format!("{sp}.output_schema"))?,
            });
        }
        stages.push(plan::Stage {
            name: s.name.clone(),
            parallel: s.mode == spec::Mode::Parallel,
            steps,
            reducer: s
                .reducer
                .as_ref()
                .map(|r| hook(registry, r, Kind::Reducer, &format!("{path}.reducer")))
                .transpose()?,
            continue_on_branch_error: s.on_branch_error == Some(spec::OnBranchError::Continue),
        });
    }

    // The workflow's output schema shapes the final step's model output too
    // (structured output), unless that step or its agent has its own.
    let workflow_schema = schema(
        spec.workflow.output_schema.as_ref(),
        "$.workflow.output_schema",
    )?;
    if let Some(last) = stages.last_mut().filter(|s| !s.parallel)
        && let Some(step) = last.steps.last_mut()
        && step.output_schema.is_none()
        && agents
            .get(&step.agent)
            .is_some_and(|a| a.output_schema.is_none())
    {
        step.output_schema = workflow_schema.clone();
    }

    Ok(Workflow {
        key: spec.workflow.key.clone(),
        name: spec
            .workflow
            .name
            .clone()
            .unwrap_or_else(|| spec.workflow.key.clone()),
        stages,
        agents,
        output_schema: workflow_schema,
        allow_handoffs: spec.workflow.allow_handoff_agents,
        replies: options.replies,
        mcp,
        plugin_limits: spec
            .plugins
            .iter()
            .map(|(name, l)| (name.clone(), limits_override(l)))
            .collect(),
    })
}

/// Key under which the offline provider is stored with `--offline`.
const OFFLINE: &str = "\0offline";

fn providers(
    spec: &Spec,
    options: &CompileOptions,
) -> Result<BTreeMap<String, Arc<dyn Provider>>, CompileError> {
    let mut out = BTreeMap::new();
    if options.offline {
        let script = spec
            .providers
            .values()
            .find_map(|p| match p {
                spec::Provider::Scripted { script } => Some(script.clone()),
                _ => None,
            })
            .unwrap_or_else(|| spec.base_dir().join("script.json"));
        // A spec's own script was confined when the spec was validated;
        // the default one beside it must not lead out of its folder either.
        if let Err(e) = spec::confine(spec.base_dir(), Path::new("script.json"))
            && script == spec.base_dir().join("script.json")
        {
            return Err(CompileError::Invalid {
                path: "--offline".into(),
                message: e.to_string(),
            });
        }
        if !script.is_file() {
            return Err(CompileError::NoOfflineScript { path: script });
        }
        let provider = llm::build_provider(ProviderConfig::scripted("offline", script))
            .map_err(CompileError::Llm)?;
        out.insert(OFFLINE.to_string(), provider);
        return Ok(out);
    }
    for (name, p) in &spec.providers {
        // Only providers some agent uses: an unused one needs no key.
        if !spec.agents.values().any(|a| &a.model.provider == name) {
            continue;
        }
        let config = provider_config(spec, name, p, &options.credentials)?;
        let mut egress = options.egress.clone();
        // The operator named OPENAI_BASE_URL: trusted, even when it is local.
        if matches!(p, spec::Provider::Openai { base_url: None, .. })
            && std::env::var(BASE_URL_ENV).is_ok_and(|u| !u.is_empty())
        {
            egress.allow_private = true;
        }
        let config = config.with_limits(options.replies).with_egress(egress);
        let provider = llm::build_provider(config).map_err(CompileError::Llm)?;
        out.insert(name.clone(), provider);
    }
    Ok(out)
}

/// The key of a Go-shaped request's `session.credentials`, if any: the
/// spec author's own, held in memory only (redacted in Debug and
/// serialization).
fn inline_key(spec: &Spec) -> Option<Secret> {
    spec.run
        .session
        .as_ref()
        .and_then(|s| s.credentials.as_ref())
        .and_then(|c| c.api_key.clone())
}

/// The agent's hosted tools for the model layer. They need the Responses
/// API: an agent whose provider speaks Chat Completions is refused here,
/// before any call. (An offline provider ignores them.)
/// The agents offered to `a` as tools, named apart from its plugin tools.
fn agent_tools(
    spec: &Spec,
    a: &spec::Agent,
    tools: &[plan::ToolRef],
    path: &str,
) -> Result<Vec<plan::AgentToolRef>, CompileError> {
    a.agent_tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = t.name().to_string();
            if tools.iter().any(|tool| tool.name == name) {
                return Err(CompileError::Invalid {
                    path: format!("{path}.agent_tools[{i}]"),
                    message: format!(
                        "a plugin tool is also named `{name}`; the model could not tell them apart"
                    ),
                });
            }
            let description = t
                .description
                .clone()
                .or_else(|| {
                    spec.agents
                        .get(&t.agent)
                        .and_then(|target| target.handoff_description.clone())
                })
                .unwrap_or_default();
            Ok(plan::AgentToolRef {
                name,
                agent: t.agent.clone(),
                description,
            })
        })
        .collect()
}

fn hosted_tools(
    spec: &Spec,
    a: &spec::Agent,
    path: &str,
) -> Result<Vec<llm::HostedTool>, CompileError> {
    if a.hosted_tools.is_empty() {
        return Ok(Vec::new());
    }
    let api = spec.providers.get(&a.model.provider).and_then(|p| p.api());
    if api == Some(spec::Api::Chat) {
        return Err(refused(
            format!("{path}.hosted_tools"),
            format!(
                "hosted tools need the Responses API, and provider `{}` speaks Chat Completions",
                a.model.provider
            ),
            "set `api: \"responses\"` on the provider (if the server serves it), or remove the hosted tools".into(),
        ));
    }
    Ok(a.hosted_tools.clone())
}

/// A spec error at `path` with the operator's way out as its hint.
fn refused(path: String, message: String, hint: String) -> CompileError {
    CompileError::Spec(SpecErrors::new(vec![
        SpecError::new(path, message).with_hint(Some(hint)),
    ]))
}

/// `$OPENAI_API_KEY` may not go to `url`: what the operator can do.
fn not_paired(path: String, var: &str, url: &str) -> CompileError {
    refused(
        path,
        format!(
            "the key in ${var} is sent only to base URLs the operator paired it with, \
             and `{url}` is not one"
        ),
        format!(
            "the operator pairs them in the host config file \
             ([[credentials.pair]] base_url = \"{url}\", api_key_env = \"{var}\") \
             or with `--credential {var}={url}`; a spec cannot"
        ),
    )
}

fn provider_config(
    spec: &Spec,
    name: &str,
    p: &spec::Provider,
    credentials: &CredentialPolicy,
) -> Result<ProviderConfig, CompileError> {
    let path = format!("$.providers.{name}");
    let retry = p.retry();
    let policy = RetryPolicy {
        max_attempts: retry.max_attempts,
        initial_backoff: Duration::from_millis(retry.initial_backoff_ms),
        max_backoff: Duration::from_millis(retry.max_backoff_ms),
        ..RetryPolicy::default()
    };
    let api = match p.api() {
        Some(spec::Api::Chat) => llm::Api::Chat,
        _ => llm::Api::Responses,
    };
    let config = match p {
        spec::Provider::Scripted { script } => {
            return Ok(ProviderConfig::scripted(name, script.clone()));
        }
        spec::Provider::Openai {
            base_url,
            api_key_env,
            ..
        } => {
            let env_url = std::env::var(BASE_URL_ENV).ok().filter(|u| !u.is_empty());
            let url = base_url
                .clone()
                .or_else(|| env_url.clone())
                .unwrap_or_else(|| llm::DEFAULT_BASE_URL.to_string());
            let mut c = ProviderConfig::openai(name);
            c.base_url = Some(url.clone());
            // The request's own key goes where the request says.
            if let Some(key) = inline_key(spec) {
                c = c.with_api_key(key);
            } else if spec.is_go_request() && base_url.is_some() {
                return Err(refused(
                    "$.session.credentials.base_url".into(),
                    "a request's `base_url` is used only with the request's own `api_key`".into(),
                    "add `api_key` beside it, or leave `base_url` out to use the server's provider"
                        .into(),
                ));
            } else {
                let var = p.api_key_env().unwrap_or(llm::DEFAULT_API_KEY_ENV);
                if !credentials.allows(var, &url) {
                    let at = if base_url.is_some() && api_key_env.is_none() {
                        "base_url"
                    } else {
                        "api_key_env"
                    };
                    return Err(not_paired(format!("{path}.{at}"), var, &url));
                }
                match Secret::from_env(var) {
                    Some(key) => c = c.with_api_key(key),
                    // A local server behind OPENAI_BASE_URL may need no
                    // key: talk to it as an OpenAI-compatible server (no
                    // Authorization).
                    None if base_url.is_none() && env_url.is_some() => {
                        c = ProviderConfig::compatible(name, url);
                    }
                    None => {
                        return Err(CompileError::Provider {
                            provider: name.to_string(),
                            message: format!(
                                "no API key: set ${var}, or set ${BASE_URL_ENV} for a local server, or run offline with --offline"
                            ),
                        });
                    }
                }
            }
            c
        }
        spec::Provider::OpenaiCompatible { base_url, .. } => {
            let mut c = ProviderConfig::compatible(name, base_url.clone());
            if let Some(var) = p.api_key_env() {
                if !credentials.allows(var, base_url) {
                    return Err(not_paired(format!("{path}.api_key_env"), var, base_url));
                }
                if let Some(key) = Secret::from_env(var) {
                    c = c.with_api_key(key);
                }
            }
            c
        }
    };
    Ok(config
        .with_api(api)
        .with_timeout(p.timeout())
        .with_retry(policy))
}

fn hook(
    registry: &Registry,
    r: &PluginRef,
    kind: Kind,
    path: &str,
) -> Result<HookRef, CompileError> {
    let invalid = |e: crate::plugin::ResolveError| CompileError::Invalid {
        path: path.to_string(),
        message: e.to_string(),
    };
    // A guardrail may be one of the host's built-in presets.
    let (plugin, entry) = if kind == Kind::Guardrail {
        registry
            .resolve_guardrail(&r.reference())
            .map_err(invalid)?
    } else {
        let (plugin, entry) = registry.resolve(&r.reference(), kind).map_err(invalid)?;
        (plugin.name().to_string(), entry)
    };
    Ok(HookRef {
        plugin,
        entry,
        config: r.config.clone(),
        target: r.target.clone(),
    })
}

fn tool_refs(
    registry: &Registry,
    r: &PluginRef,
    grants: &HashMap<String, Arc<crate::plugin::HttpGrant>>,
    path: &str,
) -> Result<Vec<ToolRef>, CompileError> {
    let (plugin, names) =
        registry
            .resolve_tools(&r.reference())
            .map_err(|e| CompileError::Invalid {
                path: path.to_string(),
                message: e.to_string(),
            })?;
    names
        .into_iter()
        .map(|name| {
            let def = plugin
                .tools()
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| CompileError::Invalid {
                    path: path.to_string(),
                    message: format!(
                        "plugin `{}` has no definition for tool `{name}`",
                        plugin.name()
                    ),
                })?;
            let arguments =
                Schema::compile(def.parameters.clone()).map_err(|e| CompileError::Invalid {
                    path: path.to_string(),
                    message: format!("tool `{name}`: parameters are not a valid JSON Schema: {e}"),
                })?;
            Ok(ToolRef {
                plugin: plugin.name().to_string(),
                name: name.clone(),
                config: r.config.clone(),
                spec: ToolSpec {
                    name,
                    description: def.description.clone(),
                    parameters: def.parameters.clone(),
                    strict: Schema::is_strict(&def.parameters),
                },
                arguments,
                approval: r.approval == spec::Approval::Always,
                http: grants.get(plugin.name()).cloned(),
            })
        })
        .collect()
}

fn schema(
    value: Option<&serde_json::Value>,
    path: &str,
) -> Result<Option<Arc<Schema>>, CompileError> {
    value
        .map(|v| {
            Schema::compile(v.clone())
                .map(Arc::new)
                .map_err(|message| CompileError::Invalid {
                    path: path.to_string(),
                    message: format!("not a valid JSON Schema: {message}"),
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{Runtime, RuntimeOptions};
    use std::path::Path;

    /// `host run` validates through `plan::compile`; it must give the same
    /// "did you mean" hint for a misspelled plugin as `host validate`.
    #[tokio::test]
    async fn run_side_validation_suggests_plugin_names() {
        let runtime = Runtime::new(RuntimeOptions {
            cache_dir: Some(e2e::test_cache_dir()),
            cache_key_file: Some(e2e::test_cache_key()),
            max_concurrent_calls: 1,
            ..RuntimeOptions::default()
        })
        .expect("plugin runtime");
        let registry = Registry::new(runtime);
        let path = e2e::plugin("calculator");
        let load = registry.load_file(&path, Limits::default());
        tokio::time::timeout(std::time::Duration::from_secs(120), load)
            .await
            .expect("loading calculator timed out")
            .expect("calculator loads");
        let doc = serde_json::json!({
          "agents": {"a": {"model": "m", "tools": ["calculatr"]}},
          "workflow": {"steps": [{"agent": "a"}]}
        });
        let spec = Spec::from_json_str(&doc.to_string(), Path::new(".")).expect("spec parses");
        let Err(CompileError::Spec(errors)) = compile(&spec, &registry, &CompileOptions::default())
        else {
            panic!("expected spec errors");
        };
        let errors = errors.into_errors();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].message, "unknown plugin `calculatr`");
        assert_eq!(
            errors[0].hint.as_deref(),
            Some("did you mean `calculator`?")
        );
    }
}
