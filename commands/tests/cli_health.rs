//! Acceptance point 1: the seed 000 health checklist runs as written.

mod common;
use common::*;

#[test]
fn seed_000_health_checklist() {
    let (_d, db) = new_db();
    seed_000(&db);
    let tree = ok(&db, &["view-bank", "root", "--tree"]);
    let lines: Vec<&str> = tree.lines().collect();
    assert!(lines[1].starts_with("root"), "{tree}");
    assert!(lines[2].starts_with(" giants"), "{tree}");
    assert!(lines[3].starts_with("  giants") && lines[3].contains("crawford"), "{tree}");

    let v: serde_json::Value = serde_json::from_str(&ok(&db, &["view-user", "crawford"])).expect("json");
    let row = &v[0];
    assert_eq!(row["username"], "crawford");
    assert_eq!(row["bank"], "giants");
    assert_eq!(row["shares"], 1);
    assert_eq!(row["fairshare"], 0.5);
    assert_eq!(row["max_running_jobs"], 5);
    assert_eq!(row["max_active_jobs"], 7);

    assert!(ok(&db, &["view-queue", "orange"]).contains("\"queue\": \"orange\""));
    assert!(ok(&db, &["view-project", "shortstops"]).contains("\"project\": \"shortstops\""));
    assert!(ok(&db, &["verify"]).starts_with("ok: 6 events"));
}

#[test]
fn demo_builds_a_site_and_refuses_existing_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("demo.db");
    let out = ok(&db, &["demo"]);
    assert!(out.contains("crawford") && out.contains("giants"), "{out}");
    let e = fails(&db, &["demo"]);
    assert!(e.contains("already exists"), "{e}");
}

/// The demo runs the whole pipeline, so the tree it prints has
/// fair-share values that differ between users, it names the snapshot it
/// wrote, and its ledger verifies.
#[test]
fn demo_shows_differing_fairshare_a_snapshot_and_a_verified_ledger() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("demo.db");
    let out = ok(&db, &["demo"]);
    // User lines of the tree: bank, username, active, shares, usage, fairshare.
    let fairshares: std::collections::BTreeSet<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 6 && (w[2] == "true" || w[2] == "false"))
        .filter(|w| w[5].parse::<f64>().is_ok())
        .map(|w| w[5].to_string())
        .collect();
    assert!(fairshares.len() >= 2, "expected differing fair-share values: {fairshares:?}\n{out}");
    let usage_line = out.lines().find(|l| l.contains("ohtani / outfield")).expect("usage chart");
    assert!(usage_line.contains('|'), "{usage_line}");
    let snap = out.lines().find_map(|l| l.strip_prefix("snapshot: ")).expect("snapshot line");
    let snap_path = snap.split(" (seq").next().unwrap();
    assert!(std::path::Path::new(snap_path).is_file(), "{snap_path}");
    let svg = out.lines().find_map(|l| l.strip_prefix("chart: ")).expect("chart line");
    assert!(std::fs::read_to_string(svg).expect("svg").starts_with("<svg"));
    assert!(out.lines().any(|l| l.starts_with("checkpoint: {\"seq\":")), "{out}");
    let v = ok(&db, &["verify"]);
    assert!(v.starts_with("ok: "), "{v}");
    let cp = out.lines().find_map(|l| l.strip_prefix("checkpoint: ")).unwrap();
    assert!(ok(&db, &["verify", "--checkpoint", cp]).starts_with("ok: "));
    assert!(ok(&db, &["rebuild", "--check"]).starts_with("ok: the projections match"));
    // Its job records are listed like any others.
    let jobs = ok(&db, &["view-job-records", "-u", "ohtani"]);
    assert!(jobs.lines().count() > 10, "{jobs}");
}

#[test]
fn list_commands_print_tables_and_json() {
    let (_d, db) = new_db();
    seed_000(&db);
    let t = ok(&db, &["list-banks", "--fields", "bank,parent_bank"]);
    assert_eq!(t, "bank   | parent_bank\n-------+------------\nroot   |            \ngiants | root       \n");
    let j: serde_json::Value = serde_json::from_str(&ok(&db, &["list-users", "--json"])).expect("json");
    assert_eq!(j.as_array().map(|a| a.len()), Some(1));
    assert!(ok(&db, &["list-queues"]).starts_with("queue "));
    assert!(ok(&db, &["list-projects"]).contains("shortstops"));
    assert!(ok(&db, &["list-factors"]).contains("fairshare | 100000"));
    assert!(ok(&db, &["list-configs"]).contains("decay_factor"));
    assert!(ok(&db, &["view-factor", "bank"]).contains("bank   | 0"));
    assert!(ok(&db, &["view-config", "decay_factor"]).contains("0.5"));
    assert_eq!(ok(&db, &["view-user", "crawford", "--list-banks"]), "giants\n\n");
    assert_eq!(ok(&db, &["view-user", "crawford", "-o", "{username}|{bank}"]), "username|bank\ncrawford|giants\n");
    let info = ok(&db, &["bank-info", "-u", "crawford", "-P"]);
    assert!(info.contains(" giants*|1|1.000000"), "{info}");
}
