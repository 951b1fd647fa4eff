//! A throwaway PostgreSQL server for tests and benches: `initdb` into a
//! temporary directory, `pg_ctl start` listening only on a Unix socket in
//! that directory, `pg_ctl stop -m immediate` when dropped (also on a
//! panic). PostgreSQL refuses to run as root: as root, the server runs as
//! an unprivileged user (`fluxacct-pg`, created with `useradd` when
//! missing). [`Server::start`] gives `None`, with the reason, when no
//! server can be started (no PostgreSQL binaries): the caller skips.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The unprivileged user the test server runs as when the tests run as root.
pub const SERVER_USER: &str = "fluxacct-pg";

/// A running throwaway server.
pub struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// (uid, gid) the server runs as, when not the current user.
    run_as: Option<(u32, u32)>,
}

fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FLUXACCT_PG_BIN") {
        let p = PathBuf::from(dir);
        return p.join("initdb").exists().then_some(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn ids_of(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?))).flatten()
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

impl Server {
    /// Starts a server, or says why it cannot.
    pub fn start() -> Result<Server, String> {
        let bin = find_bin().ok_or("no PostgreSQL binaries (/usr/lib/postgresql/*/bin/initdb)")?;
        let run_as = if is_root() {
            if ids_of(SERVER_USER).is_none() {
                let st = Command::new("useradd")
                    .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                // Another test may have created it meanwhile.
                if ids_of(SERVER_USER).is_none() {
                    return Err(format!("cannot create the user {SERVER_USER}: {st:?}"));
                }
            }
            ids_of(SERVER_USER)
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("fluxacct-pg").tempdir().map_err(|e| e.to_string())?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| e.to_string())?;
        }
        let server = Server { dir, bin, run_as };
        let data = server.data_dir();
        server.run(
            "initdb",
            &["-D", &data.to_string_lossy(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-locale"],
        )?;
        server.pg_start()?;
        Ok(server)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd.output().map_err(|e| format!("{tool}: {e}"))?;
        if !out.status.success() {
            return Err(format!("{tool} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(())
    }

    /// Starts (or restarts) the server on the data directory.
    pub fn pg_start(&self) -> Result<(), String> {
        let opts = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=40 -c shared_buffers=64MB",
            self.dir.path().display()
        );
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        self.run("pg_ctl", &["-D", &data.to_string_lossy(), "-l", &log.to_string_lossy(), "-o", &opts, "-w", "start"])
    }

    /// Stops the server the way a crash would (`pg_ctl stop -m immediate`).
    pub fn stop_immediate(&self) -> Result<(), String> {
        let data = self.data_dir();
        self.run("pg_ctl", &["-D", &data.to_string_lossy(), "-m", "immediate", "-w", "stop"])
    }

    /// A libpq-style URL for `user` on `db` over the server's socket (the
    /// socket directory percent-encoded as the host).
    pub fn url(&self, db: &str, user: &str) -> String {
        let host: String = self
            .dir
            .path()
            .to_string_lossy()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-._~".contains(c) {
                    c.to_string()
                } else {
                    format!("%{:02X}", c as u32)
                }
            })
            .collect();
        format!("postgresql://{user}@{host}/{db}")
    }

    /// The superuser's URL on `db`.
    pub fn admin_url(&self, db: &str) -> String {
        self.url(db, "postgres")
    }

    /// Creates a database (owned by the superuser).
    pub fn create_db(&self, db: &str) -> Result<(), String> {
        let mut c =
            postgres::Client::connect(&self.admin_url("postgres"), postgres::NoTls).map_err(|e| e.to_string())?;
        c.batch_execute(&format!("CREATE DATABASE \"{db}\"")).map_err(|e| e.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop_immediate();
    }
}

/// Records that a centre test really ran against PostgreSQL: appends its
/// name to the file named by `FLUXACCT_CENTRE_LOG` when set (`.ci/run`
/// counts the lines). Test support: the library reads no other variable.
pub fn ran(name: &str) {
    use std::io::Write;
    if let Some(log) = std::env::var_os("FLUXACCT_CENTRE_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{name}");
        }
    }
}
