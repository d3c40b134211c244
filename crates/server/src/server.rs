//! Start-up, narrated: open the catalog and the blob store, seed, start the background tasks,
//! bind, serve (`http::serve`) until told to stop, then stop every background task (workers put
//! unfinished imports back in the queue).

use crate::app::rate_limit::RateLimiter;
use crate::app::App;
use crate::background::BackgroundTasks;
use crate::config::{ServeArgs, StorageArgs};
use crate::http::serve::{raise_open_file_limit, serve, ServeLimits};
use crate::http::{self, HttpState};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tidepool_catalog as catalog;
use tidepool_import::Blobs;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a shutdown stopped.
#[derive(Debug)]
pub struct ShutdownReport {
    /// The background tasks that ended, in the order they did.
    pub tasks_ended: Vec<String>,
}

/// A server that is listening.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when it has a listener of its own (`--metrics-listen`).
    pub metrics_addr: Option<SocketAddr>,
    /// The token created on the very first start, to be shown once.
    pub bootstrap_token: Option<String>,
    pub app: App,
    /// The names of the background tasks started, in order.
    pub background_tasks: Vec<String>,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<ShutdownReport>>,
}

impl RunningServer {
    /// Stops accepting requests, lets in-flight ones finish (up to the shutdown timeout, then
    /// drops their connections), stops every background task (running imports go back to the
    /// queue), and waits for all of it.
    pub async fn shutdown(self) -> anyhow::Result<ShutdownReport> {
        self.stop.cancel();
        self.task.await.context("server task panicked")?
    }
}

/// Opens the catalog and blob store that `storage` names.
pub async fn open_app(storage: &StorageArgs) -> anyhow::Result<App> {
    let database_url = storage.database_url();
    tracing::info!(catalog = %catalog::redact_url(&database_url), "opening catalog");
    let catalog = catalog::open(&database_url).await?;
    tracing::info!(
        backend = catalog.backend(),
        "catalog ready, migrations applied"
    );
    let blobs = Blobs::from_url(&storage.blob_store()).context("cannot open the blob store")?;
    blobs
        .check()
        .await
        .with_context(|| format!("cannot use the blob store {blobs}"))?;
    tracing::info!(store = %blobs, "blob store ready");
    Ok(App::new(catalog, blobs))
}

pub async fn start(args: ServeArgs) -> anyhow::Result<RunningServer> {
    let app = open_app(&args.storage).await?;
    let seeded = app.public_images_seed().await?;
    if seeded > 0 {
        tracing::info!(images = seeded, "public images seeded");
    }
    let bootstrap_token = app.bootstrap_token().await?;
    let limiter = Arc::new(RateLimiter::new(
        args.rate_limit_per_hour,
        args.rate_limit_per_minute,
    ));
    let observability = &args.observability;
    let state = HttpState {
        app: app.clone(),
        limiter: limiter.clone(),
        public_url: args.public_url.as_deref().map(Arc::from),
        trusted_proxies: observability.trusted_proxy.clone().into(),
        metrics_token_hash: observability
            .metrics_token
            .as_deref()
            .map(|token| crate::auth::token_hash(token).into()),
        log_format: observability.log_format,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match observability.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen for metrics on {at}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;

    let stop = CancellationToken::new();
    let background = BackgroundTasks::start(app.job_storage(), limiter, &args.import, stop.clone());
    let background_tasks = background.names().to_vec();
    tracing::info!(tasks = %background_tasks.join(", "), "background tasks started");
    tracing::info!(%addr, "listening");
    match metrics_addr {
        Some(at) => {
            tracing::info!(%at, token = observability.metrics_token.is_some(), "serving /metrics, /healthz and /readyz on a listener of their own")
        }
        None => tracing::info!(
            token = observability.metrics_token.is_some(),
            "serving /metrics, /healthz and /readyz on the API listener"
        ),
    }

    let limits = ServeLimits::from_args(&args.http);
    let router = http::router(state.clone(), metrics_listener.is_none());
    let http_stop = stop.clone();
    let task = tokio::spawn(async move {
        let api = serve(listener, router, limits.clone(), http_stop.clone());
        match metrics_listener {
            Some(metrics_listener) => {
                let metrics = serve(
                    metrics_listener,
                    http::metrics_router(state),
                    limits,
                    http_stop,
                );
                tokio::join!(api, metrics);
            }
            None => api.await,
        }
        let tasks_ended = background.shutdown().await;
        tracing::info!(tasks = tasks_ended.len(), "background tasks stopped");
        tracing::info!("stopped");
        Ok(ShutdownReport { tasks_ended })
    });
    Ok(RunningServer {
        addr,
        metrics_addr,
        bootstrap_token,
        app,
        background_tasks,
        stop,
        task,
    })
}

/// Serves until `shutdown` resolves.
pub async fn run(args: ServeArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    // Here rather than in `start`: the limit is the process's, and `run` is the process's
    // server, while tests start many servers in one process.
    raise_open_file_limit();
    let server = start(args).await?;
    if let Some(token) = &server.bootstrap_token {
        println!("First start: created account `default` with a full-access token (shown only this once):\n\n    {token}\n");
        println!(
            "Try it:  curl -H \"Authorization: Bearer {token}\" http://{}/v2/images\n",
            server.addr
        );
    }
    let RunningServer { stop, mut task, .. } = server;
    tokio::select! {
        _ = shutdown => {
            tracing::info!("shutting down: finishing requests in flight (up to --shutdown-timeout-secs), returning imports to the queue");
            stop.cancel();
            task.await.context("server task panicked")?.map(drop)
        }
        ended = &mut task => ended.context("server task panicked")?.map(drop),
    }
}
