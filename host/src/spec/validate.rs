//! Semantic checks of a parsed spec: every problem at once, each with the
//! JSONPath of the value the user wrote.

mod extras;
mod mcp;

use super::Spec;
use super::destinations;
use super::error::{SpecError, SpecErrors, index, key, nearest, suggestion};
use super::paths::Paths;
use super::types::{
    Agent, Callback, Kind, MAX_PLUGIN_MEMORY_MIB, Memory, Mode, Model, PluginRef, Provider, Retry,
};
use serde_json::Value;
use std::collections::BTreeMap;

/// What plugins exist and which entries they offer. `plugin::Registry`
/// implements it, once, for `host run` and `host validate` alike; tests use
/// a map.
pub trait PluginCatalog {
    /// Entries of plugin `name` as (entry name, kind), in the order the
    /// plugin lists them, or None if no such plugin.
    fn entries(&self, plugin: &str) -> Option<Vec<(String, Kind)>>;

    /// Every plugin name, for "did you mean" hints. Required, so that no
    /// catalog silently drops the hints.
    fn names(&self) -> Vec<String>;

    /// What is wrong with `config` as the per-use configuration of entry
    /// `entry` of `plugin`, as (path under `config`, e.g. `.pattern`, and
    /// message). Plugins check their own configuration when called; a
    /// catalog answers for the entries the host itself implements (the
    /// built-in guardrails). Default: nothing.
    fn config_problems(
        &self,
        _plugin: &str,
        _entry: &str,
        _config: &Value,
    ) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// Plugin name → entries, e.g. for tests.
impl PluginCatalog for BTreeMap<String, Vec<(String, Kind)>> {
    fn entries(&self, plugin: &str) -> Option<Vec<(String, Kind)>> {
        self.get(plugin).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

/// One place the spec references a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginUse<'a> {
    /// JSONPath of the reference.
    pub path: String,
    /// The kind of entry the reference needs.
    pub kind: Kind,
    pub reference: &'a PluginRef,
}

impl Spec {
    /// Every plugin reference: agents' tools and guardrails, steps' guards
    /// and input mappers, stages' reducers; in document order.
    pub fn plugin_uses(&self) -> Vec<PluginUse<'_>> {
        let paths = Paths(&self.origin);
        let mut uses = Vec::new();
        let mut add = |path: String, kind, reference| {
            uses.push(PluginUse {
                path,
                kind,
                reference,
            })
        };
        for (name, agent) in &self.agents {
            for (field, kind, refs) in [
                ("tools", Kind::Tool, &agent.tools),
                ("input_guardrails", Kind::Guardrail, &agent.input_guardrails),
                (
                    "output_guardrails",
                    Kind::Guardrail,
                    &agent.output_guardrails,
                ),
                ("tool_guardrails", Kind::Guardrail, &agent.tool_guardrails),
            ] {
                for (i, r) in refs.iter().enumerate() {
                    // `mcp:` references name MCP servers, checked apart.
                    if kind == Kind::Tool && r.mcp_server().is_some() {
                        continue;
                    }
                    add(paths.agent_item(name, field, i), kind, r);
                }
            }
        }
        for (s, stage) in self.workflow.stages.iter().enumerate() {
            for (i, step) in stage.steps.iter().enumerate() {
                if let Some(r) = &step.guard {
                    add(paths.step_field(s, i, "guard"), Kind::Guard, r);
                }
                if let Some(r) = &step.input_mapper {
                    add(paths.step_field(s, i, "input_mapper"), Kind::InputMapper, r);
                }
            }
            if let Some(r) = &stage.reducer {
                add(key(&paths.stage(s), "reducer"), Kind::Reducer, r);
            }
        }
        uses
    }

    /// Checks everything that parsing cannot: references between parts,
    /// plugins (when a catalog is given), schemas, names and ranges. Reports
    /// every problem at once, sorted by path.
    pub fn validate(&self, catalog: Option<&dyn PluginCatalog>) -> Result<(), SpecErrors> {
        let mut v = Checker {
            spec: self,
            paths: Paths(&self.origin),
            catalog,
            errors: Vec::new(),
        };
        v.providers();
        v.plugin_limits();
        v.agents();
        v.workflow();
        v.run();
        v.mcp_servers();
        for u in self.plugin_uses() {
            v.plugin_ref(&u.path, u.reference, u.kind);
        }
        v.errors.extend(super::confine::check(self));
        SpecErrors::into_result(v.errors)
    }
}

struct Checker<'a> {
    spec: &'a Spec,
    paths: Paths<'a>,
    catalog: Option<&'a dyn PluginCatalog>,
    errors: Vec<SpecError>,
}

impl Checker<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(SpecError::new(path, message));
    }

    fn error_hint(
        &mut self,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.errors
            .push(SpecError::new(path, message).with_hint(hint));
    }

    fn at_least_one(&mut self, path: String, field: &str, value: Option<u64>) {
        if value == Some(0) {
            self.error(key(&path, field), format!("`{field}` must be at least 1"));
        }
    }

    fn providers(&mut self) {
        for (name, provider) in &self.spec.providers {
            let path = key("$.providers", name);
            match provider {
                Provider::Openai {
                    base_url,
                    api_key_env,
                    timeout_ms,
                    retry,
                    ..
                } => {
                    if let Some(url) = base_url {
                        self.url(&key(&path, "base_url"), url);
                    }
                    self.http_settings(&path, api_key_env, *timeout_ms, retry);
                }
                Provider::OpenaiCompatible {
                    base_url,
                    api_key_env,
                    timeout_ms,
                    retry,
                    ..
                } => {
                    if base_url.is_empty() {
                        self.error_hint(
                            &path,
                            "missing field `base_url`",
                            Some(
                                "an openai_compatible provider needs its server's URL, \
                                 e.g. \"http://localhost:11434/v1\""
                                    .into(),
                            ),
                        );
                    } else {
                        self.url(&key(&path, "base_url"), base_url);
                    }
                    self.http_settings(&path, api_key_env, *timeout_ms, retry);
                }
                Provider::Scripted { script } => {
                    if script.as_os_str().is_empty() {
                        self.error_hint(
                            &path,
                            "missing field `script`",
                            Some(
                                "a scripted provider replays the model turns of a script file"
                                    .into(),
                            ),
                        );
                    } else if !script.is_file()
                        && super::confine::confine_joined(&self.spec.base_dir, script).is_ok()
                    {
                        self.error_hint(
                            key(&path, "script"),
                            format!("script file not found: {}", script.display()),
                            Some("a relative path is relative to the spec file's folder".into()),
                        );
                    }
                }
            }
        }
    }

    fn http_settings(
        &mut self,
        path: &str,
        api_key_env: &Option<String>,
        timeout_ms: Option<u64>,
        retry: &Option<Retry>,
    ) {
        if api_key_env.as_deref().is_some_and(|e| e.trim().is_empty()) {
            self.error_hint(
                key(path, "api_key_env"),
                "`api_key_env` must name an environment variable",
                Some("leave it out to use the default".into()),
            );
        }
        self.at_least_one(path.to_string(), "timeout_ms", timeout_ms);
        if let Some(retry) = retry {
            let rp = key(path, "retry");
            self.at_least_one(rp.clone(), "max_attempts", Some(retry.max_attempts.into()));
            if retry.initial_backoff_ms > retry.max_backoff_ms {
                self.error(
                    key(&rp, "initial_backoff_ms"),
                    format!(
                        "`initial_backoff_ms` ({}) is larger than `max_backoff_ms` ({})",
                        retry.initial_backoff_ms, retry.max_backoff_ms
                    ),
                );
            }
        }
    }

    fn url(&mut self, path: &str, url: &str) {
        if let Some(problem) = destinations::url_problem(url) {
            self.error(path, problem);
        }
    }

    fn callback_headers(&mut self, path: &str, headers: &BTreeMap<String, String>) {
        for name in headers.keys() {
            if let Some((message, hint)) = destinations::header_problem(name) {
                self.error_hint(key(path, name), message, hint);
            }
        }
    }

    fn plugin_limits(&mut self) {
        for (name, limits) in &self.spec.plugins {
            let path = key("$.plugins", name);
            if let Some(catalog) = self.catalog
                && catalog.entries(name).is_none()
            {
                let names = catalog.names();
                self.error_hint(
                    &path,
                    format!("limits for plugin `{name}`, which is not loaded"),
                    suggestion(name, names.iter().map(String::as_str), "plugins"),
                );
            }
            self.at_least_one(path.clone(), "timeout_ms", limits.timeout_ms);
            self.at_least_one(path.clone(), "memory_mib", limits.memory_mib);
            self.at_least_one(path.clone(), "output_kib", limits.output_kib);
            if let Some(mib) = limits.memory_mib
                && mib > MAX_PLUGIN_MEMORY_MIB
            {
                self.error(
                    key(&path, "memory_mib"),
                    format!("`memory_mib` is {mib}; at most {MAX_PLUGIN_MEMORY_MIB} is allowed"),
                );
            }
            for (at, message) in super::grants::problems(
                &path,
                &limits.allowed_hosts,
                &limits.secrets,
                limits.http.as_ref(),
            ) {
                self.error(at, message);
            }
        }
    }

    fn agents(&mut self) {
        let spec = self.spec;
        for (name, agent) in &spec.agents {
            let path = self.paths.agent(name);
            if name.trim().is_empty() {
                self.error(&path, "agent name must not be empty");
            }
            self.model(&key(&path, "model"), &agent.model);
            if let Some(schema) = &agent.output_schema {
                self.schema(self.paths.agent_output_schema(name), schema);
            }
            self.handoffs(name, agent);
            self.agent_tools(name, agent);
            self.request_settings(name, agent);
            for (i, tool) in agent.hosted_tools.iter().enumerate() {
                let at = self.paths.agent_item(name, "hosted_tools", i);
                for p in tool.problems() {
                    let at = if p.field.is_empty() {
                        at.clone()
                    } else {
                        key(&at, p.field)
                    };
                    self.error(at, p.message);
                }
            }
            if let Some(memory) = &agent.memory {
                let mp = key(&path, "memory");
                match memory {
                    Memory::Trim { max_turns } => {
                        self.at_least_one(mp, "max_turns", Some((*max_turns).into()))
                    }
                    Memory::Summarize {
                        max_summary_tokens,
                        model,
                        ..
                    } => {
                        self.at_least_one(
                            mp.clone(),
                            "max_summary_tokens",
                            Some((*max_summary_tokens).into()),
                        );
                        if let Some(model) = model {
                            self.model(&key(&mp, "model"), model);
                        }
                    }
                    Memory::Compact { max_tokens } => {
                        self.at_least_one(mp, "max_tokens", Some((*max_tokens).into()))
                    }
                }
            }
        }
    }

    fn handoffs(&mut self, name: &str, agent: &Agent) {
        if agent.handoffs.is_empty() {
            return;
        }
        let hp = self.paths.agent_field(name, "handoffs");
        if !self.spec.workflow.allow_handoff_agents {
            self.error_hint(
                &hp,
                "handoffs are off in this workflow",
                Some("set `\"allow_handoff_agents\": true` in `workflow`".into()),
            );
        }
        for (i, target) in agent.handoffs.iter().enumerate() {
            if target == name {
                self.error(index(&hp, i), format!("agent `{name}` hands off to itself"));
            } else if !self.spec.agents.contains_key(target) {
                self.unknown_agent(index(&hp, i), target);
            }
        }
    }

    fn unknown_agent(&mut self, path: String, name: &str) {
        let known = self.spec.agents.keys().map(String::as_str);
        self.error_hint(
            path,
            format!("unknown agent `{name}`"),
            suggestion(name, known, "agents"),
        );
    }

    fn model(&mut self, path: &str, model: &Model) {
        let providers = &self.spec.providers;
        let names = || providers.keys().map(String::as_str);
        if model.provider.is_empty() {
            let list: Vec<String> = names().map(|n| format!("`{n}`")).collect();
            self.error_hint(
                path,
                "no `provider` given and there is no default provider",
                Some(format!(
                    "set `provider` to one of {}, or name a provider `default`",
                    list.join(", ")
                )),
            );
        } else if !providers.contains_key(&model.provider) {
            self.error_hint(
                key(path, "provider"),
                format!("unknown provider `{}`", model.provider),
                suggestion(&model.provider, names(), "providers"),
            );
        }
        if model.name.trim().is_empty() {
            self.error(key(path, "name"), "model name must not be empty");
        }
        if let Some(t) = model.temperature
            && !(0.0..=2.0).contains(&t)
        {
            self.error(
                key(path, "temperature"),
                format!("`temperature` must be between 0 and 2, found {t}"),
            );
        }
        if let Some(p) = model.top_p
            && !(0.0..=1.0).contains(&p)
        {
            self.error(
                key(path, "top_p"),
                format!("`top_p` must be between 0 and 1, found {p}"),
            );
        }
        self.at_least_one(
            path.to_string(),
            "max_output_tokens",
            model.max_output_tokens.map(u64::from),
        );
    }

    fn schema(&mut self, path: String, schema: &Value) {
        if let Err(e) = jsonschema::validator_for(schema) {
            let at = e.instance_path().as_str();
            let message = if at.is_empty() {
                format!("invalid JSON Schema: {e}")
            } else {
                format!("invalid JSON Schema at {at}: {e}")
            };
            self.error(path, message);
        }
    }

    fn workflow(&mut self) {
        let spec = self.spec;
        let workflow = &spec.workflow;
        if !workflow.steps.is_empty() && !workflow.stages.is_empty() {
            self.error_hint(
                "$.workflow.steps",
                "give either `steps` or `stages`, not both",
                Some("`steps` is shorthand for one sequential stage".into()),
            );
        }
        if workflow.stages.is_empty() && workflow.steps.is_empty() {
            self.error_hint(
                "$.workflow",
                "the workflow has no steps",
                Some("add `steps` (one sequential stage) or `stages`".into()),
            );
        }
        if let Some(schema) = &workflow.output_schema {
            self.schema("$.workflow.output_schema".into(), schema);
        }
        let mut stage_names: BTreeMap<&str, usize> = BTreeMap::new();
        for (s, stage) in workflow.stages.iter().enumerate() {
            let sp = self.paths.stage(s);
            if stage.name.trim().is_empty() {
                self.error(key(&sp, "name"), "stage name must not be empty");
            } else if let Some(first) = stage_names.insert(&stage.name, s) {
                stage_names.insert(&stage.name, first);
                self.error_hint(
                    key(&sp, "name"),
                    format!("duplicate stage name `{}`", stage.name),
                    Some(format!("workflow.stages[{first}] has the same name")),
                );
            }
            if stage.steps.is_empty() {
                self.error(
                    key(&sp, "steps"),
                    format!("stage `{}` has no steps", stage.name),
                );
            }
            if stage.mode == Mode::Sequential {
                if stage.reducer.is_some() {
                    self.error_hint(
                        key(&sp, "reducer"),
                        "a reducer only runs in a parallel stage",
                        Some("set `\"mode\": \"parallel\"` or remove `reducer`".into()),
                    );
                }
                if stage.on_branch_error.is_some() {
                    self.error_hint(
                        key(&sp, "on_branch_error"),
                        "`on_branch_error` only applies to a parallel stage",
                        Some("set `\"mode\": \"parallel\"` or remove `on_branch_error`".into()),
                    );
                }
            }
            let mut step_names: BTreeMap<&str, usize> = BTreeMap::new();
            for (i, step) in stage.steps.iter().enumerate() {
                if !spec.agents.contains_key(&step.agent) {
                    self.unknown_agent(self.paths.step_field(s, i, "agent"), &step.agent);
                }
                if step.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                    self.error(
                        self.paths.step_field(s, i, "name"),
                        "step name must not be empty",
                    );
                } else if let Some(first) = step_names.insert(step.name(), i) {
                    step_names.insert(step.name(), first);
                    let path = if step.name.is_some() {
                        self.paths.step_field(s, i, "name")
                    } else {
                        self.paths.step(s, i)
                    };
                    self.error_hint(
                        path,
                        format!(
                            "duplicate step name `{}` in stage `{}` (steps[{first}] has it too)",
                            step.name(),
                            stage.name
                        ),
                        Some("give each step of a stage its own `name`".into()),
                    );
                }
                if step.max_turns == Some(0) {
                    self.error(
                        self.paths.step_field(s, i, "max_turns"),
                        "`max_turns` must be at least 1",
                    );
                }
                if let Some(schema) = &step.output_schema {
                    self.schema(self.paths.step_field(s, i, "output_schema"), schema);
                }
            }
        }
    }

    fn run(&mut self) {
        let run = &self.spec.run;
        if let Some(session) = &run.session {
            let sp = self.paths.session();
            if session.id.trim().is_empty() {
                self.error(key(&sp, "id"), "session `id` must not be empty");
            }
            self.at_least_one(sp, "max_turns", session.max_turns.map(u64::from));
        }
        for (i, callback) in run.callback.iter().enumerate() {
            let cp = self.paths.callback(i);
            match callback {
                Callback::Stdout { .. } | Callback::StdoutVerbose { .. } => {}
                Callback::Jsonl { path } => {
                    if path.is_empty() {
                        self.error_hint(
                            cp,
                            "missing field `path`",
                            Some("a jsonl callback writes to a file; `-` is stdout".into()),
                        );
                    }
                }
                Callback::Http {
                    url,
                    secret_env,
                    headers,
                    ..
                } => {
                    self.callback_headers(&key(&cp, "headers"), headers);
                    if url.is_empty() {
                        self.error_hint(
                            &cp,
                            "missing field `url`",
                            Some("an http callback POSTs each event to `url`".into()),
                        );
                    } else {
                        self.url(&key(&cp, "url"), url);
                    }
                    if secret_env.as_deref().is_some_and(|e| e.trim().is_empty()) {
                        self.error(
                            key(&cp, "secret_env"),
                            "`secret_env` must name an environment variable",
                        );
                    }
                }
            }
        }
    }

    fn plugin_ref(&mut self, path: &str, r: &PluginRef, kind: Kind) {
        if r.plugin.is_empty() {
            self.error_hint(
                path,
                "empty plugin name",
                Some("write `plugin` or `plugin#entry`".into()),
            );
            return;
        }
        if kind != Kind::Tool && r.approval == super::types::Approval::Always {
            self.error_hint(
                format!("{path}.approval"),
                format!(
                    "`approval` applies to tools only, not to a {}",
                    kind.as_str()
                ),
                Some("remove `approval`, or move the plugin to the agent's `tools`".into()),
            );
        }
        self.guardrail_target(path, kind, r.target.as_deref());
        if r.entry.as_deref() == Some("") {
            self.error_hint(
                path,
                format!("empty entry name after `{}#`", r.plugin),
                Some(format!("write `{}` or `{}#entry`", r.plugin, r.plugin)),
            );
            return;
        }
        let Some(catalog) = self.catalog else {
            return;
        };
        let Some(entries) = catalog.entries(&r.plugin) else {
            let names = catalog.names();
            let hint = suggestion(&r.plugin, names.iter().map(String::as_str), "plugins")
                .or_else(|| Some("plugins are the *.wasm files of the plugins directory".into()));
            self.error_hint(path, format!("unknown plugin `{}`", r.plugin), hint);
            return;
        };
        let offers = offers(&entries);
        let of_kind: Vec<&str> = entries
            .iter()
            .filter(|(_, k)| *k == kind)
            .map(|(n, _)| n.as_str())
            .collect();
        let config_problems = |entry: &str| {
            catalog
                .config_problems(&r.plugin, entry, &r.config)
                .into_iter()
                .map(|(at, message)| SpecError::new(format!("{path}.config{at}"), message))
                .collect::<Vec<_>>()
        };
        match &r.entry {
            Some(entry) => {
                if of_kind.contains(&entry.as_str()) {
                    let problems = config_problems(entry);
                    self.errors.extend(problems);
                    return;
                }
                if let Some((_, other)) = entries.iter().find(|(n, _)| n == entry) {
                    self.error_hint(
                        path,
                        format!("`{r}` is a {other}, not a {kind}"),
                        Some(format!("plugin `{}` offers {offers}", r.plugin)),
                    );
                } else {
                    let hint = match nearest(entry, of_kind.iter().copied()) {
                        Some(n) => format!("did you mean `{}#{n}`?", r.plugin),
                        None => format!("plugin `{}` offers {offers}", r.plugin),
                    };
                    self.error_hint(
                        path,
                        format!("plugin `{}` has no entry `{entry}`", r.plugin),
                        Some(hint),
                    );
                }
            }
            None => match of_kind.as_slice() {
                [] => self.error_hint(
                    path,
                    format!("plugin `{}` offers no {kind}", r.plugin),
                    Some(format!("it offers {offers}")),
                ),
                [entry] => {
                    let problems = config_problems(entry);
                    self.errors.extend(problems);
                }
                many if kind != Kind::Tool => self.error_hint(
                    path,
                    format!(
                        "plugin `{}` offers several {kind}s ({}); name one",
                        r.plugin,
                        many.join(", ")
                    ),
                    Some(format!("write `{}#{}`", r.plugin, many[0])),
                ),
                _ => {}
            },
        }
    }
}

fn offers(entries: &[(String, Kind)]) -> String {
    if entries.is_empty() {
        return "nothing".into();
    }
    let list: Vec<String> = entries.iter().map(|(n, k)| format!("{k} `{n}`")).collect();
    list.join(", ")
}
