//! Errors name the real cause when a ledger cannot be opened:
//! one line each, exit 1, one test per cause.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::*;
use rusqlite::Connection;

/// Runs `flux-account -p DB args` as an unprivileged user: itself when not
/// root, `nobody` (through runuser) when root, since permission bits do not
/// stop root. `None`, with a notice, when that is impossible here.
fn fa_unprivileged(db: &Path, args: &[&str]) -> Option<Run> {
    let root = nix::unistd::geteuid().is_root();
    let (mut cmd, bin_dir) = if root {
        let ok = Command::new("runuser").args(["-u", "nobody", "--", "true"]).status().is_ok_and(|s| s.success());
        if !ok {
            eprintln!("notice: running as root without runuser/nobody: permission test skipped");
            return None;
        }
        // A copy of the binary that `nobody` may run: the build's target
        // directory may sit below a directory only root can enter (a clone
        // in a `mktemp -d` directory, mode 0700).
        let bin_dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let bin = bin_dir.path().join("flux-account");
        std::fs::copy(BIN, &bin).expect("copy binary");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(&bin);
        (c, Some(bin_dir))
    } else {
        (Command::new(BIN), None)
    };
    let out = cmd.arg("-p").arg(db).args(args).env("FLUXACCT_NOW", NOW).output().expect("run");
    drop(bin_dir);
    Some(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// A ledger in a directory that everybody may enter (tempdirs are 0700).
fn open_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, db) = new_db();
    seed_000(&db);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    (dir, db)
}

fn one_line(r: &Run) -> String {
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    r.stderr.trim_end().to_string()
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = fails(&dir.path().join("nope.db"), &["list-users"]);
    assert!(e.contains("database file does not exist"), "{e}");
}

#[test]
fn no_read_permission() {
    let (_dir, db) = open_db();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    if !nix::unistd::geteuid().is_root() {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let Some(r) = fa_unprivileged(&db, &["list-users"]) else { return };
    let e = one_line(&r);
    assert!(e.contains("cannot read the file: permission denied"), "{e}");
    assert!(!e.contains("not a SQLite database"), "{e}");
}

#[test]
fn read_only_location_for_a_write() {
    let (_dir, db) = open_db();
    if nix::unistd::geteuid().is_root() {
        // The writer must own the ledger (or be refused as not its owner
        // first): give it to `nobody`, in a directory `nobody` cannot write.
        if let Ok(Some(u)) = nix::unistd::User::from_name("nobody") {
            for f in [db.clone(), db.with_extension("db-wal"), db.with_extension("db-shm")] {
                if f.exists() {
                    std::os::unix::fs::chown(&f, Some(u.uid.as_raw()), Some(u.gid.as_raw())).expect("chown");
                    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o444)).expect("chmod");
                }
            }
        }
    } else {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    }
    let Some(r) = fa_unprivileged(&db, &["add-queue", "blue"]) else { return };
    let e = one_line(&r);
    assert!(e.contains("cannot write"), "{e}");
    assert!(!e.contains("not a SQLite database"), "{e}");
    assert_eq!(event_count(&db), 6);
}

#[test]
fn a_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = fails(dir.path(), &["list-users"]);
    assert!(e.contains("is a directory, not a ledger file"), "{e}");
    let e = fails(dir.path(), &["add-queue", "blue"]);
    assert!(e.contains("is a directory"), "{e}");
}

#[test]
fn truncated_or_malformed_file() {
    let (_dir, db) = open_db();
    let bytes = std::fs::read(&db).expect("read");
    std::fs::write(&db, &bytes[..bytes.len() - 16384]).expect("truncate");
    let e = fails(&db, &["list-users"]);
    assert!(e.contains("is damaged: database disk image is malformed (truncated"), "{e}");
    std::fs::write(&db, &bytes[..50]).expect("truncate");
    let e = fails(&db, &["list-users"]);
    assert!(e.contains("database disk image is malformed (truncated to 50 bytes"), "{e}");
}

#[test]
fn not_a_sqlite_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("notes.txt");
    std::fs::write(
        &f,
        "just some text, long enough to be more than a SQLite header would be............................\n",
    )
    .expect("write");
    let e = fails(&f, &["list-users"]);
    assert!(e.contains("not a SQLite database"), "{e}");
}

#[test]
fn sqlite_but_not_a_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("other.db");
    Connection::open(&f).expect("open").execute_batch("CREATE TABLE association_table(x)").expect("create");
    let e = fails(&f, &["list-users"]);
    assert!(e.ends_with("is not a fluxacct ledger"), "{e}");
}

#[test]
fn flux_accounting_database_only_when_its_tables_say_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("FluxAccounting.db");
    Connection::open(&f)
        .expect("open")
        .execute_batch("CREATE TABLE association_table(x); CREATE TABLE bank_table(y);")
        .expect("create");
    let e = fails(&f, &["list-users"]);
    assert!(e.contains("it is a flux-accounting database"), "{e}");
}

#[test]
fn newer_schema() {
    let (_dir, db) = open_db();
    Connection::open(&db).expect("open").pragma_update(None, "user_version", ledger::SCHEMA_VERSION + 1).expect("bump");
    let e = fails(&db, &["list-users"]);
    assert!(e.contains("newer than this fluxacct supports"), "{e}");
}
