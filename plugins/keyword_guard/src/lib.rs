//! `keyword_guard`: runs the step only when its input mentions one of the
//! configured keywords, or is at least `min_length` characters long.
//!
//! Config:
//! - `keywords` (array of strings): matched as substrings
//! - `mode` (`"any"` default, or `"all"`): how many keywords must match
//! - `case_sensitive` (bool, default false)
//! - `min_length` (integer): characters of input text that also let it run
//!
//! At least one of `keywords` and `min_length` is required. The input text is
//! the input string, or the compact JSON of a non-string input.

use guest_sdk::{CallContext, Entry, Plugin, StepResult, Value, export_plugin, log, text_of};

struct KeywordGuard;

impl Plugin for KeywordGuard {
    fn entries() -> Vec<Entry> {
        vec![Entry::guard(
            "keyword_guard",
            "runs the step if the input contains configured keywords or is at least min_length long",
        )]
    }

    fn guard(ctx: &CallContext, input: &Value, _prior: &[StepResult]) -> Result<bool, String> {
        let keywords: Vec<String> = match ctx.config.get("keywords") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|k| {
                    k.as_str().map(str::to_string).ok_or_else(|| {
                        format!("keyword_guard: config.keywords must be strings, got {k}")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "keyword_guard: config.keywords must be an array, got {other}"
                ));
            }
        };
        let min_length = match ctx.config.get("min_length") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                format!("keyword_guard: config.min_length must be a non-negative integer, got {v}")
            })?),
        };
        if keywords.is_empty() && min_length.is_none() {
            return Err("keyword_guard: configure `keywords` or `min_length`".into());
        }
        let all = match ctx.config.get("mode").and_then(Value::as_str) {
            None | Some("any") => false,
            Some("all") => true,
            Some(other) => {
                return Err(format!(
                    "keyword_guard: config.mode must be \"any\" or \"all\", got \"{other}\""
                ));
            }
        };
        let case_sensitive = ctx
            .config
            .get("case_sensitive")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        let text = text_of(input);
        let haystack = if case_sensitive {
            text.clone()
        } else {
            text.to_lowercase()
        };
        let hit = |k: &String| {
            if case_sensitive {
                haystack.contains(k.as_str())
            } else {
                haystack.contains(&k.to_lowercase())
            }
        };
        let keywords_ok = !keywords.is_empty()
            && if all {
                keywords.iter().all(hit)
            } else {
                keywords.iter().any(hit)
            };
        let length_ok = min_length.is_some_and(|n| text.chars().count() as u64 >= n);
        let run = keywords_ok || length_ok;
        log::debug(&format!(
            "keywords matched: {keywords_ok}, length ok: {length_ok} -> run: {run}"
        ));
        Ok(run)
    }
}

export_plugin!(KeywordGuard);
