//! Public images: the operator's, not any account's. A fresh catalog starts with a seed of them,
//! so that `type=distribution`, `type=application` and slug lookups answer as DigitalOcean's
//! do. They are metadata only (status `available`, no bytes); the operator adds, changes and
//! retires them with `tidepool public …`, through the operations here, which check names and
//! descriptions as the API does.

use super::images::to_wire;
use super::{unix_now, validate, App, AppResult, Error};
use tidepool_api::{Distribution, Image, ImageStatus, ImageType, ListType, Region};
use tidepool_catalog::{CatalogError, ImageChanges, ImageRecord, NewImage};

/// Kept under its first name: catalogs seeded by earlier versions must not be seeded again.
const SEEDED_KEY: &str = "public_catalog_seeded";

/// (slug, name, distribution, listing, min_disk_size, size_gigabytes)
const SEED: &[(&str, &str, Distribution, ListType, u64, f64)] = {
    use Distribution::*;
    use ListType::{Application as App, Distribution as Os};
    &[
        ("ubuntu-22-04-x64", "22.04 (LTS) x64", Ubuntu, Os, 7, 2.36),
        ("ubuntu-24-04-x64", "24.04 (LTS) x64", Ubuntu, Os, 7, 2.51),
        ("ubuntu-26-04-x64", "26.04 (LTS) x64", Ubuntu, Os, 7, 2.62),
        ("debian-12-x64", "12 x64", Debian, Os, 7, 0.95),
        ("debian-13-x64", "13 x64", Debian, Os, 7, 1.04),
        ("fedora-43-x64", "43 x64", Fedora, Os, 7, 1.31),
        ("fedora-44-x64", "44 x64", Fedora, Os, 7, 1.37),
        ("centos-stream-9-x64", "Stream 9 x64", CentOs, Os, 10, 1.19),
        (
            "centos-stream-10-x64",
            "Stream 10 x64",
            CentOs,
            Os,
            10,
            1.27,
        ),
        ("rockylinux-9-x64", "9 x64", RockyLinux, Os, 10, 1.08),
        ("rockylinux-10-x64", "10 x64", RockyLinux, Os, 10, 1.15),
        ("freebsd-14-x64-zfs", "14.3 zfs x64", FreeBsd, Os, 20, 1.02),
        ("freebsd-15-x64-zfs", "15.0 zfs x64", FreeBsd, Os, 20, 1.1),
        (
            "docker-24-04",
            "Docker on Ubuntu 24.04",
            Ubuntu,
            App,
            25,
            3.1,
        ),
        (
            "wordpress-24-04",
            "WordPress on Ubuntu 24.04",
            Ubuntu,
            App,
            25,
            3.88,
        ),
        ("lamp-24-04", "LAMP on Ubuntu 24.04", Ubuntu, App, 25, 3.27),
        (
            "nodejs-24-04",
            "NodeJS on Ubuntu 24.04",
            Ubuntu,
            App,
            25,
            3.02,
        ),
    ]
};

/// A public image as the operator describes it.
#[derive(Debug, Clone)]
pub struct PublicImageNew {
    pub slug: String,
    pub name: String,
    pub distribution: Distribution,
    pub listing: ListType,
    pub min_disk_size: Option<u64>,
    pub size_gigabytes: Option<f64>,
    pub description: String,
}

/// What the operator changes on a public image; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct PublicImageChanges {
    pub name: Option<String>,
    pub distribution: Option<Distribution>,
    pub description: Option<String>,
    pub listing: Option<ListType>,
    pub min_disk_size: Option<u64>,
    pub size_gigabytes: Option<f64>,
}

/// A public image as the operator sees it: the API's object and the list that shows it.
#[derive(Debug, Clone)]
pub struct PublicImageEntry {
    pub image: Image,
    pub listing: Option<ListType>,
}

impl PublicImageEntry {
    fn from_record(record: ImageRecord) -> AppResult<Self> {
        let listing = record.listing;
        Ok(PublicImageEntry {
            image: to_wire(record)?,
            listing,
        })
    }
}

/// DigitalOcean's slugs: lower-case letters, digits, dots and dashes (`ubuntu-24-04-x64`).
fn slug(raw: &str) -> AppResult<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 255
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Error::Invalid(format!(
            "slug: {raw:?} is not a valid slug (1 to 255 lower-case letters, digits, dots or dashes)"
        )))
    }
}

fn new_public(p: PublicImageNew, created_at: i64) -> NewImage {
    NewImage {
        owner: None,
        name: p.name,
        distribution: p.distribution,
        slug: Some(p.slug),
        public: true,
        listing: Some(p.listing),
        regions: Region::ALL.to_vec(),
        created_at,
        // DigitalOcean's own distribution and 1-Click images carry type `snapshot`.
        kind: ImageType::Snapshot,
        min_disk_size: p.min_disk_size,
        size_gigabytes: p.size_gigabytes,
        description: p.description,
        tags: vec![],
        status: ImageStatus::Available,
        job: None,
    }
}

fn slug_taken(err: CatalogError) -> Error {
    match err {
        CatalogError::SlugTaken(slug) => Error::Invalid(format!("slug: {slug:?} is already taken")),
        other => other.into(),
    }
}

impl App {
    /// Fills a new catalog with the default public images, once: what the operator retires
    /// later is not brought back on the next start.
    pub async fn public_images_seed(&self) -> AppResult<usize> {
        if self.catalog().meta_get(SEEDED_KEY).await?.is_some() {
            return Ok(0);
        }
        let now = unix_now();
        for &(slug, name, distribution, listing, min_disk, size) in SEED {
            let image = PublicImageNew {
                slug: slug.into(),
                name: name.into(),
                distribution,
                listing,
                min_disk_size: Some(min_disk),
                size_gigabytes: Some(size),
                description: String::new(),
            };
            match self.catalog().image_insert(new_public(image, now)).await {
                // An operator's image of that slug, or replicas starting together: one of them
                // wins and the others find the image there.
                Ok(_) | Err(CatalogError::SlugTaken(_)) => {}
                Err(err) => return Err(err.into()),
            }
        }
        self.catalog().meta_set(SEEDED_KEY, "1").await?;
        Ok(SEED.len())
    }

    pub async fn public_image_create(&self, image: PublicImageNew) -> AppResult<PublicImageEntry> {
        let image = PublicImageNew {
            slug: slug(image.slug.trim())?,
            name: validate::name(&image.name)?,
            description: validate::description(&image.description)?,
            ..image
        };
        let record = self
            .catalog()
            .image_insert(new_public(image, unix_now()))
            .await
            .map_err(slug_taken)?;
        PublicImageEntry::from_record(record)
    }

    pub async fn public_image_update(
        &self,
        slug: &str,
        changes: PublicImageChanges,
    ) -> AppResult<PublicImageEntry> {
        let changes = ImageChanges {
            name: changes.name.as_deref().map(validate::name).transpose()?,
            distribution: changes.distribution,
            description: changes
                .description
                .as_deref()
                .map(validate::description)
                .transpose()?,
            listing: changes.listing.map(Some),
            min_disk_size: changes.min_disk_size.map(Some),
            size_gigabytes: changes.size_gigabytes.map(Some),
            ..Default::default()
        };
        self.public_image_change(slug, &changes).await
    }

    /// Retired images stay readable by id and slug but leave the lists, as on DigitalOcean.
    pub async fn public_image_retire(&self, slug: &str) -> AppResult<PublicImageEntry> {
        let changes = ImageChanges {
            status: Some(ImageStatus::Retired),
            ..Default::default()
        };
        self.public_image_change(slug, &changes).await
    }

    /// Every public image, retired ones included, by id.
    pub async fn public_image_list(&self) -> AppResult<Vec<PublicImageEntry>> {
        let records = self.catalog().image_list_public().await?;
        records
            .into_iter()
            .map(PublicImageEntry::from_record)
            .collect()
    }

    async fn public_image_change(
        &self,
        slug: &str,
        changes: &ImageChanges,
    ) -> AppResult<PublicImageEntry> {
        let record = self
            .catalog()
            .image_get_by_slug(slug)
            .await?
            .filter(|r| r.public)
            .ok_or(Error::NotFound)?;
        let record = self
            .catalog()
            .image_update(record.id, changes)
            .await?
            .ok_or(Error::NotFound)?;
        PublicImageEntry::from_record(record)
    }
}
