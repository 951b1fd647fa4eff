//! Generative: random sequences of admin commands, ingests (with bad
//! records), hand edits of projection rows, kill -9 of a running ingest or
//! admin command, accepted breaks and rebuilds never leave a site the tools
//! cannot get out of: afterwards `rebuild` succeeds, `rebuild --check`
//! passes, and fresh good job records are recorded.

mod common;
use common::*;
#[path = "common/dead_ends.rs"]
mod dead_ends;
use dead_ends::*;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use proptest::prelude::*;
use rusqlite::Connection;

#[derive(Debug, Clone)]
enum Op {
    /// An admin command (may be refused; that is fine).
    Admin(u8),
    /// An ingest of good records with one bad record among them.
    Ingest { good: u8, bad: u8 },
    /// A hand edit of projection rows.
    HandEdit(u8),
    /// kill -9 of an ingest (or an admin command) after `ms`.
    Kill { ms: u16, admin: bool },
    /// A tampered event and `repair --accept-break`.
    AcceptBreak(u8),
    /// `rebuild`.
    Rebuild,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u8>().prop_map(Op::Admin),
        (1u8..6, 0u8..4).prop_map(|(good, bad)| Op::Ingest { good, bad }),
        any::<u8>().prop_map(Op::HandEdit),
        (0u16..250, any::<bool>()).prop_map(|(ms, admin)| Op::Kill { ms, admin }),
        any::<u8>().prop_map(Op::AcceptBreak),
        Just(Op::Rebuild),
    ]
}

/// Job lines with ids from `*next` on: `good` good ones and a bad one of
/// kind `bad` (0: none).
fn jobs(next: &mut u64, good: u64, bad: u8) -> String {
    let mut s = String::new();
    for _ in 0..good {
        let t = 1_760_000_000.0 + (*next - 100_000) as f64 * 7.0;
        s.push_str(&format!(
            "{{\"id\":{},\"userid\":1001,\"bank\":\"giants\",\"t_run\":{},\"t_inactive\":{t}}}\n",
            *next,
            t - 30.0
        ));
        *next += 1;
    }
    match bad {
        1 => s.push_str(&format!(
            "{{\"id\":{},\"userid\":1001,\"t_run\":1767000100,\"t_inactive\":1767000000}}\n",
            1u64 << 63
        )),
        2 => s.push_str("{\"id\":5,\"userid\":\"x\"}\n"),
        3 => s.push_str("not json at all\n"),
        _ => {}
    }
    s
}

fn run(db: &Path, dir: &Path, next: &mut u64, n: &mut u32, op: &Op) {
    match op {
        Op::Admin(k) => {
            *n += 1;
            let name = format!("u{n}");
            let uid = (2000 + *n).to_string();
            let _ = match k % 4 {
                0 => fa(db, &["add-user", &format!("--username={name}"), &format!("--userid={uid}"), "--bank=giants"]),
                1 => fa(db, &["add-bank", "--parent-bank=root", &format!("b{n}"), "1"]),
                2 => fa(db, &["update-usage"]),
                _ => fa(db, &["update-fshare"]),
            };
        }
        Op::Ingest { good, bad } => {
            let f = dir.join("jobs.jsonl");
            std::fs::write(&f, jobs(next, u64::from(*good), *bad)).expect("write");
            let r = fa(db, &["fetch-job-records", "--from-file", f.to_str().expect("utf8")]);
            assert!(r.code == 0 || r.code == 3, "an ingest records the good records: {r:?}");
        }
        Op::HandEdit(k) => {
            let c = Connection::open(db).expect("open");
            let sql = match k % 3 {
                0 => "UPDATE association_table SET shares = shares + 7",
                1 => "UPDATE bank_table SET job_usage = job_usage + 1000",
                _ => "DELETE FROM queue_table",
            };
            let _ = c.execute_batch(sql);
        }
        Op::Kill { ms, admin } => {
            let mut cmd = Command::new(BIN);
            cmd.arg("-p").arg(db).env("FLUXACCT_NOW", NOW).stdout(Stdio::null()).stderr(Stdio::null());
            if *admin {
                cmd.arg("rebuild");
            } else {
                let f = dir.join("big.jsonl");
                std::fs::write(&f, jobs(next, 3000, 0)).expect("write");
                cmd.args(["fetch-job-records", "--from-file"]).arg(&f);
            }
            let mut child = cmd.spawn().expect("spawn");
            std::thread::sleep(Duration::from_millis(u64::from(*ms)));
            let _ = child.kill();
            let _ = child.wait();
        }
        Op::AcceptBreak(k) => {
            let c = Connection::open(db).expect("open");
            let head: i64 = c.query_row("SELECT max(seq) FROM events", [], |r| r.get(0)).expect("head");
            drop(c);
            let seq = 2 + i64::from(*k) % (head - 1).max(1);
            edit_log(db, &format!("UPDATE events SET recorded_at = recorded_at + 1 WHERE seq = {seq}"));
            let r = fa(db, &["verify"]);
            if let Some(rest) = r.stderr.split("chain broken at seq ").nth(1) {
                let bad: String = rest.chars().take_while(char::is_ascii_digit).collect();
                ok(db, &["repair", "--accept-break", &bad, "--reason", "edited by hand in a drill"]);
            }
        }
        Op::Rebuild => {
            let r = fa(db, &["rebuild"]);
            assert_eq!(r.code, 0, "rebuild: {r:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 16, ..ProptestConfig::default() })]

    #[test]
    fn no_sequence_of_edits_kills_and_breaks_leaves_a_site_the_tools_cannot_recover(
        ops in proptest::collection::vec(op(), 1..6)
    ) {
        let (d, db) = site();
        let mut next = 100_000u64;
        let mut n = 0u32;
        for o in &ops {
            run(&db, d.path(), &mut next, &mut n, o);
        }
        let r = fa(&db, &["rebuild"]);
        prop_assert_eq!(r.code, 0, "rebuild after {:?}: {:?}", ops, r);
        let r = fa(&db, &["rebuild", "--check"]);
        prop_assert!(r.code == 0 && r.stdout.starts_with("ok"), "rebuild --check after {:?}: {:?}", ops, r);
        let f = d.path().join("fresh.jsonl");
        std::fs::write(&f, jobs(&mut next, 3, 0)).expect("write");
        let r = fa(&db, &["fetch-job-records", "--from-file", f.to_str().expect("utf8")]);
        prop_assert_eq!(r.code, 0, "fresh records after {:?}: {:?}", ops, r);
    }
}
