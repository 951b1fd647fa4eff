//! Helpers of the real-broker suite (`tests/broker.rs`): find a flux-core
//! install, build and stage `mf_priority.so`, start test instances
//! (`flux start --test-size=N`) with their own temporary ledger, and run
//! `flux` and `flux-account` against them.
//!
//! flux-core is looked for in `$FLUX_PREFIX` (which must then hold
//! `bin/flux`), then in the cache `.ci/run` builds into
//! (`/var/cache/fluxacct/flux-core-0.88.0`), then as `flux` on `PATH`.
//! Without one every test returns early after a one-line notice.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where `.ci/run` builds flux-core (`../shared/flux-core/build.sh`).
pub const CI_CACHE: &str = "/var/cache/fluxacct/flux-core-0.88.0";

/// A flux-core install.
#[derive(Debug, Clone)]
pub struct Install {
    /// `<prefix>/bin/flux`.
    pub flux: PathBuf,
}

impl Install {
    /// `<prefix>/bin`.
    pub fn bindir(&self) -> &Path {
        self.flux.parent().expect("flux is in a directory")
    }
}

/// The flux-core install to test against, or `None` (after a one-line
/// notice on the real stderr) when there is none.
pub fn install() -> Option<&'static Install> {
    static INSTALL: OnceLock<Option<Install>> = OnceLock::new();
    INSTALL
        .get_or_init(|| {
            let found = find_install();
            if found.is_none() {
                // Written to the process's stderr (not the captured test
                // output) so that the skip shows in `cargo test`.
                let _ = writeln!(
                    std::io::stderr(),
                    "real-broker tests skipped: no flux-core found (set FLUX_PREFIX to a flux-core >= 0.68 install)"
                );
            }
            found
        })
        .as_ref()
}

fn find_install() -> Option<Install> {
    if let Some(p) = std::env::var_os("FLUX_PREFIX").filter(|p| !p.is_empty()) {
        let flux = PathBuf::from(p).join("bin/flux");
        assert!(flux.is_file(), "FLUX_PREFIX is set but {} does not exist", flux.display());
        return Some(Install { flux });
    }
    let cached = Path::new(CI_CACHE).join("bin/flux");
    if cached.is_file() {
        return Some(Install { flux: cached });
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("flux")).find(|f| f.is_file()).map(|flux| Install { flux })
}

/// Counts a test that really ran against a broker: appends its name to
/// `$FLUXACCT_BROKER_LOG` when set (`.ci/run` counts the lines).
pub fn ran(name: &str) {
    if let Some(log) = std::env::var_os("FLUXACCT_BROKER_LOG") {
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
            let _ = writeln!(f, "{name}");
        }
    }
}

/// Writes a line to the real stderr (shown even when output is captured).
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("commands/ is in the workspace").to_path_buf()
}

/// The directory holding `flux-account` and its `flux-account-*` aliases.
pub fn bindir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_flux-account")).parent().expect("bin dir").to_path_buf()
}

/// `mf_priority.so`, built as README's install step builds it (`cargo build
/// -p fluxacct-plugin --release --target-dir <target>/plugin`) and copied,
/// under its installed name, into a directory of this test process.
/// `$FLUXACCT_PLUGIN` replaces it with another file (used to check that the
/// suite catches a broken plugin).
pub fn plugin() -> &'static Path {
    static PATH: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &PATH
        .get_or_init(|| {
            let built = match std::env::var_os("FLUXACCT_PLUGIN") {
                Some(p) => PathBuf::from(p),
                None => build_plugin(),
            };
            let dir = tempfile::tempdir().expect("tempdir");
            let so = dir.path().join("mf_priority.so");
            std::fs::copy(&built, &so).expect("copying the plugin");
            (dir, so)
        })
        .1
}

fn build_plugin() -> PathBuf {
    let ws = workspace();
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
        Some(t) => ws.join(t),
        None => ws.join("target"),
    }
    .join("plugin");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "fluxacct-plugin", "--release", "--target-dir"])
        .arg(&target)
        .current_dir(&ws)
        .status()
        .expect("running cargo build for the plugin");
    assert!(status.success(), "cargo build -p fluxacct-plugin --release failed");
    target.join("release").join("libmf_priority.so")
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    /// Exit status code (-1 if killed).
    pub code: i32,
    /// stdout.
    pub out: String,
    /// stderr.
    pub err: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            out: String::from_utf8_lossy(&o.stdout).into_owned(),
            err: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// How to start an instance. In config texts and env values, `@DIR@`
/// stands for the instance's directory and `@SO@` for the plugin.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// `--test-size`.
    pub size: u32,
    /// Files of the broker's config dir (`--config-path`, given when this
    /// is not empty): (name, TOML text).
    pub config: Vec<(String, String)>,
    /// Extra environment of the broker.
    pub env: Vec<(String, String)>,
    /// Extra arguments of `flux start` (e.g. `-Slocal-uri=local://@DIR@/sock`,
    /// a URI that stays the same across restarts).
    pub args: Vec<String>,
}

/// A running test instance with its own directory and ledger.
pub struct Instance {
    /// Temporary directory: ledger `ledger.db`, `conf/`, `state/`, `uri`.
    pub dir: tempfile::TempDir,
    /// The flux-core install.
    pub install: &'static Install,
    setup: Setup,
    child: Option<Child>,
    /// The instance's FLUX_URI.
    pub uri: String,
}

impl Instance {
    /// Starts an instance (`None`: no flux-core, test skipped).
    pub fn start(setup: Setup) -> Option<Instance> {
        let install = install()?;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("conf")).expect("conf dir");
        std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
        let mut inst = Instance { dir, install, setup, child: None, uri: String::new() };
        for (name, text) in inst.setup.config.clone() {
            inst.write_config(&name, &text);
        }
        inst.boot();
        Some(inst)
    }

    /// Replaces `@DIR@` and `@SO@`.
    pub fn expand(&self, text: &str) -> String {
        text.replace("@DIR@", &self.dir.path().display().to_string()).replace("@SO@", &plugin().display().to_string())
    }

    /// Writes a file of the config dir (read at the next start).
    pub fn write_config(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join("conf").join(name), self.expand(text)).expect("writing config");
    }

    /// The ledger path.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }

    /// A path in the instance's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn boot(&mut self) {
        let d = self.dir.path();
        let _ = std::fs::remove_file(d.join("uri"));
        std::fs::write(d.join("keep"), "").expect("keep file");
        let mut cmd = Command::new(&self.install.flux);
        cmd.arg("start")
            .arg(format!("--test-size={}", self.setup.size.max(1)))
            .arg(format!("-Sstatedir={}", d.join("state").display()));
        if !self.setup.config.is_empty() {
            cmd.arg(format!("--config-path={}", d.join("conf").display()));
        }
        for a in &self.setup.args {
            cmd.arg(self.expand(a));
        }
        cmd.args([
            "sh",
            "-c",
            "echo \"$FLUX_URI\" > \"$D/uri.tmp\" && mv \"$D/uri.tmp\" \"$D/uri\"; while test -e \"$D/keep\"; do sleep 0.1; done",
        ]);
        self.base_env(&mut cmd);
        cmd.env_remove("FLUX_URI").env("D", d);
        for (k, v) in &self.setup.env {
            cmd.env(k, self.expand(v));
        }
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(d.join("broker.out")).expect("broker.out"))
            .stderr(std::fs::File::create(d.join("broker.err")).expect("broker.err"))
            .process_group(0);
        let child = cmd.spawn().expect("flux start");
        self.child = Some(child);
        let t0 = Instant::now();
        loop {
            if let Ok(uri) = std::fs::read_to_string(d.join("uri")) {
                self.uri = uri.trim().to_string();
                break;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!("flux start exited ({st}) before the instance was up: {}", self.broker_log());
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "instance did not start: {}", self.broker_log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The broker's stdout and stderr so far.
    pub fn broker_log(&self) -> String {
        let r = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        format!("{}{}", r("broker.out"), r("broker.err"))
    }

    /// Stops the instance (its initial program exits; rc3 runs).
    pub fn stop(&mut self) {
        let _ = std::fs::remove_file(self.dir.path().join("keep"));
        if let Some(mut c) = self.child.take() {
            let t0 = Instant::now();
            loop {
                match c.try_wait() {
                    Ok(Some(st)) => {
                        assert!(st.success() || std::thread::panicking(), "flux start: {st}: {}", self.broker_log());
                        break;
                    }
                    Ok(None) if t0.elapsed() < Duration::from_secs(120) => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        self.kill_group();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
    }

    /// Kills the broker(s) and the initial program at once (SIGKILL to the
    /// process group of `flux start`).
    pub fn kill(&mut self) {
        self.kill_group();
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    fn kill_group(&self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", c.id())]).status();
        }
    }

    /// Stops and starts the instance again, with the same state directory
    /// (so pending jobs come back) and config.
    pub fn restart(&mut self) {
        self.stop();
        self.boot();
    }

    fn base_env(&self, cmd: &mut Command) {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.install.bindir().to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).expect("PATH"))
            .env("FLUX_EXEC_PATH", bindir())
            .env_remove("FLUX_CONNECTOR_PATH")
            .env_remove("FLUX_MODULE_PATH")
            .env_remove("FLUXACCT_LIBFLUX")
            .env_remove("FLUX_EXEC_PATH_PREPEND");
    }

    /// A command run with the instance's environment (FLUX_URI, PATH with
    /// the install's `bin` first, fluxacct's binaries on FLUX_EXEC_PATH).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        self.base_env(&mut cmd);
        cmd.env("FLUX_URI", &self.uri).current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// Runs `flux ARGS`.
    pub fn flux(&self, args: &[&str]) -> Run {
        self.command(&self.install.flux).args(args).output().expect("running flux").into()
    }

    /// Runs `flux ARGS` and returns stdout; panics on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.flux(args);
        assert_eq!(r.code, 0, "flux {args:?} failed: {}{}", r.out, r.err);
        r.out
    }

    /// Runs a shell script with the instance's environment (`$DB` is the
    /// ledger, `$SO` the plugin, `$FA` the `flux-account` binary).
    pub fn sh(&self, script: &str) -> Run {
        self.command("sh")
            .args(["-c", script])
            .env("DB", self.db())
            .env("SO", plugin())
            .env("FA", env!("CARGO_BIN_EXE_flux-account"))
            .output()
            .expect("running sh")
            .into()
    }

    /// Runs a script and returns stdout; panics on failure.
    pub fn sh_ok(&self, script: &str) -> String {
        let r = self.sh(script);
        assert_eq!(r.code, 0, "{script} failed: {}{}", r.out, r.err);
        r.out
    }

    /// Runs `flux-account -p <ledger> ARGS` directly (not through `flux`).
    pub fn account(&self, args: &[&str]) -> Run {
        self.account_at(&self.db(), args)
    }

    /// Runs `flux-account -p DB ARGS` directly.
    pub fn account_at(&self, db: &Path, args: &[&str]) -> Run {
        self.command(env!("CARGO_BIN_EXE_flux-account"))
            .arg("-p")
            .arg(db)
            .args(args)
            .output()
            .expect("running flux-account")
            .into()
    }

    /// `account`, asserting success.
    pub fn account_ok(&self, args: &[&str]) -> String {
        let r = self.account(args);
        assert_eq!(r.code, 0, "flux-account {args:?} failed: {}{}", r.out, r.err);
        r.out
    }

    /// A ledger with root, banks A and B (shares 1), the instance owner in
    /// both (default bank A), and project `shortstops`.
    pub fn site(&self) {
        self.site_at(&self.db());
    }

    /// [`Instance::site`] in another ledger.
    pub fn site_at(&self, db: &Path) {
        let me = owner();
        let (name, uid) = (format!("--username={}", me.1), format!("--userid={}", me.0));
        for args in [
            &["create-db"][..],
            &["add-bank", "root", "1"],
            &["add-bank", "--parent-bank=root", "A", "1"],
            &["add-bank", "--parent-bank=root", "B", "1"],
            &["add-user", &name, &uid, "--bank=A"],
            &["add-user", &name, &uid, "--bank=B"],
            &["add-project", "shortstops"],
        ] {
            let r = self.account_at(db, args);
            assert_eq!(r.code, 0, "flux-account {args:?}: {}", r.err);
        }
    }

    /// Writes the snapshot (`priority-update --no-flux`) and loads the
    /// plugin with it in place of `.priority-default`.
    pub fn load_plugin(&self) {
        self.account_ok(&["priority-update", "--no-flux"]);
        let snap = format!("snapshot={}.snapshot", self.db().display());
        let so = plugin().display().to_string();
        self.ok(&["jobtap", "load", "-r", ".priority-default", &so, &snap]);
    }

    /// `flux jobtap query mf_priority.so` as JSON.
    pub fn query(&self) -> Value {
        serde_json::from_str(&self.ok(&["jobtap", "query", "mf_priority.so"])).expect("query JSON")
    }

    /// Submits a job; returns its id (f58).
    pub fn submit(&self, args: &[&str]) -> String {
        let mut a = vec!["submit"];
        a.extend_from_slice(args);
        self.ok(&a).trim().to_string()
    }

    /// Waits for an event in a job's eventlog (up to 60 s).
    pub fn wait_event(&self, id: &str, event: &str) {
        self.ok(&["job", "wait-event", "-t", "60", id, event]);
    }

    /// A job's eventlog as (name, context) pairs.
    pub fn eventlog(&self, id: &str) -> Vec<(String, Value)> {
        let out = self.ok(&["job", "eventlog", "--format=json", id]);
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|e| (e["name"].as_str().unwrap_or("").to_string(), e["context"].clone()))
            .collect()
    }

    /// A job's attributes from `flux jobs --json`.
    pub fn job(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["jobs", "--json", id])).expect("flux jobs --json")
    }

    /// Waits until `f(job)` holds (up to 60 s), returning the job.
    pub fn wait_job(&self, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let j = self.job(id);
            if f(&j) {
                return j;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "job {id}: {what} never held: {j}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The ledger's recorded jobs (the `jobs` view), by id.
    pub fn recorded(&self) -> Vec<Value> {
        self.recorded_at(&self.db())
    }

    /// The recorded jobs of another ledger.
    pub fn recorded_at(&self, db: &Path) -> Vec<Value> {
        let conn =
            rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open ledger");
        let mut st = conn
            .prepare(
                "SELECT id, userid, bank, queue, project, nnodes, t_submit, t_run, t_inactive FROM jobs ORDER BY id",
            )
            .expect("prepare");
        let rows = st
            .query_map([], |r| {
                Ok(serde_json::json!({
                    "id": r.get::<_, i64>(0)?, "userid": r.get::<_, i64>(1)?, "bank": r.get::<_, Option<String>>(2)?,
                    "queue": r.get::<_, Option<String>>(3)?, "project": r.get::<_, Option<String>>(4)?,
                    "nnodes": r.get::<_, Option<i64>>(5)?, "t_submit": r.get::<_, f64>(6)?,
                    "t_run": r.get::<_, f64>(7)?, "t_inactive": r.get::<_, f64>(8)?,
                }))
            })
            .expect("query");
        rows.map(|r| r.expect("row")).collect()
    }

    /// One association row of the ledger: (job_usage, fairshare).
    pub fn usage(&self, bank: &str) -> (f64, f64) {
        let conn = rusqlite::Connection::open_with_flags(self.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open ledger");
        conn.query_row(
            "SELECT job_usage, fairshare FROM association_table WHERE bank = ?1 AND userid = ?2",
            rusqlite::params![bank, owner().0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("association row")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.kill();
        } else {
            self.stop();
        }
    }
}

/// The user running the tests (the instance owner): (uid, name).
pub fn owner() -> (u32, String) {
    let uid = nix_uid();
    let name = Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| uid.to_string());
    (uid, name)
}

fn nix_uid() -> u32 {
    let o = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&o.stdout).trim().parse().expect("uid")
}

/// Decimal job id of an f58 id (`flux job id`).
pub fn decimal(inst: &Instance, id: &str) -> i64 {
    inst.ok(&["job", "id", "--to=dec", id]).trim().parse().expect("decimal id")
}
