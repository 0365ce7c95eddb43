//! `/metrics`: the server's counters in Prometheus text format, through
//! the official Prometheus client (`prometheus-client`).

use crate::events::{Data, Event};
use crate::plugin::CallObserver;
use crate::spec::Kind;
use crate::store::RunStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkflowLabel {
    workflow: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabel {
    model: String,
    direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabel {
    what: String,
    outcome: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    // 1 ms … ~33 min.
    Histogram::new(exponential_buckets(0.001, 2.0, 22))
}

fn fast_seconds() -> Histogram {
    // 10 µs … ~5 s: plugin calls.
    Histogram::new(exponential_buckets(0.00001, 2.0, 20))
}

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    runs_finished: Family<StatusLabel, Counter>,
    runs_accepted: Counter,
    runs_running: Gauge,
    queue_depth: Gauge,
    run_seconds: Histograms<WorkflowLabel>,
    step_seconds: Histograms<WorkflowLabel>,
    plugin_seconds: Histograms<PluginLabel>,
    plugin_failures: Family<PluginLabel, Counter>,
    tokens: Family<TokenLabel, Counter>,
    reloads: Family<ReloadLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("host");
        let runs_finished = Family::<StatusLabel, Counter>::default();
        registry.register(
            "runs_finished",
            "Runs that ended or paused, by status (completed, failed, cancelled, waiting_approval)",
            runs_finished.clone(),
        );
        let runs_accepted = Counter::default();
        registry.register(
            "runs_accepted",
            "Runs accepted by POST /v1/runs",
            runs_accepted.clone(),
        );
        let runs_running = Gauge::default();
        registry.register("runs_running", "Runs executing now", runs_running.clone());
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Runs accepted and waiting for a free slot",
            queue_depth.clone(),
        );
        let run_seconds =
            Histograms::<WorkflowLabel>::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "run_duration_seconds",
            "Wall time of a run's execution",
            run_seconds.clone(),
        );
        let step_seconds =
            Histograms::<WorkflowLabel>::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "step_duration_seconds",
            "Wall time of a completed step",
            step_seconds.clone(),
        );
        let plugin_seconds =
            Histograms::<PluginLabel>::new_with_constructor(fast_seconds as fn() -> Histogram);
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin calls made by runs, by plugin and kind",
            plugin_seconds.clone(),
        );
        let plugin_failures = Family::<PluginLabel, Counter>::default();
        registry.register(
            "plugin_call_failures",
            "Plugin calls that failed",
            plugin_failures.clone(),
        );
        let tokens = Family::<TokenLabel, Counter>::default();
        registry.register(
            "model_tokens",
            "Model tokens by model and direction (input, output)",
            tokens.clone(),
        );
        let reloads = Family::<ReloadLabel, Counter>::default();
        registry.register(
            "reloads",
            "Hot reloads of plugins and workflows, by outcome (ok, failed, removed)",
            reloads.clone(),
        );
        Metrics {
            registry,
            runs_finished,
            runs_accepted,
            runs_running,
            queue_depth,
            run_seconds,
            step_seconds,
            plugin_seconds,
            plugin_failures,
            tokens,
            reloads,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn accepted(&self) {
        self.runs_accepted.inc();
    }

    pub fn set_queue_depth(&self, n: usize) {
        self.queue_depth.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn set_running(&self, n: usize) {
        self.runs_running.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn finished(&self, workflow: &str, status: RunStatus, elapsed: Duration) {
        self.runs_finished
            .get_or_create(&StatusLabel {
                status: status.as_str().to_owned(),
            })
            .inc();
        self.run_seconds
            .get_or_create(&WorkflowLabel {
                workflow: workflow.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn reload(&self, what: &str, outcome: &str) {
        self.reloads
            .get_or_create(&ReloadLabel {
                what: what.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// What a run's event says about steps and tokens.
    pub fn event(&self, event: &Event) {
        match &event.data {
            Data::StepCompleted(d) => {
                self.step_seconds
                    .get_or_create(&WorkflowLabel {
                        workflow: event.workflow.clone(),
                    })
                    .observe(d.elapsed_ms as f64 / 1000.0);
            }
            Data::LlmResponse(d) if !d.recorded => {
                if let Some(usage) = &d.usage {
                    for (direction, n) in [
                        ("input", usage.input_tokens),
                        ("output", usage.output_tokens),
                    ] {
                        self.tokens
                            .get_or_create(&TokenLabel {
                                model: d.model.clone(),
                                direction: direction.to_owned(),
                            })
                            .inc_by(n);
                    }
                }
            }
            _ => {}
        }
    }
}

impl CallObserver for Metrics {
    fn plugin_call(&self, plugin: &str, kind: Kind, elapsed: Duration, ok: bool) {
        let label = PluginLabel {
            plugin: plugin.to_owned(),
            kind: kind.as_str().to_owned(),
        };
        self.plugin_seconds
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.plugin_failures.get_or_create(&label).inc();
        }
    }
}
