//! What both SQL backends read and write: one row type for images, decoded the same way.

use super::{AccountId, CatalogError, CatalogResult, ImageChanges, ImageFilter, ImageRecord};
use sqlx::{Database, Encode, QueryBuilder, Type};
use std::str::FromStr;
use tidepool_api::{Distribution, ImageStatus, ImageType, ListType, Region};

pub(super) const IMAGE_COLUMNS: &str = "id, owner_id, name, distribution, slug, public, listing, \
    regions, created_at, kind, min_disk_size, size_gigabytes, description, tags, status, \
    error_message, source_url, format, virtual_size, stored_bytes, sha256, blob_key";

/// An `images` row as stored: enums as their wire names, lists comma-separated.
#[derive(sqlx::FromRow)]
pub(super) struct ImageRow {
    pub(super) id: i64,
    pub(super) owner_id: Option<i64>,
    pub(super) name: String,
    pub(super) distribution: String,
    pub(super) slug: Option<String>,
    pub(super) public: bool,
    pub(super) listing: Option<String>,
    pub(super) regions: String,
    pub(super) created_at: i64,
    pub(super) kind: String,
    pub(super) min_disk_size: Option<i64>,
    pub(super) size_gigabytes: Option<f64>,
    pub(super) description: String,
    pub(super) tags: String,
    pub(super) status: String,
    pub(super) error_message: String,
    pub(super) source_url: Option<String>,
    pub(super) format: Option<String>,
    pub(super) virtual_size: Option<i64>,
    pub(super) stored_bytes: Option<i64>,
    pub(super) sha256: Option<String>,
    pub(super) blob_key: Option<String>,
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

/// The WHERE clause of a list: what the viewer may see, minus what lists never show, narrowed
/// by the filters.
pub(super) fn push_filter<'a, DB: Database>(q: &mut QueryBuilder<'a, DB>, f: &ImageFilter)
where
    i64: Encode<'a, DB> + Type<DB>,
    String: Encode<'a, DB> + Type<DB>,
{
    q.push(" WHERE status NOT IN ('deleted', 'retired') AND (public = TRUE OR owner_id = ")
        .push_bind(f.viewer.0)
        .push(")");
    if f.private_only {
        q.push(" AND owner_id = ").push_bind(f.viewer.0);
    }
    if let Some(listing) = f.listing {
        q.push(" AND public = TRUE AND listing = ")
            .push_bind(listing.as_str().to_owned());
    }
    if let Some(tag) = &f.tag {
        q.push(" AND EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.tag = ")
            .push_bind(tag.clone())
            .push(")");
    }
}

/// The `, column = value` list of an UPDATE for the fields `changes` sets.
pub(super) fn push_changes<'a, DB: Database>(q: &mut QueryBuilder<'a, DB>, changes: &ImageChanges)
where
    String: Encode<'a, DB> + Type<DB>,
    Option<String>: Encode<'a, DB> + Type<DB>,
    Option<i64>: Encode<'a, DB> + Type<DB>,
    Option<f64>: Encode<'a, DB> + Type<DB>,
{
    let owned = |s: &str| s.to_owned();
    if let Some(name) = &changes.name {
        q.push(", name = ").push_bind(name.clone());
    }
    if let Some(d) = changes.distribution {
        q.push(", distribution = ").push_bind(owned(d.as_str()));
    }
    if let Some(desc) = &changes.description {
        q.push(", description = ").push_bind(desc.clone());
    }
    if let Some(s) = changes.status {
        q.push(", status = ").push_bind(owned(s.as_str()));
    }
    if let Some(r) = &changes.regions {
        q.push(", regions = ").push_bind(join_regions(r));
    }
    if let Some(slug) = &changes.slug {
        q.push(", slug = ").push_bind(slug.clone());
    }
    if let Some(listing) = &changes.listing {
        q.push(", listing = ")
            .push_bind(listing.map(|l| owned(l.as_str())));
    }
    if let Some(v) = changes.min_disk_size {
        q.push(", min_disk_size = ").push_bind(v.map(|v| v as i64));
    }
    if let Some(v) = changes.size_gigabytes {
        q.push(", size_gigabytes = ").push_bind(v);
    }
}
