//! Token usage: one type for what a model call reports, what a step and a
//! run add up, what events carry and what the run store keeps. A leaf: it
//! imports nothing from the crate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Token counts of one call (or a sum of calls).
///
/// A server that reports no usage (many OpenAI-compatible servers, in
/// streams especially) does not make a call free: such a call adds nothing
/// to the counts and one to `unreported_calls`, so a sum reads "at least
/// this many tokens, plus N calls of unknown size" rather than a wrong total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// Calls whose server reported no usage (their tokens are unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreported_calls: u64,
}

impl Usage {
    /// The counts a server reported for one call.
    pub fn reported(input_tokens: u64, output_tokens: u64, total_tokens: u64) -> Self {
        Usage {
            input_tokens,
            output_tokens,
            total_tokens,
            unreported_calls: 0,
        }
    }

    /// One call whose server reported no usage.
    pub fn unreported() -> Self {
        Usage {
            unreported_calls: 1,
            ..Usage::default()
        }
    }

    /// Whether some of the calls summed here had no reported usage.
    pub fn is_partial(&self) -> bool {
        self.unreported_calls > 0
    }

    /// `""`, or ` (+N calls with unreported usage)` to follow the counts.
    pub fn unreported_note(&self) -> String {
        match self.unreported_calls {
            0 => String::new(),
            1 => " (+1 call with unreported usage)".to_owned(),
            n => format!(" (+{n} calls with unreported usage)"),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.total_tokens += other.total_tokens;
        self.unreported_calls += other.unreported_calls;
    }
}

/// Usage per model name.
pub type UsageByModel = BTreeMap<String, Usage>;

/// How the run store keeps usage: input and output tokens per model (the
/// total is their sum, so it is not stored). `#[serde(with = "…")]` on a
/// run record's map.
pub mod stored {
    use super::{Usage, UsageByModel};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    struct Stored {
        input_tokens: u64,
        output_tokens: u64,
        #[serde(default, skip_serializing_if = "super::is_zero")]
        unreported_calls: u64,
    }

    fn stored(usage: &UsageByModel) -> BTreeMap<&str, Stored> {
        usage
            .iter()
            .map(|(model, u)| {
                (
                    model.as_str(),
                    Stored {
                        input_tokens: u.input_tokens,
                        output_tokens: u.output_tokens,
                        unreported_calls: u.unreported_calls,
                    },
                )
            })
            .collect()
    }

    fn loaded(stored: BTreeMap<String, Stored>) -> UsageByModel {
        stored
            .into_iter()
            .map(|(model, s)| {
                let usage = Usage {
                    input_tokens: s.input_tokens,
                    output_tokens: s.output_tokens,
                    total_tokens: s.input_tokens + s.output_tokens,
                    unreported_calls: s.unreported_calls,
                };
                (model, usage)
            })
            .collect()
    }

    pub fn serialize<S: Serializer>(usage: &UsageByModel, s: S) -> Result<S::Ok, S::Error> {
        stored(usage).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UsageByModel, D::Error> {
        BTreeMap::<String, Stored>::deserialize(d).map(loaded)
    }

    /// The same for an optional map (a partial update of a run).
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            usage: &Option<UsageByModel>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            usage.as_ref().map(stored).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<UsageByModel>, D::Error> {
            Option::<BTreeMap<String, Stored>>::deserialize(d).map(|o| o.map(loaded))
        }
    }

    /// The map as the store's JSON column holds it.
    pub fn to_string(usage: &UsageByModel) -> serde_json::Result<String> {
        serde_json::to_string(&stored(usage))
    }

    /// The map from the store's JSON column.
    pub fn from_str(text: &str) -> serde_json::Result<UsageByModel> {
        serde_json::from_str(text).map(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_keeps_input_and_output_and_sums_the_total() {
        let usage = UsageByModel::from([("m".to_owned(), Usage::reported(3, 4, 7))]);
        let text = stored::to_string(&usage).expect("serializes");
        assert_eq!(text, r#"{"m":{"input_tokens":3,"output_tokens":4}}"#);
        assert_eq!(stored::from_str(&text).expect("parses"), usage);

        let mut partial = usage.clone();
        if let Some(u) = partial.get_mut("m") {
            *u += Usage::unreported();
        }
        let text = stored::to_string(&partial).expect("serializes");
        assert_eq!(
            text,
            r#"{"m":{"input_tokens":3,"output_tokens":4,"unreported_calls":1}}"#
        );
        assert_eq!(stored::from_str(&text).expect("parses"), partial);
    }
}
