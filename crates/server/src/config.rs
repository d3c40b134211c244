//! Configuration: every flag has a `TIDEPOOL_…` environment twin and a doc line.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the catalog (and, with the embedded default, the blobs) live.
#[derive(clap::Args, Debug, Clone)]
pub struct StorageArgs {
    /// Directory of the embedded catalog and blob store.
    #[arg(long, env = "TIDEPOOL_DATA_DIR", default_value = "./tidepool-data")]
    pub data_dir: PathBuf,
    /// Catalog database: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://<data-dir>/catalog.db].
    #[arg(long, env = "TIDEPOOL_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StorageArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("catalog.db").display()))
    }
}

/// `tidepool serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Address to listen on.
    #[arg(long, env = "TIDEPOOL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Absolute base URL used in pagination links [default: from each request's Host header].
    #[arg(long, env = "TIDEPOOL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Requests one token may make in any hour (0: no limit).
    #[arg(long, env = "TIDEPOOL_RATE_LIMIT_PER_HOUR", default_value_t = 5000)]
    pub rate_limit_per_hour: u32,
    /// Requests one token may make in a minute (0: no limit).
    #[arg(long, env = "TIDEPOOL_RATE_LIMIT_PER_MINUTE", default_value_t = 250)]
    pub rate_limit_per_minute: u32,
}

impl ServeArgs {
    /// The defaults of `tidepool serve` with another data directory: what tests start from.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        ServeArgs {
            storage: StorageArgs {
                data_dir,
                database_url: None,
            },
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            rate_limit_per_hour: 5000,
            rate_limit_per_minute: 250,
        }
    }
}
