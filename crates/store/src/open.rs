//! Opening a store: a SQLite file (WAL, a busy timeout) or a PostgreSQL server (a probe
//! connection first, for the real reason of a failure), and the schema brought up to date.

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};

use crate::{Location, PgUrl, Result, Store, StoreError};

/// An exclusive lock on `<database>.lock`, held while the schema is brought up to date.
fn schema_lock(path: &Path) -> Result<std::fs::File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let failed = |e: std::io::Error| StoreError::Open {
        location: path.display().to_string(),
        cause: sqlx::Error::Io(e),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(failed)?;
    file.lock().map_err(failed)?;
    Ok(file)
}

/// Connections a PostgreSQL store opens at most: a worker claims, beats and writes one at a
/// time, so two cover a write while a heartbeat waits; a 16-task array holds 32 at most.
pub const POSTGRES_CONNECTIONS: u32 = 2;
/// How long opening a store or taking a connection waits before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

impl Store {
    /// Opens (creating if needed) a SQLite database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Store> {
        Self::connect(&Location::Sqlite(path.to_path_buf()), None).await
    }

    /// Opens the store at `location` and brings its schema up to date. `client` names this
    /// process to a PostgreSQL server (its `application_name`: pg_stat_activity shows it).
    pub async fn connect(location: &Location, client: Option<&str>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let pool = match location {
            Location::Sqlite(path) => Self::open_sqlite(path).await?,
            Location::Postgres(url) => Self::open_postgres(url, client).await?,
        };
        let store = Store { pool, location: location.clone() };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens an existing store for reading only (`thaw serve`): a SQLite file read-only (no
    /// file, journal mode or schema is created; it reads beside running workers in WAL mode),
    /// PostgreSQL in read-only transactions. The schema must be this thaw's: an older one is
    /// an error that says how to bring it up to date, as reading it could fail half-way.
    pub async fn open_read_only(location: &Location, client: Option<&str>) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let pool = match location {
            Location::Sqlite(path) => Self::open_sqlite_read_only(path).await?,
            Location::Postgres(url) => {
                let read_only = url.with_option("default_transaction_read_only", "on");
                Self::open_postgres(&read_only, client).await?
            }
        };
        let store = Store { pool, location: location.clone() };
        store.check_schema().await?;
        Ok(store)
    }

    async fn open_sqlite_read_only(path: &Path) -> Result<AnyPool> {
        let opened = |cause| StoreError::Open { location: path.display().to_string(), cause };
        if !path.is_file() {
            return Err(opened(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file (a sweep's database is made by `thaw run`)",
            ))));
        }
        let path = std::path::absolute(path).map_err(|e| opened(sqlx::Error::Io(e)))?;
        let url = SqliteConnectOptions::new().filename(&path).read_only(true).to_url_lossy();
        let options = AnyConnectOptions::from_url(&url).map_err(opened)?;
        AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 30000").await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(opened)
    }

    /// Closes the store. A SQLite file first folds its write-ahead log into the database
    /// file, so the `.db` alone holds every result (a busy reader, such as `thaw serve`,
    /// only delays that; it never loses anything).
    pub async fn close(self) {
        if self.dialect() == crate::Dialect::Sqlite
            && let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await
        {
            tracing::debug!("checkpoint at close: {e}");
        }
        self.pool.close().await;
    }

    /// The versions this build's migrations reach, against those the database has applied.
    async fn check_schema(&self) -> Result<()> {
        let known = match self.dialect() {
            crate::Dialect::Sqlite => sqlx::migrate!("../../migrations/sqlite"),
            crate::Dialect::Postgres => sqlx::migrate!("../../migrations/postgres"),
        };
        let latest = known.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|_| {
            StoreError::Conflict(format!(
                "{} holds no thaw sweep (no schema): point --db at the database `thaw run` wrote",
                self.location
            ))
        })?;
        match applied {
            Some(v) if v >= latest => Ok(()),
            applied => Err(StoreError::Conflict(format!(
                "{}'s schema is at version {} and this thaw reads version {latest}: run `thaw status --db ...` once (it brings the schema up to date), then read it again",
                self.location,
                applied.unwrap_or(0)
            ))),
        }
    }

    async fn open_sqlite(path: &Path) -> Result<AnyPool> {
        let opened = |cause| StoreError::Open { location: path.display().to_string(), cause };
        let path = std::path::absolute(path).map_err(|e| opened(sqlx::Error::Io(e)))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| opened(sqlx::Error::Io(e)))?;
        }
        let url =
            SqliteConnectOptions::new().filename(&path).create_if_missing(true).to_url_lossy();
        let options = AnyConnectOptions::from_url(&url).map_err(opened)?;
        AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // The busy timeout first: switching to WAL itself can meet a busy file.
                    for pragma in [
                        "PRAGMA busy_timeout = 30000",
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(opened)
    }

    async fn open_postgres(url: &PgUrl, client: Option<&str>) -> Result<AnyPool> {
        let unreachable = |cause| StoreError::Unreachable { what: url.describe(), cause };
        let options = AnyConnectOptions::from_url(&url.connect_url(client)).map_err(unreachable)?;
        // One connection first, for the real reason when it fails (refused, unknown host, a
        // wrong password): the pool only says it timed out.
        match tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect_with(&options)).await {
            Ok(Ok(probe)) => {
                let _ = probe.close().await;
            }
            Ok(Err(cause)) => return Err(unreachable(cause)),
            Err(_) => return Err(unreachable(sqlx::Error::PoolTimedOut)),
        }
        AnyPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(unreachable)
    }

    async fn migrate(&self) -> Result<()> {
        let failed = |cause| StoreError::Migrate {
            location: self.location.to_string(),
            dialect: self.dialect().name(),
            cause,
        };
        match &self.location {
            Location::Sqlite(path) => {
                // Processes started together (a Slurm array, a shell loop) would each try to
                // create or upgrade the schema, and all but one fail: they take turns, on a lock
                // file beside the database (SQLite's own locks do not span sqlx's migration
                // transactions).
                let schema_lock = schema_lock(path)?;
                let migrated = sqlx::migrate!("../../migrations/sqlite").run(&self.pool).await;
                drop(schema_lock);
                migrated.map_err(failed)
            }
            // sqlx holds a PostgreSQL advisory lock while it migrates: concurrent openers wait.
            Location::Postgres(_) => {
                sqlx::migrate!("../../migrations/postgres").run(&self.pool).await.map_err(failed)
            }
        }
    }
}
