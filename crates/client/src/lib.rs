//! A Rust client for DigitalOcean's Images API (`/v2/images`) that works the same against a
//! tidepool server and against DigitalOcean itself.
//!
//! - [`Client::new`] talks to `https://api.digitalocean.com`; [`Client::builder`] to any
//!   other server; [`Client::from_env`] reads `TIDEPOOL_API_URL`/`TIDEPOOL_TOKEN` or
//!   `DIGITALOCEAN_ACCESS_TOKEN`/`DIGITALOCEAN_TOKEN` (see there for the precedence).
//! - Typed calls for the five operations, with the wire types of [`tidepool_api`] (re-exported
//!   as [`api`] and at the root): [`Client::images_list`], [`Client::image_get`],
//!   [`Client::image_create`], [`Client::image_update`], [`Client::image_delete`].
//! - [`Client::images_stream`] walks every page; [`Client::wait_until_available`] waits for
//!   an import, with progress where the server tells it.
//! - Errors carry the HTTP status and DigitalOcean's `id`, `message` and `request_id`
//!   ([`ApiError`]). A 429 is retried after `retry-after`; a 5xx or a lost connection is
//!   retried with jittered backoff for GET, PUT and DELETE, never for a create
//!   ([`RetryPolicy`]). [`Client::last_rate_limit`] tells the budget left.
//!
//! ```no_run
//! use futures::TryStreamExt;
//! use tidepool_client::{Client, ImageCreate, ImageListQuery, Region};
//!
//! # async fn run() -> Result<(), tidepool_client::Error> {
//! let client = Client::builder()
//!     .base_url("http://127.0.0.1:8080")
//!     .token("dop_v1_…")
//!     .build()?;
//!
//! // Every private image, page after page.
//! let query = ImageListQuery { private: Some(true), per_page: Some(50), ..Default::default() };
//! let mut images = client.images_stream(&query);
//! while let Some(image) = images.try_next().await? {
//!     println!("{} {} {}", image.id, image.name, image.status);
//! }
//!
//! // Import one and wait for it.
//! let image = client
//!     .image_create(&ImageCreate {
//!         name: "debian-12".into(),
//!         url: "https://example.com/debian-12.qcow2".into(),
//!         region: Region::Nyc3,
//!         distribution: None,
//!         description: None,
//!         tags: Some(vec!["base".into()]),
//!     })
//!     .await?;
//! match client.wait_until_available(image.id).await {
//!     Ok(image) => println!("available in {:?}", image.regions),
//!     Err(tidepool_client::Error::ImportFailed { message, .. }) => eprintln!("failed: {message}"),
//!     Err(e) => return Err(e),
//! }
//! if let Some(rl) = client.last_rate_limit() {
//!     println!("{} of {} requests left", rl.remaining, rl.limit);
//! }
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod client;
mod error;
mod images;
mod pages;
mod retry;
mod wait;

pub use client::{Client, ClientBuilder, DIGITALOCEAN_API_URL, LOCAL_TIDEPOOL_URL};
pub use error::{ApiError, Error, Result};
pub use retry::{RateLimit, RetryPolicy};
pub use tidepool_api::ImageRef;
pub use wait::{WaitOptions, WaitProgress};

/// The wire types shared with the tidepool server.
pub use tidepool_api as api;
pub use tidepool_api::{
    Distribution, ErrorBody, Image, ImageCreate, ImageList, ImageListQuery, ImageStatus, ImageType,
    ImageUpdate, ImportProgress, ListType, Region,
};
