//! `/v1/runs…`: start, list, read, cancel, resume, replay and stream runs;
//! list and decide approvals. Every handler scopes what it reads to the
//! caller's account: another account's run answers 404, as an unknown one.

use super::types::{
    Accepted, Approval, ApprovalList, CreateRun, Decided, DecisionBody, ListQuery, RunDetail,
    RunList, RunSummary, ServedView, StepView,
};
use super::{body, callback_sink};
use crate::agent::SessionConfig;
use crate::approvals::{self, ApprovalError};
use crate::engine::{Caller, RunError, RunRequest};
use crate::journal::{self, AfterDivergence, Decision};
use crate::server::error::{ApiError, FieldError, Problem};
use crate::server::runs::{Refused, RunSinks};
use crate::server::stream::{self, SseStream};
use crate::server::{App, catalog};
use crate::store::{RunFilter, RunRecord, RunStatus, Scope, SessionScope, StoreError};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Runs listed per page unless `limit` says otherwise, and at most.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

fn field(path: &str, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError {
        path: path.into(),
        message: message.into(),
    }]
}

/// The run, if the caller's scope admits it; 404 otherwise.
async fn run_of(app: &App, scope: &Scope, run_id: &str) -> Result<RunRecord, ApiError> {
    app.store
        .get_run(scope, run_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no run with id {run_id:?}")))
}

/// The run id an `Idempotency-Key` stands for, per account and user.
fn idempotent_id(caller: &Caller, key: &str) -> String {
    let owner = match caller {
        Caller::Operator => String::new(),
        Caller::Account {
            account_id,
            user_id,
        } => format!("{account_id}\u{0}{user_id}"),
    };
    let digest = Sha256::digest(format!("{owner}\u{0}{key}").as_bytes());
    format!("idem-{}", &hex::encode(digest)[..32])
}

fn accepted(run_id: &str, status: RunStatus) -> Json<Accepted> {
    Json(Accepted {
        run_id: run_id.to_owned(),
        status: status.as_str().to_owned(),
        url: format!("/v1/runs/{run_id}"),
        events_url: format!("/v1/runs/{run_id}/events"),
    })
}

/// Start a run: journaled as `queued` before the answer, executed when a
/// slot is free.
#[utoipa::path(post, path = "/v1/runs", tag = "runs", request_body = CreateRun,
    params(("Idempotency-Key" = Option<String>, Header, description = "the same key returns the same run")),
    responses(
        (status = 202, body = Accepted),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem),
        (status = 503, body = Problem)))]
pub(super) async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    request: Result<Json<CreateRun>, JsonRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let caller = app.tokens.caller(&headers)?;
    let request = body(request)?;
    let scope = caller.scope();
    let run_id = match headers.get("idempotency-key") {
        Some(key) => {
            let key = key
                .to_str()
                .ok()
                .filter(|k| !k.is_empty() && k.len() <= 255)
                .ok_or_else(|| {
                    ApiError::bad_request("Idempotency-Key: 1 to 255 visible characters")
                })?;
            let id = idempotent_id(&caller, key);
            if let Some(run) = app.store.get_run(&scope, &id).await? {
                return Ok((StatusCode::ACCEPTED, accepted(&id, run.status)));
            }
            Some(id)
        }
        None => None,
    };
    let (runner, spec_digest, inline) = match (&request.workflow, &request.spec) {
        (Some(key), None) => {
            let registered = app.catalog.workflow(key).ok_or_else(|| {
                let known: Vec<String> = app
                    .catalog
                    .workflows()
                    .iter()
                    .map(|w| w.key.clone())
                    .collect();
                ApiError::invalid(
                    "unknown_workflow",
                    format!("no workflow `{key}` is registered"),
                    field(
                        "$.workflow",
                        format!("unknown; registered: {}", known.join(", ")),
                    ),
                )
            })?;
            (
                registered.runner.clone(),
                registered.spec_digest.clone(),
                None,
            )
        }
        (None, Some(doc)) => {
            if !app.allow_inline_specs {
                return Err(ApiError::invalid(
                    "inline_specs_disabled",
                    "this server runs registered workflows only (the operator enables inline specs with --allow-inline-specs)",
                    field("$.spec", "not accepted here"),
                ));
            }
            let invalid = |errors: Vec<(String, String)>| {
                ApiError::invalid(
                    "invalid_spec",
                    "the spec is not valid",
                    errors
                        .into_iter()
                        .map(|(p, m)| FieldError {
                            path: format!("$.spec{}", p.strip_prefix('$').unwrap_or(&p)),
                            message: m,
                        })
                        .collect(),
                )
            };
            let (spec, digest) = catalog::spec_of_value(doc, app.catalog.workflows_dir())
                .map_err(|e| invalid(catalog::spec_errors(e)))?;
            let runner = app.catalog.runner_for(&spec).map_err(invalid)?;
            (runner, digest, Some(crate::spec::redact(doc).doc))
        }
        _ => {
            return Err(ApiError::invalid(
                "bad_request",
                "give exactly one of `workflow` and `spec`",
                field("$.workflow", "exactly one of workflow and spec"),
            ));
        }
    };
    if request.input.is_null() {
        return Err(ApiError::invalid(
            "invalid_input",
            "the run needs an input",
            field("$.input", "missing: text or any JSON value"),
        ));
    }
    let sinks = match &request.callback {
        Some(url) => RunSinks {
            callbacks: vec![callback_sink(url).map_err(|e| {
                ApiError::invalid(
                    "invalid_callback",
                    "the callback is not usable",
                    field("$.callback", e),
                )
            })?],
        },
        None => RunSinks::default(),
    };
    let session = request.session.as_ref().map(|s| {
        let (account, user) = match &caller {
            Caller::Operator => (String::new(), String::new()),
            Caller::Account {
                account_id,
                user_id,
            } => (account_id.clone(), user_id.clone()),
        };
        SessionConfig {
            scope: SessionScope::new(account, user, s.id.clone()),
            history_size: s.history_size,
        }
    });
    match app.executor.reserve() {
        Ok(()) => {}
        Err(Refused::Full) => return Err(ApiError::over_capacity(1)),
        Err(Refused::Stopping) => return Err(ApiError::unavailable("the server is shutting down")),
    }
    let metadata = json!({
        "server": {
            "workflow": runner.workflow().key,
            "callback": request.callback,
            "inline_spec": inline,
        },
        "metadata": request.metadata.clone().unwrap_or(Value::Null),
    });
    let enqueued = runner
        .enqueue(RunRequest {
            input: request.input,
            run_id: run_id.clone(),
            session,
            metadata,
            spec_digest,
            caller: caller.clone(),
            ..RunRequest::default()
        })
        .await;
    let id = match enqueued {
        Ok(id) => id,
        Err(e) => {
            app.executor.unreserve();
            return match e {
                // The same Idempotency-Key, concurrently: the other request's run.
                RunError::Store(StoreError::Conflict(_)) if run_id.is_some() => {
                    let id = run_id.unwrap_or_default();
                    let run = run_of(&app, &scope, &id).await?;
                    Ok((StatusCode::ACCEPTED, accepted(&id, run.status)))
                }
                e @ RunError::ForeignSession { .. } => Err(ApiError::invalid(
                    "invalid_session",
                    e.to_string(),
                    field("$.session", "not this caller's session"),
                )),
                other => Err(ApiError::internal(other)),
            };
        }
    };
    app.metrics.accepted();
    app.executor.submit(&id, runner, sinks, true);
    Ok((StatusCode::ACCEPTED, accepted(&id, RunStatus::Queued)))
}

/// List the caller's runs, newest first.
#[utoipa::path(get, path = "/v1/runs", tag = "runs", params(ListQuery),
    responses((status = 200, body = RunList), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub(super) async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<RunList>, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    let status = match &q.status {
        Some(s) => Some(s.parse::<RunStatus>().map_err(|e| {
            ApiError::bad_request(format!(
                "status: {e}; expected one of {}",
                RunStatus::ALL.map(|s| s.as_str()).join(", ")
            ))
        })?),
        None => None,
    };
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let mut runs = app
        .store
        .list_runs(
            &caller.scope(),
            RunFilter {
                status,
                workflow: q.workflow.clone(),
                after: q.cursor.clone(),
                limit: Some(limit + 1),
                ..RunFilter::default()
            },
        )
        .await?;
    let more = runs.len() > limit;
    runs.truncate(limit);
    let next_cursor = if more {
        runs.last().map(|r| r.run_id.clone())
    } else {
        None
    };
    Ok(Json(RunList {
        runs: runs.iter().map(RunSummary::from).collect(),
        next_cursor,
    }))
}

/// One run: status, steps (with the plugin builds that served each), usage,
/// output, error.
#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = RunDetail), (status = 404, body = Problem)))]
pub(super) async fn get_run(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    let scope = app.tokens.caller(&headers)?.scope();
    let run = run_of(&app, &scope, &id).await?;
    let records = app.store.journal(&scope, &id).await?;
    let steps = journal::step_summaries(&records).map_err(ApiError::internal)?;
    let metadata = journal::run_started(&records)
        .and_then(Result::ok)
        .and_then(|s| s.metadata.get("metadata").cloned())
        .unwrap_or(Value::Null);
    Ok(Json(RunDetail {
        summary: RunSummary::from(&run),
        input: run.input.clone(),
        output: run.output.clone(),
        steps: steps.iter().map(StepView::from).collect(),
        served: records
            .iter()
            .filter_map(|r| {
                journal::served_by(r).map(|(plugin, digest)| ServedView {
                    key: r.entry.key.clone(),
                    plugin,
                    digest: digest.to_owned(),
                })
            })
            .collect(),
        metadata,
    }))
}

/// Cancel a queued, running or waiting run.
#[utoipa::path(post, path = "/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "run id")),
    responses((status = 202, body = RunSummary), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(super) async fn cancel(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RunSummary>), ApiError> {
    let scope = app.tokens.caller(&headers)?.scope();
    let run = run_of(&app, &scope, &id).await?;
    if run.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "run {id} is {} already",
            run.status
        )));
    }
    if !app.executor.cancel_live(&id, &run.workflow_key).await {
        app.executor.cancel_idle(&id, &run.workflow_key, None).await;
    }
    let run = run_of(&app, &scope, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(RunSummary::from(&run))))
}

/// Continue an interrupted run (or one whose approvals are all decided).
#[utoipa::path(post, path = "/v1/runs/{id}/resume", tag = "runs",
    params(("id" = String, Path, description = "run id")),
    responses((status = 202, body = Accepted), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(super) async fn resume(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let scope = app.tokens.caller(&headers)?.scope();
    let run = run_of(&app, &scope, &id).await?;
    if run.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "run {id} is {}; only an unfinished run resumes",
            run.status
        )));
    }
    if app.executor.is_live(&id) {
        return Err(ApiError::conflict(format!(
            "run {id} is {} here already",
            run.status
        )));
    }
    let waiting = approvals::pending(app.store.as_ref(), &scope, &id).await?;
    if !waiting.is_empty() {
        let calls: Vec<String> = waiting.into_iter().map(|p| p.call_id).collect();
        return Err(ApiError::conflict(format!(
            "run {id} waits for approval of call(s) {}; decide them first",
            calls.join(", ")
        )));
    }
    let runner = app.runner_of(&run).await?;
    let sinks = app.sinks_of(&id).await;
    app.executor.submit(&id, runner, sinks, false);
    Ok((StatusCode::ACCEPTED, accepted(&id, run.status)))
}

/// Replay a finished run with the current plugins, serving recorded model
/// and tool results (zero model calls): which steps changed.
#[utoipa::path(post, path = "/v1/runs/{id}/replay", tag = "runs",
    params(("id" = String, Path, description = "run id")),
    responses((status = 200, body = super::types::ReplayView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(super) async fn replay(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = app.tokens.caller(&headers)?.scope();
    let run = run_of(&app, &scope, &id).await?;
    if !run.status.is_terminal() {
        return Err(ApiError::conflict(format!(
            "run {id} is {}; replay a finished run",
            run.status
        )));
    }
    let runner = app.runner_of(&run).await?;
    let records = app.store.journal(&scope, &id).await?;
    let report = runner
        .replay_report(&run, records, AfterDivergence::Stop)
        .await
        .map_err(|e| ApiError::conflict(format!("replay of run {id} failed: {e}")))?;
    Ok(Json(
        serde_json::to_value(report).map_err(ApiError::internal)?,
    ))
}

/// Server-Sent Events of the run: from the start, or after `Last-Event-ID`;
/// live while it runs; the stream ends after its final event.
#[utoipa::path(get, path = "/v1/runs/{id}/events", tag = "runs",
    params(("id" = String, Path, description = "run id"),
           ("Last-Event-ID" = Option<String>, Header, description = "resume after this event id")),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = Problem)))]
pub(super) async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<SseStream, ApiError> {
    let scope = app.tokens.caller(&headers)?.scope();
    run_of(&app, &scope, &id).await?;
    let after = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request("Last-Event-ID: expected an event id (a number)")
            })?,
        None => 0,
    };
    Ok(stream::run_events(app, scope, id, after))
}

/// Tool calls of the caller's runs waiting for a decision.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals",
    responses((status = 200, body = ApprovalList), (status = 401, body = Problem)))]
pub(super) async fn approvals(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<ApprovalList>, ApiError> {
    let scope = app.tokens.caller(&headers)?.scope();
    let pending = approvals::pending_all(app.store.as_ref(), &scope).await?;
    Ok(Json(ApprovalList {
        approvals: pending.into_iter().map(Approval::from).collect(),
    }))
}

/// Approve or reject a waiting tool call; the run continues at once when no
/// other call waits.
#[utoipa::path(post, path = "/v1/runs/{id}/approvals/{call_id}", tag = "approvals",
    request_body = DecisionBody,
    params(("id" = String, Path, description = "run id"), ("call_id" = String, Path, description = "the call id, or its journal key")),
    responses((status = 200, body = Decided), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub(super) async fn decide(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, call_id)): Path<(String, String)>,
    request: Result<Json<DecisionBody>, JsonRejection>,
) -> Result<Json<Decided>, ApiError> {
    let caller = app.tokens.caller(&headers)?;
    let scope = caller.scope();
    let request = body(request)?;
    let decision = match request.decision.as_str() {
        "approve" => Decision::approve(),
        "reject" => Decision::reject(request.reason.clone().unwrap_or_else(|| "rejected".into())),
        other => {
            return Err(ApiError::invalid(
                "invalid_decision",
                format!("unknown decision {other:?}"),
                field("$.decision", "approve or reject"),
            ));
        }
    };
    let by = match &caller {
        Caller::Operator => "api".to_owned(),
        Caller::Account {
            account_id,
            user_id,
        } => format!("{account_id}/{user_id}"),
    };
    approvals::decide(
        app.store.as_ref(),
        &scope,
        &id,
        &call_id,
        decision,
        Some(&by),
    )
    .await
    .map_err(|e| match e {
        ApprovalError::Store(StoreError::NotFound { .. }) => {
            ApiError::not_found(format!("no run with id {id:?}"))
        }
        ApprovalError::NoSuchCall { .. } => ApiError::not_found(e.to_string()),
        ApprovalError::Ambiguous { .. } | ApprovalError::Finished { .. } => {
            ApiError::conflict(e.to_string())
        }
        other => ApiError::internal(other),
    })?;
    // Continue the run now if nothing else waits and no one executes it.
    let run = run_of(&app, &scope, &id).await?;
    let waiting = approvals::pending(app.store.as_ref(), &scope, &id).await?;
    let mut resumed = false;
    if waiting.is_empty() && run.status == RunStatus::WaitingApproval && !app.executor.is_live(&id)
    {
        let runner = app.runner_of(&run).await?;
        let sinks = app.sinks_of(&id).await;
        app.executor.submit(&id, runner, sinks, false);
        resumed = true;
    }
    Ok(Json(Decided {
        run_id: id,
        call_id,
        decision: request.decision,
        resumed,
    }))
}
