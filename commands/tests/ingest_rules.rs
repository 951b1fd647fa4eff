//! Every ingest rule (docs/ingest.md) rejects the bad record
//! alone: a `JobRejected` event with the reason, the good records
//! recorded, exit status 3, the summary line, `view-job-records
//! --rejected`, and no usage from the bad record. Plus the messages for
//! input that cannot be split into records.

mod common;

use std::process::{Command, Stdio};

use serde_json::{json, Value};

use common::{ok, BIN, NOW};

/// FLUXACCT_NOW of the tests, in seconds.
const NOW_S: f64 = 1_767_225_600.0;

struct Site {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    dir: std::path::PathBuf,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn site() -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    ok(&db, &["create-db"]);
    ok(&db, &["add-bank", "root", "1"]);
    ok(&db, &["add-bank", "--parent-bank=root", "A", "1"]);
    ok(&db, &["add-user", "--username=u1", "--userid=1001", "--bank=A"]);
    Site { db, dir: dir.path().to_path_buf(), _dir: dir }
}

impl Site {
    fn fetch(&self, name: &str, text: &str, extra: &[&str]) -> Out {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write input");
        let o = Command::new(BIN)
            .arg("-p")
            .arg(&self.db)
            .args(["fetch-job-records", "--from-file", path.to_str().expect("utf8")])
            .args(extra)
            .env("FLUXACCT_NOW", NOW)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    fn events(&self, kind: &str) -> Vec<Value> {
        let c = rusqlite::Connection::open(&self.db).expect("open");
        let mut st = c.prepare("SELECT CAST(payload AS TEXT) FROM events WHERE kind = ?1 ORDER BY seq").expect("sql");
        let rows = st.query_map([kind], |r| r.get::<_, String>(0)).expect("query");
        rows.map(|r| serde_json::from_str(&r.expect("row")).expect("json")).collect()
    }

    fn usage(&self) -> f64 {
        ok(&self.db, &["update-usage"]);
        let v: Value = serde_json::from_str(&ok(&self.db, &["view-user", "u1"])).expect("view-user json");
        v[0]["job_usage"].as_f64().expect("job_usage")
    }
}

/// A good job of u1 in A: 2 nodes for 100 s, ending an hour before now.
fn good(id: u64) -> Value {
    let end = NOW_S - 3600.0;
    json!({"id": id, "userid": 1001, "bank": "A", "t_submit": end - 200.0, "t_run": end - 100.0,
           "t_inactive": end, "nnodes": 2})
}

fn r_of(nodes: u64) -> Value {
    json!({"version": 1, "execution": {"R_lite": [{"rank": format!("0-{}", nodes - 1), "children": {"core": "0-3"}}]}})
}

/// Ingests good job 1, the bad record on line 2, good job 3; checks that
/// the bad record alone was rejected with a reason containing `reason`,
/// and that usage is that of the good jobs.
fn rejected_alone(bad: &str, reason: &str) {
    let s = site();
    let text = format!("{}\n{bad}\n{}\n", good(1), good(3));
    let o = s.fetch("in.jsonl", &text, &[]);
    assert_eq!(o.code, 3, "exit status 3 on rejections: {} {}", o.stdout, o.stderr);
    assert!(
        o.stdout.starts_with("recorded 2, already recorded 0, rejected 1: line 2: "),
        "summary line: {:?}",
        o.stdout
    );
    assert!(o.stdout.contains(reason), "summary quotes the reason {reason:?}: {:?}", o.stdout);
    assert_eq!(o.stdout.lines().count(), 1);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
    let rej = s.events("JobRejected");
    assert_eq!(rej.len(), 1, "{rej:?}");
    assert_eq!(rej[0]["position"], "line 2");
    assert!(rej[0]["reason"].as_str().expect("reason").contains(reason), "{rej:?}");
    let ids: Vec<u64> = s.events("JobRecorded").iter().map(|j| j["id"].as_u64().expect("id")).collect();
    assert!(ids.contains(&1) && ids.contains(&3), "{ids:?}");
    let listed = ok(&s.db, &["view-job-records", "--rejected"]);
    assert!(listed.lines().nth(1).is_some_and(|l| l.contains("line 2") && l.contains(reason)), "{listed}");
    // Usage: exactly the two good jobs (2 nodes × 100 s each), whatever
    // the bad record claimed.
    let u = s.usage();
    assert!(u >= 0.0);
    let control = site();
    control.fetch("good.jsonl", &format!("{}\n{}\n", good(1), good(3)), &[]);
    assert_eq!(u, control.usage(), "the bad record added no usage");
}

fn with(id: u64, f: impl FnOnce(&mut Value)) -> String {
    let mut j = good(id);
    f(&mut j);
    j.to_string()
}

fn without(id: u64, key: &str) -> String {
    with(id, |j| {
        j.as_object_mut().expect("object").remove(key);
    })
}

#[test]
fn rule_missing_id() {
    rejected_alone(&without(2, "id"), "missing id");
}

#[test]
fn rule_missing_userid() {
    rejected_alone(&without(2, "userid"), "missing userid");
}

#[test]
fn rule_missing_t_inactive() {
    rejected_alone(&without(2, "t_inactive"), "missing t_inactive");
}

#[test]
fn rule_t_inactive_before_t_run() {
    // A record that would give negative usage.
    rejected_alone(&with(2, |j| j["t_inactive"] = json!(j["t_run"].as_f64().expect("t") - 50.0)), "is before t_run");
}

#[test]
fn rule_t_submit_after_t_run() {
    rejected_alone(&with(2, |j| j["t_submit"] = json!(j["t_run"].as_f64().expect("t") + 1.0)), "is after t_run");
}

#[test]
fn rule_negative_time() {
    rejected_alone(&with(2, |j| j["t_submit"] = json!(-5.0)), "t_submit -5 is negative");
}

#[test]
fn rule_non_finite_time() {
    // JSON has no infinities; an out-of-range number is not a record.
    rejected_alone(&good(2).to_string().replace("\"t_inactive\":", "\"t_inactive\":1e999,\"x\":"), "invalid JSON");
}

#[test]
fn rule_time_far_in_the_future() {
    rejected_alone(&with(2, |j| j["t_inactive"] = json!(NOW_S + 2.0 * 86400.0)), "more than a day after");
}

#[test]
fn rule_nnodes_negative() {
    rejected_alone(&with(2, |j| j["nnodes"] = json!(-1)), "nnodes -1 is not an integer from 0 to");
}

#[test]
fn rule_nnodes_bounded() {
    rejected_alone(
        &with(2, |j| j["nnodes"] = json!(9e15)),
        "nnodes 9000000000000000 is not an integer from 0 to 100000",
    );
}

#[test]
fn rule_ncores_bounded() {
    rejected_alone(&with(2, |j| j["ncores"] = json!(2e9)), "ncores 2000000000 is not an integer from 0 to 100000000");
}

#[test]
fn rule_ngpus_non_negative() {
    rejected_alone(&with(2, |j| j["ngpus"] = json!(-3)), "ngpus -3 is not an integer");
}

#[test]
fn rule_counts_consistent_with_r() {
    rejected_alone(&with(2, |j| j["R"] = r_of(4)), "nnodes 2 does not match R (4)");
}

#[test]
fn rule_r_counts_bounded() {
    let r = json!({"version": 1, "execution": {"R_lite": [{"rank": "0-1999999", "children": {"core": "0"}}]}});
    rejected_alone(
        &with(2, |j| {
            j.as_object_mut().expect("o").remove("nnodes");
            j["R"] = r;
        }),
        "nnodes 2000000 (from R) is more than 100000",
    );
}

#[test]
fn rule_userid_negative() {
    rejected_alone(&with(2, |j| j["userid"] = json!(-7)), "userid -7 is not a valid uid");
}

#[test]
fn rule_userid_unknown_uid() {
    rejected_alone(&with(2, |j| j["userid"] = json!(4_294_967_295u64)), "userid 4294967295 is not a valid uid");
}

#[test]
fn rule_name_length() {
    rejected_alone(&with(2, |j| j["bank"] = json!("b".repeat(4097))), "bank is longer than 4096 bytes");
}

#[test]
fn rule_ranks_length() {
    rejected_alone(&with(2, |j| j["ranks"] = json!("0,".repeat(600_000))), "ranks is longer than 1048576 bytes");
}

#[test]
fn rule_r_length() {
    let mut r = r_of(2);
    r["pad"] = json!("x".repeat(1 << 20));
    rejected_alone(&with(2, |j| j["R"] = r), "R is longer than 1048576 bytes");
}

#[test]
fn rule_jobspec_length() {
    let spec = json!({"attributes": {"system": {"bank": "A", "pad": "x".repeat(1 << 20)}}});
    rejected_alone(&with(2, |j| j["jobspec"] = spec), "jobspec is longer than 1048576 bytes");
}

#[test]
fn rule_id_unique_within_the_input() {
    // Line 2 repeats job 1 with other content; an identical repeat is
    // merely "already recorded".
    rejected_alone(&with(1, |j| j["nnodes"] = json!(5)), "job repeated from line 1 with a different nnodes");
    let s = site();
    let o = s.fetch("same.jsonl", &format!("{}\n{}\n", good(1), good(1)), &[]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "recorded 1, already recorded 1, rejected 0\n"));
}

#[test]
fn rule_id_unique_against_the_ledger() {
    let s = site();
    let o = s.fetch("first.jsonl", &format!("{}\n", good(2)), &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let changed = with(2, |j| {
        j["bank"] = json!("root");
        j["t_run"] = json!(j["t_run"].as_f64().expect("t") + 1.0);
    });
    let o = s.fetch("second.jsonl", &format!("{}\n{changed}\n{}\n", good(1), good(3)), &[]);
    assert_eq!(o.code, 3);
    assert_eq!(
        o.stdout,
        "recorded 2, already recorded 0, rejected 1: line 2: job already recorded with a different bank, t_run\n"
    );
    let rej = s.events("JobRejected");
    assert_eq!(
        rej,
        vec![json!({"id": 2, "position": "line 2",
        "reason": "job already recorded with a different bank, t_run"})]
    );
    // The same file again: the recorded jobs are already recorded and the
    // rejected one is not rejected a second time.
    let o = s.fetch("second.jsonl", &format!("{}\n{changed}\n{}\n", good(1), good(3)), &[]);
    assert_eq!(o.code, 0);
    assert_eq!(o.stdout, "recorded 0, already recorded 2, rejected 0 (and 1 rejected by an earlier fetch)\n");
    assert_eq!(s.events("JobRejected").len(), 1);
}

/// Regression (projection schema 5, `job_ids`): job ids from 2^63 up
/// (which a JSON reader gives as floats) are found again exactly, also
/// when one batch holds ids on both sides of 2^63, and `view-job-records
/// --jobid` finds them.
#[test]
fn ids_from_2_pow_63_are_found_again() {
    let s = site();
    let big: u64 = (1 << 63) + 5;
    let ids = [7, big, u64::MAX];
    let text: String = ids.iter().map(|&i| format!("{}\n", good(i))).collect();
    let o = s.fetch("big.jsonl", &text, &[]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "recorded 3, already recorded 0, rejected 0\n"), "{}", o.stderr);
    let o = s.fetch("big.jsonl", &text, &[]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "recorded 0, already recorded 3, rejected 0\n"), "{}", o.stderr);
    let changed = with(big, |j| j["nnodes"] = json!(3));
    let o = s.fetch("big2.jsonl", &format!("{changed}\n{}\n", good(8)), &["--batch-size", "1"]);
    assert_eq!(o.code, 3, "{}", o.stdout);
    assert!(o.stdout.contains("job already recorded with a different nnodes"), "{}", o.stdout);
    let listed = ok(&s.db, &["view-job-records", "--jobid", &big.to_string()]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains(&fluxacct_ingest::record::show_id(big, fluxacct_ingest::record::IdForm::F58 { utf8: true })),
        "{listed}"
    );
}

#[test]
fn summary_counts_are_exact_and_verbose_lists_every_rejection() {
    let s = site();
    s.fetch("a.jsonl", &format!("{}\n{}\n", good(1), good(2)), &[]);
    let bad: Vec<String> = (10..15).map(|i| without(i, "userid")).collect();
    let text = format!("{}\n{}\n{}\n{}\n{}\n", good(1), good(2), good(3), bad.join("\n"), good(4));
    let o = s.fetch("b.jsonl", &text, &["-v", "--batch-size", "3"]);
    assert_eq!(o.code, 3);
    assert_eq!(
        o.stdout,
        "recorded 2, already recorded 2, rejected 5: line 4: missing userid; line 5: missing userid; \
         line 6: missing userid; …\n"
    );
    // -v lists every rejection, between flux-accounting's two INFO lines.
    let lines: Vec<&str> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 7, "-v lists every rejection: {}", o.stderr);
    assert!(lines[0].ends_with("INFO: beginning INSERT of newly found jobs into flux-accounting DB"), "{}", o.stderr);
    assert_eq!(lines[1..6].iter().filter(|l| l.contains("missing userid")).count(), 5, "{}", o.stderr);
    assert!(lines[6].ends_with("INFO: INSERT of newly found jobs into flux-accounting DB complete"), "{}", o.stderr);
    assert_eq!(s.events("JobRejected").len(), 5);
    assert_eq!(s.events("JobRecorded").len(), 4);
    let listed = ok(&s.db, &["view-job-records", "--rejected", "--jobid", "12"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains("line 6"), "{listed}");
}

#[test]
fn malformed_document_names_what_was_committed() {
    let s = site();
    let jobs: Vec<String> = (1..=5).map(|i| good(i).to_string()).collect();
    // Job 4 (line 5) is not valid JSON: the document cannot be split on.
    let text = format!(
        "{{\"jobs\": [\n{},\n{},\n{},\n{}\n, {}]}}\n",
        jobs[0],
        jobs[1],
        jobs[2],
        jobs[3].replace("\"bank\":", "\"bank\" "),
        jobs[4]
    );
    let o = s.fetch("doc.json", &text, &["--batch-size", "2"]);
    assert_eq!(o.code, 1, "{} {}", o.stdout, o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(
        o.stderr.starts_with("flux-account: error: recorded 2 records in 1 batch before line 5: invalid {\"jobs\": [...]} document: job 4: invalid JSON"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.trim_end().ends_with("; nothing from line 4 on was recorded"), "{}", o.stderr);
    assert_eq!(s.events("JobRecorded").len(), 2);
    assert!(s.events("JobRejected").is_empty());
}

#[test]
fn binary_input_is_refused_whole() {
    let s = site();
    let mut bytes = format!("{}\n", good(1)).into_bytes();
    bytes.extend_from_slice(&[0x7f, b'E', b'L', b'F', 0, 1, 2, 0xff, b'\n']);
    let path = s.dir.join("bin");
    std::fs::write(&path, &bytes).expect("write");
    let o = Command::new(BIN)
        .arg("-p")
        .arg(&s.db)
        .args(["fetch-job-records", "--from-file", path.to_str().expect("utf8")])
        .env("FLUXACCT_NOW", NOW)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err,
        "flux-account: error: recorded 0 records in 0 batches before line 2: binary data (a NUL byte); \
         nothing from line 1 on was recorded\n"
    );
    assert!(s.events("JobRecorded").is_empty());
}

#[test]
fn documents_stream_from_stdin() {
    let s = site();
    let mut bad = good(3);
    bad["userid"] = json!(-1);
    // A string where a job object belongs is a record that breaks the rules.
    let doc = json!({"jobs": [good(1), good(2), bad, "job 4"]}).to_string();
    let mut child = Command::new(BIN)
        .arg("-p")
        .arg(&s.db)
        .args(["fetch-job-records", "--from-file", "-"])
        .env("FLUXACCT_NOW", NOW)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(doc.as_bytes()).expect("write");
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "recorded 2, already recorded 0, rejected 2: job 3 (line 1): userid -1 is not a valid uid (0 to 4294967294); \
         job 4 (line 1): invalid job record: invalid type: string \"job 4\", expected struct JobInput at line 1 column 7\n"
    );
}

#[test]
fn copy_from_archive_checks_rows_too() {
    let s = site();
    let archive = s.dir.join("archive.sqlite");
    let c = rusqlite::Connection::open(&archive).expect("archive");
    c.execute_batch(
        "CREATE TABLE jobs (id char(16), userid int, t_submit real, t_run real, t_inactive real, ranks text, \
         R text, jobspec text);",
    )
    .expect("ddl");
    let r = r_of(2).to_string();
    let spec = r#"{"attributes":{"system":{"bank":"A","duration":60}}}"#;
    let end = NOW_S - 3600.0;
    for (id, t_run) in [(1, end - 100.0), (2, end + 100.0), (3, end - 10.0)] {
        c.execute(
            "INSERT INTO jobs VALUES (?1, 1001, ?2, ?3, ?4, '0-1', ?5, ?6)",
            rusqlite::params![id.to_string(), end - 200.0, t_run, end, r, spec],
        )
        .expect("row");
    }
    drop(c);
    let o = Command::new(BIN)
        .arg("-p")
        .arg(&s.db)
        .args(["fetch-job-records", "--copy", archive.to_str().expect("utf8")])
        .env("FLUXACCT_NOW", NOW)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(3));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("recorded 2, already recorded 0, rejected 1: archive row 2: t_inactive"), "{out}");
}

/// One `JobRejected` event whose payload cannot be decoded (here: a
/// required key renamed, and another made invalid JSON) does not stop
/// `view-job-records --rejected`: every rejection is listed, the bad ones
/// with what can be read and a note, a notice on stderr, exit 0.
#[test]
fn rejected_listing_survives_an_undecodable_rejection() {
    let s = site();
    let text = format!("{}\nnot json\n{}\nalso not json\n{}\n", good(1), good(3), good(5));
    let o = s.fetch("in.jsonl", &text, &[]);
    assert_eq!(o.code, 3, "{}", o.stderr);
    let c = rusqlite::Connection::open(&s.db).expect("open");
    c.execute_batch("DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;")
        .expect("drop triggers");
    let seqs: Vec<i64> = c
        .prepare("SELECT seq FROM events WHERE kind = 'JobRejected' ORDER BY seq")
        .expect("sql")
        .query_map([], |r| r.get(0))
        .expect("q")
        .map(|r| r.expect("seq"))
        .collect();
    assert_eq!(seqs.len(), 2);
    c.execute(
        "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), '\"reason\"', '\"reasxn\"') AS BLOB) \
         WHERE seq = ?1",
        [seqs[0]],
    )
    .expect("edit");
    drop(c);
    let out = Command::new(BIN)
        .arg("-p")
        .arg(&s.db)
        .args(["view-job-records", "--rejected"])
        .env("FLUXACCT_NOW", NOW)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[1].starts_with(&seqs[0].to_string()), "{stdout}");
    assert!(lines[1].contains("line 2") && lines[1].contains("unreadable rejection"), "{stdout}");
    assert!(lines[2].contains("line 4") && lines[2].contains("invalid JSON"), "{stdout}");
    assert!(stderr.contains(&format!("the rejection at seq {} is unreadable", seqs[0])), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
