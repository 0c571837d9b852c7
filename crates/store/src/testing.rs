//! A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, started
//! from the machine's PostgreSQL binaries (Debian's `postgresql` package; `.ci/run` and
//! `scripts/test.sh` install it), on a free port of 127.0.0.1, trusting local connections,
//! stopped and deleted when dropped. Real, never a mock; used by the store's tests and the
//! end-to-end ones.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgServer {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Root may not run PostgreSQL: its binaries then run as this user.
    run_as: Option<String>,
    /// The superuser's password, when the server asks for one (scram-sha-256).
    password: Option<String>,
}

/// The folder of `initdb` and `pg_ctl`: `$THAW_PG_BIN`, else Debian's newest
/// /usr/lib/postgresql/N/bin, else the PATH.
fn find_bin() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("THAW_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = Command::new("sh").args(["-c", "command -v initdb"]).output();
    match on_path {
        Ok(out) if out.status.success() => {
            let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            Ok(path.parent().unwrap_or(Path::new("/")).to_path_buf())
        }
        _ => Err("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: `apt-get install postgresql` \
                  (scripts/test.sh does it), or set THAW_PG_BIN to their folder"
            .into()),
    }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

impl PgServer {
    /// Initialises and starts a new cluster; its superuser is `thaw`, with no password.
    pub fn start() -> Result<PgServer, String> {
        Self::start_with(None)
    }

    /// A cluster that asks every connection for `password` (scram-sha-256), as a real one does.
    pub fn start_with_password(password: &str) -> Result<PgServer, String> {
        Self::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> Result<PgServer, String> {
        let bin = find_bin()?;
        // Tests start servers from several threads at once: the counter keeps two folders of
        // one process apart even when the clock gives both the same reading.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "thaw-pg-{}-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let run_as = running_as_root().then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let chown = Command::new("chown").arg(user).arg(&root).status();
            if !chown.is_ok_and(|s| s.success()) {
                return Err(format!(
                    "cannot give {} to user {user} (is PostgreSQL installed?)",
                    root.display()
                ));
            }
        }
        let server =
            PgServer { root, bin, port: free_port(), run_as, password: password.map(String::from) };
        let mut initdb =
            vec!["-D".to_string(), server.data(), "-U".into(), "thaw".into(), "--no-sync".into()];
        match password {
            None => initdb.extend(["-A".into(), "trust".into()]),
            Some(password) => {
                let file = server.root.join("pwfile");
                std::fs::write(&file, password).map_err(|e| format!("{}: {e}", file.display()))?;
                if let Some(user) = &server.run_as {
                    let _ = Command::new("chown").arg(user).arg(&file).status();
                }
                initdb.extend([
                    "--auth=scram-sha-256".into(),
                    format!("--pwfile={}", file.display()),
                ]);
            }
        }
        server.run("initdb", &initdb.iter().map(String::as_str).collect::<Vec<_>>())?;
        let _ = std::fs::remove_file(server.root.join("pwfile"));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off",
            server.port,
            server.root.display()
        );
        let log = server.root.join("log").display().to_string();
        server.run("pg_ctl", &["-D", &server.data(), "-l", &log, "-o", &options, "-w", "start"])?;
        Ok(server)
    }

    fn data(&self) -> String {
        self.root.join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let binary = self.bin.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&binary);
                c
            }
            None => Command::new(&binary),
        };
        let out = command
            .args(args)
            .current_dir(&self.root)
            .output()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.root.join("log")).unwrap_or_default();
            return Err(format!(
                "{program} failed: {}{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// The URL of `database` on this server, without the password (create the database
    /// first with [`PgServer::create_database`]).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://thaw@127.0.0.1:{}/{database}", self.port)
    }

    fn admin_url(&self, database: &str) -> String {
        match &self.password {
            None => self.url(database),
            Some(password) => {
                format!("postgres://thaw:{password}@127.0.0.1:{}/{database}", self.port)
            }
        }
    }

    /// Everything `database` holds, as SQL text (pg_dump): to search it for what must not be there.
    pub fn dump(&self, database: &str) -> Result<String, String> {
        let binary = self.bin.join("pg_dump");
        let mut command = Command::new(&binary);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        let out = command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "thaw", database])
            .output()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        if !out.status.success() {
            return Err(format!("pg_dump failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Creates an empty database: one per test keeps tests apart on one server.
    pub async fn create_database(&self, name: &str) -> Result<String, String> {
        use sqlx::Connection;
        let mut admin = sqlx::postgres::PgConnection::connect(&self.admin_url("postgres"))
            .await
            .map_err(|e| format!("connecting to the test server: {e}"))?;
        sqlx::Executor::execute(
            &mut admin,
            sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{}\"", name.replace('"', ""))),
        )
        .await
        .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(self.url(name))
    }

    /// The server's log (connection errors, statements that failed).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
