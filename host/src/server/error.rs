//! Errors: what starting the server can fail with ([`ServerError`]), and
//! what a request gets back ([`ApiError`]: an RFC 9457 problem document
//! with a stable `code`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot read the tokens file {path}: {reason}")]
    Tokens { path: String, reason: String },
    #[error(
        "--listen {addr} is not a loopback address and no --tokens file is given: \
         without tokens the server is single-tenant and listens on loopback only"
    )]
    OpenListen { addr: String },
    #[error("cannot read the workflows folder {path}: {source}")]
    Workflows {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {path}: {reason}")]
    Watch { path: String, reason: String },
    #[error("cannot build the metrics: {0}")]
    Metrics(String),
    #[error("run store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Load(#[from] crate::plugin::LoadError),
}

/// One problem of a request, at a JSON path of its body or spec.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// A JSON path, e.g. `$.input` or `$.agents.writer.model`.
    pub path: String,
    pub message: String,
}

/// A problem document (RFC 9457, `application/problem+json`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Problem {
    /// `about:blank`, or a link to the code's documentation.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable, machine-readable: `bad_request`, `invalid_spec`,
    /// `invalid_input`, `unauthorized`, `not_found`, `conflict`,
    /// `over_capacity`, `not_ready`, `unavailable`, `internal`.
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// For 429: seconds to wait.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// A request whose body is well-formed but wrong at these paths.
    pub fn invalid(code: &'static str, detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        ApiError {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required (Authorization: Bearer TOKEN)",
        )
    }

    pub fn over_capacity(retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "over_capacity",
                "the server runs and queues as many runs as it may; try again later",
            )
        }
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            detail.to_string(),
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::NotFound { run_id } => {
                ApiError::not_found(format!("no run with id {run_id:?}"))
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.problem())).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
