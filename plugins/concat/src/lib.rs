//! `concat` reducer: joins the text of a parallel stage's branch outputs, in
//! branch order, with a configurable separator.
//!
//! Config (all optional):
//! - `separator` (string, default `"\n\n"`)
//! - `headers` (bool, default false): prefix each part with `## <agent>`
//! - `include_failed` (bool, default false): add `<agent> failed: <error>`
//!   lines for failed branches of a stage that continues on errors

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin, log, text_of};

struct Concat;

impl Plugin for Concat {
    fn entries() -> Vec<Entry> {
        vec![Entry::reducer(
            "concat",
            "joins branch outputs in branch order with `separator` (default a blank line)",
        )]
    }

    fn reduce(
        ctx: &CallContext,
        outputs: &[StepResult],
        _prior: &[StepResult],
    ) -> Result<Value, String> {
        let separator = match ctx.config.get("separator") {
            None => "\n\n".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(format!(
                    "concat: config.separator must be a string, got {other}"
                ));
            }
        };
        let flag = |name: &str| {
            ctx.config
                .get(name)
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        let (headers, include_failed) = (flag("headers"), flag("include_failed"));
        let mut parts = Vec::new();
        for r in outputs {
            if r.skipped {
                continue;
            }
            if let Some(err) = &r.error {
                if include_failed {
                    parts.push(format!("{} failed: {err}", r.agent_key));
                }
                continue;
            }
            let text = text_of(&r.output);
            parts.push(if headers {
                format!("## {}\n{text}", r.agent_key)
            } else {
                text
            });
        }
        log::debug(&format!(
            "joined {} of {} branch outputs",
            parts.len(),
            outputs.len()
        ));
        Ok(Value::String(parts.join(&separator)))
    }
}

export_plugin!(Concat);
