//! Issue 13 §2: the commands flux-accounting users rely on that fluxacct
//! lacked (`sync-userids`, `scrub-old-jobs`, `-msn`/`-msc`, `-v`), as
//! black-box CLI tests. (`fairshare-emulate`: fairshare_emulate_cli.rs;
//! `view-user -J`: usage_cli.rs; `jobs`: jobs_cli.rs.)

mod common;

use common::{fa, fails, new_db, ok};
use serde_json::Value;

#[test]
fn add_queue_and_edit_queue_take_msn_and_msc() {
    let (_d, db) = new_db();
    ok(&db, &["add-queue", "q", "-msn", "5", "-msc=6"]);
    let q: Value = serde_json::from_str(&ok(&db, &["view-queue", "q"])).unwrap();
    assert_eq!(q[0]["max_sched_nodes_per_assoc"], 5);
    assert_eq!(q[0]["max_sched_cores_per_assoc"], 6);
    ok(&db, &["edit-queue", "q", "-msn", "7", "-msc", "-1"]);
    let q: Value = serde_json::from_str(&ok(&db, &["view-queue", "q"])).unwrap();
    assert_eq!(q[0]["max_sched_nodes_per_assoc"], 7);
    assert_eq!(q[0]["max_sched_cores_per_assoc"], "unlimited");
    // The log keeps the command line as typed.
    let log = ok(&db, &["log", "--json"]);
    assert!(log.contains("\"-msn\""), "{log}");
    let e = fails(&db, &["edit-queue", "q", "-msn", "-5"]);
    assert!(e.contains("non-negative"), "{e}");
}
