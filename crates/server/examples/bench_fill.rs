//! Bench helper: fills a catalog — the embedded SQLite file or a PostgreSQL database, by the
//! first argument — with many private images of one account, in big transactions straight into
//! the tables the server created (not through the API, which would take hours for a million
//! images).
//!
//! ```text
//! cargo run --release -p tidepool-server --example bench_fill -- DATA_DIR/catalog.db ACCOUNT COUNT [TAGS]
//! cargo run --release -p tidepool-server --example bench_fill -- postgres://USER@HOST/DB ACCOUNT COUNT [TAGS]
//! ```
//!
//! Every image is `available`, owned by ACCOUNT, with one tag `tag-<n % TAGS>` (100 by default,
//! so each tag selects COUNT/100 images). The account must exist (`tidepool token create`). Both
//! backends get the same rows, so that their benchmark runs compare like with like; the public
//! images are the ones the server seeds on its first start, after the fill.

use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::time::Instant;

const BATCH: i64 = 100_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, account, count, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: bench_fill CATALOG.db|postgres://… ACCOUNT COUNT [TAGS]");
    };
    let count: i64 = count.parse()?;
    let tags: i64 = rest.first().map(|t| t.parse()).transpose()?.unwrap_or(100);
    let started = Instant::now();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let first_id = if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        fill_postgres(db, account, count, tags, now).await?
    } else {
        fill_sqlite(db, account, count, tags, now).await?
    };
    // For the harness: the first and last id filled.
    println!("{first_id} {}", first_id + count - 1);
    eprintln!(
        "bench_fill: {count} images for account {account} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn fill_sqlite(
    db: &str,
    account: &str,
    count: i64,
    tags: i64,
    now: i64,
) -> anyhow::Result<i64> {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .connect()
        .await?;
    let owner: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE name = ?")
        .bind(account)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("account {account:?}: {e}"))?;
    let mut done = 0;
    let mut first_id = None;
    while done < count {
        let n = BATCH.min(count - done);
        let mut tx = conn.begin().await?;
        let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM images")
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "WITH RECURSIVE s(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1 + ?2 - 1) \
             INSERT INTO images (id, owner_id, name, distribution, slug, public, listing, regions, \
                 created_at, kind, min_disk_size, size_gigabytes, description, tags, status, \
                 error_message, source_url, format, virtual_size, stored_bytes, sha256, blob_key) \
             SELECT i, ?3, 'bench-image-' || i, 'Ubuntu', NULL, 0, NULL, 'nyc3', ?4 - (?1 + ?2 - i), \
                 'custom', 3, 1.07, 'A bench image filled in bulk', 'tag-' || (i % ?5), \
                 'available', '', 'http://images.example/bench-' || i || '.qcow2', 'qcow2', \
                 2147483648, 1149239296, \
                 printf('%064x', i * 2654435761), 'images/' || i || '/bench' \
             FROM s",
        )
        .bind(first)
        .bind(n)
        .bind(owner)
        .bind(now)
        .bind(tags)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO image_tags (image_id, tag) SELECT id, tags FROM images WHERE id >= ?",
        )
        .bind(first)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        first_id.get_or_insert(first);
        done += n;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    Ok(first_id.unwrap_or(0))
}

/// The same rows as `fill_sqlite`, in PostgreSQL's dialect, on several connections at once.
async fn fill_postgres(
    url: &str,
    account: &str,
    count: i64,
    tags: i64,
    now: i64,
) -> anyhow::Result<i64> {
    let mut conn = PgConnection::connect(url).await?;
    let owner: i64 = sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1")
        .bind(account)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| anyhow::anyhow!("account {account:?}: {e}"))?;
    let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM images")
        .fetch_one(&mut conn)
        .await?;
    // The time goes to index and foreign-key upkeep, one core per connection.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let next = std::sync::atomic::AtomicI64::new(0);
    let fill = |mut conn: PgConnection| {
        let next = &next;
        async move {
            // A fill that dies is redone from an empty database, so waiting for each commit to
            // reach the disk buys nothing.
            sqlx::query("SET synchronous_commit = off")
                .execute(&mut conn)
                .await?;
            loop {
                let done = next.fetch_add(BATCH, std::sync::atomic::Ordering::Relaxed);
                if done >= count {
                    return anyhow::Ok(());
                }
                let (start, n) = (first + done, BATCH.min(count - done));
                // The created_at of the SQLite fill, which counts from the end of each batch.
                sqlx::query(
                    "INSERT INTO images (id, owner_id, name, distribution, slug, public, listing, \
                         regions, created_at, kind, min_disk_size, size_gigabytes, description, \
                         tags, status, error_message, source_url, format, virtual_size, \
                         stored_bytes, sha256, blob_key) \
                     SELECT i, $3, 'bench-image-' || i, 'Ubuntu', NULL, FALSE, NULL, 'nyc3', \
                         $4 - ($1 + $2 - i), 'custom', 3, 1.07, 'A bench image filled in bulk', \
                         'tag-' || (i % $5), 'available', '', \
                         'http://images.example/bench-' || i || '.qcow2', 'qcow2', 2147483648, \
                         1149239296, lpad(to_hex(i * 2654435761), 64, '0'), \
                         'images/' || i || '/bench' \
                     FROM generate_series($1::bigint, $1 + $2 - 1) AS s(i)",
                )
                .bind(start)
                .bind(n)
                .bind(owner)
                .bind(now)
                .bind(tags)
                .execute(&mut conn)
                .await?;
                // A transaction of its own, and the owner given rather than looked up: the list
                // counter of the account (migration 0003) is held from each statement to its
                // commit, and one lookup per tag would double the time.
                sqlx::query(
                    "INSERT INTO image_tags (image_id, tag, owner_id) \
                     SELECT i, 'tag-' || (i % $3), $4 FROM generate_series($1::bigint, $1 + $2 - 1) AS s(i)",
                )
                .bind(start)
                .bind(n)
                .bind(tags)
                .bind(owner)
                .execute(&mut conn)
                .await?;
            }
        }
    };
    let mut fills = vec![fill(conn)];
    for _ in 1..workers {
        fills.push(fill(PgConnection::connect(url).await?));
    }
    futures::future::try_join_all(fills).await?;
    let mut conn = PgConnection::connect(url).await?;
    // The ids above were given explicitly, which does not move the identity sequence: without
    // this, the server's next insert (the public images it seeds) would collide with image 1.
    sqlx::query("SELECT setval(pg_get_serial_sequence('images', 'id'), MAX(id)) FROM images")
        .execute(&mut conn)
        .await?;
    // Autovacuum would get to a million new rows within a minute or two, in the middle of the
    // measurements; doing it now gives the planner its statistics and the index-only scans their
    // visibility map before the first request, as on a catalog that has been running a while.
    sqlx::query("VACUUM (ANALYZE) images, image_tags")
        .execute(&mut conn)
        .await?;
    Ok(first)
}
