//! Usage never goes negative: whatever records an ingest is given (times out of order,
//! negative or far in the future, absurd counts, bad uids, repeated ids,
//! garbage lines), usage never goes below zero: after `fetch-job-records`
//! and `update-usage`, every usage bin, association and bank usage is ≥ 0,
//! and the counts of the summary line add up to the records given.
//! Runs the commands in-process through the library.

use clap::Parser;
use fluxacct_commands::cli::{self, Cli};
use fluxacct_commands::{Context, Output};
use proptest::prelude::*;
use serde_json::json;

/// 2026-01-01T00:00:00Z.
const NOW: f64 = 1_767_225_600.0;

fn run(db: &std::path::Path, now: f64, args: &[&str]) -> Result<Output, String> {
    let mut argv = vec!["flux-account", "-p", db.to_str().expect("utf8")];
    argv.extend_from_slice(args);
    let parsed = Cli::try_parse_from(&argv).map_err(|e| e.to_string())?;
    let mut ctx = Context::for_tests(db, (now * 1e6) as i64);
    ctx.argv = argv.iter().map(|s| s.to_string()).collect();
    cli::run(&ctx, &parsed.command).map_err(|e| e.to_string())
}

#[derive(Debug, Clone)]
struct Rec {
    id: Option<u64>,
    userid: i64,
    times: [Option<f64>; 3],
    nnodes: Option<f64>,
    r_nodes: Option<u8>,
    garbage: bool,
}

fn time() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(-100.0)),
        1 => Just(Some(NOW + 3.0 * 86400.0)),
        8 => (0u32..200_000).prop_map(|s| Some(NOW - f64::from(s))),
    ]
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        prop::option::weighted(0.95, 1u64..40),
        prop_oneof![4 => Just(1001i64), 4 => Just(1002), 1 => Just(-7), 1 => Just(4_294_967_295)],
        [time(), time(), time()],
        prop_oneof![Just(None), Just(Some(-1.0)), Just(Some(9e15)), (0u32..20).prop_map(|n| Some(f64::from(n)))],
        prop::option::of(1u8..5),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(id, userid, times, nnodes, r_nodes, garbage)| Rec {
            id,
            userid,
            times,
            nnodes,
            r_nodes,
            garbage,
        })
}

fn line(r: &Rec) -> String {
    if r.garbage {
        return "{not json".into();
    }
    let mut j = json!({"userid": r.userid, "bank": if r.userid == 1002 { "B" } else { "A" }});
    if let Some(id) = r.id {
        j["id"] = json!(id);
    }
    for (k, t) in ["t_submit", "t_run", "t_inactive"].iter().zip(r.times) {
        if let Some(t) = t {
            j[*k] = json!(t);
        }
    }
    if let Some(n) = r.nnodes {
        j["nnodes"] = json!(n);
    }
    if let Some(n) = r.r_nodes {
        j["R"] = json!({"version": 1, "execution": {"R_lite": [{"rank": format!("0-{}", n - 1), "children": {"core": "0"}}]}});
    }
    j.to_string()
}

fn non_negative(db: &std::path::Path) -> Result<(), String> {
    let c = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    for sql in [
        "SELECT min(value) FROM usage_bins",
        "SELECT min(job_usage) FROM association_table",
        "SELECT min(job_usage) FROM bank_table",
    ] {
        let m: Option<f64> = c.query_row(sql, [], |r| r.get(0)).map_err(|e| e.to_string())?;
        if m.is_some_and(|m| m < 0.0) {
            return Err(format!("{sql} = {m:?}"));
        }
    }
    Ok(())
}

fn counts(summary: &str) -> Vec<u64> {
    summary
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(3)
        .map(|s| s.parse().expect("count"))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn usage_never_goes_below_zero(batches in prop::collection::vec(prop::collection::vec(rec(), 1..25), 1..4)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("p.db");
        let t0 = NOW - 10.0 * 86400.0;
        for args in [
            &["create-db"][..],
            &["add-bank", "root", "1"],
            &["add-bank", "--parent-bank=root", "A", "1"],
            &["add-bank", "--parent-bank=root", "B", "1"],
            &["add-user", "--username=u1", "--userid=1001", "--bank=A"],
            &["add-user", "--username=u2", "--userid=1002", "--bank=B"],
        ] {
            run(&db, t0, args).map_err(|e| TestCaseError::fail(format!("{args:?}: {e}")))?;
        }
        for (i, batch) in batches.iter().enumerate() {
            let path = dir.path().join(format!("b{i}.jsonl"));
            let text: String = batch.iter().map(|r| line(r) + "\n").collect();
            std::fs::write(&path, text).expect("write");
            let out = run(&db, NOW, &["fetch-job-records", "--from-file", path.to_str().expect("utf8"), "--batch-size", "7"])
                .map_err(TestCaseError::fail)?;
            let c = counts(&out.stdout);
            let earlier: u64 = out.stdout.split("(and ").nth(1)
                .and_then(|s| s.split(' ').next()).map_or(0, |n| n.parse().expect("n"));
            prop_assert_eq!(c.iter().sum::<u64>() + earlier, batch.len() as u64, "{}", out.stdout);
            prop_assert_eq!(out.exit_code, if c[2] > 0 { 3 } else { 0 });
            run(&db, NOW + i as f64, &["update-usage"]).map_err(TestCaseError::fail)?;
            non_negative(&db).map_err(TestCaseError::fail)?;
        }
    }
}
