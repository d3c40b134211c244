//! The integration tests of tidepool-import, in one binary so that the sample images are made
//! and linked once.

mod blobs;
mod common;
mod fetch;
mod import;
mod unframed;
