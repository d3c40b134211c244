//! Rate-limit counts shared by the replicas: each adds what it counted since its last sync and
//! reads back the totals of every replica.

use super::super::{CatalogResult, RateCount};
use sqlx::postgres::PgPool;
use sqlx::Row;

/// Adds `deltas` to the shared counts, forgets minutes older than the window, and returns the
/// totals of `keys` since `since_minute`.
pub(super) async fn sync(
    pool: &PgPool,
    deltas: &[RateCount],
    keys: &[String],
    since_minute: i64,
) -> CatalogResult<Vec<RateCount>> {
    let mut tx = pool.begin().await?;
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
    Ok(totals)
}
