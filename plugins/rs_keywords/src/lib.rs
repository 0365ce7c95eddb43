use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin, text_of};

struct Keywords;

impl Plugin for Keywords {
    fn entries() -> Vec<Entry> {
        vec![Entry::guard("rs_keywords", "runs the step on a keyword")]
    }

    fn guard(ctx: &CallContext, input: &Value, _prior: &[StepResult]) -> Result<bool, String> {
        let text = text_of(input).to_lowercase();
        let hit = |k: &String| text.contains(&k.to_lowercase());
        Ok(ctx.strings("keywords")?.iter().any(hit))
    }
}

export_plugin!(Keywords);
