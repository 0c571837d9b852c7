-- Files that travel through the database, for workers that share nothing with the machine
-- that registered the sweep but the database's URL (a PostgreSQL store): the sweep's data
-- files, snapshotted when it is registered, and intermediate-MLM checkpoints. Addressed by
-- their sha256 and stored in chunks; the blobs row is written last, in the transaction that
-- writes the chunks, so a blob listed there is complete. (A SQLite store keeps files beside
-- the database and leaves these tables empty.)
CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    chunks      BIGINT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL
);

CREATE TABLE blob_chunks (
    sha256  TEXT NOT NULL,
    idx     BIGINT NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (sha256, idx)
);

-- The stage checkpoint's content hash, when it was stored in blobs.
ALTER TABLE stages ADD COLUMN checkpoint_sha256 TEXT;
