//! `template_mapper`: renders the step's input from a template.
//!
//! Config:
//! - `template` (string, required), with placeholders:
//!   - `{{input}}`: the input text; `{{input.a.b}}`: a field of a JSON input
//!   - `{{step:AGENT}}`: the output of the latest earlier step run by agent
//!     `AGENT`; `{{step:AGENT.a.b}}` a field of it
//!   - `{{stage:NAME}}`: the outputs of stage `NAME`, one per line
//!   - `{{last}}`: the output of the latest earlier step
//!   - `{{vars.x}}`: `config.vars.x`
//!   - `{{context.run_id}}`, `{{context.stage}}`, `{{context.step}}`,
//!     `{{context.workflow}}`
//! - `strict` (bool, default true): an unknown or missing placeholder is an
//!   error; with `false` it renders as an empty string
//!
//! The result is a JSON string.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin, text_of};

struct TemplateMapper;

impl Plugin for TemplateMapper {
    fn entries() -> Vec<Entry> {
        vec![Entry::input_mapper(
            "template_mapper",
            "renders the step input from a template with {{input}}, {{step:AGENT}}, {{stage:NAME}}, {{last}}, {{vars.x}}",
        )]
    }

    fn map_input(ctx: &CallContext, input: &Value, prior: &[StepResult]) -> Result<Value, String> {
        let template = ctx
            .config
            .get("template")
            .and_then(Value::as_str)
            .ok_or("template_mapper: config.template (a string) is required")?;
        let strict = ctx
            .config
            .get("strict")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                format!(
                    "template_mapper: unclosed `{{{{` at byte {}",
                    template.len() - rest.len() + start
                )
            })?;
            let name = after[..end].trim();
            match lookup(ctx, input, prior, name) {
                Some(v) => out.push_str(&v),
                None if strict => {
                    return Err(format!(
                        "template_mapper: placeholder `{{{{{name}}}}}` has no value"
                    ));
                }
                None => {}
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }
}

fn lookup(ctx: &CallContext, input: &Value, prior: &[StepResult], name: &str) -> Option<String> {
    if name == "input" {
        return Some(text_of(input));
    }
    if let Some(path) = name.strip_prefix("input.") {
        return field(input, path).map(text_of);
    }
    if name == "last" {
        return prior
            .iter()
            .rev()
            .find(|r| !r.skipped && r.error.is_none())
            .map(|r| text_of(&r.output));
    }
    if let Some(spec) = name.strip_prefix("step:") {
        let (agent, path) = spec
            .split_once('.')
            .map_or((spec, None), |(a, p)| (a, Some(p)));
        let r = prior
            .iter()
            .rev()
            .find(|r| r.agent_key == agent && !r.skipped && r.error.is_none())?;
        return match path {
            None => Some(text_of(&r.output)),
            Some(p) => field(&r.output, p).map(text_of),
        };
    }
    if let Some(stage) = name.strip_prefix("stage:") {
        let parts: Vec<String> = prior
            .iter()
            .filter(|r| r.stage_name == stage && !r.skipped && r.error.is_none())
            .map(|r| text_of(&r.output))
            .collect();
        return (!parts.is_empty()).then(|| parts.join("\n"));
    }
    if let Some(path) = name.strip_prefix("vars.") {
        return ctx
            .config
            .get("vars")
            .and_then(|v| field(v, path))
            .map(text_of);
    }
    match name {
        "context.run_id" => Some(ctx.run_id.clone()),
        "context.stage" => Some(ctx.stage.clone()),
        "context.step" => Some(ctx.step.to_string()),
        "context.workflow" => Some(ctx.workflow_key.clone()),
        _ => None,
    }
}

/// Follows a dotted path (`a.b.0`) into a JSON value; a string that holds
/// JSON is parsed first, since model outputs often arrive as text.
fn field<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = value;
    for key in path.split('.') {
        cur = match cur {
            Value::Object(map) => map.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

export_plugin!(TemplateMapper);
