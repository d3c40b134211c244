//! The server's Prometheus metrics: one registry per server (tests run several in one process),
//! exposed in the text format 0.0.4 that every Prometheus and `promtool check metrics` read.
//!
//! Why the `prometheus` crate (TiKV's) rather than the Prometheus project's `prometheus-client`
//! or `metrics`: `prometheus-client` writes only OpenMetrics text, whose counters (`# TYPE x
//! counter` over `x_total` samples) and `info` type the Prometheus of Debian 12 (2.42) lints as
//! untyped series without help, or refuses, in `promtool check metrics`; `metrics` records into
//! one global recorder per process, so two servers in one test process would add up each other's
//! counts.
//!
//! Labels never carry ids, paths or tokens: requests are labelled by route template, method and
//! status class, storage operations by the operation's name, so the number of series is fixed.

mod catalog;
mod http;

pub use catalog::MeteredCatalog;
pub use http::{method_index, METHODS};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::Arc;
use std::time::Duration;
use tidepool_import::blobs::{BlobObserver, BlobOp};

/// Request latency buckets, seconds: the API answers in well under a millisecond to tens of
/// milliseconds; the top ones catch a catalog that is struggling.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Catalog statements: from a cached SQLite read to a PostgreSQL transaction under load.
const CATALOG_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];
/// Blob-store operations: a local stat to an S3 multipart completion of a large image.
const BLOB_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0,
];

/// Why a job failed, as the `reason` label has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureLabel {
    Fetch,
    FormatRefused,
    SizeLimit,
    /// The bytes did not match the expected checksum: counted once imports take one (#13).
    Checksum,
    Timeout,
    Internal,
}

impl FailureLabel {
    pub const ALL: [FailureLabel; 6] = [
        Self::Fetch,
        Self::FormatRefused,
        Self::SizeLimit,
        Self::Checksum,
        Self::Timeout,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fetch => "fetch",
            Self::FormatRefused => "format_refused",
            Self::SizeLimit => "size_limit",
            Self::Checksum => "checksum",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }
}

impl From<tidepool_import::FailureKind> for FailureLabel {
    fn from(kind: tidepool_import::FailureKind) -> Self {
        use tidepool_import::FailureKind as K;
        match kind {
            K::Fetch => Self::Fetch,
            K::Refused => Self::FormatRefused,
            K::TooLarge => Self::SizeLimit,
            K::Timeout => Self::Timeout,
            // Reached only when a cancelled import is recorded as failed, which a shutdown
            // or a deletion never does: then it is tidepool's doing.
            K::Cancelled | K::Internal => Self::Internal,
        }
    }
}

/// The `kind` label of imports.
pub const IMPORT: &str = "import";
/// The kinds of job, as the `kind` label has them (transfers join imports with #12).
pub const JOB_KINDS: [&str; 1] = [IMPORT];

pub struct Metrics {
    registry: Registry,
    http: http::HttpSeries,
    rate_limited: IntCounter,
    jobs_started: IntCounterVec,
    jobs_completed: IntCounterVec,
    jobs_failed: IntCounterVec,
    jobs_retried: IntCounterVec,
    jobs_running: IntGaugeVec,
    jobs_queued: IntGaugeVec,
    job_bytes: IntCounterVec,
    lease_takeovers: IntCounterVec,
    catalog_duration: HistogramVec,
    catalog_errors: IntCounterVec,
    blob_duration: HistogramVec,
    blob_errors: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique name");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique name");
    g
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let h = HistogramVec::new(opts, labels).expect("valid metric");
    registry.register(Box::new(h.clone())).expect("unique name");
    h
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let r = Registry::new();
        let build = gauge(
            &r,
            "tidepool_build_info",
            "The running build: always 1, with the version as a label.",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let rate_limited = IntCounter::new(
            "tidepool_http_rate_limited_total",
            "Requests answered 429 because their token or address was over its rate limit.",
        )
        .expect("valid metric");
        r.register(Box::new(rate_limited.clone()))
            .expect("unique name");
        let m = Metrics {
            http: http::HttpSeries::new(
                counter(
                &r,
                "tidepool_http_requests_total",
                "HTTP requests answered, by route template, method and status class.",
                &["route", "method", "status"],
            ),
            histogram(
                &r,
                "tidepool_http_request_duration_seconds",
                "Time from a request's arrival to the end of its response body.",
                &["route", "method"],
                HTTP_BUCKETS,
            ),
            counter(
                &r,
                "tidepool_http_response_bytes_total",
                "Bytes of response bodies sent, by route template.",
                &["route"],
            ),
            ),
            rate_limited,
            jobs_started: counter(
                &r,
                "tidepool_jobs_started_total",
                "Job attempts started on this replica.",
                &["kind"],
            ),
            jobs_completed: counter(
                &r,
                "tidepool_jobs_completed_total",
                "Jobs that ended successfully on this replica.",
                &["kind"],
            ),
            jobs_failed: counter(
                &r,
                "tidepool_jobs_failed_total",
                "Jobs that ended in failure on this replica (the image is deleted with an error_message), by reason.",
                &["kind", "reason"],
            ),
            jobs_retried: counter(
                &r,
                "tidepool_jobs_retried_total",
                "Job attempts that failed transiently and went back to the queue, by reason.",
                &["kind", "reason"],
            ),
            jobs_running: gauge(
                &r,
                "tidepool_jobs_running",
                "Jobs running on this replica now.",
                &["kind"],
            ),
            jobs_queued: gauge(
                &r,
                "tidepool_jobs_queued",
                "Jobs waiting for a worker, across every replica (read from the catalog at each scrape).",
                &["kind"],
            ),
            job_bytes: counter(
                &r,
                "tidepool_job_bytes_total",
                "Bytes jobs have read (an import's download, compressed as sent), on this replica.",
                &["kind"],
            ),
            lease_takeovers: counter(
                &r,
                "tidepool_job_lease_takeovers_total",
                "Jobs this replica claimed after another worker's lease ran out (it crashed or lost the catalog).",
                &["kind"],
            ),
            catalog_duration: histogram(
                &r,
                "tidepool_catalog_operation_duration_seconds",
                "Time catalog operations took, by operation.",
                &["operation"],
                CATALOG_BUCKETS,
            ),
            catalog_errors: counter(
                &r,
                "tidepool_catalog_operation_errors_total",
                "Catalog operations that failed (database errors, not refused writes), by operation.",
                &["operation"],
            ),
            blob_duration: histogram(
                &r,
                "tidepool_blob_store_operation_duration_seconds",
                "Time blob-store operations took, by operation.",
                &["operation"],
                BLOB_BUCKETS,
            ),
            blob_errors: counter(
                &r,
                "tidepool_blob_store_operation_errors_total",
                "Blob-store operations that failed, by operation.",
                &["operation"],
            ),
            registry: r,
        };
        // Every series that alerts are written against exists from the start at 0, so that
        // `rate()` and `increase()` see its first increment.
        for kind in JOB_KINDS {
            for metric in [
                &m.jobs_started,
                &m.jobs_completed,
                &m.job_bytes,
                &m.lease_takeovers,
            ] {
                metric.with_label_values(&[kind]);
            }
            for reason in FailureLabel::ALL {
                m.jobs_failed.with_label_values(&[kind, reason.as_str()]);
                m.jobs_retried.with_label_values(&[kind, reason.as_str()]);
            }
            m.jobs_running.with_label_values(&[kind]);
            m.jobs_queued.with_label_values(&[kind]);
        }
        Arc::new(m)
    }

    /// The exposition, in the Prometheus text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    /// A request answered: `method` is an index in [`METHODS`].
    pub fn http_request(
        &self,
        route: &str,
        method: usize,
        status: u16,
        elapsed: Duration,
        body_bytes: u64,
    ) {
        self.http.record(route, method, status, elapsed, body_bytes);
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    pub fn job_started(&self, kind: &str, taken_over: bool) {
        self.jobs_started.with_label_values(&[kind]).inc();
        if taken_over {
            self.lease_takeovers.with_label_values(&[kind]).inc();
        }
    }

    pub fn job_completed(&self, kind: &str) {
        self.jobs_completed.with_label_values(&[kind]).inc();
    }

    pub fn job_failed(&self, kind: &str, reason: FailureLabel) {
        self.jobs_failed
            .with_label_values(&[kind, reason.as_str()])
            .inc();
    }

    pub fn job_retried(&self, kind: &str, reason: FailureLabel) {
        self.jobs_retried
            .with_label_values(&[kind, reason.as_str()])
            .inc();
    }

    pub fn job_bytes(&self, kind: &str, bytes: u64) {
        self.job_bytes.with_label_values(&[kind]).inc_by(bytes);
    }

    /// The gauge of jobs running here; the guard takes the job off when it ends, however.
    pub fn job_running(self: &Arc<Self>, kind: &'static str) -> RunningJob {
        let gauge = self.jobs_running.with_label_values(&[kind]);
        gauge.inc();
        RunningJob { gauge }
    }

    pub fn set_jobs_queued(&self, kind: &str, queued: u64) {
        self.jobs_queued
            .with_label_values(&[kind])
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
    }

    /// The latency histogram of catalog operation `operation`, for the catalog's decorator to
    /// keep.
    fn catalog_duration(&self, operation: &str) -> Histogram {
        self.catalog_duration.with_label_values(&[operation])
    }

    fn catalog_error(&self, operation: &str) {
        self.catalog_errors.with_label_values(&[operation]).inc();
    }
}

/// One job counted in `tidepool_jobs_running` while it lives.
pub struct RunningJob {
    gauge: IntGauge,
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl BlobObserver for Metrics {
    fn observe(&self, op: BlobOp, elapsed: Duration, ok: bool) {
        self.blob_duration
            .with_label_values(&[op.as_str()])
            .observe(elapsed.as_secs_f64());
        if !ok {
            self.blob_errors.with_label_values(&[op.as_str()]).inc();
        }
    }
}
