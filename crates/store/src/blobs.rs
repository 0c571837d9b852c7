//! Files that travel through the database (a PostgreSQL store's data snapshots and stage
//! checkpoints): content-addressed by sha256, stored in chunks, written whole or not at all,
//! and checked against their hash when they are read back.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Result, Store, StoreError};

/// Bytes per stored chunk: small enough for any server's message limits, large enough that
/// a 90 MB checkpoint is a few dozen rows.
pub const BLOB_CHUNK_BYTES: usize = 4 << 20;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_error(what: &Path, e: std::io::Error) -> StoreError {
    StoreError::Blob(format!("{}: {e}", what.display()))
}

async fn read_chunk(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

async fn sha256_of(path: &Path) -> Result<String> {
    let mut file = tokio::fs::File::open(path).await.map_err(|e| io_error(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BLOB_CHUNK_BYTES];
    loop {
        let n = read_chunk(&mut file, &mut buf).await.map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

impl Store {
    /// Stores the file's bytes under their sha256 (once: a blob already stored is kept) and
    /// returns the hash. A file that changes while it is stored is an error, nothing kept.
    pub async fn put_blob_file(&self, path: &Path) -> Result<String> {
        let sha = sha256_of(path).await?;
        if self.has_blob(&sha).await? {
            return Ok(sha);
        }
        let mut file = tokio::fs::File::open(path).await.map_err(|e| io_error(path, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BLOB_CHUNK_BYTES];
        let (mut chunks, mut size) = (0i64, 0i64);
        let mut tx = self.pool.begin().await?;
        loop {
            let n = read_chunk(&mut file, &mut buf).await.map_err(|e| io_error(path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            sqlx::query(
                "INSERT INTO blob_chunks (sha256, idx, data) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&sha)
            .bind(chunks)
            .bind(&buf[..n])
            .execute(&mut *tx)
            .await?;
            chunks += 1;
            size += n as i64;
        }
        if hex(&hasher.finalize()) != sha {
            return Err(StoreError::Blob(format!(
                "{} changed while it was being stored; nothing was kept",
                path.display()
            )));
        }
        sqlx::query(self.sql(
            "INSERT INTO blobs (sha256, size, chunks, created_at) VALUES ($1, $2, $3, {now}) ON CONFLICT DO NOTHING",
        ))
        .bind(&sha)
        .bind(size)
        .bind(chunks)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(sha)
    }

    pub async fn has_blob(&self, sha: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE sha256 = $1")
            .bind(sha)
            .fetch_one(&self.pool)
            .await?;
        Ok(n == 1)
    }

    /// Writes blob `sha` to `dest`: through a temporary file renamed into place once its hash
    /// checks, so `dest` is never half-written.
    pub async fn read_blob_to_file(&self, sha: &str, dest: &Path) -> Result<()> {
        let chunks: Option<i64> = sqlx::query_scalar("SELECT chunks FROM blobs WHERE sha256 = $1")
            .bind(sha)
            .fetch_optional(&self.pool)
            .await?;
        let Some(chunks) = chunks else {
            return Err(StoreError::Blob(format!(
                "the database holds no file with sha256 {sha}; register the sweep again from the machine that has it"
            )));
        };
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| io_error(dir, e))?;
        }
        let partial = dest.with_extension(format!("part-{}", std::process::id()));
        let mut out = tokio::fs::File::create(&partial).await.map_err(|e| io_error(&partial, e))?;
        let mut hasher = Sha256::new();
        for idx in 0..chunks {
            let row = sqlx::query("SELECT data FROM blob_chunks WHERE sha256 = $1 AND idx = $2")
                .bind(sha)
                .bind(idx)
                .fetch_one(&self.pool)
                .await?;
            let data: Vec<u8> = row.get(0);
            hasher.update(&data);
            out.write_all(&data).await.map_err(|e| io_error(&partial, e))?;
        }
        out.sync_all().await.map_err(|e| io_error(&partial, e))?;
        drop(out);
        if hex(&hasher.finalize()) != sha {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(StoreError::Blob(format!(
                "the stored file {sha} does not match its hash (damaged in the database)"
            )));
        }
        tokio::fs::rename(&partial, dest).await.map_err(|e| io_error(dest, e))
    }

    /// Blob `sha` as the local file `dir/<sha>/<name>` (the name keeps the original's, so
    /// formats and messages read as before): read from the database once, then reused by
    /// every job of this machine that needs it.
    pub async fn cached_blob(&self, sha: &str, dir: &Path, name: &str) -> Result<PathBuf> {
        let path = dir.join(sha).join(name);
        if !path.is_file() {
            self.read_blob_to_file(sha, &path).await?;
        }
        Ok(path)
    }
}

impl Store {
    /// Flips a byte of a stored blob's first chunk: for tests of the damage check only.
    #[doc(hidden)]
    pub async fn damage_blob_for_tests(&self, sha: &str) -> Result<()> {
        let data: Vec<u8> =
            sqlx::query_scalar("SELECT data FROM blob_chunks WHERE sha256 = $1 AND idx = 0")
                .bind(sha)
                .fetch_one(&self.pool)
                .await?;
        let mut damaged = data;
        damaged[0] ^= 0xff;
        sqlx::query("UPDATE blob_chunks SET data = $1 WHERE sha256 = $2 AND idx = 0")
            .bind(damaged)
            .bind(sha)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
