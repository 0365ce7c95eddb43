//! The model-call span every provider opens: an OpenTelemetry GenAI client
//! span (`chat {model}`), with what is known only after the call recorded on
//! it by [`record`].

use tracing::Span;
use tracing::field::Empty;

use super::{Api, LlmError, ModelRequest, ModelResponse};

/// The span of one model call (all its attempts). `system` is the
/// `gen_ai.provider.name` (`openai`, or what else answers), `provider` the
/// provider's name in the spec.
pub(crate) fn chat(provider: &str, system: &str, api: Option<Api>, request: &ModelRequest) -> Span {
    let settings = &request.settings;
    tracing::info_span!(
        "llm.call",
        otel.name = %format_args!("chat {}", settings.model),
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_description = Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = system,
        // The attribute's name before semantic conventions 1.37, which some
        // backends still read.
        gen_ai.system = system,
        gen_ai.request.model = %settings.model,
        gen_ai.request.temperature = settings.temperature.map(f64::from),
        gen_ai.request.top_p = settings.top_p.map(f64::from),
        gen_ai.request.max_tokens = settings.max_output_tokens.map(i64::from),
        gen_ai.response.id = Empty,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.agent.name = %request.agent,
        error.type = Empty,
        llm.provider = provider,
        llm.api = api.map(Api::as_str),
        llm.stream = request.stream,
        llm.attempts = Empty,
        workflow.step = %request.step,
        workflow.turn = i64::from(request.turn),
    )
}

/// Records the call's outcome on its span: the response's id, model and
/// token usage, or the error (the caller redacts secrets first).
pub(crate) fn record(span: &Span, result: &Result<ModelResponse, LlmError>) {
    match result {
        Ok(response) => {
            if let Some(id) = &response.id {
                span.record("gen_ai.response.id", id.as_str());
            }
            span.record("gen_ai.response.model", response.model.as_str());
            // A server that reports no usage leaves the attributes unset:
            // unknown, not zero.
            if response.usage.is_partial() {
                return;
            }
            span.record(
                "gen_ai.usage.input_tokens",
                as_i64(response.usage.input_tokens),
            );
            span.record(
                "gen_ai.usage.output_tokens",
                as_i64(response.usage.output_tokens),
            );
        }
        Err(error) => {
            span.record("error.type", error.root().kind());
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_description", tracing::field::display(error));
        }
    }
}

/// OpenTelemetry integers are signed 64-bit: a `u64` recorded as is would
/// be exported as a string.
pub(crate) fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
