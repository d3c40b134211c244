//! The five image operations of the API.

use super::{unix_now, validate, App, AppResult, Caller, Error};
use tidepool_api::{
    Distribution, Image, ImageCreate, ImageRef, ImageStatus, ImageType, ImageUpdate,
    ImportProgress, ListType, Scope,
};
use tidepool_catalog::{ImageChanges, ImageFilter, ImageRecord, NewImage, NewJob};
use time::format_description::well_known::Rfc3339;

/// The list's filters and page, already checked for range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub listing: Option<ListType>,
    pub private_only: bool,
    pub tag: Option<String>,
    /// From 1, unbounded: a page past the last is empty.
    pub page: u64,
    pub per_page: u32,
}

/// One page of a list and the number of matches across all pages.
#[derive(Debug, Clone)]
pub struct ImagePage {
    pub images: Vec<Image>,
    pub total: u64,
}

impl App {
    pub async fn image_list(&self, caller: &Caller, params: &ListParams) -> AppResult<ImagePage> {
        caller.require(Scope::ImageRead)?;
        let filter = ImageFilter {
            viewer: caller.account,
            private_only: params.private_only,
            listing: params.listing,
            tag: params.tag.clone(),
            offset: params
                .page
                .saturating_sub(1)
                .saturating_mul(u64::from(params.per_page)),
            limit: params.per_page,
        };
        let (records, total) = self.catalog().image_list(&filter).await?;
        let images = records.into_iter().map(to_wire).collect::<AppResult<_>>()?;
        Ok(ImagePage { images, total })
    }

    pub async fn image_get(&self, caller: &Caller, image: &ImageRef) -> AppResult<Image> {
        caller.require(Scope::ImageRead)?;
        let record = match image {
            // An id past i64 names no image that can exist.
            ImageRef::Id(id) => {
                let id = i64::try_from(*id).map_err(|_| Error::NotFound)?;
                self.visible_image(caller, id).await?
            }
            // Slugs name public images only; a private image must be asked for by id.
            ImageRef::Slug(slug) => self
                .catalog()
                .image_get_by_slug(slug)
                .await?
                .filter(|r| r.public)
                .ok_or(Error::NotFound)?,
        };
        to_wire(record)
    }

    pub async fn image_create(&self, caller: &Caller, create: ImageCreate) -> AppResult<Image> {
        caller.require(Scope::ImageCreate)?;
        let tags = validate::tags(create.tags.as_deref().unwrap_or_default())?;
        if !tags.is_empty() {
            caller.require(Scope::TagCreate)?;
        }
        let url = validate::image_url(&create.url)?;
        let new = NewImage {
            owner: Some(caller.account),
            name: validate::name(&create.name)?,
            distribution: create.distribution.unwrap_or(Distribution::Unknown),
            slug: None,
            public: false,
            listing: None,
            // DigitalOcean lists no region until the import has made the image available there.
            regions: vec![],
            created_at: unix_now(),
            kind: ImageType::Custom,
            min_disk_size: None,
            size_gigabytes: None,
            description: validate::description(create.description.as_deref().unwrap_or(""))?,
            tags,
            status: ImageStatus::New,
            job: Some(NewJob {
                url,
                region: create.region,
                request_id: caller.request_id.map(|id| id.to_string()),
            }),
        };
        let record = self.catalog().image_insert(new).await?;
        tracing::info!(
            image_id = record.id,
            request_id = caller.request_id.map(tracing::field::display),
            account = record.owner.map(|a| a.0),
            "image created, import queued"
        );
        to_wire(record)
    }

    pub async fn image_update(
        &self,
        caller: &Caller,
        id: i64,
        update: ImageUpdate,
    ) -> AppResult<Image> {
        caller.require(Scope::ImageUpdate)?;
        let record = self.own_image(caller, id, "updated").await?;
        if record.kind != ImageType::Custom {
            if update.distribution.is_some() {
                return Err(Error::Invalid(format!(
                    "distribution: can only be changed on custom images; image {id} is a {} image",
                    record.kind
                )));
            }
            if update.description.is_some() {
                return Err(Error::Invalid(format!(
                    "description: can only be changed on custom images; image {id} is a {} image",
                    record.kind
                )));
            }
        }
        let changes = ImageChanges {
            name: update.name.as_deref().map(validate::name).transpose()?,
            distribution: update.distribution,
            description: update
                .description
                .as_deref()
                .map(validate::description)
                .transpose()?,
            ..Default::default()
        };
        let updated = self
            .catalog()
            .image_update(id, &changes)
            .await?
            .ok_or(Error::NotFound)?;
        to_wire(updated)
    }

    pub async fn image_delete(&self, caller: &Caller, id: i64) -> AppResult<()> {
        caller.require(Scope::ImageDelete)?;
        self.own_image(caller, id, "deleted").await?;
        let removed = self
            .catalog()
            .image_delete(id)
            .await?
            .ok_or(Error::NotFound)?;
        // An import in flight here stops at once and removes its partial upload; one running
        // in another process notices at its next lease renewal.
        let cancelled = self.running_imports().cancel(id);
        if let Some(key) = &removed.blob_key {
            // Should this fail, the orphan sweep removes the blob later.
            if let Err(err) = self.blobs().delete(key).await {
                tracing::warn!(
                    image_id = id,
                    "could not remove the image's blob yet: {err}"
                );
            }
        }
        tracing::info!(image_id = id, import_cancelled = cancelled, "image deleted");
        Ok(())
    }

    /// Progress of an image's import (a tidepool extension of the API).
    pub async fn image_import_progress(
        &self,
        caller: &Caller,
        id: i64,
    ) -> AppResult<ImportProgress> {
        caller.require(Scope::ImageRead)?;
        let record = self.visible_image(caller, id).await?;
        let (bytes_read, bytes_total) = match self.running_imports().progress(id) {
            Some(live) => live,
            None => match self.catalog().job_progress(id).await? {
                Some(p) => (p.bytes_read, p.bytes_total),
                None => (record.stored_bytes.unwrap_or(0), record.stored_bytes),
            },
        };
        Ok(ImportProgress {
            image_id: id as u64,
            status: record.status,
            bytes_read,
            bytes_total,
            error_message: record.error_message,
        })
    }

    /// The image if the caller may see it; otherwise NotFound, so that another account's
    /// private image cannot be told apart from a missing one.
    async fn visible_image(&self, caller: &Caller, id: i64) -> AppResult<ImageRecord> {
        self.catalog()
            .image_get(id)
            .await?
            .filter(|r| r.public || r.owner == Some(caller.account))
            .ok_or(Error::NotFound)
    }

    /// The image if it belongs to the caller. Public images are visible but not the caller's
    /// own: changing them is forbidden rather than not found.
    async fn own_image(&self, caller: &Caller, id: i64, verb: &str) -> AppResult<ImageRecord> {
        let record = self.visible_image(caller, id).await?;
        if record.owner != Some(caller.account) {
            return Err(Error::Forbidden(format!(
                "Image {id} is a public image and cannot be {verb} by an account."
            )));
        }
        Ok(record)
    }
}

/// The API's view of a catalog record.
pub(crate) fn to_wire(r: ImageRecord) -> AppResult<Image> {
    let created = time::OffsetDateTime::from_unix_timestamp(r.created_at)
        .map_err(Error::internal)?
        .format(&Rfc3339)
        .map_err(Error::internal)?;
    Ok(Image {
        id: u64::try_from(r.id).map_err(Error::internal)?,
        name: r.name,
        distribution: r.distribution,
        slug: r.slug,
        public: r.public,
        regions: r.regions,
        created_at: created,
        kind: r.kind,
        min_disk_size: r.min_disk_size,
        size_gigabytes: r.size_gigabytes,
        description: r.description,
        tags: r.tags,
        status: r.status,
        error_message: r.error_message,
    })
}
