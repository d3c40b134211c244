//! Configuration: every flag has a `TIDEPOOL_…` environment twin and a doc line. Each default
//! is written once, as a constant that both clap and `ServeArgs::with_data_dir` use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_DATA_DIR: &str = "./tidepool-data";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// DigitalOcean's documented per-token limits.
pub const DEFAULT_RATE_LIMIT_PER_HOUR: u32 = 5000;
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 250;
pub const DEFAULT_IMPORT_TIMEOUT_SECS: u64 = 6 * 3600;
pub const DEFAULT_IMPORT_LEASE_SECS: u64 = 30;
pub const DEFAULT_IMPORT_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_SWEEP_INTERVAL_SECS: u64 = 600;
pub const DEFAULT_SWEEP_GRACE_SECS: u64 = 3600;
pub const DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_HTTP_IDLE_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// Where the catalog (and, with the embedded default, the blobs) live.
#[derive(clap::Args, Debug, Clone)]
pub struct StorageArgs {
    /// Directory of the embedded catalog and blob store.
    #[arg(long, env = "TIDEPOOL_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Catalog database: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://<data-dir>/catalog.db].
    #[arg(long, env = "TIDEPOOL_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Blob store: file:///DIR, a plain path, or s3://BUCKET/PREFIX [default: <data-dir>/blobs].
    #[arg(long, env = "TIDEPOOL_BLOB_STORE")]
    pub blob_store: Option<String>,
}

impl StorageArgs {
    /// The embedded default in `data_dir`.
    pub fn in_data_dir(data_dir: PathBuf) -> Self {
        StorageArgs {
            data_dir,
            database_url: None,
            blob_store: None,
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("catalog.db").display()))
    }

    pub fn blob_store(&self) -> String {
        self.blob_store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs").display().to_string())
    }
}

/// How images are imported.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    /// Imports that run at once [default: the number of cores].
    #[arg(long, env = "TIDEPOOL_IMPORT_WORKERS")]
    pub import_workers: Option<usize>,
    /// Largest image accepted, in bytes after decompression (default 100 GB).
    #[arg(long, env = "TIDEPOOL_IMPORT_MAX_BYTES", default_value_t = tidepool_import::DEFAULT_MAX_BYTES)]
    pub import_max_bytes: u64,
    /// Let image URLs reach loopback, private and link-local addresses (tests, air-gapped sites).
    #[arg(long, env = "TIDEPOOL_IMPORT_ALLOW_PRIVATE_NETWORKS")]
    pub import_allow_private_networks: bool,
    /// Accept raw images without an MBR or GPT partition table, which DigitalOcean refuses (for a root file system booted with a kernel of its own).
    #[arg(long, env = "TIDEPOOL_IMPORT_ALLOW_BARE_RAW")]
    pub import_allow_bare_raw: bool,
    /// An import running longer than this many seconds fails.
    #[arg(long, env = "TIDEPOOL_IMPORT_TIMEOUT_SECS", default_value_t = DEFAULT_IMPORT_TIMEOUT_SECS)]
    pub import_timeout_secs: u64,
    /// An import whose URL sends nothing for this many seconds fails (or is retried).
    #[arg(long, env = "TIDEPOOL_IMPORT_STALL_TIMEOUT_SECS", default_value_t = tidepool_import::DEFAULT_STALL_TIMEOUT_SECS)]
    pub import_stall_timeout_secs: u64,
    /// Seconds a worker's claim on an import lasts without renewal before another takes over.
    #[arg(long, env = "TIDEPOOL_IMPORT_LEASE_SECS", default_value_t = DEFAULT_IMPORT_LEASE_SECS)]
    pub import_lease_secs: u64,
    /// Attempts an import gets when failures are transient (network, blob store).
    #[arg(long, env = "TIDEPOOL_IMPORT_MAX_ATTEMPTS", default_value_t = DEFAULT_IMPORT_MAX_ATTEMPTS)]
    pub import_max_attempts: u32,
    /// Seconds between orphan sweeps of the blob store.
    #[arg(long, env = "TIDEPOOL_SWEEP_INTERVAL_SECS", default_value_t = DEFAULT_SWEEP_INTERVAL_SECS)]
    pub sweep_interval_secs: u64,
    /// Age in seconds an unreferenced blob or staging file must reach before the sweep removes it (keep it above the import stall timeout: a live import's staging file may sit untouched that long).
    #[arg(long, env = "TIDEPOOL_SWEEP_GRACE_SECS", default_value_t = DEFAULT_SWEEP_GRACE_SECS)]
    pub sweep_grace_secs: u64,
}

impl ImportArgs {
    pub fn worker_config(&self) -> crate::jobs::WorkerConfig {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let limits = tidepool_import::ImportLimits {
            max_bytes: self.import_max_bytes,
            allow_private_networks: self.import_allow_private_networks,
            allow_bare_raw: self.import_allow_bare_raw,
            stall_timeout: Duration::from_secs(self.import_stall_timeout_secs.max(1)),
            ..Default::default()
        };
        let lease = Duration::from_secs(self.import_lease_secs.max(1));
        crate::jobs::WorkerConfig {
            workers: self.import_workers.unwrap_or(cores),
            limits,
            lease,
            timeout: Duration::from_secs(self.import_timeout_secs.max(1)),
            max_attempts: self.import_max_attempts.max(1),
            poll_interval: lease.min(Duration::from_secs(5)),
        }
    }

    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.sweep_interval_secs.max(1))
    }

    pub fn sweep_grace(&self) -> Duration {
        Duration::from_secs(self.sweep_grace_secs)
    }
}

/// How HTTP connections are held: the limits that keep idle or stalled clients from using up
/// the server's connections and file descriptors.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpArgs {
    /// Seconds a new connection has to send its first request line and headers (real clients send them at once; this closes connections that send nothing or stall mid-header).
    #[arg(long, env = "TIDEPOOL_HTTP_HEADER_READ_TIMEOUT_SECS", default_value_t = DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECS)]
    pub http_header_read_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait for the next request's headers after a response (as load balancers commonly allow; an idle connection holds a slot and a file).
    #[arg(long, env = "TIDEPOOL_HTTP_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_HTTP_IDLE_TIMEOUT_SECS)]
    pub http_idle_timeout_secs: u64,
    /// Connections held at once; at the bound, new ones wait in the kernel's queue until one closes [default: 10000, or fewer to keep a quarter of the open-file limit, up to 1024 files, for the catalog, blob store and imports].
    #[arg(long, env = "TIDEPOOL_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,
    /// Seconds a shutdown waits for requests in flight before it drops their connections.
    #[arg(long, env = "TIDEPOOL_SHUTDOWN_TIMEOUT_SECS", default_value_t = DEFAULT_SHUTDOWN_TIMEOUT_SECS)]
    pub shutdown_timeout_secs: u64,
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            http_header_read_timeout_secs: DEFAULT_HTTP_HEADER_READ_TIMEOUT_SECS,
            http_idle_timeout_secs: DEFAULT_HTTP_IDLE_TIMEOUT_SECS,
            http_max_connections: None,
            shutdown_timeout_secs: DEFAULT_SHUTDOWN_TIMEOUT_SECS,
        }
    }
}

/// How logs are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (with colours only when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How the server is watched: metrics, request logs, and which proxies to believe about clients.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ObservabilityArgs {
    /// Serve /metrics (with /healthz and /readyz) on this address, and not on the API listener [default: /metrics on the API listener].
    #[arg(long, env = "TIDEPOOL_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer <this>` on /metrics.
    #[arg(long, env = "TIDEPOOL_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Reverse proxies (addresses or networks, e.g. 10.0.0.0/8; repeat or separate with commas) whose X-Forwarded-For names the client in logs and anonymous rate limits.
    #[arg(long, env = "TIDEPOOL_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// Log format: `text`, or `json` for one JSON object per line (the filter is TIDEPOOL_LOG).
    #[arg(long, env = "TIDEPOOL_LOG_FORMAT", value_enum, default_value_t)]
    pub log_format: LogFormat,
}

/// An address (a network of one) or a network in CIDR notation.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a network such as 10.0.0.0/8"))
}

/// `tidepool serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to listen on.
    #[arg(long, env = "TIDEPOOL_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Absolute base URL used in pagination links [default: from each request's Host header].
    #[arg(long, env = "TIDEPOOL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Requests one token may make in any hour (0: no limit).
    #[arg(long, env = "TIDEPOOL_RATE_LIMIT_PER_HOUR", default_value_t = DEFAULT_RATE_LIMIT_PER_HOUR)]
    pub rate_limit_per_hour: u32,
    /// Requests one token may make in a minute (0: no limit).
    #[arg(long, env = "TIDEPOOL_RATE_LIMIT_PER_MINUTE", default_value_t = DEFAULT_RATE_LIMIT_PER_MINUTE)]
    pub rate_limit_per_minute: u32,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub import: ImportArgs,
    #[command(flatten)]
    pub observability: ObservabilityArgs,
}

impl ServeArgs {
    /// The defaults of `tidepool serve` with another data directory, on a port of the system's
    /// choosing and with two import workers whatever the machine: what tests start from.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        ServeArgs {
            storage: StorageArgs::in_data_dir(data_dir),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            rate_limit_per_hour: DEFAULT_RATE_LIMIT_PER_HOUR,
            rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
            http: HttpArgs::default(),
            import: ImportArgs {
                import_workers: Some(2),
                import_max_bytes: tidepool_import::DEFAULT_MAX_BYTES,
                import_allow_private_networks: false,
                import_allow_bare_raw: false,
                import_timeout_secs: DEFAULT_IMPORT_TIMEOUT_SECS,
                import_stall_timeout_secs: tidepool_import::DEFAULT_STALL_TIMEOUT_SECS,
                import_lease_secs: DEFAULT_IMPORT_LEASE_SECS,
                import_max_attempts: DEFAULT_IMPORT_MAX_ATTEMPTS,
                sweep_interval_secs: DEFAULT_SWEEP_INTERVAL_SECS,
                sweep_grace_secs: DEFAULT_SWEEP_GRACE_SECS,
            },
            observability: ObservabilityArgs::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_network;

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        assert_eq!(
            parse_network("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_network(" 127.0.0.1 ").unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!(parse_network("::1").unwrap().to_string(), "::1/128");
        let err = parse_network("proxy.internal").unwrap_err();
        assert!(err.contains("\"proxy.internal\""), "{err}");
    }
}
