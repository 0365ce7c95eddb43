//! JSON paths into the document the user wrote, so an error names the field
//! in the shape they sent (native spec or Go request).

use super::Origin;
use super::error::{index, key};

/// Paths of the document the user wrote (native or Go request shape).
pub(super) struct Paths<'a>(pub(super) &'a Origin);

impl Paths<'_> {
    /// Whether the document is a Go request.
    pub(super) fn is_go(&self) -> bool {
        matches!(self.0, Origin::Go { .. })
    }

    /// The field of an agent tool that names the agent.
    pub(super) fn agent_tool_agent_field(&self) -> &'static str {
        if self.is_go() { "agent_name" } else { "agent" }
    }

    /// An agent's stored prompt (`prompt_id` in a Go request).
    pub(super) fn agent_prompt(&self, name: &str) -> String {
        key(
            &self.agent(name),
            if self.is_go() { "prompt_id" } else { "prompt" },
        )
    }

    /// A model field by its native name (`reasoning_summary` is
    /// `reasoning.summary` in a Go request).
    pub(super) fn model_field(&self, model: &str, field: &str) -> String {
        match (self.is_go(), field) {
            (true, "reasoning_summary") => key(&key(model, "reasoning"), "summary"),
            _ => key(model, field),
        }
    }

    pub(super) fn agent(&self, name: &str) -> String {
        match self.0 {
            Origin::Go { agents } => match agents.get(name) {
                Some(o) => index("$.workflow.agents", o.index),
                None => key("$.agents", name),
            },
            _ => key("$.agents", name),
        }
    }

    /// A field of an agent, by its native name (`handoffs`).
    pub(super) fn agent_field(&self, name: &str, field: &str) -> String {
        let agent = self.agent(name);
        match (self.0, field) {
            (Origin::Go { .. }, "handoffs") => key(&agent, "handoff"),
            (Origin::Go { .. }, "output_schema") => key(&key(&agent, "output_type"), "schema"),
            _ => key(&agent, field),
        }
    }

    /// Item `i` of an agent's list `field` (`tools`, `hosted_tools`, …), by
    /// native names and indices.
    pub(super) fn agent_item(&self, name: &str, field: &str, i: usize) -> String {
        if let Origin::Go { agents } = self.0
            && let Some(o) = agents.get(name)
        {
            match field {
                "tools" => {
                    if let Some(j) = o.tools.get(i) {
                        return index(&key(&self.agent(name), "tools"), *j);
                    }
                }
                "hosted_tools" => {
                    if let Some(path) = o.hosted.get(i) {
                        return path.clone();
                    }
                }
                _ => {}
            }
        }
        index(&self.agent_field(name, field), i)
    }

    pub(super) fn agent_output_schema(&self, name: &str) -> String {
        self.agent_field(name, "output_schema")
    }

    pub(super) fn stage(&self, s: usize) -> String {
        match self.0 {
            Origin::Native => index("$.workflow.stages", s),
            Origin::NativeSteps | Origin::Go { .. } => "$.workflow".into(),
        }
    }

    pub(super) fn step(&self, s: usize, i: usize) -> String {
        match self.0 {
            Origin::Native => index(&key(&self.stage(s), "steps"), i),
            Origin::NativeSteps => index("$.workflow.steps", i),
            Origin::Go { .. } => "$.workflow".into(),
        }
    }

    pub(super) fn step_field(&self, s: usize, i: usize, field: &str) -> String {
        match (self.0, field) {
            (Origin::Go { .. }, "agent") => "$.workflow.starting_agent".into(),
            (Origin::Go { .. }, "max_turns") => "$.session.max_turns".into(),
            _ => key(&self.step(s, i), field),
        }
    }

    pub(super) fn session(&self) -> String {
        match self.0 {
            Origin::Go { .. } => "$.session".into(),
            _ => "$.run.session".into(),
        }
    }

    pub(super) fn callback(&self, i: usize) -> String {
        match self.0 {
            Origin::Go { .. } => "$.callback".into(),
            _ => index("$.run.callback", i),
        }
    }
}
