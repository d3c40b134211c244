//! The tidepool server: DigitalOcean's Images API (`/v2/images`) over a catalog (SQLite or
//! PostgreSQL) and a blob store.

pub mod app;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod http;
pub mod import;
pub mod public_catalog;
pub mod server;
