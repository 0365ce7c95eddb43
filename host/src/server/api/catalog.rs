//! `/v1/plugins`, `/v1/plugins/events`, `/v1/workflows`.

use super::types::{PluginList, PluginView, WorkflowList, WorkflowProblemView, WorkflowView};
use crate::server::App;
use crate::server::error::{ApiError, FieldError};
use crate::server::stream::{self, SseStream};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

/// The plugins serving now (and those whose file does not load).
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins",
    responses((status = 200, body = PluginList), (status = 401, body = crate::server::error::Problem)))]
pub(super) async fn plugins(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<PluginList>, ApiError> {
    app.tokens.caller(&headers)?;
    let mut plugins: Vec<PluginView> = app
        .catalog
        .plugins()
        .iter()
        .map(|(p, _, state)| PluginView::of(p, state))
        .collect();
    for (name, state) in app.catalog.failed_plugins() {
        plugins.push(PluginView {
            name,
            kinds: Vec::new(),
            entries: Vec::new(),
            digest: None,
            wit_version: None,
            size: None,
            loaded_at_ms: state.loaded_at_ms,
            last_reload_error: state.last_error,
            last_reload_error_at_ms: state.last_error_at_ms,
        });
    }
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(PluginList { plugins }))
}

/// Server-Sent Events: `plugin.reloaded` and `plugin.reload_failed` as the
/// watcher swaps builds.
#[utoipa::path(get, path = "/v1/plugins/events", tag = "plugins",
    responses((status = 200, content_type = "text/event-stream", body = String)))]
pub(super) async fn plugin_events(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<SseStream, ApiError> {
    app.tokens.caller(&headers)?;
    Ok(stream::plugin_events(app))
}

/// The registered workflows, and the files that do not load.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    responses((status = 200, body = WorkflowList), (status = 401, body = crate::server::error::Problem)))]
pub(super) async fn workflows(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<WorkflowList>, ApiError> {
    app.tokens.caller(&headers)?;
    let workflows = app
        .catalog
        .workflows()
        .iter()
        .map(|w| WorkflowView {
            key: w.key.clone(),
            name: w.name.clone(),
            file: file_name(&w.file),
            spec_digest: w.spec_digest.clone(),
            loaded_at_ms: w.loaded_at_ms,
        })
        .collect();
    let problems = app
        .catalog
        .problems()
        .into_iter()
        .map(|p| WorkflowProblemView {
            file: file_name(&p.file),
            errors: p
                .errors
                .into_iter()
                .map(|(path, message)| FieldError { path, message })
                .collect(),
            at_ms: p.at_ms,
        })
        .collect();
    Ok(Json(WorkflowList {
        workflows,
        problems,
    }))
}

/// Only the file's name: the server's folders are not the caller's business.
fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
