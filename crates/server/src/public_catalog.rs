//! The public images a fresh catalog starts with, so that `type=distribution`,
//! `type=application` and slug lookups answer as DigitalOcean's do. They are metadata only
//! (status `available`, no bytes); the operator adds, changes and retires them with
//! `tidepool public …`.

use crate::app::{unix_now, App, AppResult, Error};
use crate::catalog::{ImageChanges, ImageRecord, NewImage};
use tidepool_api::{Distribution, ImageStatus, ImageType, ListType, Region};

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
pub struct PublicImage {
    pub slug: String,
    pub name: String,
    pub distribution: Distribution,
    pub listing: ListType,
    pub min_disk_size: Option<u64>,
    pub size_gigabytes: Option<f64>,
    pub description: String,
}

fn new_public(p: PublicImage, created_at: i64) -> NewImage {
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

impl App {
    /// Fills a new catalog with the default public images, once: what the operator retires
    /// later is not brought back on the next start.
    pub async fn public_catalog_seed(&self) -> AppResult<usize> {
        if self.catalog().meta_get(SEEDED_KEY).await?.is_some() {
            return Ok(0);
        }
        let now = unix_now();
        for &(slug, name, distribution, listing, min_disk, size) in SEED {
            if self.catalog().image_get_by_slug(slug).await?.is_some() {
                continue;
            }
            let image = PublicImage {
                slug: slug.into(),
                name: name.into(),
                distribution,
                listing,
                min_disk_size: Some(min_disk),
                size_gigabytes: Some(size),
                description: String::new(),
            };
            if let Err(err) = self.catalog().image_insert(new_public(image, now)).await {
                // Replicas starting together seed at once; the slug is unique, so one of them
                // wins and the others find the image there.
                if self.catalog().image_get_by_slug(slug).await?.is_none() {
                    return Err(err.into());
                }
            }
        }
        self.catalog().meta_set(SEEDED_KEY, "1").await?;
        Ok(SEED.len())
    }

    pub async fn public_image_add(&self, image: PublicImage) -> AppResult<ImageRecord> {
        if self
            .catalog()
            .image_get_by_slug(&image.slug)
            .await?
            .is_some()
        {
            return Err(Error::Invalid(format!(
                "slug: {:?} is already taken",
                image.slug
            )));
        }
        Ok(self
            .catalog()
            .image_insert(new_public(image, unix_now()))
            .await?)
    }

    pub async fn public_image_update(
        &self,
        slug: &str,
        changes: ImageChanges,
    ) -> AppResult<ImageRecord> {
        let record = self.public_by_slug(slug).await?;
        self.catalog()
            .image_update(record.id, &changes)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Retired images stay readable by id and slug but leave the lists, as on DigitalOcean.
    pub async fn public_image_retire(&self, slug: &str) -> AppResult<ImageRecord> {
        let changes = ImageChanges {
            status: Some(ImageStatus::Retired),
            ..Default::default()
        };
        self.public_image_update(slug, changes).await
    }

    pub async fn public_image_list(&self) -> AppResult<Vec<ImageRecord>> {
        Ok(self.catalog().image_list_public().await?)
    }

    pub async fn public_by_slug(&self, slug: &str) -> AppResult<ImageRecord> {
        self.catalog()
            .image_get_by_slug(slug)
            .await?
            .filter(|r| r.public)
            .ok_or(Error::NotFound)
    }
}
