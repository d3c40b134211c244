//! Wire types of DigitalOcean's Images API (`/v2/images`), shared by the tidepool server and
//! its client so that both agree on every field, enum value and nullability.
//!
//! The shapes follow `do-images-openapi.yaml` (DigitalOcean's published description). Where the
//! specification and the real service are lenient, these types are lenient in the same way:
//! an unknown `distribution` becomes [`Distribution::Unknown`], a `null` tag list reads as empty.

mod enums;
mod image;
mod image_ref;
mod list;
mod scopes;

pub use enums::{Distribution, ImageStatus, ImageType, ListType, Region, UnknownValue};
pub use image::{Image, ImageCreate, ImageEnvelope, ImageUpdate, ImportProgress};
pub use image_ref::ImageRef;
pub use list::{ErrorBody, ImageList, ImageListQuery, Links, Meta, Pages};
pub use scopes::{Scope, Scopes};

/// The largest `per_page` DigitalOcean accepts.
pub const MAX_PER_PAGE: u32 = 200;
/// The `per_page` used when a request names none.
pub const DEFAULT_PER_PAGE: u32 = 20;
