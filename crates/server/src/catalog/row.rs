//! What both SQL backends read and write: one row type for images, decoded the same way.

use super::{AccountId, CatalogError, CatalogResult, ImageRecord};
use std::str::FromStr;
use tidepool_api::{Distribution, ImageStatus, ImageType, ListType, Region};

pub(super) const IMAGE_COLUMNS: &str = "id, owner_id, name, distribution, slug, public, listing, \
    regions, created_at, kind, min_disk_size, size_gigabytes, description, tags, status, \
    error_message, source_url, format, virtual_size, stored_bytes, sha256, blob_key";

/// An `images` row as stored: enums as their wire names, lists comma-separated.
#[derive(sqlx::FromRow)]
pub(super) struct ImageRow {
    id: i64,
    owner_id: Option<i64>,
    name: String,
    distribution: String,
    slug: Option<String>,
    public: bool,
    listing: Option<String>,
    regions: String,
    created_at: i64,
    kind: String,
    min_disk_size: Option<i64>,
    size_gigabytes: Option<f64>,
    description: String,
    tags: String,
    status: String,
    error_message: String,
    source_url: Option<String>,
    format: Option<String>,
    virtual_size: Option<i64>,
    stored_bytes: Option<i64>,
    sha256: Option<String>,
    blob_key: Option<String>,
}

pub(super) fn parse<T: FromStr>(what: &str, s: &str) -> CatalogResult<T> {
    s.parse()
        .map_err(|_| CatalogError::Corrupt(format!("{what} {s:?}")))
}

pub(super) fn join_regions(regions: &[Region]) -> String {
    regions
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|p| !p.is_empty())
}

fn unsigned(v: Option<i64>) -> Option<u64> {
    v.and_then(|v| u64::try_from(v).ok())
}

impl TryFrom<ImageRow> for ImageRecord {
    type Error = CatalogError;

    fn try_from(row: ImageRow) -> CatalogResult<Self> {
        Ok(ImageRecord {
            id: row.id,
            owner: row.owner_id.map(AccountId),
            distribution: Distribution::from_name(&row.distribution),
            slug: row.slug,
            public: row.public,
            listing: row
                .listing
                .map(|l| parse::<ListType>("listing", &l))
                .transpose()?,
            regions: split_list(&row.regions)
                .map(|r| parse::<Region>("region", r))
                .collect::<CatalogResult<_>>()?,
            created_at: row.created_at,
            kind: parse::<ImageType>("image type", &row.kind)?,
            min_disk_size: unsigned(row.min_disk_size),
            size_gigabytes: row.size_gigabytes,
            tags: split_list(&row.tags).map(str::to_owned).collect(),
            status: parse::<ImageStatus>("status", &row.status)?,
            name: row.name,
            description: row.description,
            error_message: row.error_message,
            source_url: row.source_url,
            format: row.format,
            virtual_size: unsigned(row.virtual_size),
            stored_bytes: unsigned(row.stored_bytes),
            sha256: row.sha256,
            blob_key: row.blob_key,
        })
    }
}

pub(super) fn records(rows: Vec<ImageRow>) -> CatalogResult<Vec<ImageRecord>> {
    rows.into_iter().map(ImageRecord::try_from).collect()
}

pub(super) fn record(row: Option<ImageRow>) -> CatalogResult<Option<ImageRecord>> {
    row.map(ImageRecord::try_from).transpose()
}
