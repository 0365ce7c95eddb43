//! Journal keys: where in a run a side effect happened, the same in every
//! execution of the run. A [`Key`] formats to the stored string and parses
//! back from it, so code that reads a journal (resume, `host runs show`,
//! replay reports) never splits strings by hand.
//!
//! | key | string |
//! |---|---|
//! | [`Key::RunStarted`] / [`Key::RunFinished`] | `run/started`, `run/finished` |
//! | [`Key::Guard`], [`Key::MapInput`], [`Key::Done`] | `<stage>/<index>/guard`, `…/map_input`, `…/done` |
//! | [`Key::Model`] | `<stage>/<index>/t<turn>/model` |
//! | [`Key::Tool`], [`Key::Approval`] | `<stage>/<index>/t<turn>/tool/<call id>`, `…/approval/<call id>` |
//! | [`Key::Guardrail`] | `<stage>/<index>/<site>/guardrail/<n>`, site `t<turn>/<phase>` or `t<turn>/<call id>/<phase>` |
//! | [`Key::SessionRead`], [`Key::SessionSummary`] | `<stage>/<index>/session/read`, `…/session/summary` |
//! | [`Key::SessionWrite`] | `<stage>/<index>/session/write` (a step) or `<stage>/session/write` (a parallel stage) |
//! | [`Key::Reduce`] | `<stage>/reduce` |
//!
//! Stage names are free text and may contain `/`; the parts after them
//! never do except inside a call id, so keys are parsed from the right.

use std::fmt;
use std::str::FromStr;

/// One step of a run: `<stage>/<step index>`, the prefix of its keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepKey {
    pub stage: String,
    pub index: u32,
}

impl StepKey {
    pub fn new(stage: impl Into<String>, index: u32) -> Self {
        StepKey {
            stage: stage.into(),
            index,
        }
    }
}

impl fmt::Display for StepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.stage, self.index)
    }
}

impl FromStr for StepKey {
    type Err = BadKey;
    fn from_str(s: &str) -> Result<Self, BadKey> {
        let (stage, index) = s.rsplit_once('/').ok_or_else(|| BadKey::new(s))?;
        Ok(StepKey::new(
            stage,
            index.parse().map_err(|_| BadKey::new(s))?,
        ))
    }
}

/// Whose session items a [`Key::SessionWrite`] records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A sequential step.
    Step(StepKey),
    /// A parallel stage: its branches' items, in branch order.
    Stage(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Step(step) => step.fmt(f),
            Owner::Stage(stage) => f.write_str(stage),
        }
    }
}

/// Where in a run a journal entry belongs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    RunStarted,
    RunFinished,
    Guard(StepKey),
    MapInput(StepKey),
    /// A step's result (completed, skipped or failed).
    Done(StepKey),
    Model {
        step: StepKey,
        turn: u32,
    },
    Tool {
        step: StepKey,
        turn: u32,
        call_id: String,
    },
    Approval {
        step: StepKey,
        turn: u32,
        call_id: String,
    },
    /// Guardrail `index` of a phase; `site` is `t<turn>/<phase>` or
    /// `t<turn>/<call id>/<phase>`.
    Guardrail {
        step: StepKey,
        site: String,
        index: usize,
    },
    SessionRead(StepKey),
    SessionSummary(StepKey),
    SessionWrite(Owner),
    Reduce {
        stage: String,
    },
}

impl Key {
    pub fn model(step: &StepKey, turn: u32) -> Self {
        Key::Model {
            step: step.clone(),
            turn,
        }
    }

    pub fn tool(step: &StepKey, turn: u32, call_id: &str) -> Self {
        Key::Tool {
            step: step.clone(),
            turn,
            call_id: call_id.to_owned(),
        }
    }

    pub fn approval(step: &StepKey, turn: u32, call_id: &str) -> Self {
        Key::Approval {
            step: step.clone(),
            turn,
            call_id: call_id.to_owned(),
        }
    }

    pub fn guardrail(step: &StepKey, site: &str, index: usize) -> Self {
        Key::Guardrail {
            step: step.clone(),
            site: site.to_owned(),
            index,
        }
    }

    pub fn reduce(stage: &str) -> Self {
        Key::Reduce {
            stage: stage.to_owned(),
        }
    }

    /// The step this key belongs to, if it belongs to one.
    pub fn step(&self) -> Option<&StepKey> {
        match self {
            Key::Guard(s)
            | Key::MapInput(s)
            | Key::Done(s)
            | Key::SessionRead(s)
            | Key::SessionSummary(s)
            | Key::SessionWrite(Owner::Step(s)) => Some(s),
            Key::Model { step, .. }
            | Key::Tool { step, .. }
            | Key::Approval { step, .. }
            | Key::Guardrail { step, .. } => Some(step),
            Key::RunStarted
            | Key::RunFinished
            | Key::SessionWrite(Owner::Stage(_))
            | Key::Reduce { .. } => None,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::RunStarted => f.write_str("run/started"),
            Key::RunFinished => f.write_str("run/finished"),
            Key::Guard(s) => write!(f, "{s}/guard"),
            Key::MapInput(s) => write!(f, "{s}/map_input"),
            Key::Done(s) => write!(f, "{s}/done"),
            Key::Model { step, turn } => write!(f, "{step}/t{turn}/model"),
            Key::Tool {
                step,
                turn,
                call_id,
            } => write!(f, "{step}/t{turn}/tool/{call_id}"),
            Key::Approval {
                step,
                turn,
                call_id,
            } => write!(f, "{step}/t{turn}/approval/{call_id}"),
            Key::Guardrail { step, site, index } => write!(f, "{step}/{site}/guardrail/{index}"),
            Key::SessionRead(s) => write!(f, "{s}/session/read"),
            Key::SessionSummary(s) => write!(f, "{s}/session/summary"),
            Key::SessionWrite(owner) => write!(f, "{owner}/session/write"),
            Key::Reduce { stage } => write!(f, "{stage}/reduce"),
        }
    }
}

impl From<Key> for String {
    fn from(key: Key) -> String {
        key.to_string()
    }
}

/// A string that is no journal key the engine writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` is not a journal key")]
pub struct BadKey {
    pub key: String,
}

impl BadKey {
    fn new(key: &str) -> Self {
        BadKey {
            key: key.to_owned(),
        }
    }
}

/// A key of one step, made from it.
type MakeKey = fn(StepKey) -> Key;

/// `<step>/t<turn>` at the end of `s`: the step and the turn.
fn step_turn(s: &str) -> Option<(StepKey, u32)> {
    let (step, turn) = s.rsplit_once('/')?;
    let turn = turn.strip_prefix('t')?.parse().ok()?;
    Some((step.parse().ok()?, turn))
}

impl FromStr for Key {
    type Err = BadKey;
    fn from_str(s: &str) -> Result<Self, BadKey> {
        let bad = || BadKey::new(s);
        let step = |p: &str| p.parse::<StepKey>().map_err(|_| bad());
        match s {
            "run/started" => return Ok(Key::RunStarted),
            "run/finished" => return Ok(Key::RunFinished),
            _ => {}
        }
        if let Some(p) = s.strip_suffix("/session/write") {
            return Ok(Key::SessionWrite(match p.parse::<StepKey>() {
                Ok(step) => Owner::Step(step),
                Err(_) => Owner::Stage(p.to_owned()),
            }));
        }
        let simple: [(&str, MakeKey); 5] = [
            ("/guard", Key::Guard),
            ("/map_input", Key::MapInput),
            ("/done", Key::Done),
            ("/session/read", Key::SessionRead),
            ("/session/summary", Key::SessionSummary),
        ];
        for (suffix, make) in simple {
            if let Some(p) = s.strip_suffix(suffix) {
                return step(p).map(make);
            }
        }
        if let Some(stage) = s.strip_suffix("/reduce") {
            return Ok(Key::reduce(stage));
        }
        if let Some(p) = s.strip_suffix("/model") {
            let (step, turn) = step_turn(p).ok_or_else(bad)?;
            return Ok(Key::Model { step, turn });
        }
        if let Some((head, index)) = s.rsplit_once("/guardrail/") {
            let index = index.parse().map_err(|_| bad())?;
            // The site starts at the last `<index>/t<turn>` pair.
            let parts: Vec<&str> = head.split('/').collect();
            let at = (1..parts.len().saturating_sub(1))
                .rev()
                .find(|&i| {
                    parts[i].parse::<u32>().is_ok()
                        && parts[i + 1]
                            .strip_prefix('t')
                            .is_some_and(|t| t.parse::<u32>().is_ok())
                })
                .ok_or_else(bad)?;
            return Ok(Key::Guardrail {
                step: step(&parts[..=at].join("/"))?,
                site: parts[at + 1..].join("/"),
                index,
            });
        }
        for (marker, approval) in [("/tool/", false), ("/approval/", true)] {
            if let Some((head, call_id)) = s.rsplit_once(marker)
                && let Some((step, turn)) = step_turn(head)
            {
                let call_id = call_id.to_owned();
                return Ok(if approval {
                    Key::Approval {
                        step,
                        turn,
                        call_id,
                    }
                } else {
                    Key::Tool {
                        step,
                        turn,
                        call_id,
                    }
                });
            }
        }
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_formats_as_stored_and_parses_back() {
        let step = StepKey::new("research/deep", 2);
        let cases = [
            (Key::RunStarted, "run/started"),
            (Key::RunFinished, "run/finished"),
            (Key::Guard(step.clone()), "research/deep/2/guard"),
            (Key::MapInput(step.clone()), "research/deep/2/map_input"),
            (Key::Done(step.clone()), "research/deep/2/done"),
            (Key::model(&step, 3), "research/deep/2/t3/model"),
            (
                Key::tool(&step, 1, "call_a"),
                "research/deep/2/t1/tool/call_a",
            ),
            (
                Key::approval(&step, 1, "mcpr_1"),
                "research/deep/2/t1/approval/mcpr_1",
            ),
            (
                Key::guardrail(&step, "t0/input", 1),
                "research/deep/2/t0/input/guardrail/1",
            ),
            (
                Key::guardrail(&step, "t2/call_b/tool_output", 0),
                "research/deep/2/t2/call_b/tool_output/guardrail/0",
            ),
            (
                Key::SessionRead(step.clone()),
                "research/deep/2/session/read",
            ),
            (
                Key::SessionSummary(step.clone()),
                "research/deep/2/session/summary",
            ),
            (
                Key::SessionWrite(Owner::Step(step.clone())),
                "research/deep/2/session/write",
            ),
            (
                Key::SessionWrite(Owner::Stage("fan".into())),
                "fan/session/write",
            ),
            (Key::reduce("fan"), "fan/reduce"),
        ];
        for (key, text) in cases {
            assert_eq!(key.to_string(), text);
            assert_eq!(text.parse::<Key>(), Ok(key), "{text}");
        }
    }

    #[test]
    fn keys_of_an_agent_tool_s_nested_loop_parse_back() {
        let nested = StepKey::new("main/0/t1/agent0", 0);
        assert_eq!(nested.to_string(), "main/0/t1/agent0/0");
        for key in [
            Key::model(&nested, 2),
            Key::tool(&nested, 1, "call_a"),
            Key::approval(&nested, 1, "call_a"),
            Key::guardrail(&nested, "t0/input", 0),
            Key::guardrail(&nested, "t1/call_a/tool_output", 1),
        ] {
            let text = key.to_string();
            assert_eq!(text.parse::<Key>(), Ok(key.clone()), "{text}");
            assert_eq!(key.step(), Some(&nested));
        }
    }

    #[test]
    fn a_string_that_is_no_key_is_an_error() {
        for text in [
            "",
            "stage",
            "stage/x/done",
            "s/0/tx/model",
            "s/0/guardrail/x",
        ] {
            assert!(text.parse::<Key>().is_err(), "{text}");
        }
        assert_eq!(
            Key::Done(StepKey::new("s", 0)).step(),
            Some(&StepKey::new("s", 0))
        );
        assert_eq!(Key::reduce("s").step(), None);
    }
}
