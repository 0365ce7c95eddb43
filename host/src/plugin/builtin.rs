//! The host's built-in guardrails: the Go runner's guardrail registry
//! (`math_homework_input`, `basic_profanity_input`, `basic_profanity_output`,
//! `phone_number_output`), implemented natively. They need no plugins
//! folder; a plugin file of the same name replaces one (the registry looks
//! for a loaded plugin first). The agent calls them through
//! [`super::Guardrail`], the same way it calls a guardrail plugin, and their
//! verdicts are journaled the same way.
//!
//! Each is one guardrail entry named like the preset
//! (`phone_number_output#phone_number_output`) and checks the text of what
//! it is given: a string as it is, other JSON as its JSON text. Like the Go
//! runner's, the math keywords are case-insensitive substring matches; the
//! profanity list matches whole words, case-insensitively (the Go runner
//! matches substrings, so there `hello` trips it — a defect not copied);
//! the phone pattern (`config.pattern` overrides it; at most
//! [`MAX_PATTERN_BYTES`]) is matched against the text as it is. They are
//! not tied to a phase: an "input" preset used as an output guardrail
//! checks the output.

use super::types::{Phase, Verdict};
use regex::{Regex, RegexBuilder};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The longest `config.pattern` a `phone_number_output` guardrail takes.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// Cap on the compiled size of that pattern (the `regex` crate's limit).
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// What the Go runner's `phone_number_output` matches.
pub const DEFAULT_PHONE_PATTERN: &str =
    r"\b(\+?\d{1,3}[-.\s]?)?(\(\d{3}\)|\d{3})[-.\s]?\d{3}[-.\s]?\d{4}\b";
const MATH_KEYWORDS: [&str; 4] = [
    "math homework",
    "solve this math",
    "algebra homework",
    "calculus homework",
];
const PROFANITIES: [&str; 4] = ["damn", "hell", "shit", "fuck"];

/// One built-in guardrail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter)]
pub enum Preset {
    MathHomeworkInput,
    BasicProfanityInput,
    BasicProfanityOutput,
    PhoneNumberOutput,
}

impl Preset {
    /// Every preset, in name order.
    pub fn all() -> impl Iterator<Item = Preset> {
        <Preset as strum::IntoEnumIterator>::iter()
    }

    /// The preset called `name`.
    pub fn named(name: &str) -> Option<Preset> {
        Preset::all().find(|p| p.name() == name)
    }

    /// Its name, which is also its one entry's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::MathHomeworkInput => "math_homework_input",
            Preset::BasicProfanityInput => "basic_profanity_input",
            Preset::BasicProfanityOutput => "basic_profanity_output",
            Preset::PhoneNumberOutput => "phone_number_output",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Preset::MathHomeworkInput => "trips on requests for math homework (keywords)",
            Preset::BasicProfanityInput | Preset::BasicProfanityOutput => {
                "trips on a short list of profanities"
            }
            Preset::PhoneNumberOutput => {
                "trips on a phone number (a pattern; `config.pattern` overrides it)"
            }
        }
    }

    /// Stands in for a plugin build's SHA-256 in journals and step records:
    /// the hash of the preset's name and behaviour version.
    pub fn digest(self) -> String {
        hex::encode(Sha256::digest(format!(
            "host builtin guardrail {} v1",
            self.name()
        )))
    }

    /// What is wrong with `config` for this preset, as (path under
    /// `config`, message); every key it does not read is an error.
    pub fn config_problems(self, config: &Value) -> Vec<(String, String)> {
        let Some(fields) = config.as_object() else {
            return vec![(String::new(), "`config` must be an object".into())];
        };
        let mut out = Vec::new();
        for (name, value) in fields {
            match (self, name.as_str()) {
                (Preset::PhoneNumberOutput, "pattern") => {
                    if let Err(message) = pattern(value) {
                        out.push((".pattern".into(), message));
                    }
                }
                _ => out.push((
                    format!(".{name}"),
                    format!(
                        "the built-in guardrail `{}` has no setting `{name}`",
                        self.name()
                    ),
                )),
            }
        }
        out
    }

    /// The verdict on `payload`; an error when `config` is invalid.
    pub fn check(self, config: &Value, _phase: Phase, payload: &Value) -> Result<Verdict, String> {
        let text = match payload {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let lower = text.to_lowercase();
        Ok(match self {
            Preset::MathHomeworkInput => match MATH_KEYWORDS.iter().find(|k| lower.contains(*k)) {
                Some(keyword) => Verdict {
                    tripwire: true,
                    message: format!("math homework request (`{keyword}`)"),
                    info: json!({"keyword": keyword}),
                },
                None => pass(Value::Null),
            },
            Preset::BasicProfanityInput | Preset::BasicProfanityOutput => {
                let detected = lower
                    .split(|c: char| !c.is_alphabetic())
                    .any(|word| PROFANITIES.contains(&word));
                Verdict {
                    tripwire: detected,
                    message: if detected {
                        "profanity detected".into()
                    } else {
                        String::new()
                    },
                    info: json!({"detected": detected}),
                }
            }
            Preset::PhoneNumberOutput => {
                let given = config.get("pattern").filter(|p| !p.is_null());
                let (source, re) = match given {
                    Some(p) => (p.as_str().unwrap_or_default().to_string(), pattern(p)?),
                    None => (DEFAULT_PHONE_PATTERN.to_string(), default_phone()),
                };
                let found = re.is_match(&text);
                Verdict {
                    tripwire: found,
                    message: if found {
                        "phone number detected".into()
                    } else {
                        String::new()
                    },
                    info: json!({"pattern": source}),
                }
            }
        })
    }
}

fn pass(info: Value) -> Verdict {
    Verdict {
        tripwire: false,
        message: String::new(),
        info,
    }
}

fn default_phone() -> Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| match Regex::new(DEFAULT_PHONE_PATTERN) {
        Ok(re) => re,
        // A constant that compiles (a unit test says so).
        Err(e) => unreachable!("default phone pattern: {e}"),
    })
    .clone()
}

/// `config.pattern` compiled, or why it cannot be.
fn pattern(value: &Value) -> Result<Regex, String> {
    let Some(source) = value.as_str() else {
        return Err("`pattern` must be a string".into());
    };
    if source.is_empty() {
        return Err("`pattern` must not be empty".into());
    }
    if source.len() > MAX_PATTERN_BYTES {
        return Err(format!(
            "`pattern` is {} bytes, more than the {MAX_PATTERN_BYTES} allowed",
            source.len()
        ));
    }
    RegexBuilder::new(source)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid pattern: {}", last_line(&e.to_string())))
}

/// The last line of a `regex` error (the first ones repeat the pattern).
fn last_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trips(p: Preset, config: Value, payload: Value) -> bool {
        p.check(&config, Phase::Input, &payload)
            .expect("valid config")
            .tripwire
    }

    #[test]
    fn each_preset_trips_and_passes() {
        let none = json!({});
        assert!(trips(
            Preset::MathHomeworkInput,
            none.clone(),
            json!("Please do my MATH homework")
        ));
        assert!(!trips(
            Preset::MathHomeworkInput,
            none.clone(),
            json!("What is 2+2?")
        ));
        assert!(trips(
            Preset::BasicProfanityInput,
            none.clone(),
            json!("what the Hell")
        ));
        assert!(!trips(
            Preset::BasicProfanityInput,
            none.clone(),
            json!("hello, shell")
        ));
        assert!(!trips(
            Preset::BasicProfanityOutput,
            none.clone(),
            json!("all good")
        ));
        assert!(trips(
            Preset::BasicProfanityOutput,
            none.clone(),
            json!({"text": "damn"})
        ));
        assert!(trips(
            Preset::PhoneNumberOutput,
            none.clone(),
            json!("call 555-123-4567")
        ));
        assert!(trips(
            Preset::PhoneNumberOutput,
            none.clone(),
            json!("+1 555.123.4567")
        ));
        assert!(!trips(
            Preset::PhoneNumberOutput,
            none,
            json!("no number here, 12 34")
        ));
    }

    #[test]
    fn the_pattern_can_be_overridden_and_is_checked() {
        let custom = json!({"pattern": r"\bSECRET-\d+\b"});
        assert!(
            Preset::PhoneNumberOutput
                .config_problems(&custom)
                .is_empty()
        );
        assert!(trips(
            Preset::PhoneNumberOutput,
            custom.clone(),
            json!("it is SECRET-42")
        ));
        assert!(!trips(
            Preset::PhoneNumberOutput,
            custom,
            json!("call 555-123-4567")
        ));
        for (bad, want) in [
            (json!({"pattern": "(unclosed"}), "invalid pattern"),
            (json!({"pattern": 3}), "must be a string"),
            (json!({"pattern": ""}), "must not be empty"),
            (
                json!({"pattern": "a".repeat(MAX_PATTERN_BYTES + 1)}),
                "more than the 1024",
            ),
            (
                json!({"pattern": r"\w{1000}\w{1000}\w{1000}"}),
                "invalid pattern",
            ),
        ] {
            let problems = Preset::PhoneNumberOutput.config_problems(&bad);
            assert_eq!(problems.len(), 1, "{bad}");
            assert_eq!(problems[0].0, ".pattern");
            assert!(problems[0].1.contains(want), "{bad}: {}", problems[0].1);
            assert!(
                Preset::PhoneNumberOutput
                    .check(&bad, Phase::Output, &json!("x"))
                    .is_err()
            );
        }
        let extra = Preset::MathHomeworkInput.config_problems(&json!({"keywords": ["x"]}));
        assert_eq!(extra[0].0, ".keywords");
    }

    #[test]
    fn names_and_digests_are_stable() {
        let names: Vec<&str> = Preset::all().map(Preset::name).collect();
        assert_eq!(
            names,
            [
                "math_homework_input",
                "basic_profanity_input",
                "basic_profanity_output",
                "phone_number_output"
            ]
        );
        assert_eq!(
            Preset::named("phone_number_output"),
            Some(Preset::PhoneNumberOutput)
        );
        assert_eq!(Preset::PhoneNumberOutput.digest().len(), 64);
        assert_ne!(
            Preset::BasicProfanityInput.digest(),
            Preset::BasicProfanityOutput.digest()
        );
        assert!(Regex::new(DEFAULT_PHONE_PATTERN).is_ok());
    }
}
