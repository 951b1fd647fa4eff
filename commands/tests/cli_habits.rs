//! What admins type by habit. The duration
//! trap, clap's whole usage errors (exit 2), argparse-style option
//! prefixes, dates read and shown in the local time zone, epoch `--as-of`,
//! the right errors, warnings on stdout, `-v` summaries and clock steps.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_flux-account");
const UPDATE_USAGE: &str = env!("CARGO_BIN_EXE_flux-account-update-usage");
/// 2026-01-01T00:00:00Z.
const NOW: &str = "1767225600";
const LA: &str = "America/Los_Angeles";

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `flux-account -p DB args…` with `FLUXACCT_NOW=now` and `TZ=tz`.
fn run_env(db: &Path, now: &str, tz: &str, args: &[&str]) -> Out {
    let o = Command::new(BIN)
        .arg("-p")
        .arg(db)
        .args(args)
        .env("FLUXACCT_NOW", now)
        .env("TZ", tz)
        .output()
        .expect("run flux-account");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn run(db: &Path, args: &[&str]) -> Out {
    run_env(db, NOW, "UTC", args)
}

fn ok_env(db: &Path, now: &str, tz: &str, args: &[&str]) -> String {
    let o = run_env(db, now, tz, args);
    assert_eq!(o.code, 0, "{args:?} failed: {}{}", o.stdout, o.stderr);
    o.stdout
}

fn ok(db: &Path, args: &[&str]) -> String {
    ok_env(db, NOW, "UTC", args)
}

/// Asserts a refusal: exit 1, exactly one stderr line; returns it.
fn refused(o: &Out, what: &str) -> String {
    assert_eq!(o.code, 1, "{what}: {o:?}");
    assert_eq!(o.stderr.lines().count(), 1, "{what}: {o:?}");
    o.stderr.trim_end().to_string()
}

/// Asserts a usage error: exit 2, clap's whole message (more than one
/// line, ending with the pointer to `--help`).
fn usage_error(o: &Out, what: &str) -> String {
    assert_eq!(o.code, 2, "{what}: {o:?}");
    assert!(o.stderr.starts_with("error: "), "{what}: {}", o.stderr);
    assert!(o.stderr.trim_end().ends_with("For more information, try '--help'."), "{what}: {}", o.stderr);
    o.stderr.clone()
}

fn files(db: &Path) -> Vec<Vec<u8>> {
    ["", "-wal"]
        .iter()
        .map(|s| {
            let mut p = db.as_os_str().to_owned();
            p.push(s);
            std::fs::read(PathBuf::from(p)).unwrap_or_default()
        })
        .collect()
}

fn site() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    ok(&db, &["create-db"]);
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "giants", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "mets", "1"]);
    ok(&db, &["add-queue", "orange"]);
    ok(&db, &["add-project", "shortstops"]);
    ok(&db, &["add-user", "--username=alice", "--bank=giants", "--userid=5001"]);
    (dir, db)
}

/// Records jobs given as (id, uid, bank, nnodes, t_run, t_inactive).
fn ingest(db: &Path, now: &str, tz: &str, jobs: &[(u64, i64, &str, i64, f64, f64)]) {
    let text: String = jobs
        .iter()
        .map(|(id, uid, bank, n, run, end)| {
            format!(
                "{}\n",
                json!({"id": id, "userid": uid, "bank": bank, "t_submit": run - 10.0, "t_run": run,
                       "t_inactive": end, "nnodes": n})
            )
        })
        .collect();
    let path = db.with_extension(format!("jobs{}.jsonl", jobs[0].0));
    std::fs::write(&path, text).expect("write jobs");
    ok_env(db, now, tz, &["fetch-job-records", "--from-file", path.to_str().expect("utf8")]);
}

#[test]
fn duration_trap_bare_seconds_are_refused_with_the_hint_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("new.db");
    // An option value out of range: a usage error (exit 2) with the hint.
    let o = run(&db, &["create-db", "--priority-decay-half-life", "604800"]);
    let e = usage_error(&o, "create-db 604800");
    assert!(e.contains("604800s") && e.contains("1w") && e.contains("weeks"), "{e}");
    assert!(!db.exists(), "the refused create-db left a file");
    let o = run(&db, &["create-db", "--priority-usage-reset-period", "2419200"]);
    assert!(usage_error(&o, "reset 2419200").contains("2419200s"));
    assert!(!db.exists());

    ok(&db, &["create-db", "--priority-decay-half-life", "604800s", "--priority-usage-reset-period", "4"]);
    // edit-config reads durations as flux-accounting does: a bare number
    // is seconds there (parity_cli.rs pins it).
    ok(&db, &["edit-config", "priority_decay_half_life=2w"]);
    let v = ok(&db, &["view-config", "priority_decay_half_life"]);
    assert!(v.contains("1209600"), "{v}");
}

#[test]
fn usage_errors_show_clap_whole_message_and_exit_2() {
    let (_d, db) = site();
    let before = files(&db);
    // A missing required argument: which one, and the usage line.
    let e = usage_error(&run(&db, &["add-user", "--username=bob"]), "missing --bank");
    assert!(e.contains("the following required arguments were not provided") && e.contains("--bank <BANK>"), "{e}");
    assert!(e.contains("\nUsage: flux-account add-user "), "{e}");
    // An invalid value lists the valid ones.
    let e = usage_error(&run(&db, &["view-usage-report", "-r", "bogus"]), "invalid value");
    assert!(e.contains("byassociation") && e.contains("byuser") && e.contains("bybank"), "{e}");
    // An unknown subcommand suggests the nearest.
    let e = usage_error(&run(&db, &["add-projects", "x"]), "unknown subcommand");
    assert!(e.contains("'add-project'"), "{e}");
    assert_eq!(files(&db), before, "a usage error changed the ledger");
    // An alias's help shows a usage line that works as typed.
    let o = Command::new(UPDATE_USAGE).arg("--help").output().expect("run alias");
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(help.contains("Usage: flux-account-update-usage [OPTIONS]"), "{help}");
    // A refusal exits 1.
    refused(&run(&db, &["add-bank", "--parent-bank=nope", "x", "1"]), "refusal");
}

#[test]
fn long_options_take_unambiguous_prefixes_like_argparse() {
    let (_d, db) = site();
    ok(&db, &["edit-user", "alice", "--queue", "orange", "--proj", "shortstops"]);
    let v: Value = serde_json::from_str(&ok(&db, &["view-user", "alice"])).expect("json");
    assert_eq!(v[0]["queues"], "orange");
    assert!(v[0]["projects"].as_str().expect("projects").contains("shortstops"), "{v}");
    // An ambiguous prefix is a usage error.
    usage_error(&run(&db, &["edit-user", "alice", "--max", "3"]), "ambiguous prefix");
}

#[test]
fn typed_and_shown_dates_agree_in_the_local_time_zone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    // Midnight of New Year in Los Angeles, 08:00 UTC.
    let at = "2026-01-01 00:00:00";
    ok_env(&db, at, LA, &["create-db"]);
    ok_env(&db, at, LA, &["add-bank", "root", "1"]);
    ok_env(&db, "2026-01-01 00:10:00", LA, &["add-bank", "--parent-bank=root", "giants", "1"]);
    let log = ok_env(&db, at, LA, &["log"]);
    assert!(
        log.contains("2026-01-01T00:00:00.000000-08:00") && log.contains("2026-01-01T00:10:00.000000-08:00"),
        "{log}"
    );
    // The date shown is the date typed.
    let since = ok_env(&db, at, LA, &["log", "--since", "2026-01-01 00:10:00"]);
    assert_eq!(since.lines().count(), 1, "{since}");
    assert!(since.contains("giants"));
    let banks = ok_env(&db, at, LA, &["--as-of", "Jan 01, 2026 12:05am", "list-banks"]);
    assert!(banks.contains("root") && !banks.contains("giants"), "{banks}");
    let banks = ok_env(&db, at, LA, &["--as-of", "2026-01-01 00:10:00", "list-banks"]);
    assert!(banks.contains("giants"), "{banks}");
    // --ignore-older-than takes local dates too (add-bank and edit-bank).
    ok_env(&db, at, LA, &["add-bank", "--parent-bank=root", "mets", "1", "--ignore-older-than", "2025-12-31 16:00"]);
    ok_env(&db, at, LA, &["edit-bank", "giants", "--ignore-older-than", "Dec 31, 2025 4pm"]);
    let banks = ok_env(&db, at, LA, &["list-banks", "-o", "{bank} {ignore_older_than}"]);
    assert!(banks.contains("mets 1767225600") && banks.contains("giants 1767225600"), "{banks}");
    let o = run_env(&db, at, LA, &["--as-of", "2025-12-31 23:59:59", "list-banks"]);
    assert!(refused(&o, "before the first event").contains("2025-12-31T23:59:59.000000-08:00"));
}

#[test]
fn a_reports_default_window_and_the_explicit_local_one_agree() {
    let (_d, db) = site();
    // Jobs ending on 2026-01-01 in Los Angeles: 03:00 local (11:00Z) and
    // 20:00 local (2026-01-02T04:00Z), and one the day before.
    let t = |s: &str| {
        let o = Command::new("date").env("TZ", LA).args(["-d", s, "+%s"]).output().expect("date");
        String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().expect("epoch")
    };
    let (a, b, c) = (t("2026-01-01 03:00"), t("2026-01-01 20:00"), t("2025-12-31 12:00"));
    // Recorded after the jobs ended (2026-01-02T12:00Z): the ingest rules
    // refuse end times more than a day after the ingest time.
    ingest(
        &db,
        "1767355200",
        LA,
        &[
            (1, 5001, "giants", 1, a - 100.0, a),
            (2, 5001, "giants", 2, b - 50.0, b),
            (3, 5001, "giants", 4, c - 10.0, c),
        ],
    );
    let now = "2026-01-02 12:00:00";
    let default = ok_env(&db, now, LA, &["view-usage-report"]);
    let explicit = ok_env(&db, now, LA, &["view-usage-report", "--start", "2026-01-01", "--end", "2026-01-02"]);
    assert_eq!(default, explicit);
    // Both jobs of that local day, not the one before: 1*100 + 2*50 = 200.
    assert!(default.contains("giants:") && default.contains("200.00"), "{default}");
    let epoch = ok_env(
        &db,
        now,
        LA,
        &[
            "view-usage-report",
            "--start",
            &format!("{}", t("2026-01-01 00:00")),
            "--end",
            &format!("{}", t("2026-01-02 00:00")),
        ],
    );
    assert_eq!(default, epoch);
}

#[test]
fn as_of_plain_integers_from_1e9_are_epoch_seconds_and_smaller_ones_seqs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    ok_env(&db, "1796400000", "UTC", &["create-db"]);
    ok_env(&db, "1796400100", "UTC", &["add-bank", "root", "1"]);
    ok_env(&db, "1796400200", "UTC", &["add-bank", "--parent-bank=root", "giants", "1"]);
    let only_root = |args: &[&str]| {
        let v = ok(&db, args);
        assert!(v.contains("root") && !v.contains("giants"), "{args:?}: {v}");
    };
    only_root(&["--as-of", "1796400150", "list-banks"]);
    only_root(&["--as-of", "@1796400150", "list-banks"]);
    only_root(&["--as-of", "2", "list-banks"]);
    only_root(&["--as-of", "seq:2", "list-banks"]);
    assert!(ok(&db, &["--as-of", "3", "list-banks"]).contains("giants"));
    assert!(ok(&db, &["--as-of", "1796400200", "list-banks"]).contains("giants"));
    let o = run(&db, &["--as-of", "seq:1796400150", "list-banks"]);
    assert!(refused(&o, "seq beyond head").contains("beyond the ledger's head"));
    let d = ok(&db, &["diff", "2", "1796400200"]);
    assert!(d.contains("giants"), "{d}");
    let help = ok(&db, &["--help"]);
    assert!(help.contains("seq:N") && help.contains("@EPOCH"), "{help}");
}

#[test]
fn right_errors_name_the_real_problem() {
    let (_d, db) = site();
    let before = files(&db);
    let e = refused(&run(&db, &["edit-user", "alice", "-B", "typo", "--shares", "2"]), "-B typo");
    assert_eq!(e, "flux-account: error: bank typo not found in bank_table");
    let e = refused(&run(&db, &["edit-user", "alice", "-B", "mets", "--shares", "2"]), "-B other bank");
    assert_eq!(e, "flux-account: error: user alice does not belong to bank mets");
    let e = refused(&run(&db, &["clear-usage", "nosuch"]), "clear-usage nosuch");
    assert_eq!(e, "flux-account: error: bank nosuch not found in bank_table");
    refused(&run(&db, &["clear-usage", "giants", "nosuch"]), "clear-usage giants nosuch");
    assert_eq!(files(&db), before, "a refused command changed the ledger");
    // edit-all-users does not advertise --userid, which it refuses.
    let help = ok(&db, &["edit-all-users", "--help"]);
    assert!(!help.contains("--userid"), "{help}");
    assert!(refused(&run(&db, &["edit-all-users", "--userid", "7"]), "--userid").contains("cannot set --userid"));
}

#[test]
fn warnings_are_printed_on_stdout_like_flux_accounting() {
    let (_d, db) = site();
    ok(&db, &["edit-user", "alice", "--queues", "orange"]);
    let o = run(&db, &["delete-queue", "orange"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.to_lowercase().contains("warning"), "{o:?}");
    assert_eq!(o.stderr, "");
}

#[test]
fn verbose_pipeline_steps_print_one_summary_line() {
    let (_d, db) = site();
    let end = 1767225000.0;
    ingest(&db, NOW, "UTC", &[(1, 5001, "giants", 2, end - 500.0, end)]);
    for (args, what) in [
        (&["update-usage", "-v"][..], "update-usage: 1 of 1 associations changed job usage in "),
        (&["update-fshare", "-v"], "update-fshare: "),
        (&["priority-update", "--no-flux", "-v"], "priority-update: 1 of 1 associations changed in the snapshot in "),
    ] {
        let out = ok(&db, args);
        let line = out.lines().last().unwrap_or_default();
        assert!(line.starts_with(what) && line.ends_with(" s"), "{args:?}: {out}");
    }
    assert_eq!(ok(&db, &["update-usage"]), "", "without -v nothing is printed");
}

fn job_usage(db: &Path, now: &str) -> f64 {
    let v: Value = serde_json::from_str(&ok_env(db, now, "UTC", &["view-user", "alice"])).expect("json");
    v[0]["job_usage"].as_f64().expect("job_usage")
}

/// After the clock was stepped forward (even by years) and back,
/// update-usage keeps working: the later run is recorded and computes usage
/// as of its own time, exactly as if the forward step had not happened.
#[test]
fn update_usage_keeps_working_after_the_clock_stepped_forward_and_back() {
    let make = || {
        let (d, db) = site();
        let t = 1767225600.0;
        ingest(
            &db,
            NOW,
            "UTC",
            &[
                (1, 5001, "giants", 2, t - 3000.0, t - 1000.0),
                (2, 5001, "giants", 1, t - 86400.0 * 8.0, t - 86400.0 * 7.5),
            ],
        );
        (d, db)
    };
    let (_a, reference) = make();
    ok_env(&reference, "1767225600", "UTC", &["update-usage"]);
    let want = job_usage(&reference, NOW);
    assert!(want > 0.0);

    for forward in ["1767225700", "1893456000"] {
        let (_b, db) = make();
        ok_env(&db, forward, "UTC", &["update-usage"]);
        let o = run_env(&db, "1767225600", "UTC", &["update-usage"]);
        assert_eq!(o.code, 0, "{forward}: {o:?}");
        assert!(o.stderr.contains("behind the last usage update"), "{o:?}");
        assert_eq!(job_usage(&db, NOW), want, "stepped to {forward} and back");
        // Later runs keep working, and the projections equal a replay.
        ok_env(&db, "1767225660", "UTC", &["update-usage"]);
        ok(&db, &["rebuild", "--check"]);
        assert!(ok(&db, &["verify"]).starts_with("ok"));
    }
}

/// Job ids are read in every FLUID form flux accepts, words included, and
/// f58 ids are printed with `ƒ` only under a UTF-8 locale.
#[test]
fn job_ids_in_every_fluid_form_and_f58_by_locale() {
    let (_d, db) = site();
    let id: u64 = 0x2a_0f00_0000_0001;
    let end = 1767225000.0;
    ingest(&db, NOW, "UTC", &[(id, 5001, "giants", 2, end - 500.0, end), (7, 5001, "giants", 1, end - 50.0, end)]);
    let f58_plain = {
        let o = Command::new(BIN)
            .arg("-p")
            .arg(&db)
            .args(["view-job-records", "-j", &id.to_string()])
            .env("LC_ALL", "C")
            .output()
            .expect("run");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let cell = f58_plain.lines().nth(1).and_then(|l| l.split_whitespace().next()).expect("row").to_string();
    assert!(cell.starts_with('f') && !f58_plain.contains('ƒ'), "{f58_plain}");
    let utf8 = Command::new(BIN)
        .arg("-p")
        .arg(&db)
        .args(["view-job-records", "-j", &id.to_string()])
        .env("LC_ALL", "en_US.UTF-8")
        .output()
        .expect("run");
    let utf8 = String::from_utf8_lossy(&utf8.stdout).into_owned();
    assert!(utf8.contains(&format!("ƒ{}", &cell[1..])), "{utf8}");
    let words = ok(&db, &["view-job-records", "-j", &id.to_string()]);
    for form in [
        format!("{id:#x}"),
        "002a.0f00.0000.0001".to_string(),
        "job.002a.0f00.0000.0001".to_string(),
        cell.clone(),
        format!("ƒ{}", &cell[1..]),
        mnemonic::to_string(id.to_le_bytes()),
    ] {
        assert_eq!(ok(&db, &["view-job-records", "-j", &form]), words, "{form}");
    }
}

/// Config values are shown as flux-accounting shows them (`1.0`, `0.5`).
#[test]
fn config_values_are_shown_like_flux_accounting() {
    let (_d, db) = site();
    let v = ok(&db, &["list-configs", "-o", "{key}={value}"]);
    for want in
        ["decay_factor=0.5", "node_weight=1.0", "core_weight=0.0", "gpu_weight=0.0", "priority_decay_half_life=604800"]
    {
        assert!(v.lines().any(|l| l == want), "{want}: {v}");
    }
}

/// A writer that waits on the lock says once what it is waiting for, and
/// who holds the lock; it goes on when the lock is released.
#[test]
fn a_waiting_writer_says_what_it_waits_for_and_who_holds_the_lock() {
    use std::io::BufRead;
    let (_d, db) = site();
    let holder = rusqlite::Connection::open(&db).expect("open");
    holder.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
    let mut child = Command::new(BIN)
        .arg("-p")
        .arg(&db)
        .args(["add-bank", "--parent-bank=root", "cubs", "1"])
        .env("FLUXACCT_NOW", NOW)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    // The notice comes while the lock is still held (the writer waits up
    // to 60 s, so this cannot race).
    let notice = lines.next().expect("a notice").expect("utf8");
    holder.execute_batch("ROLLBACK").expect("release");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{notice} {rest:?}");
    assert!(rest.is_empty(), "the notice is said once: {rest:?}");
    let me = std::process::id();
    assert!(notice.starts_with("flux-account: waiting for the ledger's write lock, held by pid "), "{notice}");
    assert!(notice.contains(&format!("pid {me} (")), "{notice}");
    assert!(ok(&db, &["list-banks"]).contains("cubs"));
}

/// `clear-usage` without `--ignore-older-than` resets at the exact current
/// time: a job that ended earlier in the same second no longer counts, one
/// that ended later in that second does.
#[test]
fn clear_usage_uses_the_exact_current_time() {
    let (_d, db) = site();
    let t = 1767225600.0;
    ingest(&db, "1767225600.2", "UTC", &[(1, 5001, "giants", 2, t - 100.0, t + 0.2)]);
    ok_env(&db, "1767225600.5", "UTC", &["clear-usage", "giants"]);
    ingest(&db, "1767225600.9", "UTC", &[(2, 5001, "giants", 1, t - 9.1, t + 0.9)]);
    ok_env(&db, "1767225700", "UTC", &["update-usage"]);
    assert_eq!(job_usage(&db, "1767225700"), 1.0 * (t + 0.9 - (t - 9.1)), "only the job after the reset counts");
    ok(&db, &["rebuild", "--check"]);
}

/// A ledger with `root` added two hours before NOW and `giants` at NOW.
fn two_hour_site() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let before = "1767218400";
    ok_env(&db, before, "UTC", &["create-db"]);
    ok_env(&db, before, "UTC", &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "giants", "1"]);
    ok(&db, &["add-user", "--username=alice", "--bank=giants", "--userid=5001"]);
    (dir, db)
}

#[test]
fn relative_dates_typed_with_a_leading_dash_are_offsets_from_now() {
    let (_d, db) = two_hour_site();
    for args in
        [&["--as-of", "-1h", "list-banks"][..], &["list-banks", "--as-of", "-1h"], &["--as-of=-1h", "list-banks"]]
    {
        let v = ok(&db, args);
        assert!(v.contains("root") && !v.contains("giants"), "{args:?}: {v}");
    }
    let log = ok(&db, &["log", "--since", "-10m"]);
    assert!(log.contains("giants") && !log.contains("DbCreated"), "{log}");
    assert_eq!(ok(&db, &["log", "--until", "-1h", "--kind", "BankAdded"]).lines().count(), 1);
    assert!(ok(&db, &["diff", "-1h", "now"]).contains("giants"));
    ok(&db, &["view-usage-report", "-s", "-1d", "-e", "-1s"]);
    ok(&db, &["view-job-records", "-a", "-1d", "-b", "+1h"]);
    ok(&db, &["jobs", "alice", "--since", "-1d", "--help"]);
    ok(&db, &["clear-usage", "giants", "--ignore-older-than", "-1w"]);
    ok(&db, &["edit-bank", "giants", "--ignore-older-than", "-2d"]);
    // A following option is not swallowed as a date: the value is missing.
    let before = files(&db);
    let e = usage_error(&run(&db, &["log", "--since", "--json"]), "--since --json");
    assert!(e.contains("a value is required for '--since <TIME>'"), "{e}");
    let e = usage_error(&run(&db, &["view-usage-report", "-u", "alice", "-s", "-u"]), "-s -u");
    assert!(e.contains("a value is required for '--start <DATE>'"), "{e}");
    usage_error(&run(&db, &["view-usage-report", "-s", "-u", "alice"]), "-s -u alice");
    usage_error(&run(&db, &["edit-bank", "giants", "--ignore-older-than", "--shares", "2"]), "no value");
    assert_eq!(files(&db), before);
}

#[test]
fn an_ambiguous_option_prefix_lists_every_option_it_could_be() {
    let (_d, db) = site();
    let e = usage_error(&run(&db, &["add-user", "--user", "bob", "--bank", "giants"]), "--user");
    assert!(e.starts_with("error: ambiguous option '--user' could match '--username' or '--userid'\n"), "{e}");
    assert!(e.contains("\nUsage: flux-account add-user "), "{e}");
    let e = usage_error(&run(&db, &["edit-user", "alice", "--max=3"]), "--max");
    assert!(e.contains("'--max-running-jobs'") && e.contains("'--max-sched-jobs'"), "{e}");
    // Subcommand typos: the nearest first.
    let e = usage_error(&run(&db, &["veiw-user", "alice"]), "veiw-user");
    assert!(e.contains("similar subcommands exist: 'view-user', "), "{e}");
}

/// Job ids, duration expressions and config values are checked when the
/// command line is parsed: a malformed one exits 2 with clap's message
/// naming the option and the usage line, and changes nothing.
#[test]
fn malformed_job_ids_duration_expressions_and_config_values_are_usage_errors() {
    let (_d, db) = site();
    let before = files(&db);
    for (args, says) in [
        (&["view-job-records", "-j", "notanid"][..], "invalid value 'notanid' for '--jobid <JOBID>': invalid job id"),
        (&["view-job-records", "--jobid=f!!"], "invalid value 'f!!' for '--jobid <JOBID>'"),
        (&["view-job-records", "--rejected", "-j", "x"], "invalid value 'x' for '--jobid <JOBID>'"),
        (
            &["view-job-records", "-d", "<100"],
            "invalid value '<100' for '--requested-duration <EXPR>...': expression expects one operator and one value",
        ),
        (
            &["view-job-records", "-e", "~ 5"],
            "invalid value '~ 5' for '--actual-duration <EXPR>...': expression must start with",
        ),
        (
            &["view-job-records", "-D", "> x"],
            "invalid value '> x' for '--duration-delta <EXPR>...': expression expects to be compared with a number",
        ),
        (&["view-job-records", "-a", "someday"], "invalid value 'someday' for '--after-start-time <TIME>'"),
        (&["view-job-records", "-b", "never"], "invalid value 'never' for '--before-end-time <TIME>'"),
        (&["jobs", "alice", "-j", "nope"], "invalid value 'nope' for '--jobids <ID>...': invalid job id"),
        (
            &["edit-config", "priority_decay_half_life=soon"],
            "invalid value 'priority_decay_half_life=soon' for '<PAIRS>...': invalid Flux standard duration",
        ),
        (&["edit-config", "node_weight=heavy"], "could not convert string to float: 'heavy'"),
        (&["edit-config", "core_weight=-1"], "core_weight must not be negative"),
        (&["edit-config", "decay_factor=2"], "decay_factor must be a floating-point value between 0 and 1"),
        (&["edit-config", "deny_unknown_queues=maybe"], "deny_unknown_queues must be 'true' or 'false'"),
        (&["edit-config", "novalue"], "key-value string must contain exactly one \"=\""),
    ] {
        let e = usage_error(&run(&db, args), &format!("{args:?}"));
        assert!(e.starts_with("error: invalid value '"), "{args:?}: {e}");
        assert!(e.contains(says), "{args:?}: {e}");
        assert!(e.contains(&format!("\nUsage: flux-account {} ", args[0])), "{args:?}: {e}");
    }
    assert_eq!(files(&db), before, "a usage error changed the ledger");
    // Well-formed values still pass the parse (and the ledger decides).
    assert_eq!(run(&db, &["edit-config", "decay_factor=0.5"]).code, 0);
    assert_eq!(run(&db, &["view-job-records", "-j", "ƒ2", "-d", "> 1"]).code, 0);
}

#[test]
fn malformed_or_out_of_range_values_are_usage_errors_whatever_the_option() {
    let (_d, db) = site();
    let before = files(&db);
    for (args, says) in [
        (&["log", "--since", "yesterdayish"][..], "invalid value 'yesterdayish' for '--since <TIME>'"),
        (&["--as-of", "seq:x", "list-banks"], "invalid value 'seq:x' for '--as-of <SEQ|TIME>'"),
        (&["diff", "1", "someday"], "invalid value 'someday' for '<TO>'"),
        (&["add-bank", "--parent-bank=root", "x", "many"], "invalid value 'many' for '[SHARES]'"),
        (&["add-bank", "--parent-bank=root", "x", "1", "--priority", "high"], "'--priority <PRIORITY>'"),
        (&["add-user", "--username=bob", "--bank=giants", "--userid=-5"], "'--userid <USERID>'"),
        (&["add-user", "--username=bob", "--bank=giants", "--fairshare=1.5"], "must be between 0 and 1"),
        (&["edit-user", "alice", "--max-nodes", "many"], "'--max-nodes <MAX_NODES>'"),
        (&["edit-bank", "giants", "--shares", "0"], "must be a positive integer"),
        (&["edit-factor", "--factor", "fairshare", "--weight", "-2"], "'--weight <WEIGHT>'"),
        (&["edit-queue", "orange", "-P", "x"], "'--priority <PRIORITY>'"),
        (&["log", "--kind", "Nope"], "invalid value 'Nope' for '--kind <KIND>'"),
        (&["man", "nope"], "invalid value 'nope' for '[SUBCOMMAND]'"),
    ] {
        let e = usage_error(&run(&db, args), &format!("{args:?}"));
        assert!(e.contains(says), "{args:?}: {e}");
        assert!(e.contains("\nUsage: flux-account "), "{args:?}: {e}");
    }
    assert_eq!(files(&db), before, "a usage error changed the ledger");
}

#[test]
fn an_empty_listing_prints_the_header_and_exits_0() {
    let (_d, db) = site();
    let o = run(&db, &["list-users", "--bank", "mets"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.starts_with("creation_time | mod_time | active | username"), "{o:?}");
    assert_eq!(o.stdout.lines().count(), 2, "{o:?}");
    assert_eq!(o.stderr, "no results found in query\n");
    let o = run(&db, &["list-users", "--bank", "mets", "--json"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "[]\n"), "{o:?}");
    let o = run(&db, &["list-users", "--bank", "mets", "-o", "{username}:{bank}"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "username:bank\n"), "{o:?}");
    ok(&db, &["delete-queue", "orange"]);
    assert_eq!(ok(&db, &["list-queues", "--fields", "queue"]), "queue\n-----\n");
    // Naming something that does not exist stays a refusal.
    refused(&run(&db, &["view-user", "nobody"]), "view-user nobody");
}

#[test]
fn log_kind_refuses_unknown_kinds_listing_them_and_matches_any_case() {
    let (_d, db) = site();
    let e = usage_error(&run(&db, &["log", "--kind", "BankAdd"]), "BankAdd");
    assert!(e.contains("[possible values: DbCreated, BankAdded,") && e.contains("JobRecorded"), "{e}");
    let exact = ok(&db, &["log", "--kind", "BankAdded"]);
    assert_eq!(exact.lines().count(), 3, "{exact}");
    assert_eq!(ok(&db, &["log", "--kind", "bankadded"]), exact);
    assert_eq!(ok(&db, &["log", "--kind", "BANKADDED"]), exact);
}

#[test]
fn every_subcommand_has_a_man_page_and_man_all_writes_them() {
    let (dir, db) = site();
    let page = ok(&db, &["man", "add-user"]);
    assert!(page.contains(".TH flux-account-add-user 1"), "{page}");
    assert!(page.contains("\\-\\-username"), "{page}");
    let main = ok(&db, &["man"]);
    assert!(main.contains(".TH flux-account 1") && main.contains("flux\\-account\\-add\\-user(1)"), "{main}");
    let out = dir.path().join("man1");
    std::fs::create_dir(&out).expect("mkdir");
    assert_eq!(ok(&db, &["man", "--all", "--out", out.to_str().expect("utf8")]), "");
    let help = ok(&db, &["--help"]);
    for sub in ["add-user", "view-user", "log", "man", "list-banks"] {
        assert!(help.contains(sub));
        let file = out.join(format!("flux-account-{sub}.1"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(text.contains(&format!(".TH flux-account-{sub} 1")), "{text}");
    }
    assert!(out.join("flux-account.1").exists());
    usage_error(&run(&db, &["man", "--all"]), "--all without --out");
}

#[test]
fn as_of_is_in_the_help_of_read_commands_only_and_works_before_or_after_them() {
    let (_d, db) = site();
    assert!(ok(&db, &["view-user", "--help"]).contains("--as-of <SEQ|TIME>"));
    assert!(ok(&db, &["list-banks", "--help"]).contains("--as-of <SEQ|TIME>"));
    assert!(!ok(&db, &["add-user", "--help"]).contains("--as-of"));
    assert!(!ok(&db, &["edit-bank", "--help"]).contains("--as-of"));
    assert!(ok(&db, &["--help"]).contains("--as-of <SEQ|TIME>"));
    let after = ok(&db, &["view-bank", "--as-of", "3", "giants"]);
    assert_eq!(ok(&db, &["--as-of", "3", "view-bank", "giants"]), after);
    assert!(refused(&run(&db, &["view-bank", "--as-of", "2", "giants"]), "before giants").contains("giants"));
    // A write command: after its name a usage error, before it a refusal.
    usage_error(&run(&db, &["add-bank", "--as-of", "3", "x", "1"]), "after a write");
    refused(&run(&db, &["--as-of", "3", "add-bank", "x", "1"]), "before a write");
}
