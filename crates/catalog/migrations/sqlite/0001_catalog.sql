-- Accounts own tokens and private images. Public images have no owner.
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

-- Tokens are stored as the SHA-256 of the secret; the secret itself is shown once and never kept.
CREATE TABLE tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE images (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id        INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    distribution    TEXT NOT NULL,
    slug            TEXT UNIQUE,
    public          INTEGER NOT NULL,
    -- 'distribution' or 'application' for public images: what the list's `type` filter matches.
    listing         TEXT,
    regions         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    min_disk_size   INTEGER,
    size_gigabytes  REAL,
    description     TEXT NOT NULL,
    -- Tags as a comma-separated copy for reading the image in one row; image_tags is for filtering.
    tags            TEXT NOT NULL,
    status          TEXT NOT NULL,
    error_message   TEXT NOT NULL,
    source_url      TEXT,
    format          TEXT,
    virtual_size    INTEGER,
    stored_bytes    INTEGER,
    sha256          TEXT,
    blob_key        TEXT
);
-- Every list filter has an index: own images, public listings, and tags below.
CREATE INDEX images_owner ON images(owner_id, id);
CREATE INDEX images_public_listing ON images(public, listing, id);

CREATE TABLE image_tags (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags(tag, image_id);

-- The row is the job: a worker claims it by writing its id and a lease expiry, renews the lease
-- while it works, and completes it only while it still holds the lease.
CREATE TABLE import_jobs (
    image_id         INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    url              TEXT NOT NULL,
    region           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Who holds the job, and until when. With no owner, lease_expires_at is "not before"
    -- (a retry's backoff).
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT NOT NULL DEFAULT '',
    bytes_read       INTEGER NOT NULL DEFAULT 0,
    bytes_total      INTEGER,
    created_at       INTEGER NOT NULL
);
CREATE INDEX import_jobs_lease ON import_jobs(lease_expires_at);

CREATE TABLE catalog_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
