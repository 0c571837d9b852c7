//! thaw-store: the only code that speaks SQL.
//!
//! One set of domain operations over two databases (sqlx's `Any` driver): a SQLite file (the
//! embedded default: WAL journal, a busy timeout) or a PostgreSQL server (many machines, one
//! URL). The SQL is shared where both dialects accept it and per dialect where they differ
//! ([`Dialect`]: the clock, claim locks, insertion order); each dialect has its own migration
//! set with the same versions. Jobs and stages are claimed with one atomic `UPDATE ...
//! RETURNING` (PostgreSQL's subquery skips rows other claims hold: `FOR UPDATE SKIP LOCKED`),
//! so two workers never take the same one; running work carries a heartbeat stamped by the
//! database's clock, and work whose worker died goes back to pending.

//!
//! The operations live by concern: [`open`] (connecting and the schema), [`register`] (a
//! sweep's plan), [`claims`] (claiming work, heartbeats, requeueing), [`finish`] (results
//! and failures), [`reads`] (what the report and the search read), [`decisions`] (the
//! adaptive search's), [`blobs`] (files that travel through the database).

mod advice;
mod blobs;
mod claims;
mod decisions;
mod finish;
mod location;
mod open;
mod reads;
mod register;
mod rows;
pub mod testing;

use sqlx::AnyPool;

pub use blobs::BLOB_CHUNK_BYTES;
pub use location::{Dialect, Location, PgUrl, redact};
pub use open::POSTGRES_CONNECTIONS;
pub use rows::*;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // The cause is part of each message (not a `source`), so a report that prints the chain
    // of causes does not print it twice.
    #[error("database {location}: {cause}")]
    Open { location: String, cause: sqlx::Error },
    #[error(
        "cannot connect to {what}: {cause}. Check that the server runs and accepts connections from this machine, and the URL; a password comes from the URL, PGPASSWORD or ~/.pgpass"
    )]
    Unreachable { what: String, cause: sqlx::Error },
    #[error("database {location}: cannot apply the schema in migrations/{dialect}/: {cause}")]
    Migrate { location: String, dialect: &'static str, cause: sqlx::migrate::MigrateError },
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Blob(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// SQL whose only dynamic parts are table names from [`WorkKind`] and the dialect's own
/// fragments, never user data.
pub(crate) fn sql_for(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

impl Dialect {
    /// The database's clock in unix seconds, as an SQL expression.
    fn clock(self) -> &'static str {
        match self {
            Dialect::Sqlite => "((julianday('now') - 2440587.5) * 86400.0)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
        }
    }

    /// What a claim's subquery adds so that concurrent claims pass over each other's rows
    /// instead of queueing on them. SQLite has one writer at a time and needs nothing.
    fn skip_locked(self, alias: &str) -> String {
        match self {
            Dialect::Sqlite => String::new(),
            Dialect::Postgres => format!("FOR UPDATE OF {alias} SKIP LOCKED"),
        }
    }

    /// A column that orders a table's rows as they were inserted.
    fn insertion_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "seq",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// Which kind of work a claim, heartbeat or release is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    Stage,
    Job,
}

impl WorkKind {
    pub(crate) fn table(self) -> &'static str {
        match self {
            WorkKind::Stage => "stages",
            WorkKind::Job => "jobs",
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    location: Location,
}

impl Store {
    pub fn dialect(&self) -> Dialect {
        self.location.dialect()
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The SQL text with the dialect's fragments in: `{now}` (the database clock),
    /// `{skip_locked:ALIAS}` (a claim's row lock), `{insertion_order}`.
    pub(crate) fn sql(&self, text: &str) -> sqlx::AssertSqlSafe<String> {
        let dialect = self.dialect();
        let mut sql = text.replace("{now}", dialect.clock());
        while let Some(start) = sql.find("{skip_locked:") {
            let end = start + sql[start..].find('}').expect("closed fragment");
            let alias = sql[start + "{skip_locked:".len()..end].to_string();
            sql.replace_range(start..=end, &dialect.skip_locked(&alias));
        }
        sql_for(sql.replace("{insertion_order}", dialect.insertion_order()))
    }
}

#[cfg(test)]
mod tests {
    /// The schema has one version sequence: both dialects carry the same migrations, by
    /// number and name, so a store's version means the same tables whichever it is.
    #[test]
    fn both_dialects_have_the_same_migration_versions() {
        let names = |dialect: &str| -> Vec<String> {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../migrations")
                .join(dialect);
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let (sqlite, postgres) = (names("sqlite"), names("postgres"));
        assert!(sqlite.len() >= 9, "{sqlite:?}");
        assert_eq!(sqlite, postgres);
    }
}
