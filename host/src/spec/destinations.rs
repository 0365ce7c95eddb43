//! What a spec may name as a network destination: an http(s) URL that is
//! not one the host always refuses, and callback headers the host does not
//! reserve. Whether a private address may be reached is the operator's
//! call, made when connecting ([`crate::egress`]).

use crate::egress::{Egress, display_url, is_reserved_header};

/// What is wrong with `url` as a destination, if anything. The message
/// shows the URL's origin only: a URL may carry credentials.
pub(super) fn url_problem(url: &str) -> Option<String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Some(format!(
            "`{}` is not an http:// or https:// URL",
            display_url(url)
        ));
    }
    match reqwest::Url::parse(url) {
        Err(e) => Some(format!("not a URL: {e}")),
        Ok(parsed) => Egress::allowing_private()
            .check_url(&parsed)
            .err()
            .map(|e| e.to_string()),
    }
}

/// What is wrong with a callback header's name, if anything, and a hint.
pub(super) fn header_problem(name: &str) -> Option<(String, Option<String>)> {
    if is_reserved_header(name) {
        Some((
            format!("header `{name}` is reserved"),
            Some(
                "the host sets the signature, idempotency key, framing and routing headers itself"
                    .into(),
            ),
        ))
    } else if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        Some((format!("`{name}` is not a header name"), None))
    } else {
        None
    }
}
