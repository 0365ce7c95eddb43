//! `/healthz`, `/readyz`, `/metrics`.

use super::types::Health;
use crate::server::App;
use crate::server::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

fn health(app: &App, status: &str) -> Json<Health> {
    Json(Health {
        status: status.to_owned(),
        running: app.executor.running(),
        queued: app.executor.queued(),
    })
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health)))]
pub(super) async fn healthz(State(app): State<App>) -> Json<Health> {
    health(&app, "ok")
}

/// It serves: plugins and workflows loaded, interrupted runs resumed, not
/// shutting down.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = crate::server::error::Problem)))]
pub(super) async fn readyz(State(app): State<App>) -> Result<Json<Health>, ApiError> {
    if app.is_ready() {
        Ok(health(&app, "ready"))
    } else {
        Err(ApiError::unavailable("starting or shutting down"))
    }
}

/// Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub(super) async fn metrics(State(app): State<App>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
