//! OpenTelemetry export of a run's `tracing` spans over OTLP/HTTP
//! (protobuf), so any tracing backend shows a workflow run as one trace.
//!
//! The engine, the agent loop, the model providers and the plugin runtime
//! describe their work as `tracing` spans with OpenTelemetry GenAI attributes
//! (docs/TRACING.md lists them). This module only ships those spans:
//! [`OtlpConfig::resolve`] finds the endpoint (a command-line value or the
//! standard `OTEL_*` environment variables), [`Telemetry::start`] builds the
//! exporter, [`Telemetry::layer`] is the `tracing_subscriber` layer to
//! install, and [`Telemetry::shutdown`] exports what is left before the
//! process exits.
//!
//! Export never slows a run down or fails it: spans are batched and sent from
//! the SDK's own thread with a blocking HTTP client (no work on the async
//! runtime), every export is bounded by [`OtlpConfig::timeout`] (retries
//! included), and shutdown waits at most that long plus
//! [`SHUTDOWN_GRACE`]. An export that fails is reported by `shutdown`; the
//! caller decides whether that is worth a warning.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, Key, KeyValue};
use opentelemetry_otlp::{
    OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, Protocol, RetryPolicy, WithExportConfig, WithHttpConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

/// `service.name` of the exported resource, unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` names the service.
pub const SERVICE_NAME: &str = "host";
/// Set to `true` to turn export off whatever the environment says (the
/// command-line endpoint still wins).
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// How long one export may take, retries included, unless
/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` / `OTEL_EXPORTER_OTLP_TIMEOUT` say
/// otherwise. Shorter than the SDK's 10 s: a command line waits for the last
/// export before it exits.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// What shutdown waits beyond the export timeout (for the exporter thread to
/// pick up the last batch).
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// Path of the traces signal under an OTLP/HTTP base URL.
const TRACES_PATH: &str = "/v1/traces";
/// The OTLP transport of traces (`grpc`, `http/protobuf`, `http/json`).
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// The OTLP transport of every signal.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

/// Why telemetry could not be set up, or the trace not be exported.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid OTLP endpoint `{endpoint}` (from {origin}): {reason}")]
    InvalidEndpoint {
        endpoint: String,
        origin: &'static str,
        reason: String,
    },
    #[error("invalid {var} `{value}`: expected a positive number of milliseconds")]
    InvalidTimeout { var: &'static str, value: String },
    #[error(
        "{var} is `{value}`, but host exports OTLP over HTTP with protobuf bodies only: \
         point the endpoint at the collector's OTLP/HTTP port (usually 4318) and set \
         {var}=http/protobuf or unset it"
    )]
    UnsupportedProtocol { var: &'static str, value: String },
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("could not export the trace to {endpoint}: {reason}")]
    Export { endpoint: String, reason: String },
}

/// Where and how to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpConfig {
    /// The URL spans are POSTed to (`…/v1/traces`).
    pub traces_url: String,
    /// Bound on one export, retries included.
    pub timeout: Duration,
}

impl OtlpConfig {
    /// The export settings, or `None` when nothing asks for export.
    ///
    /// `endpoint` is the command-line value, an OTLP/HTTP base URL such as
    /// `http://localhost:4318` (`/v1/traces` is appended unless the URL
    /// already ends with it); an empty value turns export off. Without it,
    /// `env` is asked, as the OpenTelemetry specification says, for
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL, used as is), then
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL); `OTEL_SDK_DISABLED=true`
    /// turns environment-configured export off. The timeout comes from
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or `OTEL_EXPORTER_OTLP_TIMEOUT`
    /// (milliseconds), else [`DEFAULT_EXPORT_TIMEOUT`]. An endpoint from the
    /// environment with `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or
    /// `OTEL_EXPORTER_OTLP_PROTOCOL` other than `http/protobuf` (`grpc`,
    /// `http/json`) is an error rather than an export that cannot arrive.
    pub fn resolve(
        endpoint: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OtlpConfig>, TelemetryError> {
        let env = |var: &str| env(var).map(|v| v.trim().to_string());
        let traces_url = match endpoint.map(str::trim) {
            Some("") => return Ok(None),
            Some(base) => traces_url(base, "--otlp", true)?,
            None => {
                if env(OTEL_SDK_DISABLED).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                    return Ok(None);
                }
                match (
                    env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).filter(|v| !v.is_empty()),
                    env(OTEL_EXPORTER_OTLP_ENDPOINT).filter(|v| !v.is_empty()),
                ) {
                    (Some(url), _) => traces_url(&url, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, false)?,
                    (None, Some(base)) => traces_url(&base, OTEL_EXPORTER_OTLP_ENDPOINT, true)?,
                    (None, None) => return Ok(None),
                }
            }
        };
        // The command line's URL is OTLP/HTTP by definition; a protocol
        // variable only governs the environment's endpoints.
        if endpoint.is_none() {
            let protocol = [
                OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
                OTEL_EXPORTER_OTLP_PROTOCOL,
            ]
            .into_iter()
            .find_map(|var| env(var).filter(|v| !v.is_empty()).map(|v| (var, v)));
            if let Some((var, value)) = protocol
                && !value.eq_ignore_ascii_case("http/protobuf")
            {
                return Err(TelemetryError::UnsupportedProtocol { var, value });
            }
        }
        let mut timeout = DEFAULT_EXPORT_TIMEOUT;
        for var in [
            OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
            OTEL_EXPORTER_OTLP_TIMEOUT,
        ] {
            if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                let ms: u64 = value
                    .parse()
                    .ok()
                    .filter(|ms| *ms > 0)
                    .ok_or(TelemetryError::InvalidTimeout { var, value })?;
                timeout = Duration::from_millis(ms);
                break;
            }
        }
        Ok(Some(OtlpConfig {
            traces_url,
            timeout,
        }))
    }
}

/// Checks `url` and, for a base URL, appends the traces path.
fn traces_url(url: &str, origin: &'static str, base: bool) -> Result<String, TelemetryError> {
    let invalid = |reason: String| TelemetryError::InvalidEndpoint {
        endpoint: url.to_string(),
        origin,
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(
            "expected an http:// or https:// URL (OTLP over gRPC is not supported)".into(),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host".into()));
    }
    let url = url.trim_end_matches('/');
    if !base || url.ends_with(TRACES_PATH) {
        return Ok(url.to_string());
    }
    Ok(format!("{url}{TRACES_PATH}"))
}

/// The span filter of the export layer: the host's own spans and events
/// (and the plugins' log lines) at `info` and above, whatever the log filter
/// of the terminal says; nothing from the libraries underneath, so the
/// exporter's own HTTP client never feeds the trace.
pub fn export_filter() -> Targets {
    Targets::new()
        .with_target(env!("CARGO_CRATE_NAME"), LevelFilter::INFO)
        .with_target("plugin", LevelFilter::INFO)
}

/// A running OTLP export pipeline. Call [`Telemetry::shutdown`] before the
/// process exits; dropping it shuts down too, without reporting errors.
pub struct Telemetry {
    provider: SdkTracerProvider,
    config: OtlpConfig,
    /// The first failed export, if any (the SDK's shutdown does not say).
    failure: Arc<Mutex<Option<String>>>,
    shut_down: bool,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Builds the exporter and its batching span processor. Sends nothing
    /// yet; an unreachable endpoint is not an error here.
    pub fn start(config: &OtlpConfig) -> Result<Telemetry, TelemetryError> {
        // A dead collector answers at once (connection refused): retry a
        // little, within the export timeout, rather than for seconds.
        let retry = RetryPolicy::recommended()
            .with_max_retries(2)
            .with_max_delay(Duration::from_millis(400));
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(config.traces_url.clone())
            .with_timeout(config.timeout)
            .with_retry_policy(retry)
            .build()?;
        let failure = Arc::new(Mutex::new(None));
        let exporter = Reporting {
            inner: exporter,
            failure: failure.clone(),
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource())
            .build();
        Ok(Telemetry {
            provider,
            config: config.clone(),
            failure,
            shut_down: false,
        })
    }

    /// Where the spans go.
    pub fn config(&self) -> &OtlpConfig {
        &self.config
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans, with
    /// its own filter ([`export_filter`]) so the log level does not decide
    /// what is exported.
    pub fn layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        let scope = InstrumentationScope::builder(env!("CARGO_PKG_NAME"))
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer_with_scope(scope))
            .with_threads(false)
            .with_location(false)
            .with_filter(export_filter())
    }

    /// Exports the spans still queued and stops the exporter, waiting at
    /// most the export timeout plus [`SHUTDOWN_GRACE`]. Fails when any
    /// export of this pipeline failed, with the first failure.
    pub fn shutdown(mut self) -> Result<(), TelemetryError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<(), TelemetryError> {
        if std::mem::replace(&mut self.shut_down, true) {
            return Ok(());
        }
        let shutdown = self
            .provider
            .shutdown_with_timeout(self.config.timeout + SHUTDOWN_GRACE);
        let failure = self.failure.lock().ok().and_then(|mut f| f.take());
        match (failure, shutdown) {
            (None, Ok(())) => Ok(()),
            (Some(reason), _) => Err(self.export_error(reason)),
            (None, Err(e)) => Err(self.export_error(e.to_string())),
        }
    }

    fn export_error(&self, reason: String) -> TelemetryError {
        TelemetryError::Export {
            endpoint: self.config.traces_url.clone(),
            reason,
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The OTLP exporter, remembering its first failure for
/// [`Telemetry::shutdown`] to report.
#[derive(Debug)]
struct Reporting {
    inner: opentelemetry_otlp::SpanExporter,
    failure: Arc<Mutex<Option<String>>>,
}

impl SpanExporter for Reporting {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let result = self.inner.export(batch).await;
        if let Err(e) = &result
            && let Ok(mut failure) = self.failure.lock()
        {
            failure.get_or_insert_with(|| e.to_string());
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// `service.name` = [`SERVICE_NAME`] unless the environment names the
/// service, the host's version, and what the SDK detects (`telemetry.sdk.*`,
/// `OTEL_RESOURCE_ATTRIBUTES`).
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if named {
        builder.build()
    } else {
        builder.with_service_name(SERVICE_NAME).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(
        flag: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Option<OtlpConfig>, TelemetryError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OtlpConfig::resolve(flag, |k| env.get(k).cloned())
    }

    fn url(flag: Option<&str>, env: &[(&str, &str)]) -> Option<String> {
        resolve(flag, env).unwrap().map(|c| c.traces_url)
    }

    #[test]
    fn nothing_configured_means_no_export() {
        assert_eq!(resolve(None, &[]).unwrap(), None);
        assert_eq!(url(None, &[(OTEL_EXPORTER_OTLP_ENDPOINT, "  ")]), None);
        assert_eq!(
            url(Some(""), &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318")]),
            None
        );
    }

    #[test]
    fn base_urls_get_the_traces_path() {
        let want = Some("http://c:4318/v1/traces".to_string());
        assert_eq!(url(Some("http://c:4318"), &[]), want);
        assert_eq!(url(Some("http://c:4318/"), &[]), want);
        assert_eq!(url(Some("http://c:4318/v1/traces"), &[]), want);
        assert_eq!(
            url(None, &[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318")]),
            want
        );
        assert_eq!(
            url(None, &[(OTEL_EXPORTER_OTLP_ENDPOINT, "https://c/otel/")]),
            Some("https://c/otel/v1/traces".to_string())
        );
        // The signal-specific variable is the full URL.
        assert_eq!(
            url(
                None,
                &[(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://c/ingest")]
            ),
            Some("http://c/ingest".to_string())
        );
    }

    #[test]
    fn the_flag_wins_then_the_signal_variable() {
        let env = [
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://generic:4318"),
            (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://traces:4318/t"),
            (OTEL_SDK_DISABLED, "true"),
        ];
        assert_eq!(
            url(Some("http://flag:4318"), &env),
            Some("http://flag:4318/v1/traces".to_string())
        );
        // OTEL_SDK_DISABLED turns off what the environment configures.
        assert_eq!(url(None, &env), None);
        assert_eq!(
            url(None, &env[..2]),
            Some("http://traces:4318/t".to_string())
        );
    }

    #[test]
    fn timeouts() {
        let flag = Some("http://c:4318");
        assert_eq!(
            resolve(flag, &[]).unwrap().unwrap().timeout,
            DEFAULT_EXPORT_TIMEOUT
        );
        let env = [
            (OTEL_EXPORTER_OTLP_TIMEOUT, "2000"),
            (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, "750"),
        ];
        assert_eq!(
            resolve(flag, &env).unwrap().unwrap().timeout,
            Duration::from_millis(750)
        );
        assert_eq!(
            resolve(flag, &env[..1]).unwrap().unwrap().timeout,
            Duration::from_secs(2)
        );
        for bad in ["soon", "0", "-1"] {
            let err = resolve(flag, &[(OTEL_EXPORTER_OTLP_TIMEOUT, bad)]).unwrap_err();
            assert!(
                err.to_string().contains(OTEL_EXPORTER_OTLP_TIMEOUT),
                "{err}"
            );
        }
    }

    #[test]
    fn a_protocol_other_than_http_protobuf_is_explained() {
        let base = (OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4317");
        for (var, value) in [
            (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
            (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "http/json"),
        ] {
            let err = resolve(None, &[base, (var, value)])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(var) && err.contains(value) && err.contains("4318"),
                "{err}"
            );
        }
        // The traces variable wins over the general one.
        let ok = [
            base,
            (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "http/protobuf"),
            (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
        ];
        assert!(resolve(None, &ok).unwrap().is_some());
        // No export, nothing to object to; the command line's URL is OTLP/HTTP.
        assert!(
            resolve(None, &[(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")])
                .unwrap()
                .is_none()
        );
        let grpc = [(OTEL_EXPORTER_OTLP_PROTOCOL, "grpc")];
        assert!(resolve(Some("http://c:4318"), &grpc).unwrap().is_some());
    }

    #[test]
    fn bad_endpoints_are_explained() {
        for (bad, why) in [
            ("localhost:4318", "http://"),
            ("grpc://c:4317", "http://"),
            ("not a url", "relative URL"),
        ] {
            let err = resolve(Some(bad), &[]).unwrap_err().to_string();
            assert!(err.contains("--otlp") && err.contains(why), "{bad}: {err}");
        }
        let err = resolve(None, &[(OTEL_EXPORTER_OTLP_ENDPOINT, "ftp://c")])
            .unwrap_err()
            .to_string();
        assert!(err.contains(OTEL_EXPORTER_OTLP_ENDPOINT), "{err}");
    }
}
