//! The tidepool server: DigitalOcean's Images API (`/v2/images`) over a catalog (SQLite or
//! PostgreSQL) and a blob store.

pub mod auth;
pub mod catalog;
