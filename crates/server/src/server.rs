//! Start-up, narrated: open the catalog, seed it, bind, serve until told to stop.

use crate::app::App;
use crate::catalog;
use crate::config::ServeArgs;
use crate::http::{self, rate_limit::RateLimiter, HttpState};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server that is listening.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// The token created on the very first start, to be shown once.
    pub bootstrap_token: Option<String>,
    pub app: App,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stops accepting requests, lets in-flight ones finish, and waits.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("server task panicked")?
    }
}

pub async fn open_app(args: &ServeArgs) -> anyhow::Result<App> {
    let database_url = args.storage.database_url();
    tracing::info!(catalog = %catalog::redact_url(&database_url), "opening catalog");
    let catalog = catalog::open(&database_url).await?;
    tracing::info!(
        backend = catalog.backend(),
        "catalog ready, migrations applied"
    );
    Ok(App::new(catalog))
}

pub async fn start(args: ServeArgs) -> anyhow::Result<RunningServer> {
    let app = open_app(&args).await?;
    let seeded = app.public_catalog_seed().await?;
    if seeded > 0 {
        tracing::info!(images = seeded, "public catalog seeded");
    }
    let bootstrap_token = app.bootstrap_token().await?;
    let state = HttpState {
        app: app.clone(),
        limiter: Arc::new(RateLimiter::new(
            args.rate_limit_per_hour,
            args.rate_limit_per_minute,
        )),
        public_url: args.public_url.clone(),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let (stop, stopped) = oneshot::channel::<()>();
    let service = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
            .context("HTTP server failed")
    });
    Ok(RunningServer {
        addr,
        bootstrap_token,
        app,
        stop: Some(stop),
        task,
    })
}

/// Serves until `shutdown` resolves.
pub async fn run(args: ServeArgs, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
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
            tracing::info!("shutting down: finishing requests in flight");
            if let Some(stop) = stop {
                let _ = stop.send(());
            }
            task.await.context("server task panicked")?
        }
        ended = &mut task => ended.context("server task panicked")?,
    }
}
