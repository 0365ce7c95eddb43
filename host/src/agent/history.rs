//! Session history and the agents' memory strategies.
//!
//! A run with a session gives each agent step the session's history
//! (after the stored summary, at most `history_size` items), shaped by the
//! agent's `memory`:
//!
//! - `trim { max_turns }`: only the last `max_turns` user turns (a turn
//!   starts at a user message and runs to the next one).
//! - `summarize { keep_last, max_summary_tokens, model }`: when there are
//!   more than `keep_last` user turns, the older ones are summarized by a
//!   model (journaled like any model call), the summary is stored in the
//!   session and replaces those turns for good; the agent receives the
//!   summary as a system message, then the last `keep_last` turns.
//! - `compact { max_tokens }`: while the history is over `max_tokens`
//!   (estimated as characters / 4), drop tool calls, tool outputs and MCP
//!   approval items, oldest first; if still over, drop whole turns, oldest
//!   first, always keeping the newest.
//!
//! What the agent received is journaled (`session_read`), so a resumed run
//! sees the same history. Writes are the engine's business (see
//! `docs/ENGINE.md`, "Sessions").

use super::{AgentContext, AgentError};
use crate::journal::{Key, Mode, ModelCall, SessionRead, SessionRecord};
use crate::llm::{Item, ModelRequest, ModelResponse, Role};
use crate::plan::Agent;
use crate::spec::Memory;
use crate::store::{SessionItem, SessionScope};

/// The session a run belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionConfig {
    pub scope: SessionScope,
    /// Load at most this many of the newest items.
    pub history_size: Option<u32>,
}

impl From<&SessionConfig> for SessionRecord {
    fn from(s: &SessionConfig) -> Self {
        SessionRecord {
            account_id: s.scope.account_id.clone(),
            user_id: s.scope.user_id.clone(),
            session_id: s.scope.session_id.clone(),
            history_size: s.history_size,
        }
    }
}

impl From<SessionRecord> for SessionConfig {
    fn from(s: SessionRecord) -> Self {
        SessionConfig {
            scope: SessionScope::new(s.account_id, s.user_id, s.session_id),
            history_size: s.history_size,
        }
    }
}

/// Prefix of the system message that carries a session summary.
pub(crate) const SUMMARY_PREFIX: &str = "Summary of the earlier conversation:\n";

const SUMMARY_INSTRUCTIONS: &str = "Summarize the conversation below so that an assistant can continue it without seeing it: keep the user's goals, facts, decisions, open questions and tool results that still matter. Write plain prose, no preamble.";

/// The history agent step `cx` starts from (empty without a session).
pub(crate) async fn history(cx: &AgentContext, agent: &Agent) -> Result<Vec<Item>, AgentError> {
    let Some(session) = &cx.session else {
        return Ok(Vec::new());
    };
    let key = Key::SessionRead(cx.step_key.clone());
    if let Some(read) = cx.journal.recorded::<SessionRead>(&key)? {
        return Ok(read.items);
    }
    if cx.journal.mode() == Mode::Replay {
        return Ok(Vec::new());
    }
    let Some(store) = cx.journal.store() else {
        return Err(AgentError::Session(
            "a session needs a run store (the command line always has one)".into(),
        ));
    };
    let scope = &session.scope;
    let summary = store.session_summary(scope).await?.map(|s| s.summary);
    let stored = store
        .session_history(scope, session.history_size.map(|n| n as usize))
        .await?;
    let items = decode_items(&stored)?;
    let shaped = match &agent.memory {
        None => with_summary(summary, items.into_iter().map(|(_, i)| i).collect()),
        Some(Memory::Trim { max_turns }) => {
            let start = turn_start(&items, *max_turns as usize);
            with_summary(
                summary,
                items.into_iter().skip(start).map(|(_, i)| i).collect(),
            )
        }
        Some(Memory::Compact { max_tokens }) => with_summary(
            summary,
            compact(items.into_iter().map(|(_, i)| i).collect(), *max_tokens),
        ),
        Some(Memory::Summarize {
            keep_last,
            max_summary_tokens,
            model,
        }) => {
            let start = turn_start(&items, *keep_last as usize);
            if start == 0 {
                with_summary(summary, items.into_iter().map(|(_, i)| i).collect())
            } else {
                let covers_up_to = items[start - 1].0;
                let older: Vec<Item> = items[..start].iter().map(|(_, i)| i.clone()).collect();
                let text = summarize(
                    cx,
                    agent,
                    summary.as_deref(),
                    &older,
                    *max_summary_tokens,
                    model.as_ref().map(|m| m.name.clone()),
                )
                .await?;
                store
                    .set_session_summary(scope, text.clone(), covers_up_to)
                    .await?;
                with_summary(
                    Some(text),
                    items.into_iter().skip(start).map(|(_, i)| i).collect(),
                )
            }
        }
    };
    let read = SessionRead { items: shaped };
    cx.journal.commit(&key, &read, None, None).await?;
    Ok(read.items)
}

fn decode_items(stored: &[SessionItem]) -> Result<Vec<(u64, Item)>, AgentError> {
    stored
        .iter()
        .map(|s| {
            serde_json::from_value(s.item.clone())
                .map(|i| (s.seq, i))
                .map_err(|e| {
                    AgentError::Session(format!("session item {} is unreadable: {e}", s.seq))
                })
        })
        .collect()
}

fn with_summary(summary: Option<String>, mut items: Vec<Item>) -> Vec<Item> {
    if let Some(summary) = summary {
        items.insert(
            0,
            Item::message(Role::System, format!("{SUMMARY_PREFIX}{summary}")),
        );
    }
    items
}

fn is_user(item: &Item) -> bool {
    matches!(
        item,
        Item::Message {
            role: Role::User,
            ..
        }
    )
}

/// The index where the last `turns` user turns start (0 when there are no
/// more than that).
pub(crate) fn turn_start<T>(items: &[(T, Item)], turns: usize) -> usize {
    let users: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, (_, i))| is_user(i))
        .map(|(n, _)| n)
        .collect();
    if users.len() <= turns {
        return 0;
    }
    users[users.len() - turns]
}

/// Estimated tokens of an item: characters / 4, rounded up.
fn tokens(item: &Item) -> usize {
    let chars = match item {
        Item::Message { content, .. } => content.len(),
        Item::FunctionCall {
            name, arguments, ..
        } => name.len() + arguments.len(),
        Item::FunctionCallOutput { output, .. } => output.len(),
        Item::McpApprovalRequest {
            name, arguments, ..
        } => name.len() + arguments.len(),
        Item::McpApprovalResponse { reason, .. } => reason.as_ref().map_or(0, String::len),
        Item::HostedToolCall { item, .. } => item.to_string().len(),
    };
    chars.div_ceil(4) + 4
}

fn intermediate(item: &Item) -> bool {
    !matches!(item, Item::Message { .. })
}

/// The compact strategy (see the module docs).
pub(crate) fn compact(mut items: Vec<Item>, max_tokens: u32) -> Vec<Item> {
    let budget = max_tokens as usize;
    let mut total: usize = items.iter().map(tokens).sum();
    if total <= budget {
        return items;
    }
    // The history is all past turns (the step's own input comes after it),
    // so tool items may go from any of them, oldest first.
    let mut keep = vec![true; items.len()];
    for (n, item) in items.iter().enumerate() {
        if total <= budget {
            break;
        }
        if intermediate(item) {
            keep[n] = false;
            total -= tokens(item);
        }
    }
    let mut n = 0;
    items.retain(|_| {
        n += 1;
        keep[n - 1]
    });
    // Still over: drop whole turns, oldest first, keeping the newest.
    while total > budget {
        let users: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| is_user(i))
            .map(|(n, _)| n)
            .collect();
        let cut = match users.as_slice() {
            [_, second, ..] => *second,
            _ => break,
        };
        total -= items[..cut].iter().map(tokens).sum::<usize>();
        items.drain(..cut);
    }
    items
}

fn transcript(previous: Option<&str>, items: &[Item]) -> String {
    let mut out = String::new();
    if let Some(p) = previous {
        out.push_str("Earlier summary: ");
        out.push_str(p);
        out.push_str("\n\n");
    }
    for item in items {
        let line = match item {
            Item::Message { role, content } => {
                let who = match role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::System | Role::Developer => "system",
                };
                format!("{who}: {content}")
            }
            Item::FunctionCall {
                name, arguments, ..
            } => format!("tool call: {name}({arguments})"),
            Item::FunctionCallOutput { output, .. } => format!("tool result: {output}"),
            Item::McpApprovalRequest {
                server_label,
                name,
                arguments,
                ..
            } => format!("approval request: {server_label}.{name}({arguments})"),
            Item::HostedToolCall { kind, item, .. } => {
                let s = crate::llm::HostedCallSummary::of(kind, item);
                format!("hosted tool {}: {} → {}", s.tool, s.input, s.output)
            }
            Item::McpApprovalResponse {
                approve, reason, ..
            } => format!(
                "approval: {}{}",
                if *approve { "approved" } else { "rejected" },
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Asks the agent's provider for a summary (journaled: a resumed run does
/// not pay for it twice).
async fn summarize(
    cx: &AgentContext,
    agent: &Agent,
    previous: Option<&str>,
    older: &[Item],
    max_tokens: u32,
    model: Option<String>,
) -> Result<String, AgentError> {
    let key = Key::SessionSummary(cx.step_key.clone());
    let response: ModelResponse = match cx.journal.recorded::<ModelCall>(&key)? {
        Some(recorded) => recorded.response,
        None => {
            let mut settings = agent.settings.clone();
            if let Some(model) = model {
                settings.model = model;
            }
            settings.max_output_tokens = Some(max_tokens);
            let request = ModelRequest {
                settings,
                instructions: Some(SUMMARY_INSTRUCTIONS.into()),
                input: vec![Item::user(transcript(previous, older))],
                tools: Vec::new(),
                hosted_tools: Vec::new(),
                output_schema: None,
                stream: false,
                agent: agent.key.clone(),
                step: cx.scope.step.clone().unwrap_or_default(),
                turn: 0,
            };
            let call = ModelCall {
                agent: agent.key.clone(),
                turn: None,
                purpose: Some("session_summary".to_owned()),
                request_digest: None,
                response: agent.provider.respond(&request, None).await?,
            };
            cx.journal.commit(&key, &call, None, None).await?;
            call.response
        }
    };
    Ok(response.text().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> Item {
        Item::user(s)
    }
    fn asst(s: &str) -> Item {
        Item::message(Role::Assistant, s)
    }

    #[test]
    fn turn_start_keeps_the_last_user_turns() {
        let items: Vec<((), Item)> = [user("a"), asst("1"), user("b"), asst("2"), user("c")]
            .into_iter()
            .map(|i| ((), i))
            .collect();
        assert_eq!(turn_start(&items, 2), 2);
        assert_eq!(turn_start(&items, 3), 0);
        assert_eq!(turn_start(&items, 1), 4);
    }

    #[test]
    fn compact_drops_old_tool_items_first_then_turns() {
        let big = "x".repeat(400);
        let items = vec![
            user("q1"),
            Item::FunctionCall {
                call_id: "c".into(),
                name: "t".into(),
                arguments: "{}".into(),
            },
            Item::FunctionCallOutput {
                call_id: "c".into(),
                output: big.clone(),
            },
            asst("a1"),
            user("q2"),
            asst("a2"),
        ];
        let out = compact(items.clone(), 60);
        assert_eq!(out, vec![user("q1"), asst("a1"), user("q2"), asst("a2")]);
        let out = compact(items.clone(), 1_000);
        assert_eq!(out, items);
        let out = compact(items, 5);
        assert_eq!(out, vec![user("q2"), asst("a2")]);
    }
}
