//! The reads that serve the API, run on the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands each query, and each row
//! and column value, across a channel: two thread wake-ups per query, which cost several times
//! what an indexed lookup in a cached page does (a get by id is a few microseconds of SQLite).
//! The reads behind a request (a token, an image by id or slug, a page of a list) are bounded
//! index walks, so they run right where they are asked for, on a small pool of rusqlite
//! connections. WAL mode lets them read beside the writer without waiting for it. Reads whose
//! cost grows with the catalog (a list's total, a page deep into it) go to the blocking pool.

use super::super::row::{RowView, IMAGE_COLUMNS};
use super::super::{CatalogError, CatalogResult, ImageFilter, ImageRecord};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections kept open between reads; more are opened when more threads read at once.
const MAX_IDLE: usize = 16;
/// A page further than this into a list walks that many index entries first: off the runtime.
pub(super) const INLINE_MAX_OFFSET: u64 = 10_000;

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: &Path) -> Arc<Self> {
        Arc::new(Readers {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        })
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Read-write flags with query_only: a read-only connection cannot open a WAL database
        // whose shared-memory file it would have to create.
        conn.pragma_update(None, "query_only", true)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    pub fn with<T, E>(&self, read: impl FnOnce(&Connection) -> Result<T, E>) -> CatalogResult<T>
    where
        CatalogError: From<E>,
    {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        Ok(result?)
    }

    /// Runs `read` on the blocking pool, for reads too long for the calling thread.
    pub async fn off_thread<T: Send + 'static, E>(
        self: &Arc<Self>,
        read: impl FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    ) -> CatalogResult<T>
    where
        CatalogError: From<E>,
    {
        let readers = self.clone();
        tokio::task::spawn_blocking(move || readers.with(read))
            .await
            .map_err(|e| CatalogError::Config(format!("a catalog read stopped: {e}")))?
    }
}

/// A row selected as `IMAGE_COLUMNS`, in that order, borrowed from SQLite's buffers.
fn view_of<'a>(row: &'a rusqlite::Row<'_>) -> rusqlite::Result<RowView<'a>> {
    let text = |i: usize| -> rusqlite::Result<&'a str> { Ok(row.get_ref(i)?.as_str()?) };
    let text_or_null =
        |i: usize| -> rusqlite::Result<Option<&'a str>> { Ok(row.get_ref(i)?.as_str_or_null()?) };
    Ok(RowView {
        id: row.get(0)?,
        owner_id: row.get(1)?,
        name: text(2)?,
        distribution: text(3)?,
        slug: text_or_null(4)?,
        public: row.get(5)?,
        listing: text_or_null(6)?,
        regions: text(7)?,
        created_at: row.get(8)?,
        kind: text(9)?,
        min_disk_size: row.get(10)?,
        size_gigabytes: row.get(11)?,
        description: text(12)?,
        tags: text(13)?,
        status: text(14)?,
        error_message: text(15)?,
        source_url: text_or_null(16)?,
        format: text_or_null(17)?,
        virtual_size: row.get(18)?,
        stored_bytes: row.get(19)?,
        sha256: text_or_null(20)?,
        blob_key: text_or_null(21)?,
    })
}

/// A number that changes with every write a list could show.
pub(super) fn list_generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT n FROM list_generation WHERE id = 1")?
        .query_row([], |r| r.get(0))
}

/// The image a unique column (`id`, `slug`) names.
pub(super) fn image_where(
    conn: &Connection,
    column: &str,
    value: impl rusqlite::ToSql,
) -> CatalogResult<Option<ImageRecord>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE {column} = ?1"
    ))?;
    let mut rows = statement.query([value])?;
    match rows.next()? {
        Some(row) => Ok(Some(view_of(row)?.to_record()?)),
        None => Ok(None),
    }
}

/// SQL text with its arguments, pushed in step.
#[derive(Default)]
pub(super) struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.text.push('?');
        self.args.push(value.into());
        self
    }

    pub fn query_records(&self, conn: &Connection) -> CatalogResult<Vec<ImageRecord>> {
        let mut statement = conn.prepare_cached(&self.text)?;
        let mut rows = statement.query(rusqlite::params_from_iter(&self.args))?;
        let mut records = Vec::new();
        while let Some(row) = rows.next()? {
            records.push(view_of(row)?.to_record()?);
        }
        Ok(records)
    }

    pub fn query_count(&self, conn: &Connection) -> rusqlite::Result<i64> {
        conn.prepare_cached(&self.text)?
            .query_row(rusqlite::params_from_iter(&self.args), |row| row.get(0))
    }
}

/// Which images of the viewer's visible ones a condition selects.
#[derive(Clone, Copy)]
enum Visible {
    /// Public images and the viewer's own: the whole rule.
    Any,
    /// Either side of it, for the page query's two branches.
    Public,
    Own,
}

/// The conditions of a list on `images` other than the tag: what the viewer may see, minus
/// what lists never show, narrowed by the filters.
fn push_conditions(q: &mut Sql, f: &ImageFilter, visible: Visible) {
    q.push(" status NOT IN ('deleted', 'retired') AND ");
    match visible {
        Visible::Any => q
            .push("(public = TRUE OR owner_id = ")
            .bind(f.viewer.0)
            .push(")"),
        Visible::Public => q.push("public = TRUE"),
        Visible::Own => q.push("owner_id = ").bind(f.viewer.0),
    };
    if f.private_only {
        q.push(" AND owner_id = ").bind(f.viewer.0);
    }
    if let Some(listing) = f.listing {
        q.push(" AND public = TRUE AND listing = ")
            .bind(listing.as_str().to_owned());
    }
}

/// The tables of a list and the start of its WHERE clause (the caller closes the parenthesis
/// after `push_conditions`).
fn push_from(q: &mut Sql, f: &ImageFilter) {
    match &f.tag {
        Some(tag) => q
            .push(
                "image_tags JOIN images ON images.id = image_tags.image_id WHERE image_tags.tag = ",
            )
            .bind(tag.clone())
            .push(" AND ("),
        None => q.push("images WHERE ("),
    };
}

/// The number of all the images `f` selects, whatever its page.
pub(super) fn list_count(f: &ImageFilter) -> Sql {
    let mut q = Sql::default();
    q.push("SELECT COUNT(*) FROM ");
    push_from(&mut q, f);
    push_conditions(&mut q, f, Visible::Any);
    q.push(")");
    q
}

/// The page of the images `f` selects, in id order.
pub(super) fn list_page(f: &ImageFilter) -> Sql {
    let limit = i64::from(f.limit);
    let offset = i64::try_from(f.offset).unwrap_or(i64::MAX);
    let mut q = Sql::default();
    q.push(&format!("SELECT {IMAGE_COLUMNS} FROM "));
    if f.tag.is_some() {
        // Driven by the tag's index, which is in image id order: no scan, no sort.
        push_from(&mut q, f);
        push_conditions(&mut q, f, Visible::Any);
        q.push(") ORDER BY image_tags.image_id");
    } else {
        // `public OR owner` would make SQLite gather and sort every visible image; each side
        // alone walks an index in id order and stops after the page.
        let wanted = offset.saturating_add(limit);
        q.push("images WHERE id IN (");
        for (i, visible) in [Visible::Public, Visible::Own].into_iter().enumerate() {
            if i > 0 {
                q.push(" UNION ");
            }
            q.push("SELECT id FROM (SELECT id FROM images WHERE");
            push_conditions(&mut q, f, visible);
            q.push(" ORDER BY id LIMIT ").bind(wanted).push(")");
        }
        q.push(") ORDER BY id");
    }
    q.push(" LIMIT ").bind(limit).push(" OFFSET ").bind(offset);
    q
}
