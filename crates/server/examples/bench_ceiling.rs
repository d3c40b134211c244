//! Bench helper: the ceiling for the API on this machine. A minimal HTTP server (hyper, through
//! axum's thinnest path) that answers fixed bodies of the same size as tidepool's: no
//! authentication, no catalog, no serialisation.
//!
//! ```text
//! bench_ceiling ADDR ONE.json LIST.json TAGGED.json
//! ```
//!
//! `GET /v2/images/{id}` answers ONE.json; `GET /v2/images` answers TAGGED.json when the query
//! has `tag_name`, LIST.json otherwise.

use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, one, list, tagged] = args.as_slice() else {
        anyhow::bail!("usage: bench_ceiling ADDR ONE.json LIST.json TAGGED.json");
    };
    let one = Bytes::from(std::fs::read(one)?);
    let list = Bytes::from(std::fs::read(list)?);
    let tagged = Bytes::from(std::fs::read(tagged)?);
    let json = |b: Bytes| ([(header::CONTENT_TYPE, "application/json")], b).into_response();
    let app = Router::new()
        .route(
            "/v2/images",
            get(move |RawQuery(q): RawQuery| async move {
                if q.is_some_and(|q| q.contains("tag_name")) {
                    json(tagged)
                } else {
                    json(list)
                }
            }),
        )
        .route("/v2/images/{id}", get(move || async move { json(one) }));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
