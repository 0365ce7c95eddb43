//! Checks of an agent's agent tools, stored prompt and request settings
//! (`tool_choice`, `metadata`, `extra_query`, the Responses-only ones).

use super::Checker;
use crate::llm::HANDOFF_PREFIX;
use crate::spec::error::key;
use crate::spec::types::{Agent, Api, Kind};
use crate::spec::{HostedTool, ToolChoice};
use std::collections::{BTreeMap, BTreeSet};

/// OpenAI's limits on `metadata`.
const METADATA_PAIRS: usize = 16;
const METADATA_KEY_CHARS: usize = 64;
const METADATA_VALUE_CHARS: usize = 512;

impl Checker<'_> {
    /// `agent_tools`: each names another agent, under a valid tool name no
    /// other tool of the agent has; and no agent reaches itself through
    /// agent tools (its run would never end).
    pub(super) fn agent_tools(&mut self, name: &str, agent: &Agent) {
        let mut names = BTreeSet::new();
        for (i, tool) in agent.agent_tools.iter().enumerate() {
            let at = self.paths.agent_item(name, "agent_tools", i);
            let agent_path = key(&at, self.paths.agent_tool_agent_field());
            if tool.agent == name {
                self.error(agent_path, format!("agent `{name}` is offered to itself"));
                continue;
            }
            if !self.spec.agents.contains_key(&tool.agent) {
                self.unknown_agent(agent_path, &tool.agent);
                continue;
            }
            let tool_name = tool.name();
            let name_path = if tool.tool_name.is_some() {
                key(&at, "tool_name")
            } else {
                agent_path.clone()
            };
            if !crate::llm::is_tool_name(tool_name) {
                self.error_hint(
                    name_path,
                    format!("`{tool_name}` is not a tool name the model can call"),
                    Some("use 1 to 64 letters, digits, `_` or `-` (set `tool_name`)".into()),
                );
            } else if tool_name.starts_with(HANDOFF_PREFIX) {
                self.error(
                    name_path,
                    format!("`{HANDOFF_PREFIX}…` names are the handoff tools'"),
                );
            } else if !names.insert(tool_name.to_string()) {
                self.error(
                    name_path,
                    format!("two agent tools are named `{tool_name}`"),
                );
            } else if let Some(cycle) = self.agent_tool_cycle(name, &tool.agent) {
                self.error_hint(
                    agent_path,
                    format!(
                        "agent tools call each other in a circle: {}",
                        cycle.join(" → ")
                    ),
                    Some("an agent may not reach itself through agent tools".into()),
                );
            }
        }
    }

    /// A path `from → via → … → from` through agent tools, if one exists.
    fn agent_tool_cycle(&self, from: &str, via: &str) -> Option<Vec<String>> {
        let mut stack = vec![vec![from.to_string(), via.to_string()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = path.last()?.clone();
            if last == from {
                return Some(path);
            }
            if !seen.insert(last.clone()) {
                continue;
            }
            if let Some(agent) = self.spec.agents.get(&last) {
                for t in &agent.agent_tools {
                    let mut next = path.clone();
                    next.push(t.agent.clone());
                    stack.push(next);
                }
            }
        }
        None
    }

    /// The stored prompt and the request settings of `agent`'s model.
    pub(super) fn request_settings(&mut self, name: &str, agent: &Agent) {
        let model = &agent.model;
        let mp = key(&self.paths.agent(name), "model");
        let api = self
            .spec
            .providers
            .get(&model.provider)
            .and_then(|p| p.api());
        let chat = api == Some(Api::Chat);
        if let Some(prompt) = &agent.prompt {
            let pp = self.paths.agent_prompt(name);
            if prompt.id.trim().is_empty() {
                self.error(pp.clone(), "the stored prompt's `id` is empty");
            } else if chat {
                self.responses_only(pp, "a stored prompt", &model.provider);
            }
        }
        if model.reasoning_summary.is_some() && chat {
            let at = self.paths.model_field(&mp, "reasoning_summary");
            self.responses_only(at, "`reasoning_summary`", &model.provider);
        }
        self.metadata(&key(&mp, "metadata"), &model.metadata);
        for name in model.extra_query.keys() {
            if name.trim().is_empty() {
                self.error(key(&mp, "extra_query"), "an `extra_query` name is empty");
            }
        }
        if let Some(choice) = &model.tool_choice {
            self.tool_choice(&key(&mp, "tool_choice"), name, agent, choice);
        }
    }

    fn responses_only(&mut self, at: String, what: &str, provider: &str) {
        self.error_hint(
            at,
            format!(
                "{what} needs the Responses API, and provider `{provider}` speaks Chat Completions"
            ),
            Some(
                "set `api: \"responses\"` on the provider (if the server serves it), or remove it"
                    .into(),
            ),
        );
    }

    fn metadata(&mut self, at: &str, metadata: &BTreeMap<String, String>) {
        if metadata.len() > METADATA_PAIRS {
            self.error(
                at,
                format!(
                    "`metadata` has {} pairs; the API takes at most {METADATA_PAIRS}",
                    metadata.len()
                ),
            );
        }
        for (k, v) in metadata {
            if k.is_empty() || k.chars().count() > METADATA_KEY_CHARS {
                self.error(
                    key(at, k),
                    format!("a `metadata` key has 1 to {METADATA_KEY_CHARS} characters"),
                );
            }
            if v.chars().count() > METADATA_VALUE_CHARS {
                self.error(
                    key(at, k),
                    format!("a `metadata` value has at most {METADATA_VALUE_CHARS} characters"),
                );
            }
        }
    }

    /// A named `tool_choice` must be one of the agent's tools. Plugin tools
    /// are known only with a catalog (and `plugin#entry` references).
    fn tool_choice(&mut self, at: &str, name: &str, agent: &Agent, choice: &ToolChoice) {
        let ToolChoice::Named(wanted) = choice else {
            return;
        };
        if wanted.trim().is_empty() {
            self.error(at, "`tool_choice` is empty");
            return;
        }
        if (agent.tools.is_empty() && agent.hosted_tools.is_empty())
            && agent.agent_tools.is_empty()
            && agent.handoffs.is_empty()
        {
            self.error(
                at,
                format!("`tool_choice` names `{wanted}`, but agent `{name}` has no tools"),
            );
            return;
        }
        let mut known: Vec<String> = Vec::new();
        for r in &agent.tools {
            match (&r.entry, self.catalog) {
                (Some(entry), _) => known.push(entry.clone()),
                (None, Some(catalog)) => known.extend(
                    (catalog.entries(&r.plugin).unwrap_or_default().into_iter())
                        .filter(|(_, kind)| *kind == Kind::Tool)
                        .map(|(entry, _)| entry),
                ),
                // Which tools a bare plugin offers is known only when loaded.
                (None, None) => return,
            }
        }
        known.extend(agent.agent_tools.iter().map(|t| t.name().to_string()));
        if self.spec.workflow.allow_handoff_agents {
            known.extend(
                agent
                    .handoffs
                    .iter()
                    .map(|h| format!("{HANDOFF_PREFIX}{h}")),
            );
        }
        for tool in &agent.hosted_tools {
            known.push(tool.type_name().to_string());
            if let HostedTool::Mcp { server_label, .. } = tool {
                known.push(server_label.clone());
            }
        }
        if !known.iter().any(|k| k == wanted) {
            self.error_hint(
                at,
                format!("`tool_choice` names `{wanted}`, which is no tool of agent `{name}`"),
                Some(format!(
                    "`auto`, `required`, `none`, or one of: {}",
                    known.join(", ")
                )),
            );
        }
    }

    /// A guardrail's `target` is a field name or a JSON pointer.
    pub(super) fn guardrail_target(&mut self, path: &str, kind: Kind, target: Option<&str>) {
        let Some(target) = target else {
            return;
        };
        let at = format!("{path}.target");
        if kind != Kind::Guardrail {
            self.error_hint(
                at,
                format!(
                    "`target` applies to guardrails only, not to a {}",
                    kind.as_str()
                ),
                Some("remove `target`".into()),
            );
        } else if target.trim().is_empty() {
            self.error(at, "`target` is empty");
        }
    }
}
