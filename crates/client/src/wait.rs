//! Waiting for an import to finish: tidepool's progress extension where the server has it,
//! polling the image elsewhere.

use crate::client::Client;
use crate::error::{Error, Result};
use std::time::{Duration, Instant};
use tidepool_api::{Image, ImageStatus};

/// How [`Client::wait_until_available_with`] waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOptions {
    /// Time between two looks [default: 2 s; each look is a request against the rate limit].
    pub poll_interval: Duration,
    /// Give up with [`Error::WaitTimedOut`] after this long [default: never].
    pub timeout: Option<Duration>,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            poll_interval: Duration::from_secs(2),
            timeout: None,
        }
    }
}

/// What one look at an import saw; handed to the progress callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitProgress {
    /// The image.
    pub id: u64,
    /// Its status.
    pub status: ImageStatus,
    /// Bytes downloaded so far; `None` when the server tells no progress (DigitalOcean).
    pub bytes_read: Option<u64>,
    /// The length of the download, when the server knows it.
    pub bytes_total: Option<u64>,
}

impl Client {
    /// Waits until the import of image `id` has finished and returns the image, now
    /// `available`. A failed import (status `deleted`) is [`Error::ImportFailed`] with the
    /// image's `error_message`.
    pub async fn wait_until_available(&self, id: u64) -> Result<Image> {
        self.wait_until_available_with(id, &WaitOptions::default(), |_| {})
            .await
    }

    /// [`Client::wait_until_available`] with options and a callback called after every look
    /// (for a progress bar).
    ///
    /// Reads `GET /v2/images/{id}/import` while the server has it; on a server without it
    /// (DigitalOcean) polls `GET /v2/images/{id}`.
    pub async fn wait_until_available_with(
        &self,
        id: u64,
        options: &WaitOptions,
        mut on_progress: impl FnMut(&WaitProgress),
    ) -> Result<Image> {
        let started = Instant::now();
        let mut has_progress = true;
        loop {
            let (seen, error_message, image) = if has_progress {
                match self.image_import_progress(id).await? {
                    Some(p) => {
                        let seen = WaitProgress {
                            id,
                            status: p.status,
                            bytes_read: Some(p.bytes_read),
                            bytes_total: p.bytes_total,
                        };
                        (seen, p.error_message, None)
                    }
                    None => {
                        has_progress = false;
                        continue;
                    }
                }
            } else {
                let image = self.image_get(id).await?;
                let seen = WaitProgress {
                    id,
                    status: image.status,
                    bytes_read: None,
                    bytes_total: None,
                };
                (seen, image.error_message.clone(), Some(image))
            };
            on_progress(&seen);
            match seen.status {
                ImageStatus::Available => {
                    return match image {
                        Some(image) => Ok(image),
                        None => self.image_get(id).await,
                    }
                }
                ImageStatus::Deleted | ImageStatus::Retired => {
                    return Err(Error::ImportFailed {
                        id,
                        message: failure_message(seen.status, error_message),
                    })
                }
                ImageStatus::New | ImageStatus::Pending => {}
            }
            if let Some(limit) = options.timeout {
                if started.elapsed() + options.poll_interval > limit {
                    return Err(Error::WaitTimedOut {
                        id,
                        waited: started.elapsed(),
                        status: seen.status,
                    });
                }
            }
            tokio::time::sleep(options.poll_interval).await;
        }
    }
}

fn failure_message(status: ImageStatus, error_message: String) -> String {
    match (error_message.trim().is_empty(), status) {
        (false, _) => error_message,
        (true, ImageStatus::Retired) => "the image is retired".into(),
        _ => "the image was deleted before its import finished".into(),
    }
}
