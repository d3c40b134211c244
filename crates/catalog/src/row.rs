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

/// An `images` row's columns borrowed from whichever driver read them, so that a row becomes a
/// record with an allocation only for the text the record keeps (a page of 200 images made
/// some 6,000 short-lived allocations when every column was first copied into a `String`).
pub(super) struct RowView<'a> {
    pub(super) id: i64,
    pub(super) owner_id: Option<i64>,
    pub(super) name: &'a str,
    pub(super) distribution: &'a str,
    pub(super) slug: Option<&'a str>,
    pub(super) public: bool,
    pub(super) listing: Option<&'a str>,
    pub(super) regions: &'a str,
    pub(super) created_at: i64,
    pub(super) kind: &'a str,
    pub(super) min_disk_size: Option<i64>,
    pub(super) size_gigabytes: Option<f64>,
    pub(super) description: &'a str,
    pub(super) tags: &'a str,
    pub(super) status: &'a str,
    pub(super) error_message: &'a str,
    pub(super) source_url: Option<&'a str>,
    pub(super) format: Option<&'a str>,
    pub(super) virtual_size: Option<i64>,
    pub(super) stored_bytes: Option<i64>,
    pub(super) sha256: Option<&'a str>,
    pub(super) blob_key: Option<&'a str>,
}

impl RowView<'_> {
    pub(super) fn to_record(&self) -> CatalogResult<ImageRecord> {
        let owned = |s: Option<&str>| s.map(str::to_owned);
        Ok(ImageRecord {
            id: self.id,
            owner: self.owner_id.map(AccountId),
            distribution: Distribution::from_name(self.distribution),
            slug: owned(self.slug),
            public: self.public,
            listing: self
                .listing
                .map(|l| parse::<ListType>("listing", l))
                .transpose()?,
            regions: split_list(self.regions)
                .map(|r| parse::<Region>("region", r))
                .collect::<CatalogResult<_>>()?,
            created_at: self.created_at,
            kind: parse::<ImageType>("image type", self.kind)?,
            min_disk_size: unsigned(self.min_disk_size),
            size_gigabytes: self.size_gigabytes,
            tags: split_list(self.tags).map(str::to_owned).collect(),
            status: parse::<ImageStatus>("status", self.status)?,
            name: self.name.to_owned(),
            description: self.description.to_owned(),
            error_message: self.error_message.to_owned(),
            source_url: owned(self.source_url),
            format: owned(self.format),
            virtual_size: unsigned(self.virtual_size),
            stored_bytes: unsigned(self.stored_bytes),
            sha256: owned(self.sha256),
            blob_key: owned(self.blob_key),
        })
    }
}

impl ImageRow {
    fn view(&self) -> RowView<'_> {
        RowView {
            id: self.id,
            owner_id: self.owner_id,
            name: &self.name,
            distribution: &self.distribution,
            slug: self.slug.as_deref(),
            public: self.public,
            listing: self.listing.as_deref(),
            regions: &self.regions,
            created_at: self.created_at,
            kind: &self.kind,
            min_disk_size: self.min_disk_size,
            size_gigabytes: self.size_gigabytes,
            description: &self.description,
            tags: &self.tags,
            status: &self.status,
            error_message: &self.error_message,
            source_url: self.source_url.as_deref(),
            format: self.format.as_deref(),
            virtual_size: self.virtual_size,
            stored_bytes: self.stored_bytes,
            sha256: self.sha256.as_deref(),
            blob_key: self.blob_key.as_deref(),
        }
    }
}

impl TryFrom<ImageRow> for ImageRecord {
    type Error = CatalogError;

    fn try_from(row: ImageRow) -> CatalogResult<Self> {
        row.view().to_record()
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
