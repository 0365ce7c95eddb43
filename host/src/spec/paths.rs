//! JSON paths into the document the user wrote, so an error names the field
//! in the shape they sent (native spec or Go request).

use super::Origin;
use super::error::{index, key};

/// Paths of the document the user wrote (native or Go request shape).
pub(super) struct Paths<'a>(pub(super) &'a Origin);

impl Paths<'_> {
    pub(super) fn agent(&self, name: &str) -> String {
        match self.0 {
            Origin::Go { agents } => match agents.get(name) {
                Some((i, _)) => index("$.workflow.agents", *i),
                None => key("$.agents", name),
            },
            _ => key("$.agents", name),
        }
    }

    pub(super) fn agent_output_schema(&self, name: &str) -> String {
        let field = match self.0 {
            Origin::Go { agents } => agents.get(name).map_or("output_schema", |(_, f)| f),
            _ => "output_schema",
        };
        key(&self.agent(name), field)
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
            (Origin::Go { .. }, "max_turns") => "$.workflow.max_turns".into(),
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
