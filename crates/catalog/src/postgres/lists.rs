//! PostgreSQL's lists: the plans that keep a page over millions of images an index walk
//! (migration 0003, which calls this file catalog/postgres.rs: applied migrations are
//! checksummed, so their comments stay as written), and their totals, counted once per list
//! generation.

use super::super::count_cache::{CountCache, CountKey};
use super::super::row::{push_filter, RowView, IMAGE_COLUMNS};
use super::super::{AccountId, CatalogError, CatalogResult, ImageFilter, ImageRecord};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};
use std::sync::LazyLock;

/// A row selected with `IMAGE_COLUMNS`, borrowed from the driver's buffer.
fn view_of(row: &PgRow) -> Result<RowView<'_>, sqlx::Error> {
    Ok(RowView {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        name: row.try_get("name")?,
        distribution: row.try_get("distribution")?,
        slug: row.try_get("slug")?,
        public: row.try_get("public")?,
        listing: row.try_get("listing")?,
        regions: row.try_get("regions")?,
        created_at: row.try_get("created_at")?,
        kind: row.try_get("kind")?,
        min_disk_size: row.try_get("min_disk_size")?,
        size_gigabytes: row.try_get("size_gigabytes")?,
        description: row.try_get("description")?,
        tags: row.try_get("tags")?,
        status: row.try_get("status")?,
        error_message: row.try_get("error_message")?,
        source_url: row.try_get("source_url")?,
        format: row.try_get("format")?,
        virtual_size: row.try_get("virtual_size")?,
        stored_bytes: row.try_get("stored_bytes")?,
        sha256: row.try_get("sha256")?,
        blob_key: row.try_get("blob_key")?,
    })
}

/// A scalar query for the viewer's list generation: the sum of the counters of the lists it
/// sees, the public one and its own. Both only grow, so the sum moves whenever either does.
fn push_generation(q: &mut QueryBuilder<'_, Postgres>, viewer: AccountId) {
    q.push("SELECT COALESCE(SUM(n), 0)::BIGINT FROM list_generation WHERE owner_key IN (0, ")
        .push_bind(viewer.0)
        .push(")");
}

#[derive(Clone, Copy)]
enum Part {
    Public,
    Private,
}

/// `IMAGE_COLUMNS`, each qualified with `images.`: a list may join `image_tags`, which has an
/// `owner_id` too. Built once, not per list request.
static QUALIFIED_IMAGE_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    IMAGE_COLUMNS
        .split(',')
        .map(|c| format!("images.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
});

/// The images a list shows, as disjoint parts that each walk an index in id order (migration
/// 0003): the public images (of one listing, or only the viewer's own for `private`) and, unless
/// a listing asks for public images only, the viewer's private ones. With `limit`, each part
/// stops after that many, which is all a page at that depth needs.
fn push_parts(
    q: &mut QueryBuilder<'_, Postgres>,
    f: &ImageFilter,
    columns: &str,
    limit: Option<i64>,
) {
    push_part(q, f, columns, limit, Part::Public);
    if f.listing.is_none() {
        q.push(" UNION ALL ");
        push_part(q, f, columns, limit, Part::Private);
    }
}

fn push_part(
    q: &mut QueryBuilder<'_, Postgres>,
    f: &ImageFilter,
    columns: &str,
    limit: Option<i64>,
    part: Part,
) {
    q.push(format!("(SELECT {columns} FROM "));
    match (part, &f.tag) {
        // Public images are few: each one's tags are looked up.
        (Part::Public, Some(tag)) => {
            q.push(
                "images JOIN image_tags ON image_tags.image_id = images.id AND image_tags.tag = ",
            )
            .push_bind(tag.clone())
            .push(" WHERE");
        }
        // The viewer's images with the tag, straight from the index of (owner, tag, image):
        // walking the tag's images would pass every other account's, walking the viewer's
        // would pass all its images without the tag.
        (Part::Private, Some(tag)) => {
            q.push("image_tags JOIN images ON images.id = image_tags.image_id WHERE image_tags.owner_id = ")
                .push_bind(f.viewer.0)
                .push(" AND image_tags.tag = ")
                .push_bind(tag.clone())
                .push(" AND");
        }
        (_, None) => {
            q.push("images WHERE");
        }
    }
    q.push(" images.status NOT IN ('deleted', 'retired') AND ");
    match part {
        Part::Public => {
            q.push("images.public");
            if let Some(listing) = f.listing {
                q.push(" AND images.listing = ")
                    .push_bind(listing.as_str().to_owned());
            }
            if f.private_only {
                q.push(" AND images.owner_id = ").push_bind(f.viewer.0);
            }
            if let Some(n) = limit {
                q.push(format!(" ORDER BY images.id LIMIT {n}"));
            }
        }
        Part::Private if f.tag.is_some() => {
            q.push("NOT images.public AND images.owner_id = ")
                .push_bind(f.viewer.0);
            if let Some(n) = limit {
                q.push(format!(" ORDER BY image_tags.image_id LIMIT {n}"));
            }
        }
        Part::Private => {
            // A range and an order by owner first, not `owner_id = …` and by id: then the only
            // cheap way to the first rows in order is the owner's index. With `=`, a plan made
            // for no viewer in particular (prepared statements get one after five runs) may
            // walk the primary key instead, expecting the viewer's images early; for an
            // account whose images are the newest, that reads every other account's first.
            q.push("NOT images.public AND images.owner_id >= ")
                .push_bind(f.viewer.0)
                .push(" AND images.owner_id <= ")
                .push_bind(f.viewer.0);
            if let Some(n) = limit {
                q.push(format!(" ORDER BY images.owner_id, images.id LIMIT {n}"));
            }
        }
    }
    q.push(")");
}

/// One page of the images `filter` selects and the number of all of them: the page and the
/// viewer's list generation in one round trip, the total from `counts` while that generation holds.
pub(super) async fn page_and_total(
    pool: &PgPool,
    counts: &CountCache,
    filter: &ImageFilter,
) -> CatalogResult<(Vec<ImageRecord>, u64)> {
    let limit = i64::from(filter.limit);
    let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
    // The generation comes back with the page, in its snapshot: one round trip per list.
    let mut page = QueryBuilder::<Postgres>::new("SELECT (");
    push_generation(&mut page, filter.viewer);
    page.push(format!(") AS list_generation, {IMAGE_COLUMNS} FROM ("));
    push_parts(
        &mut page,
        filter,
        &QUALIFIED_IMAGE_COLUMNS,
        Some(offset.saturating_add(limit)),
    );
    // Literals, not parameters: with `LIMIT $n` a cached generic plan assumes a tenth of the
    // table is wanted, and may choose to sort all of it.
    page.push(format!(
        ") AS visible ORDER BY id LIMIT {limit} OFFSET {offset}"
    ));
    let rows = page.build().fetch_all(pool).await?;
    let generation: i64 = match rows.first() {
        Some(row) => row.try_get("list_generation")?,
        None => {
            let mut q = QueryBuilder::<Postgres>::new("");
            push_generation(&mut q, filter.viewer);
            q.build_query_scalar().fetch_one(pool).await?
        }
    };
    let images = rows
        .iter()
        .map(|row| view_of(row)?.to_record())
        .collect::<CatalogResult<_>>()?;
    // Read after the generation, so that a write in between makes the total look stale,
    // never the other way round.
    let total = counts
        .total(CountKey::of(filter), generation, async {
            let mut count = QueryBuilder::<Postgres>::new("SELECT (SELECT COUNT(*) FROM (");
            push_parts(&mut count, filter, "images.id", None);
            count.push(") AS visible)");
            // Debug builds (the tests) also count by the visibility rule as it is stated, in
            // the same snapshot: the parts must add up to exactly that.
            let check = cfg!(debug_assertions);
            if check {
                count.push(", (SELECT COUNT(*) FROM images");
                push_filter(&mut count, filter);
                count.push(")");
            } else {
                count.push(", NULL::BIGINT");
            }
            let (n, by_rule): (i64, Option<i64>) = count.build_query_as().fetch_one(pool).await?;
            if check && by_rule != Some(n) {
                return Err(CatalogError::Corrupt(format!(
                    "list parts count {n} images, the visibility rule {by_rule:?}"
                )));
            }
            Ok(n as u64)
        })
        .await?;
    Ok((images, total))
}

#[cfg(test)]
mod tests {
    use super::super::PostgresCatalog;
    use super::*;
    use crate::testing::{fresh_postgres_database, new_custom, new_public, postgres_admin_url};
    use crate::{Catalog, ImageChanges};
    use tidepool_api::{ImageStatus, ListType};

    fn filter(viewer: AccountId, tag: Option<&str>, offset: u64) -> ImageFilter {
        ImageFilter {
            viewer,
            private_only: false,
            listing: None,
            tag: tag.map(str::to_owned),
            offset,
            limit: 10,
        }
    }

    async fn total(c: &PostgresCatalog, viewer: AccountId, tag: Option<&str>) -> u64 {
        c.image_list(&filter(viewer, tag, 0)).await.unwrap().1
    }

    async fn counter(c: &PostgresCatalog, key: i64) -> i64 {
        sqlx::query_scalar("SELECT COALESCE(MAX(n), 0) FROM list_generation WHERE owner_key = $1")
            .bind(key)
            .fetch_one(&c.pool)
            .await
            .unwrap()
    }

    /// Totals one replica keeps follow what another replica writes, and only the lists a write
    /// touches are counted again.
    #[tokio::test]
    async fn cached_totals_follow_writes_of_other_replicas() {
        let Some(admin) = postgres_admin_url("cached_totals_follow_writes_of_other_replicas")
        else {
            return;
        };
        let url = fresh_postgres_database(&admin).await;
        let (a, b) = (
            PostgresCatalog::open(&url).await.unwrap(),
            PostgresCatalog::open(&url).await.unwrap(),
        );
        let alice = a.account_ensure("alice", crate::testing::T0).await.unwrap();
        let bob = a.account_ensure("bob", crate::testing::T0).await.unwrap();
        a.image_insert(new_custom(alice, "a1", &["x"]))
            .await
            .unwrap();
        assert_eq!(
            (
                total(&a, alice, None).await,
                total(&a, alice, Some("x")).await
            ),
            (1, 1)
        );
        assert_eq!(total(&a, bob, None).await, 0);

        let bob_counter = counter(&a, bob.0).await;
        let a2 = b
            .image_insert(new_custom(alice, "a2", &["x"]))
            .await
            .unwrap();
        assert_eq!(
            (
                total(&a, alice, None).await,
                total(&a, alice, Some("x")).await
            ),
            (2, 2),
            "an insert through another replica"
        );
        assert_eq!(
            counter(&a, bob.0).await,
            bob_counter,
            "alice's images are not bob's lists"
        );
        let (page, n) = a.image_list(&filter(alice, None, 50)).await.unwrap();
        assert_eq!(
            (page.len(), n),
            (0, 2),
            "a page past the end still has the total"
        );

        b.image_update(
            a2.id,
            &ImageChanges {
                status: Some(ImageStatus::Deleted),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            total(&a, alice, Some("x")).await,
            1,
            "a status change through another replica"
        );
        b.image_insert(new_public("debian-12-x64", ListType::Distribution))
            .await
            .unwrap();
        assert_eq!(
            (total(&a, alice, None).await, total(&a, bob, None).await),
            (2, 1),
            "a new public image is in every list"
        );
        let a1 = a.image_list(&filter(alice, Some("x"), 0)).await.unwrap().0;
        b.image_delete(a1[0].id).await.unwrap();
        assert_eq!(total(&a, alice, Some("x")).await, 0, "a delete");
    }
}
