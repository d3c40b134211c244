//! The client's integration tests, in one binary: the library against a real tidepool server,
//! directly and through a proxy that answers some requests itself.

mod api;
mod retries;
mod support;
mod wait;
