//! The scale-out catalog: PostgreSQL, shared by any number of `tidepool serve` replicas. Jobs
//! are claimed with `FOR UPDATE SKIP LOCKED`; idle workers wake on `LISTEN/NOTIFY`.

use super::count_cache::{CountCache, CountKey};
use super::row::{
    join_regions, parse, push_changes, push_filter, record, records, RowView, IMAGE_COLUMNS,
};
use super::*;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, QueryBuilder, Row};
use std::sync::LazyLock;
use std::time::Duration;
use tidepool_api::Region;

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

/// The channel on which a queued or released job is announced to every replica.
const JOBS_CHANNEL: &str = "tidepool_jobs";

pub struct PostgresCatalog {
    pool: PgPool,
    queued: Arc<tokio::sync::Notify>,
    /// List totals by filter, valid while the viewer's list generation has not moved.
    counts: CountCache,
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

impl PostgresCatalog {
    pub async fn open(url: &str) -> CatalogResult<Self> {
        let unreachable = |e: sqlx::Error| {
            CatalogError::Config(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact_url(url)
            ))
        };
        // One plain connection first: a wrong host, password or database name fails at once
        // with its own message, instead of a pool retrying until its timeout.
        sqlx::PgConnection::connect(url)
            .await
            .map_err(unreachable)?
            .close()
            .await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(unreachable)?;
        // sqlx holds a PostgreSQL advisory lock while migrating, so replicas starting together
        // apply each migration once.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let queued = Arc::new(tokio::sync::Notify::new());
        Ok(PostgresCatalog {
            pool,
            queued,
            counts: CountCache::default(),
        })
    }

    async fn announce_job(executor: impl sqlx::PgExecutor<'_>) -> CatalogResult<()> {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(executor)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Catalog for PostgresCatalog {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn account_ensure(&self, name: &str, now: i64) -> CatalogResult<AccountId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (name, created_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        )
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(AccountId(id))
    }

    async fn token_insert(
        &self,
        account: AccountId,
        secret_hash: &str,
        scopes: Scopes,
        now: i64,
    ) -> CatalogResult<()> {
        sqlx::query("INSERT INTO tokens (account_id, secret_hash, scopes, created_at) VALUES ($1, $2, $3, $4)")
            .bind(account.0)
            .bind(secret_hash)
            .bind(scopes.to_string())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn token_lookup(&self, secret_hash: &str) -> CatalogResult<Option<TokenRecord>> {
        let row = sqlx::query("SELECT id, account_id, scopes FROM tokens WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(TokenRecord {
                token_id: r.try_get("id")?,
                account: AccountId(r.try_get("account_id")?),
                scopes: parse::<Scopes>("scopes", r.try_get("scopes")?)?,
            })
        })
        .transpose()
    }

    async fn token_count(&self) -> CatalogResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn image_insert(&self, image: NewImage) -> CatalogResult<ImageRecord> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO images (owner_id, name, distribution, slug, public, listing, regions, \
             created_at, kind, min_disk_size, size_gigabytes, description, tags, status, \
             error_message, source_url) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '', $15) RETURNING id",
        )
        .bind(image.owner.map(|a| a.0))
        .bind(&image.name)
        .bind(image.distribution.as_str())
        .bind(&image.slug)
        .bind(image.public)
        .bind(image.listing.map(|l| l.as_str()))
        .bind(join_regions(&image.regions))
        .bind(image.created_at)
        .bind(image.kind.as_str())
        .bind(image.min_disk_size.map(|v| v as i64))
        .bind(image.size_gigabytes)
        .bind(&image.description)
        .bind(image.tags.join(","))
        .bind(image.status.as_str())
        .bind(image.job.as_ref().map(|j| &j.url))
        .fetch_one(&mut *tx)
        .await?;
        if !image.tags.is_empty() {
            sqlx::query("INSERT INTO image_tags (image_id, tag) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(&image.tags)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(job) = &image.job {
            sqlx::query("INSERT INTO import_jobs (image_id, url, region, created_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(&job.url)
                .bind(job.region.as_str())
                .bind(image.created_at)
                .execute(&mut *tx)
                .await?;
            Self::announce_job(&mut *tx).await?;
        }
        tx.commit().await?;
        self.image_get(id)
            .await?
            .ok_or_else(|| CatalogError::Corrupt(format!("image {id} vanished after insert")))
    }

    async fn image_get(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = $1");
        record(
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn image_get_by_slug(&self, slug: &str) -> CatalogResult<Option<ImageRecord>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE slug = $1");
        record(
            sqlx::query_as(&sql)
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn image_list(&self, filter: &ImageFilter) -> CatalogResult<(Vec<ImageRecord>, u64)> {
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
        let rows = page.build().fetch_all(&self.pool).await?;
        let generation: i64 = match rows.first() {
            Some(row) => row.try_get("list_generation")?,
            None => {
                let mut q = QueryBuilder::<Postgres>::new("");
                push_generation(&mut q, filter.viewer);
                q.build_query_scalar().fetch_one(&self.pool).await?
            }
        };
        let images = rows
            .iter()
            .map(|row| view_of(row)?.to_record())
            .collect::<CatalogResult<_>>()?;
        // Read after the generation, so that a write in between makes the total look stale,
        // never the other way round.
        let total = self
            .counts
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
                let (n, by_rule): (i64, Option<i64>) =
                    count.build_query_as().fetch_one(&self.pool).await?;
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

    async fn image_list_public(&self) -> CatalogResult<Vec<ImageRecord>> {
        let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE public ORDER BY id");
        records(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    async fn image_update(
        &self,
        id: i64,
        changes: &ImageChanges,
    ) -> CatalogResult<Option<ImageRecord>> {
        let mut q = QueryBuilder::<Postgres>::new("UPDATE images SET id = id");
        push_changes(&mut q, changes);
        q.push(" WHERE id = ").push_bind(id);
        if q.build().execute(&self.pool).await?.rows_affected() == 0 {
            return Ok(None);
        }
        self.image_get(id).await
    }

    async fn image_delete(&self, id: i64) -> CatalogResult<Option<ImageRecord>> {
        let sql = format!("DELETE FROM images WHERE id = $1 RETURNING {IMAGE_COLUMNS}");
        record(
            sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn job_claim(
        &self,
        worker: &str,
        lease_secs: i64,
        now: i64,
    ) -> CatalogResult<Option<ImportJob>> {
        let mut tx = self.pool.begin().await?;
        // SKIP LOCKED: replicas claiming at once each get a different job, without waiting.
        let row = sqlx::query(
            "UPDATE import_jobs j SET lease_owner = $1, lease_expires_at = $2, attempts = j.attempts + 1 \
             FROM (SELECT image_id FROM import_jobs \
                   WHERE lease_expires_at IS NULL OR lease_expires_at <= $3 \
                   ORDER BY image_id LIMIT 1 FOR UPDATE SKIP LOCKED) next \
             WHERE j.image_id = next.image_id \
             RETURNING j.image_id, j.url, j.region, j.attempts",
        )
        .bind(worker)
        .bind(now + lease_secs)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let job = ImportJob {
            image_id: row.try_get("image_id")?,
            url: row.try_get("url")?,
            region: parse::<Region>("region", row.try_get("region")?)?,
            attempts: row.try_get::<i32, _>("attempts")? as u32,
        };
        sqlx::query("UPDATE images SET status = 'pending' WHERE id = $1")
            .bind(job.image_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(job))
    }

    async fn job_heartbeat(
        &self,
        image_id: i64,
        worker: &str,
        lease_secs: i64,
        now: i64,
        progress: JobProgress,
    ) -> CatalogResult<bool> {
        let done = sqlx::query(
            "UPDATE import_jobs SET lease_expires_at = $1, bytes_read = $2, bytes_total = $3 \
             WHERE image_id = $4 AND lease_owner = $5",
        )
        .bind(now + lease_secs)
        .bind(progress.bytes_read as i64)
        .bind(progress.bytes_total.map(|t| t as i64))
        .bind(image_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn job_complete(
        &self,
        image_id: i64,
        worker: &str,
        result: &JobResult,
    ) -> CatalogResult<bool> {
        let mut tx = self.pool.begin().await?;
        let held = sqlx::query("DELETE FROM import_jobs WHERE image_id = $1 AND lease_owner = $2")
            .bind(image_id)
            .bind(worker)
            .execute(&mut *tx)
            .await?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        let updated = match result {
            JobResult::Available { region, format, virtual_size, stored_bytes, sha256, blob_key } => {
                sqlx::query(
                    "UPDATE images SET status = 'available', error_message = '', regions = $1, \
                     format = $2, virtual_size = $3, stored_bytes = $4, sha256 = $5, blob_key = $6, \
                     size_gigabytes = $7, min_disk_size = $8 WHERE id = $9",
                )
                .bind(region.as_str())
                .bind(format)
                .bind(*virtual_size as i64)
                .bind(*stored_bytes as i64)
                .bind(sha256)
                .bind(blob_key)
                .bind(size_gigabytes(*stored_bytes))
                .bind(min_disk_size(*virtual_size) as i64)
                .bind(image_id)
                .execute(&mut *tx)
                .await?
            }
            JobResult::Failed { message } => {
                sqlx::query("UPDATE images SET status = 'deleted', error_message = $1 WHERE id = $2")
                    .bind(message)
                    .bind(image_id)
                    .execute(&mut *tx)
                    .await?
            }
        };
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn job_release(
        &self,
        image_id: i64,
        worker: &str,
        not_before: i64,
        last_error: &str,
    ) -> CatalogResult<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE import_jobs SET lease_owner = NULL, lease_expires_at = $1, last_error = $2 \
             WHERE image_id = $3 AND lease_owner = $4",
        )
        .bind(not_before)
        .bind(last_error)
        .bind(image_id)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
        let released = done.rows_affected() == 1;
        if released {
            Self::announce_job(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(released)
    }

    async fn job_progress(&self, image_id: i64) -> CatalogResult<Option<JobProgress>> {
        let row =
            sqlx::query("SELECT bytes_read, bytes_total FROM import_jobs WHERE image_id = $1")
                .bind(image_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(JobProgress {
                bytes_read: r.try_get::<i64, _>("bytes_read")? as u64,
                bytes_total: r
                    .try_get::<Option<i64>, _>("bytes_total")?
                    .map(|v| v as u64),
            })
        })
        .transpose()
    }

    async fn job_exists(&self, image_id: i64) -> CatalogResult<bool> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM import_jobs WHERE image_id = $1)")
                .bind(image_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn job_listen(&self) -> CatalogResult<()> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(JOBS_CHANNEL).await?;
        loop {
            match listener.recv().await {
                Ok(_) => self.queued.notify_one(),
                Err(err) => {
                    // PgListener reconnects by itself on the next recv; workers poll meanwhile.
                    tracing::warn!("job notifications interrupted: {err}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn job_queued(&self) -> Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    async fn rate_counts_sync(
        &self,
        deltas: &[RateCount],
        keys: &[String],
        since_minute: i64,
    ) -> CatalogResult<Option<Vec<RateCount>>> {
        let mut tx = self.pool.begin().await?;
        if !deltas.is_empty() {
            let (k, m, c): (Vec<_>, Vec<_>, Vec<_>) = deltas
                .iter()
                .map(|d| (d.key.clone(), d.minute, d.count))
                .fold(
                    (vec![], vec![], vec![]),
                    |(mut k, mut m, mut c), (a, b, d)| {
                        k.push(a);
                        m.push(b);
                        c.push(d);
                        (k, m, c)
                    },
                );
            sqlx::query(
                "INSERT INTO rate_counts (key, minute, count) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) \
                 ON CONFLICT (key, minute) DO UPDATE SET count = rate_counts.count + excluded.count",
            )
            .bind(k)
            .bind(m)
            .bind(c)
            .execute(&mut *tx)
            .await?;
        }
        // Minutes older than the hour window count for nothing any more.
        sqlx::query("DELETE FROM rate_counts WHERE minute < $1")
            .bind(since_minute - 1)
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "SELECT key, minute, count FROM rate_counts WHERE minute >= $1 AND key = ANY($2)",
        )
        .bind(since_minute)
        .bind(keys)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let totals = rows
            .iter()
            .map(|r| {
                Ok(RateCount {
                    key: r.try_get("key")?,
                    minute: r.try_get("minute")?,
                    count: r.try_get("count")?,
                })
            })
            .collect::<CatalogResult<_>>()?;
        Ok(Some(totals))
    }

    async fn meta_get(&self, key: &str) -> CatalogResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM catalog_meta WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn meta_set(&self, key: &str, value: &str) -> CatalogResult<()> {
        sqlx::query(
            "INSERT INTO catalog_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{fresh_postgres_database, new_custom, new_public, postgres_admin_url};
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
