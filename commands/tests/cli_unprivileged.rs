//! Ordinary local users can read a ledger
//! that another user owns, and see the owner's latest data after every
//! owner write; their writes are refused with one line and change nothing.
//!
//! It needs two local users: run as root, it creates them (`useradd`) and
//! runs the binary as each of them (`runuser -u`). Not run as root (or
//! without `useradd`/`runuser`), it skips with a one-line notice. CI runs
//! as root, so it runs there.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_flux-account");
const NOW: &str = "1767225600";
const OWNER: &str = "fxacct-owner";
const READER: &str = "fxacct-reader";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Creates the local users and removes them again when dropped.
struct Users(Vec<&'static str>);

impl Drop for Users {
    fn drop(&mut self) {
        for u in &self.0 {
            let _ = Command::new("userdel").arg(u).output();
        }
    }
}

fn can_run() -> Option<&'static str> {
    if !nix_is_root() {
        return Some("not running as root (cannot create the test users)");
    }
    for tool in ["useradd", "userdel", "runuser"] {
        let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output();
        if !found.map(|o| o.status.success()).unwrap_or(false) {
            return Some("useradd/userdel/runuser not available");
        }
    }
    None
}

fn nix_is_root() -> bool {
    // The owner of a file we just created is our effective uid.
    use std::os::unix::fs::MetadataExt;
    let f = tempfile::NamedTempFile::new().expect("temp file");
    f.as_file().metadata().map(|m| m.uid() == 0).unwrap_or(false)
}

fn add_user(name: &str) {
    let exists = Command::new("id").arg("-u").arg(name).output().map(|o| o.status.success()).unwrap_or(false);
    if !exists {
        let o = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
            .output()
            .expect("useradd");
        assert!(o.status.success(), "useradd {name}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Runs the copied binary as `user`.
fn run_as(user: &str, bin: &Path, db: &Path, args: &[&str]) -> Out {
    let o = Command::new("runuser")
        .args(["-u", user, "--", "env", &format!("FLUXACCT_NOW={NOW}")])
        .arg(bin)
        .arg("-p")
        .arg(db)
        .args(args)
        .output()
        .expect("runuser");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn ok_as(user: &str, bin: &Path, db: &Path, args: &[&str]) -> String {
    let o = run_as(user, bin, db, args);
    assert_eq!(o.code, 0, "{user}: {args:?} failed: {}{}", o.stdout, o.stderr);
    o.stdout
}

/// The bytes of the ledger and its side files.
fn files(db: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    ["", "-wal"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            let p = PathBuf::from(p);
            let b = std::fs::read(&p).unwrap_or_default();
            (p, b)
        })
        .collect()
}

#[test]
fn other_users_read_the_owners_latest_data_and_cannot_write() {
    if let Some(why) = can_run() {
        eprintln!("skipping the unprivileged-reader test: {why}");
        return;
    }
    let _users = Users(vec![OWNER, READER]);
    add_user(OWNER);
    add_user(READER);

    // A world-traversable directory owned by the ledger's owner, like
    // /var/lib/flux, holding a copy of the binary everyone may run.
    let top = tempfile::Builder::new().prefix("fxacct-unpriv").tempdir_in("/tmp").expect("tempdir");
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = top.path().join("flux-account");
    std::fs::copy(BIN, &bin).expect("copy binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = top.path().join("lib");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let o = Command::new("chown").arg(OWNER).arg(&dir).output().expect("chown");
    assert!(o.status.success());
    let db = dir.join("FluxAccounting.db");

    ok_as(OWNER, &bin, &db, &["create-db"]);
    ok_as(OWNER, &bin, &db, &["add-bank", "root", "1"]);
    ok_as(OWNER, &bin, &db, &["add-bank", "--parent-bank=root", "giants", "1"]);
    ok_as(OWNER, &bin, &db, &["add-user", "--username=crawford", "--bank=giants", "--userid=5001"]);
    let jobs = dir.join("jobs.jsonl");
    std::fs::write(
        &jobs,
        "{\"id\": 77, \"userid\": 5001, \"bank\": \"giants\", \"t_submit\": 1767220000, \"t_run\": 1767220010, \"t_inactive\": 1767221010, \"nnodes\": 2}\n",
    )
    .expect("write jobs");
    std::fs::set_permissions(&jobs, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    ok_as(OWNER, &bin, &db, &["fetch-job-records", "--from-file", jobs.to_str().expect("utf8")]);
    ok_as(OWNER, &bin, &db, &["update-usage"]);
    ok_as(OWNER, &bin, &db, &["update-fshare"]);

    // No file is world-writable; the ledger and its side files are 0644.
    for e in std::fs::read_dir(&dir).expect("read dir") {
        let e = e.expect("entry");
        let mode = e.metadata().expect("metadata").permissions().mode();
        assert_eq!(mode & 0o002, 0, "{} is world-writable ({mode:o})", e.path().display());
    }
    let mode = std::fs::metadata(&db).expect("db").permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "create-db's mode");

    // Every read command a user relies on works for the other user.
    let v = ok_as(READER, &bin, &db, &["view-user", "crawford"]);
    assert!(v.contains("crawford") && v.contains("giants"), "{v}");
    let v = ok_as(READER, &bin, &db, &["view-job-records", "--user", "crawford"]);
    assert!(v.contains("giants") && v.contains("1767221010"), "{v}");
    for args in [
        &["list-banks"][..],
        &["view-bank", "root", "--tree"],
        &["bank-info", "-u", "crawford"],
        &["shares"],
        &["list-users"],
        &["list-projects"],
        &["list-configs"],
        &["log"],
        &["verify"],
    ] {
        ok_as(READER, &bin, &db, args);
    }
    // The metrics too (a read-only open), with the owner's pipeline runs.
    let m = ok_as(READER, &bin, &db, &["metrics"]);
    assert!(m.contains("fluxacct_association_fairshare{bank=\"giants\",user=\"crawford\"}"), "{m}");
    assert!(m.contains("fluxacct_pipeline_last_run_success{stage=\"fetch-job-records\"} 1\n"), "{m}");
    assert!(m.ends_with("# EOF\n"), "{m}");

    // After another owner write, the reader sees it.
    ok_as(OWNER, &bin, &db, &["add-user", "--username=alonso", "--bank=giants", "--userid=5002"]);
    let v = ok_as(READER, &bin, &db, &["view-user", "alonso"]);
    assert!(v.contains("alonso"), "{v}");
    ok_as(OWNER, &bin, &db, &["edit-user", "alonso", "--shares", "7"]);
    let v = ok_as(READER, &bin, &db, &["view-user", "alonso"]);
    let v: serde_json::Value = serde_json::from_str(&v).expect("view-user JSON");
    assert_eq!(v[0]["shares"], 7, "{v}");

    // The reader's writes are refused with one line and change nothing.
    let before = files(&db);
    for args in [
        &["add-bank", "--parent-bank=root", "mets", "1"][..],
        &["edit-user", "crawford", "--shares", "3"],
        &["update-usage"],
        &["update-fshare"],
        &["rebuild"],
        &["priority-update"],
        &["priority-update", "--no-flux"],
        &["checkpoint"],
    ] {
        let o = run_as(READER, &bin, &db, args);
        assert_eq!(o.code, 1, "{args:?}: {}{}", o.stdout, o.stderr);
        assert_eq!(
            o.stderr,
            format!("flux-account: error: only the ledger's owner ({OWNER}) can change it\n"),
            "{args:?}"
        );
    }
    assert!(files(&db) == before, "a refused write changed the ledger");
    let v = ok_as(READER, &bin, &db, &["list-banks"]);
    assert!(!v.contains("mets"), "{v}");
}

#[test]
fn other_users_read_after_another_client_removed_the_wal_and_shm_files() {
    if let Some(why) = can_run() {
        eprintln!("skipping the missing -wal/-shm reader test: {why}");
        return;
    }
    const OWNER2: &str = "fxacct-own2";
    const READER2: &str = "fxacct-read2";
    let _users = Users(vec![OWNER2, READER2]);
    add_user(OWNER2);
    add_user(READER2);
    let top = tempfile::Builder::new().prefix("fxacct-nowal").tempdir_in("/tmp").expect("tempdir");
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = top.path().join("flux-account");
    std::fs::copy(BIN, &bin).expect("copy binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = top.path().join("lib");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let o = Command::new("chown").arg(OWNER2).arg(&dir).output().expect("chown");
    assert!(o.status.success());
    let db = dir.join("FluxAccounting.db");
    ok_as(OWNER2, &bin, &db, &["create-db"]);
    ok_as(OWNER2, &bin, &db, &["add-bank", "root", "1"]);
    ok_as(OWNER2, &bin, &db, &["add-bank", "--parent-bank=root", "giants", "1"]);
    ok_as(OWNER2, &bin, &db, &["add-user", "--username=crawford", "--bank=giants", "--userid=5001"]);

    // Another SQLite client (sqlite3 run by root) closed the file last and
    // took the side files with it.
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        std::fs::remove_file(std::path::PathBuf::from(p)).expect("remove side file");
    }
    let before = files(&db);
    let v = ok_as(READER2, &bin, &db, &["view-user", "crawford"]);
    assert!(v.contains("giants"), "{v}");
    for args in [&["list-banks"][..], &["log"], &["log", "--json"], &["verify"], &["verify", "--full"], &["shares"]] {
        let o = run_as(READER2, &bin, &db, args);
        assert_eq!(o.code, 0, "{args:?}: {}{}", o.stdout, o.stderr);
        assert!(!o.stderr.contains("readonly database"), "{args:?}: {}", o.stderr);
    }
    let o = run_as(READER2, &bin, &db, &["checkpoint", "--no-store"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(files(&db) == before, "a read changed the ledger's files");
    // The owner's next command brings the side files back.
    ok_as(OWNER2, &bin, &db, &["list-banks"]);
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    assert!(std::path::PathBuf::from(wal).exists());
}
