//! The `/v1` HTTP API: the router, the OpenAPI document generated from the
//! handlers (`utoipa`), and what the handlers share.

mod catalog;
mod health;
mod runs;
pub mod types;

use super::App;
use super::error::{ApiError, FieldError};
use crate::sinks::SinkSpec;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "host serve",
        description = "Run declarative multi-agent workflows with sandboxed WebAssembly plugins. See docs/API.md."
    ),
    components(schemas(super::error::Problem, super::error::FieldError))
)]
struct ApiDoc;

/// Every route, and `/v1/openapi.json` describing them.
pub(super) fn router(app: App) -> axum::Router {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(runs::create, runs::list))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::resume))
        .routes(routes!(runs::replay))
        .routes(routes!(runs::events))
        .routes(routes!(runs::approvals))
        .routes(routes!(runs::decide))
        .routes(routes!(catalog::plugins))
        .routes(routes!(catalog::plugin_events))
        .routes(routes!(catalog::workflows))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .with_state(app)
        .split_for_parts();
    let api = std::sync::Arc::new(api);
    router
        .route(
            "/v1/openapi.json",
            get(move || {
                let api = api.clone();
                async move { Json((*api).clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
}

/// A JSON body, or a 400 problem saying what is wrong with it.
pub(super) fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match body {
        Ok(Json(t)) => Ok(t),
        Err(e) => Err(ApiError {
            errors: vec![FieldError {
                path: "$".into(),
                message: e.body_text(),
            }],
            ..ApiError::bad_request(format!(
                "the request body is not what this endpoint takes: {}",
                e.body_text()
            ))
        }),
    }
}

/// A callback URL as an `http` sink (https, or http on loopback as the
/// egress policy allows at delivery).
pub(super) fn callback_sink(url: &str) -> Result<SinkSpec, String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("expected an http:// or https:// URL".into());
    }
    format!("http:{url}")
        .parse::<SinkSpec>()
        .map_err(|e| e.to_string())
}
