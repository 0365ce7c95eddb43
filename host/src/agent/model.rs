//! One journaled model call: served from the journal when the run already
//! made it, else paid for after a barrier and recorded before it is used.

use super::*;
use crate::events::Scope;
use crate::events::data::{LlmDelta, LlmRequest, LlmResponse, Tokens, ToolCalled, ToolResult};
use crate::journal::{Key, ModelCall, ModelServed, request_digest};
use crate::llm::{HostedCallSummary, Item, ModelRequest, ModelResponse, StreamEvent};
use crate::plan::Agent;

/// One model call, served from the journal when the run already made it.
pub(super) async fn model_call(
    cx: &AgentContext,
    scope: &Scope,
    agent: &Agent,
    request: &ModelRequest,
    turn: u32,
) -> Result<ModelResponse, AgentError> {
    let key = Key::model(&cx.step_key, turn);
    let request_digest = request_digest(request);
    match cx.journal.model_call(&key, &agent.key, &request_digest)? {
        ModelServed::Recorded(recorded) => {
            emit_response(cx, scope, turn, &recorded.response, true);
            return Ok(recorded.response);
        }
        ModelServed::Diverged => {
            return Err(AgentError::ReplayDiverged {
                key: key.to_string(),
            });
        }
        ModelServed::Call => {}
    }
    if cx.journal.cancelled().await? {
        return Err(AgentError::Cancelled);
    }
    // Everything the run did so far is durable before it pays for a call.
    cx.journal.barrier().await?;
    cx.emitter.emit(
        scope,
        LlmRequest {
            items: request.input.len() as u64,
            model: agent.settings.model.clone(),
            offline: agent.provider.is_offline(),
            provider: agent.provider.name().to_owned(),
            stream: agent.stream,
            tools: request.tools.len() as u64,
            turn,
        },
    );
    let emitter = &cx.emitter;
    let delta_scope = scope.clone();
    let on_event = move |ev: StreamEvent| {
        if let StreamEvent::TextDelta(text) = ev {
            emitter.emit(&delta_scope, LlmDelta { text });
        }
    };
    let response = agent
        .provider
        .respond(
            request,
            if cx.emitter.wants_deltas() {
                Some(&on_event)
            } else {
                None
            },
        )
        .await?;
    // Committed before anything acts on it: a crash from here on never
    // pays for this call again.
    let call = ModelCall {
        agent: agent.key.clone(),
        turn: Some(turn),
        purpose: None,
        request_digest: Some(request_digest),
        response,
    };
    cx.journal.commit(&key, &call, None, None).await?;
    emit_response(cx, scope, turn, &call.response, false);
    Ok(call.response)
}

pub(super) fn emit_response(
    cx: &AgentContext,
    scope: &Scope,
    turn: u32,
    response: &ModelResponse,
    recorded: bool,
) {
    cx.emitter.emit(
        scope,
        LlmResponse {
            attempts: response.attempts,
            model: response.model.clone(),
            recorded,
            response_id: response.id.clone(),
            turn,
            usage: (!response.usage.is_partial()).then_some(Tokens {
                input_tokens: response.usage.input_tokens,
                output_tokens: response.usage.output_tokens,
            }),
        },
    );
    // The provider's own tool calls, already done when the answer arrives:
    // the call and its result together.
    for item in &response.output {
        if let Item::HostedToolCall { id, kind, item } = item {
            let summary = HostedCallSummary::of(kind, item);
            cx.emitter.emit(
                scope,
                ToolCalled {
                    arguments: summary.input,
                    call_id: id.clone(),
                    hosted: true,
                    tool: summary.tool.clone(),
                },
            );
            cx.emitter.emit(
                scope,
                ToolResult {
                    call_id: id.clone(),
                    error: summary.failed,
                    hosted: true,
                    output: summary.output,
                    plugin_digest: None,
                    recorded,
                    tool: summary.tool,
                },
            );
        }
    }
}
