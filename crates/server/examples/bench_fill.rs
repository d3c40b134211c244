//! Bench helper: fills an embedded (SQLite) catalog with many private images of one account, in
//! big transactions straight into the tables the server created (not through the API, which
//! would take hours for a million images).
//!
//! ```text
//! cargo run --release -p tidepool-server --example bench_fill -- DATA_DIR/catalog.db ACCOUNT COUNT [TAGS]
//! ```
//!
//! Every image is `available`, owned by ACCOUNT, with one tag `tag-<n % TAGS>` (100 by default,
//! so each tag selects COUNT/100 images). The account must exist (`tidepool token create`).

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use std::time::Instant;

const BATCH: i64 = 100_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, account, count, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: bench_fill CATALOG.db ACCOUNT COUNT [TAGS]");
    };
    let count: i64 = count.parse()?;
    let tags: i64 = rest.first().map(|t| t.parse()).transpose()?.unwrap_or(100);
    let started = Instant::now();
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
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
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
    // For the harness: the first and last id filled.
    println!(
        "{} {}",
        first_id.unwrap_or(0),
        first_id.unwrap_or(0) + count - 1
    );
    eprintln!(
        "bench_fill: {count} images for account {account} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
