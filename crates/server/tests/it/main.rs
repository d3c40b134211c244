//! The server's integration tests, in one binary (one link of sqlx, object_store and the AWS
//! stack instead of one per file): the API over real HTTP on both catalog backends, imports of
//! real images, S3, replicas sharing a catalog, and the contract tests against DigitalOcean's
//! description of the API and its Python client.

mod api_auth;
mod api_images;
mod api_import;
mod api_list;
mod api_quirks;
mod contract;
mod images;
mod lifecycle;
mod operations;
mod reliability;
mod replicas;
mod s3;
