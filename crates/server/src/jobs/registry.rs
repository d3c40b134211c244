//! Imports running in this process: what to cancel when an image is deleted, and the live
//! progress of each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tidepool_import::Progress;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct RunningImports {
    imports: Mutex<HashMap<i64, (CancellationToken, Arc<Progress>)>>,
}

/// Removes the entry when the import ends, however it ends.
pub struct Registration<'a> {
    registry: &'a RunningImports,
    image_id: i64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.image_id);
    }
}

impl RunningImports {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (CancellationToken, Arc<Progress>)>> {
        self.imports.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(
        &self,
        image_id: i64,
        cancel: CancellationToken,
        progress: Arc<Progress>,
    ) -> Registration<'_> {
        self.lock().insert(image_id, (cancel, progress));
        Registration {
            registry: self,
            image_id,
        }
    }

    /// Cancels the image's import if it runs here; true if it did.
    pub fn cancel(&self, image_id: i64) -> bool {
        match self.lock().get(&image_id) {
            Some((cancel, _)) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// (bytes read, bytes announced) of an import running here.
    pub fn progress(&self, image_id: i64) -> Option<(u64, Option<u64>)> {
        self.lock()
            .get(&image_id)
            .map(|(_, p)| (p.bytes_read(), p.bytes_total()))
    }
}
