//! Where a store lives, as `--db` gives it: a SQLite file (a path or `sqlite://PATH`) or a
//! PostgreSQL server (`postgres://USER@HOST:PORT/DB`). A password in a URL is secret: it is
//! taken out once here and only ever handed to the connection itself, never displayed.

use std::fmt;
use std::path::{Path, PathBuf};

/// The SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

/// A PostgreSQL URL with its password (if the URL carried one) held apart.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// The URL without a password: safe to print, log, store or pass on a command line.
    public: url::Url,
    password: Option<String>,
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.public)
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

impl PgUrl {
    pub fn parse(text: &str) -> Result<PgUrl, String> {
        let mut public = url::Url::parse(text).map_err(|e| {
            format!(
                "'{}' is not a PostgreSQL URL ({e}); write postgres://USER@HOST:PORT/DATABASE",
                redact(text)
            )
        })?;
        let password = public.password().map(percent_decode).filter(|p| !p.is_empty());
        public.set_password(None).map_err(|()| "a PostgreSQL URL needs a host".to_string())?;
        if public.host_str().is_none_or(str::is_empty) {
            return Err(format!(
                "{public}: a PostgreSQL URL needs a host (postgres://USER@HOST:PORT/DATABASE)"
            ));
        }
        Ok(PgUrl { public, password })
    }

    /// The URL without its password.
    pub fn public(&self) -> &url::Url {
        &self.public
    }

    /// The password the URL carried, for the connection (or a child's PGPASSWORD) only.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `host:port/database as user`, for errors.
    pub fn describe(&self) -> String {
        let database = self.public.path().trim_start_matches('/');
        let user = self.public.username();
        format!(
            "PostgreSQL at {}:{} database '{}'{}",
            self.public.host_str().unwrap_or("?"),
            self.public.port().unwrap_or(5432),
            if database.is_empty() { user } else { database },
            if user.is_empty() { String::new() } else { format!(" as user '{user}'") }
        )
    }

    /// This URL with a server setting for every session, e.g. `default_transaction_read_only`
    /// (libpq's `options=-c NAME=VALUE`).
    pub fn with_option(&self, name: &str, value: &str) -> PgUrl {
        let mut public = self.public.clone();
        public.query_pairs_mut().append_pair("options", &format!("-c {name}={value}"));
        PgUrl { public, password: self.password.clone() }
    }

    /// The full URL the driver connects with: the public one, the password put back in, and
    /// `application_name` set so the server's pg_stat_activity names each worker.
    pub(crate) fn connect_url(&self, application_name: Option<&str>) -> url::Url {
        let mut url = self.public.clone();
        if let Some(password) = &self.password {
            let _ = url.set_password(Some(password));
        }
        if let Some(name) = application_name {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(k, _)| k != "application_name")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut().clear().extend_pairs(kept).append_pair("application_name", name);
        }
        url
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// `text` with any `user:password@` reduced to `user@`: for messages about text that failed
/// to parse as a URL at all.
pub fn redact(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &text[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => {
                    format!("{}{}@{}", &text[..scheme_end + 3], &userinfo[..colon], &text[at + 1..])
                }
                None => text.to_string(),
            }
        }
        _ => text.to_string(),
    }
}

impl Location {
    /// `postgres://…` or `postgresql://…`: a server; `sqlite://PATH` or `sqlite:PATH`: a file;
    /// anything else: a file path.
    pub fn parse(text: &str) -> Result<Location, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return PgUrl::parse(text).map(Location::Postgres);
        }
        if let Some(path) = text.strip_prefix("sqlite://").or_else(|| text.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("sqlite:// needs a file path (sqlite://results/sweep.db)".into());
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if text.contains("://") {
            return Err(format!(
                "'{}': unknown database kind; give a file path, sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
                redact(text)
            ));
        }
        Ok(Location::Sqlite(PathBuf::from(text)))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Location::Sqlite(_) => Dialect::Sqlite,
            Location::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite file, if this is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }

    /// A relative SQLite path made absolute (workers may run from another folder).
    pub fn absolute(self) -> std::io::Result<Location> {
        Ok(match self {
            Location::Sqlite(path) => Location::Sqlite(std::path::absolute(path)?),
            other => other,
        })
    }
}

/// The path, or the URL without its password: safe to print, and what another thaw process
/// gets as `--db` (the password goes through PGPASSWORD, see [`PgUrl::password`]).
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => write!(f, "{}", url.public),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_held_apart_and_never_displayed() {
        let location = Location::parse("postgres://thaw:s3cr%40t@db.lab:6543/sweeps").unwrap();
        let Location::Postgres(url) = &location else { panic!("postgres") };
        assert_eq!(url.password(), Some("s3cr@t"));
        for shown in [location.to_string(), format!("{location:?}"), url.describe()] {
            assert!(!shown.contains("s3cr"), "{shown}");
        }
        assert_eq!(location.to_string(), "postgres://thaw@db.lab:6543/sweeps");
        assert_eq!(url.describe(), "PostgreSQL at db.lab:6543 database 'sweeps' as user 'thaw'");
        let connect = url.connect_url(Some("host:12")).to_string();
        assert!(connect.starts_with("postgres://thaw:s3cr%40t@db.lab:6543/sweeps?"), "{connect}");
        assert!(connect.contains("application_name=host%3A12"), "{connect}");
    }

    #[test]
    fn paths_and_sqlite_urls_are_files() {
        assert_eq!(
            Location::parse("results/a.db").unwrap().file(),
            Some(Path::new("results/a.db"))
        );
        assert_eq!(
            Location::parse("sqlite:///tmp/a.db").unwrap().file(),
            Some(Path::new("/tmp/a.db"))
        );
        assert_eq!(Location::parse("sqlite:a.db").unwrap().file(), Some(Path::new("a.db")));
        let err = Location::parse("mysql://u:pw@h/d").unwrap_err();
        assert!(err.contains("mysql://u@h/d") && !err.contains("pw"), "{err}");
        assert!(Location::parse("postgres:///nohost").is_err());
    }
}
