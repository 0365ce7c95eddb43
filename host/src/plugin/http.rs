//! Outbound HTTP for tool plugins (`wasi:http/outgoing-handler`), denied
//! by default. Every component is linked with `wasi:http` (componentize-js
//! builds import it), but a request leaves the host only when the call is a
//! tool call of a plugin whose spec grants it (`plugins.NAME.allowed_hosts`):
//! hooks stay deterministic and offline.
//!
//! The host checks every request: scheme, host and port against the grant,
//! then the operator's egress policy at connect time (a granted name that
//! resolves to a private or metadata address is refused like any other
//! destination). It follows no redirect, sends through no proxy, caps each
//! request's time and both bodies, and counts the requests of one call.
//! Secret headers (`plugins.NAME.secrets`) are added here, after the guest
//! let go of the request, so the plugin never holds them; they are not
//! logged and are masked in the call's output and logs should a server
//! echo them back. A refused request is an `error-code` the guest sees
//! (`HTTP-request-denied`, `HTTP-response-body-size`, a timeout), never a
//! trap, and the host's reason is added to the call's error.

use super::error::{CallError, CallErrorKind};
use crate::egress::{Egress, display_url, refusal};
use crate::secret::Secret;
use crate::spec::{
    DEFAULT_HTTP_REQUEST_KIB, DEFAULT_HTTP_REQUESTS, DEFAULT_HTTP_RESPONSE_KIB,
    DEFAULT_HTTP_TIMEOUT_MS, HostPattern, PluginSettings, SecretTemplate, SpecError, json_key,
};
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Limited};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Bytes of a denied request's body read (and dropped) before the denial.
const DRAINED_ON_DENIAL: usize = 1 << 20;
/// How long a denial waits for the guest to finish writing that body.
const DRAIN_WAIT: Duration = Duration::from_millis(250);
/// Host reasons kept per call for its error message; more are counted.
const MAX_NOTES: usize = 8;
/// Secrets shorter than this are not masked in output (they would mask
/// ordinary text); the spec's values are tokens, far longer.
const MIN_MASKED_SECRET: usize = 6;

/// One tool plugin's grant, built once per workflow from its spec.
pub struct HttpGrant {
    plugin: String,
    hosts: Vec<HostPattern>,
    /// Headers added to requests whose destination matches the pattern.
    secrets: Vec<(HostPattern, Vec<(HeaderName, HeaderValue)>)>,
    /// Every secret value, to mask should one come back.
    masked: Vec<Secret>,
    timeout: Duration,
    max_response: u64,
    max_request: usize,
    max_requests: u32,
    egress: Egress,
    /// Clients by `scheme://host:port`: each one's resolver applies the
    /// egress policy for that port.
    clients: Mutex<HashMap<String, reqwest::Client>>,
}

impl std::fmt::Debug for HttpGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGrant")
            .field("plugin", &self.plugin)
            .field("hosts", &self.hosts)
            .field("secrets", &self.masked.len())
            .finish_non_exhaustive()
    }
}

impl HttpGrant {
    /// The grant of plugin `name` in `settings` (`None`: no network),
    /// reading secrets with `env`. Errors carry the JSON path of the
    /// setting (`$.plugins.NAME…`); the spec's validation has already
    /// checked the syntax, so they are about the environment.
    pub fn from_settings(
        name: &str,
        settings: &PluginSettings,
        egress: &Egress,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<HttpGrant>, Vec<SpecError>> {
        if settings.allowed_hosts.is_empty() && settings.secrets.is_empty() {
            return Ok(None);
        }
        let path = json_key("$.plugins", name);
        let mut errors = Vec::new();
        let mut hosts = Vec::new();
        for (i, entry) in settings.allowed_hosts.iter().enumerate() {
            match HostPattern::parse(entry) {
                Ok(p) => hosts.push(p),
                Err(e) => errors.push(SpecError::new(
                    format!("{}[{i}]", json_key(&path, "allowed_hosts")),
                    e,
                )),
            }
        }
        let mut secrets = Vec::new();
        let mut masked = Vec::new();
        for (host, headers) in &settings.secrets {
            let host_path = json_key(&json_key(&path, "secrets"), host);
            let pattern = match HostPattern::parse(host) {
                Ok(p) => p,
                Err(e) => {
                    errors.push(SpecError::new(host_path, e));
                    continue;
                }
            };
            let mut values = Vec::new();
            for (header, template) in headers {
                let at = json_key(&host_path, header);
                let rendered = SecretTemplate::parse(template).and_then(|t| {
                    t.render(&env).map_err(|var| {
                        format!("environment variable `{var}` is not set (the secret's value comes from it)")
                    })
                });
                let value = rendered.and_then(|v| {
                    let name = HeaderName::from_bytes(header.as_bytes())
                        .map_err(|_| format!("`{header}` is not a header name"))?;
                    let mut value = HeaderValue::from_str(&v).map_err(|_| {
                        "the value is not a valid header value (a control character?)".to_owned()
                    })?;
                    value.set_sensitive(true);
                    masked.push(Secret::new(v));
                    Ok((name, value))
                });
                match value {
                    Ok(v) => values.push(v),
                    Err(e) => errors.push(SpecError::new(at, e)),
                }
            }
            secrets.push((pattern, values));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let caps = settings.http.clone().unwrap_or_default();
        Ok(Some(HttpGrant {
            plugin: name.to_owned(),
            hosts,
            secrets,
            masked,
            timeout: Duration::from_millis(caps.timeout_ms.unwrap_or(DEFAULT_HTTP_TIMEOUT_MS)),
            max_response: caps
                .max_response_kib
                .unwrap_or(DEFAULT_HTTP_RESPONSE_KIB)
                .saturating_mul(1024),
            max_request: usize::try_from(
                caps.max_request_kib
                    .unwrap_or(DEFAULT_HTTP_REQUEST_KIB)
                    .saturating_mul(1024),
            )
            .unwrap_or(usize::MAX),
            max_requests: caps.max_requests.unwrap_or(DEFAULT_HTTP_REQUESTS),
            egress: egress.clone(),
            clients: Mutex::new(HashMap::new()),
        }))
    }

    /// `text` with every secret value of this grant replaced by `***`.
    pub fn mask(&self, text: String) -> String {
        let mut text = text;
        for secret in &self.masked {
            let value = secret.expose();
            if value.len() >= MIN_MASKED_SECRET && text.contains(value) {
                text = text.replace(value, "***");
            }
        }
        text
    }

    fn client(&self, url: &reqwest::Url) -> Result<reqwest::Client, String> {
        let origin = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(&origin) {
            return Ok(c.clone());
        }
        let client = self
            .egress
            .client(url)
            .map_err(|e| format!("refused by the operator's egress policy: {e}"))?
            .connect_timeout(self.timeout)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        clients.insert(origin, client.clone());
        Ok(client)
    }

    fn setting(&self, field: &str) -> String {
        format!("plugins.{}.{field}", self.plugin)
    }
}

/// The `wasi:http` hooks of one call: what it may send, and what the host
/// had to say about what it tried.
pub(crate) struct NetHooks {
    access: Access,
    sent: u32,
    notes: Notes,
}

enum Access {
    /// A tool call of a granted plugin.
    Granted(Arc<HttpGrant>),
    /// A tool call of a plugin without a grant.
    NotGranted,
    /// A hook or a load-time call: never any network.
    Offline,
}

/// Reasons the host refused or cut requests, for the call's error.
#[derive(Clone, Default)]
pub(crate) struct Notes(Arc<Mutex<Vec<String>>>);

impl Notes {
    fn push(&self, note: String) {
        tracing::warn!(target: "plugin", "{note}");
        let mut notes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if notes.len() < MAX_NOTES {
            notes.push(note);
        }
    }

    /// The reasons recorded so far, joined, if any.
    pub(crate) fn summary(&self) -> Option<String> {
        let notes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}

impl NetHooks {
    /// `grant` for a tool call (`tool` true) of a granted plugin.
    pub(crate) fn new(tool: bool, grant: Option<Arc<HttpGrant>>) -> Self {
        let access = match (tool, grant) {
            (true, Some(g)) => Access::Granted(g),
            (true, None) => Access::NotGranted,
            (false, _) => Access::Offline,
        };
        NetHooks {
            access,
            sent: 0,
            notes: Notes::default(),
        }
    }

    /// `text` with the grant's secrets masked.
    pub(crate) fn mask(&self, text: String) -> String {
        match &self.access {
            Access::Granted(g) => g.mask(text),
            _ => text,
        }
    }

    /// Adds the host's reasons to a failed call's error.
    pub(crate) fn explain(&self, error: CallError) -> CallError {
        let Some(summary) = self.notes.summary() else {
            return error;
        };
        let kind = match error.kind {
            CallErrorKind::Guest(message) => {
                CallErrorKind::Guest(self.mask(format!("{message} (host: {summary})")))
            }
            other => other,
        };
        CallError { kind, ..error }
    }

    /// Admits a request or says why not.
    fn admit(&mut self, uri: &http::Uri) -> Result<(Arc<HttpGrant>, reqwest::Url), String> {
        let origin = display_url(&uri.to_string());
        let grant = match &self.access {
            Access::Granted(g) => g.clone(),
            Access::NotGranted => {
                return Err(format!(
                    "request to {origin} denied: the spec grants this plugin no network (`plugins.<name>.allowed_hosts`)"
                ));
            }
            Access::Offline => {
                return Err(format!(
                    "request to {origin} denied: only tool calls may use the network; hooks and load-time calls are offline"
                ));
            }
        };
        if self.sent >= grant.max_requests {
            return Err(format!(
                "request to {origin} denied: more than {} requests in one call ({})",
                grant.max_requests,
                grant.setting("http.max_requests")
            ));
        }
        let url = reqwest::Url::parse(&uri.to_string())
            .map_err(|e| format!("request to {origin} denied: not a URL: {e}"))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(format!("request denied: scheme `{other}` is not http(s)")),
        };
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(0);
        if !grant.hosts.iter().any(|p| p.matches(https, host, port)) {
            return Err(format!(
                "request to {origin} denied: not in `{}`",
                grant.setting("allowed_hosts")
            ));
        }
        self.sent += 1;
        Ok((grant, url))
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for NetHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _io: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let (grant, url) = match self.admit(request.uri()) {
            Ok(admitted) => admitted,
            Err(note) => {
                self.notes.push(note);
                // Take the body the guest is writing before answering, so
                // it reads the denial rather than a broken body stream.
                let body = request.into_body();
                return Box::new(async move {
                    let drain = Limited::new(body, DRAINED_ON_DENIAL).collect();
                    let _ = tokio::time::timeout(DRAIN_WAIT, drain).await;
                    Err(HttpError::HttpRequestDenied)
                });
            }
        };
        let notes = self.notes.clone();
        Box::new(async move {
            let origin = display_url(url.as_str());
            match send(&grant, url, request, &notes).await {
                Ok(response) => Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                )),
                Err((code, note)) => {
                    notes.push(format!("request to {origin} failed: {note}"));
                    Err(code)
                }
            }
        })
    }
}

/// Sends one admitted request with the grant's secrets, caps and timeout.
async fn send(
    grant: &Arc<HttpGrant>,
    url: reqwest::Url,
    request: http::Request<WasiBody>,
    notes: &Notes,
) -> Result<http::Response<WasiBody>, (HttpError, String)> {
    let client = grant
        .client(&url)
        .map_err(|e| (HttpError::HttpRequestDenied, e))?;
    let (parts, body) = request.into_parts();
    let body = Limited::new(body, grant.max_request)
        .collect()
        .await
        .map_err(|_| {
            (
                HttpError::HttpRequestBodySize(None),
                format!(
                    "the request body is over {} KiB ({})",
                    grant.max_request / 1024,
                    grant.setting("http.max_request_kib")
                ),
            )
        })?
        .to_bytes();
    let mut headers = parts.headers;
    headers.remove(http::header::HOST);
    let (https, host, port) = (
        url.scheme() == "https",
        url.host_str().unwrap_or_default().to_owned(),
        url.port_or_known_default().unwrap_or(0),
    );
    for (pattern, values) in &grant.secrets {
        if pattern.matches(https, &host, port) {
            for (name, value) in values {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
    let timeout = grant.timeout;
    let response = client
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| classify(grant, &e))?;
    let cap = grant.max_response;
    if let Some(length) = response.content_length()
        && length > cap
    {
        return Err((
            HttpError::HttpResponseBodySize(Some(length)),
            oversized(grant, Some(length)),
        ));
    }
    let response: http::Response<reqwest::Body> = response.into();
    let grant = grant.clone();
    let notes = notes.clone();
    Ok(response.map(move |body| {
        Limited::new(body, usize::try_from(cap).unwrap_or(usize::MAX))
            .map_err(move |e| {
                let (code, note) = if e.is::<http_body_util::LengthLimitError>() {
                    (
                        HttpError::HttpResponseBodySize(None),
                        oversized(&grant, None),
                    )
                } else if let Some(e) = e.downcast_ref::<reqwest::Error>() {
                    classify(&grant, e)
                } else {
                    (HttpError::HttpProtocolError, e.to_string())
                };
                notes.push(format!("reading the response failed: {note}"));
                code
            })
            .boxed_unsync()
    }))
}

fn oversized(grant: &HttpGrant, length: Option<u64>) -> String {
    let size = length.map(|l| format!(" ({l} bytes)")).unwrap_or_default();
    format!(
        "the response body is over {} KiB{size} ({})",
        grant.max_response / 1024,
        grant.setting("http.max_response_kib")
    )
}

fn classify(grant: &HttpGrant, e: &reqwest::Error) -> (HttpError, String) {
    if e.is_timeout() {
        return (
            HttpError::ConnectionReadTimeout,
            format!(
                "no complete answer within {} ms ({})",
                grant.timeout.as_millis(),
                grant.setting("http.timeout_ms")
            ),
        );
    }
    if let Some(refused) = refusal(e) {
        return (
            HttpError::DestinationIpProhibited,
            format!("refused by the operator's egress policy: {refused}"),
        );
    }
    let code = if e.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::HttpProtocolError
    };
    // reqwest's message names the URL; keep the origin only.
    let detail = std::error::Error::source(e)
        .map(ToString::to_string)
        .unwrap_or_else(|| "the request failed".to_owned());
    (code, detail)
}
