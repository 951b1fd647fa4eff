//! No state the tools cannot get out of: records, damage and kills that
//! once left a site stuck (every later ingest failing, a rebuild that
//! destroyed a readable ledger, a whole file refused for one byte, litter
//! of a killed import), and what the tools do with them now.

mod common;
use common::*;
#[path = "common/dead_ends.rs"]
mod dead_ends;
use dead_ends::*;

use std::path::Path;

use rusqlite::Connection;

fn write_lines(dir: &Path, name: &str, lines: &str) -> String {
    let f = dir.join(name);
    std::fs::write(&f, lines).expect("write");
    f.to_str().expect("utf8").to_string()
}

#[test]
fn job_ids_from_2_pow_63_up_recorded_or_rejected_keep_every_reader_working() {
    let (d, db) = site();
    let big = 1u64 << 63;
    let lines = format!(
        "{{\"id\":{big},\"userid\":1001,\"bank\":\"giants\",\"t_run\":1767300000,\"t_inactive\":1767299000}}\n\
         {{\"id\":{},\"userid\":1001,\"bank\":\"giants\",\"t_run\":1767300000,\"t_inactive\":1767299000}}\n\
         {{\"id\":{},\"userid\":1001,\"bank\":\"giants\",\"t_run\":1767300000,\"t_inactive\":1767300100}}\n\
         {{\"id\":{},\"userid\":1002,\"bank\":\"giants\",\"t_run\":1767300000,\"t_inactive\":1767300200}}\n",
        u64::MAX - 1,
        big + 1,
        u64::MAX,
    );
    let r = fa(&db, &["fetch-job-records", "--from-file", &write_lines(d.path(), "big.jsonl", &lines)]);
    assert_eq!(r.code, 3, "two records rejected: {r:?}");
    // The next ingest: the rejected ids are skipped, fresh records recorded.
    let r = fa(&db, &["fetch-job-records", "--from-file", &write_lines(d.path(), "big.jsonl", &lines)]);
    assert_eq!(r.code, 0, "rejected before and already recorded: {r:?}");
    let fresh = "{\"id\":5000,\"userid\":1001,\"bank\":\"giants\",\"t_run\":1767300000,\"t_inactive\":1767300300}\n";
    ok(&db, &["fetch-job-records", "--from-file", &write_lines(d.path(), "fresh.jsonl", fresh)]);

    let out = ok(&db, &["view-job-records", "-o", "{jobid.dec}"]);
    for id in [big + 1, u64::MAX, 5000] {
        assert!(out.lines().any(|l| l.trim() == id.to_string()), "{id} listed: {out}");
    }
    let out = ok(&db, &["view-job-records", "--jobid", &u64::MAX.to_string(), "-o", "{jobid.dec}"]);
    assert_eq!(out.lines().filter(|l| l.trim() == u64::MAX.to_string()).count(), 1, "{out}");
    let out = ok(&db, &["view-job-records", "--rejected"]);
    assert_eq!(out.lines().count(), 3, "header and two rejections: {out}");
    let out = ok(&db, &["view-job-records", "--rejected", "--jobid", &big.to_string()]);
    assert_eq!(out.lines().count(), 2, "header and one rejection: {out}");

    let csv = d.path().join("csv");
    std::fs::create_dir(&csv).expect("mkdir");
    ok(&db, &["export-db", "--out", csv.to_str().expect("utf8")]);
    let jobs = std::fs::read_to_string(csv.join("jobs.csv")).expect("jobs.csv");
    for id in [big + 1, u64::MAX] {
        assert!(jobs.lines().any(|l| l.starts_with(&format!("{id},"))), "{id} exported exactly: {jobs}");
    }
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok"));
    let out = ok(&db, &["log"]);
    assert!(out.contains("JobRejected"), "{out}");
    let r = fa(&db, &["diff", "seq:1", &format!("seq:{}", event_count(&db))]);
    assert!(r.code == 0 || r.code == 1, "{r:?}");
    ok(&db, &["rebuild"]);
    ok(&db, &["verify"]);
}

#[test]
fn a_line_that_is_not_utf8_is_rejected_alone_and_the_good_lines_are_recorded() {
    let (d, db) = site();
    let before = event_count(&db);
    let mut text = Vec::new();
    text.extend_from_slice(
        b"{\"id\":6001,\"userid\":1001,\"bank\":\"giants\",\"t_run\":1767300000,\"t_inactive\":1767300100}\n",
    );
    text.extend_from_slice(
        b"{\"id\":6002,\"userid\":1001,\"bank\":\"gi\xffnts\",\"t_run\":1767300000,\"t_inactive\":1767300100}\n",
    );
    text.extend_from_slice(
        b"{\"id\":6003,\"userid\":1002,\"bank\":\"giants\",\"t_run\":1767300000,\"t_inactive\":1767300200}\n",
    );
    let f = d.path().join("bytes.jsonl");
    std::fs::write(&f, text).expect("write");
    let r = fa(&db, &["fetch-job-records", "--from-file", f.to_str().expect("utf8")]);
    assert_eq!(r.code, 3, "one record rejected: {r:?}");
    assert!(r.stdout.contains("line 2: record is not UTF-8"), "the rule is named: {r:?}");
    assert_eq!(event_count(&db), before + 3, "two JobRecorded and one JobRejected");
    let out = ok(&db, &["view-job-records", "-o", "{jobid.dec}"]);
    assert!(out.lines().any(|l| l.trim() == "6001") && out.lines().any(|l| l.trim() == "6003"), "{out}");
    let out = ok(&db, &["view-job-records", "--rejected", "--jobid", "6002"]);
    assert!(out.contains("line 2") && out.contains("not UTF-8"), "{out}");
}

#[test]
fn export_db_names_and_leaves_out_a_job_record_that_is_not_json() {
    let (d, db) = site();
    let seq = {
        let conn = Connection::open(&db).expect("open");
        conn.query_row("SELECT min(seq) FROM events WHERE kind = 'JobRecorded'", [], |r| r.get::<_, i64>(0))
            .expect("seq")
    };
    edit_log(
        &db,
        &format!(
            "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), ',', ';') AS BLOB) WHERE seq = {seq}"
        ),
    );
    let csv = d.path().join("csv");
    std::fs::create_dir(&csv).expect("mkdir");
    let r = fa(&db, &["export-db", "--out", csv.to_str().expect("utf8")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("seq {seq}")), "the record is named: {r:?}");
    let jobs = std::fs::read_to_string(csv.join("jobs.csv")).expect("jobs.csv");
    assert_eq!(jobs.lines().count(), 20, "header and the 19 readable jobs: {jobs}");
    assert!(jobs.lines().nth(1).is_some_and(|l| l.starts_with("1001,")), "{jobs}");
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let f = tempfile::NamedTempFile::new().expect("temp file");
    f.as_file().metadata().map(|m| m.uid() == 0).unwrap_or(false)
}

/// `priority-update` as root with `FLUXACCT_LIBFLUX` naming `lib`.
fn priority_update_with(db: &Path, lib: &Path) -> Run {
    let out = std::process::Command::new(BIN)
        .arg("-p")
        .arg(db)
        .arg("priority-update")
        .env("FLUXACCT_NOW", NOW)
        .env("FLUXACCT_LIBFLUX", lib)
        .env_remove("FLUX_URI")
        .output()
        .expect("run flux-account");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn as_root_a_library_another_user_owns_or_a_group_can_write_is_refused_by_name() {
    use std::os::unix::fs::PermissionsExt;
    if !is_root() {
        eprintln!("skipped: not running as root (cannot create a file another user owns)");
        return;
    }
    let has_useradd = std::process::Command::new("sh")
        .args(["-c", "command -v useradd && command -v userdel"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_useradd {
        eprintln!("skipped: useradd/userdel not available");
        return;
    }
    let user = "fxlibowner";
    let exists = std::process::Command::new("id").arg("-u").arg(user).output().is_ok_and(|o| o.status.success());
    if !exists {
        let o = std::process::Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user])
            .output()
            .expect("useradd");
        assert!(o.status.success(), "useradd: {}", String::from_utf8_lossy(&o.stderr));
    }
    struct Remove(&'static str);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::process::Command::new("userdel").arg(self.0).output();
        }
    }
    let _remove = Remove(user);
    let (d, db) = site();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");

    // A file (and its directory) owned by another user.
    let home = d.path().join("home");
    std::fs::create_dir(&home).expect("mkdir");
    let theirs = home.join("libflux-core.so.2");
    std::fs::write(&theirs, b"their code").expect("write");
    let o = std::process::Command::new("chown").arg("-R").arg(user).arg(&home).output().expect("chown");
    assert!(o.status.success(), "chown: {}", String::from_utf8_lossy(&o.stderr));
    let r = priority_update_with(&db, &theirs);
    assert_ne!(r.code, 0, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("refusing to load") && r.stderr.contains(&theirs.display().to_string()), "{r:?}");
    assert!(r.stderr.contains("not root"), "{r:?}");

    // A root-owned file its group may write.
    let ours = d.path().join("lib");
    std::fs::create_dir(&ours).expect("mkdir");
    std::fs::set_permissions(&ours, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let lib = ours.join("libflux-core.so.2");
    std::fs::write(&lib, b"not a library").expect("write");
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o664)).expect("chmod");
    let r = priority_update_with(&db, &lib);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("refusing to load") && r.stderr.contains("writable by its group"), "{r:?}");

    // Once root alone can write it, it is tried (and fails as a library).
    std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let r = priority_update_with(&db, &lib);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("refusing to load") && r.stderr.contains("could not be loaded"), "{r:?}");
}

#[test]
fn absurd_but_well_typed_records_are_rejected_with_the_rule_named() {
    let (d, db) = site();
    let lines = "{\"id\":7001,\"userid\":1001,\"bank\":\"giants\",\"t_submit\":0,\"t_run\":1,\"t_inactive\":1767200000,\"nnodes\":1000000}\n\
                 {\"id\":7002,\"userid\":1001,\"bank\":\"giants\",\"t_run\":1767200000,\"t_inactive\":1767200100,\"requested_duration\":1.7e308}\n\
                 {\"id\":7003,\"userid\":1001,\"bank\":\"giants\",\"t_run\":1767200000,\"t_inactive\":1767200100,\"nnodes\":4000}\n";
    let r = fa(&db, &["fetch-job-records", "--from-file", &write_lines(d.path(), "absurd.jsonl", lines)]);
    assert_eq!(r.code, 3, "{r:?}");
    let out = ok(&db, &["view-job-records", "--rejected"]);
    assert!(out.contains("before 2000-01-01"), "{out}");
    assert!(out.contains("more than a century"), "{out}");
    let out = ok(&db, &["view-job-records", "-o", "{jobid.dec}"]);
    assert!(out.lines().any(|l| l.trim() == "7003"), "the sane record is recorded: {out}");
    assert!(!out.lines().any(|l| l.trim() == "7001" || l.trim() == "7002"), "{out}");
}

const PAGE: usize = 16384;

/// The 1-based number of the leaf table page holding `needle` in a live
/// cell.
fn leaf_page_with(db: &Path, needle: &[u8]) -> usize {
    let bytes = std::fs::read(db).expect("read");
    for (n, p) in bytes.chunks(PAGE).enumerate() {
        if p.len() < PAGE || p[0] != 0x0d {
            continue;
        }
        let ncells = u16::from_be_bytes([p[3], p[4]]) as usize;
        for c in 0..ncells {
            let ptr = u16::from_be_bytes([p[8 + 2 * c], p[9 + 2 * c]]) as usize;
            let end = (ptr + 512).min(PAGE);
            if ptr < PAGE && p[ptr..end].windows(needle.len()).any(|w| w == needle) {
                return n + 1;
            }
        }
    }
    panic!("no leaf page holds {}", String::from_utf8_lossy(needle));
}

#[test]
fn rebuild_refuses_a_damaged_log_page_and_leaves_the_ledger_exactly_as_it_was() {
    let (d, db) = site();
    let mut lines = String::new();
    for i in 0..400u64 {
        let t = 1_767_100_000.0 + i as f64 * 13.0;
        lines.push_str(&format!(
            "{{\"id\":{},\"userid\":1001,\"bank\":\"giants\",\"t_run\":{},\"t_inactive\":{t}}}\n",
            20_000 + i,
            t - 30.0
        ));
    }
    ok(&db, &["fetch-job-records", "--from-file", &write_lines(d.path(), "many.jsonl", &lines)]);
    let seq: i64 = Connection::open(&db)
        .expect("open")
        .query_row("SELECT seq FROM jobs WHERE id = 20200", [], |r| r.get(0))
        .expect("seq");
    // A damaged page in the middle of the log: its page type byte.
    let page = leaf_page_with(&db, b"\"id\":20200,");
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[(page - 1) * PAGE] = 0x00;
    std::fs::write(&db, &bytes).expect("write");
    // Reads of the projections still work.
    ok(&db, &["list-users"]);

    let before = std::fs::read(&db).expect("read");
    let r = fa(&db, &["rebuild"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("table events") && r.stderr.contains("nothing was changed"), "{r:?}");
    let named = |s: &str| -> bool {
        // `seqs A–B` with A <= seq <= B.
        s.split("seqs ").skip(1).any(|rest| {
            let range: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '–').collect();
            let mut it = range.split('–').filter_map(|x| x.parse::<i64>().ok());
            matches!((it.next(), it.next()), (Some(a), Some(b)) if a <= seq && seq <= b)
        })
    };
    assert!(named(&r.stderr), "the seqs it cannot read, {seq} among them: {r:?}");
    assert!(std::fs::read(&db).expect("read") == before, "the ledger is byte for byte as it was");
    ok(&db, &["list-users"]);
    ok(&db, &["view-user", "mays"]);

    let r = fa(&db, &["verify", "--file"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("table events") && named(&r.stderr), "{r:?}");
    let r = fa(&db, &["verify"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(named(&r.stderr), "the chain walk names the seqs: {r:?}");
    let r = fa(&db, &["rebuild", "--check"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(named(&r.stderr), "{r:?}");
}

#[test]
fn rebuild_repairs_a_damaged_projection_page_on_a_copy() {
    let (_d, db) = site();
    let conn = Connection::open(&db).expect("open");
    let root: i64 = conn
        .query_row("SELECT rootpage FROM sqlite_master WHERE name = 'association_table'", [], |r| r.get(0))
        .expect("root");
    drop(conn);
    let clean = snapshot(&db);
    let mut bytes = std::fs::read(&db).expect("read");
    bytes[(root as usize - 1) * PAGE] = 0x00;
    std::fs::write(&db, &bytes).expect("write");
    let out = ok(&db, &["rebuild"]);
    assert!(out.contains("repaired damaged file structure: table association_table"), "{out}");
    assert_eq!(snapshot(&db), clean);
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok"));
    let dir = db.parent().expect("dir");
    let litter: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".rebuild-"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
}

fn import_litter(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".import-"))
        .collect();
    v.sort();
    v
}

#[test]
fn an_import_killed_at_any_point_leaves_nothing_once_the_next_import_has_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures/flux-accounting-dbs/FluxAccountingv0-60-0.db");
    let src = dir.path().join("fa.db");
    fixtures::flux_accounting::generate(&template, &src, &fixtures::flux_accounting::Spec::new(6, 200, 20_000))
        .expect("generate");
    let target = dir.path().join("l.db");
    let mut littered = 0;
    for wait_ms in [5u64, 30, 80, 150, 250, 400] {
        let mut child = std::process::Command::new(BIN)
            .arg("-p")
            .arg(&target)
            .arg("import-db")
            .arg(&src)
            .env("FLUXACCT_NOW", NOW)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if !import_litter(dir.path()).is_empty() {
            littered += 1;
        }
        let _ = std::fs::remove_file(&target);
    }
    assert!(littered > 0, "some kill landed while the temporary file existed");
    // A leftover a running import holds (locked) is not touched.
    let held_path = dir.path().join(".l.db.import-HELD.tmp");
    std::fs::write(&held_path, b"a running import").expect("plant");
    let held = nix::fcntl::Flock::lock(
        std::fs::File::open(&held_path).expect("open"),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .expect("lock");
    let r = fa(&target, &["import-db", src.to_str().expect("utf8")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(import_litter(dir.path()), [".l.db.import-HELD.tmp"], "only the held file is left");
    drop(held);
    ok(&target, &["verify"]);
}
