//! The web console: a static page (HTML, CSS, JavaScript, embedded in the
//! binary) served at `/`, that signs in with a bearer token and then uses
//! only the public `/v1` API and its Server-Sent Events (docs/CONSOLE.md).
//!
//! The page itself carries no data, so serving it needs no token; every
//! data request it makes carries the token and meets the API's own tenancy
//! checks. Its responses forbid inline scripts and styles, framing and
//! every origin but this one (a strict Content Security Policy).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const LIB: &str = include_str!("console/lib.js");
const RUN: &str = include_str!("console/run.js");
const STYLE: &str = include_str!("console/console.css");
const ICON: &str = include_str!("console/icon.svg");

/// Scripts, styles, images and requests from this origin only; no inline
/// code, no framing, no forms posting elsewhere, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The console's routes: `/` and its assets (three JavaScript modules).
pub(super) fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/lib.js",
            get(|| async { asset("text/javascript; charset=utf-8", LIB) }),
        )
        .route(
            "/run.js",
            get(|| async { asset("text/javascript; charset=utf-8", RUN) }),
        )
        .route(
            "/console.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/icon.svg", get(|| async { asset("image/svg+xml", ICON) }))
}

/// A static asset with the console's security headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
