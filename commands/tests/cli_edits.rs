//! Acceptance point 2: edits, deletes and reactivation (reference §2),
//! including the default-bank fix-up.

mod common;
use common::*;

fn user(db: &std::path::Path, u: &str) -> serde_json::Value {
    serde_json::from_str(&ok(db, &["view-user", u])).expect("json")
}

fn site(db: &std::path::Path) {
    ok(db, &["add-bank", "root", "1"]);
    ok(db, &["add-bank", "--parent-bank=root", "A", "1"]);
    ok(db, &["add-bank", "--parent-bank=root", "B", "1"]);
    ok(db, &["add-bank", "--parent-bank=root", "C", "1"]);
    ok(db, &["add-queue", "gold"]);
    ok(db, &["add-queue", "silver"]);
    ok(db, &["add-project", "p1"]);
    ok(db, &["add-user", "-u", "u", "-B", "A"]);
    ok(db, &["add-user", "-u", "u", "-B", "B"]);
    ok(db, &["add-user", "-u", "u", "-B", "C"]);
}

#[test]
fn edit_user_fields_resets_and_queues() {
    let (_d, db) = new_db();
    site(&db);
    ok(&db, &["edit-user", "u", "--max-active-jobs", "20"]);
    let v = user(&db, "u");
    assert!(v.as_array().expect("list").iter().all(|r| r["max_active_jobs"] == 20), "{v}");
    ok(&db, &["edit-user", "u", "-B", "A", "--max-active-jobs", "-1", "--max-nodes", "10"]);
    ok(&db, &["edit-user", "u", "-B", "A", "--max-nodes", "unlimited"]);
    let v = user(&db, "u");
    assert_eq!(v[0]["max_active_jobs"], 7);
    assert_eq!(v[0]["max_nodes"], "unlimited");
    assert_eq!(v[1]["max_active_jobs"], 20);
    ok(&db, &["edit-user", "u", "-B", "A", "--add-queue", "gold"]);
    ok(&db, &["edit-user", "u", "-B", "A", "--add-queue", "silver"]);
    ok(&db, &["edit-user", "u", "-B", "A", "--delete-queue", "gold"]);
    assert_eq!(user(&db, "u")[0]["queues"], "silver");
    ok(&db, &["edit-user", "u", "-B", "A", "--projects", "p1"]);
    assert_eq!(user(&db, "u")[0]["projects"], "p1,*");
    ok(&db, &["edit-all-users", "--shares", "4"]);
    assert!(user(&db, "u").as_array().expect("list").iter().all(|r| r["shares"] == 4));
    ok(&db, &["edit-bank", "B", "--shares", "5", "--priority", "2.5"]);
    let b: serde_json::Value = serde_json::from_str(&ok(&db, &["view-bank", "B"])).expect("json");
    assert_eq!((b[0]["shares"].clone(), b[0]["priority"].clone()), (5.into(), 2.5.into()));
    ok(&db, &["edit-queue", "gold", "--priority", "7"]);
    assert!(ok(&db, &["view-queue", "gold"]).contains("\"priority\": 7"));
    ok(&db, &["edit-factor", "--factor", "bank", "--weight", "9"]);
    ok(&db, &["reset-factors"]);
    assert!(ok(&db, &["view-factor", "bank"]).contains("bank   | 0"));
    ok(&db, &["add-config", "site=llnl"]);
    ok(&db, &["edit-config", "site=ornl", "priority_decay_half_life=900s"]);
    assert!(ok(&db, &["view-config", "priority_decay_half_life"]).contains("900.0"));
    ok(&db, &["delete-config", "site"]);
    assert_eq!(fails(&db, &["view-config", "site"]), "flux-account: error: key site not found in config_table");
}

#[test]
fn delete_user_moves_the_default_bank_and_add_user_reactivates() {
    let (_d, db) = new_db();
    site(&db);
    ok(&db, &["delete-user", "u", "A"]);
    let v = user(&db, "u");
    assert_eq!(v[0]["active"], 0);
    for r in v.as_array().expect("list") {
        assert_eq!(r["default_bank"], "B", "{v}");
    }
    ok(&db, &["delete-user", "u", "B", "--force"]);
    let v = user(&db, "u");
    assert_eq!(v.as_array().map(|a| a.len()), Some(2));
    assert!(v.as_array().expect("list").iter().all(|r| r["default_bank"] == "C"), "{v}");
    ok(&db, &["add-user", "-u", "u", "-B", "A"]);
    assert_eq!(user(&db, "u")[0]["active"], 1);
}

#[test]
fn disabling_the_default_bank_fixes_up_and_reactivation_restores_the_bank() {
    let (_d, db) = new_db();
    site(&db);
    ok(&db, &["delete-bank", "A"]);
    let v = user(&db, "u");
    assert!(v.as_array().expect("list").iter().all(|r| r["default_bank"] == "B"), "{v}");
    assert_eq!(v[0]["active"], 0);
    let banks = ok(&db, &["list-banks", "--fields", "bank"]);
    assert!(!banks.contains("A "), "{banks}");
    ok(&db, &["add-bank", "--parent-bank=root", "A", "1"]);
    assert!(ok(&db, &["list-banks", "--fields", "bank"]).contains("A"));
    ok(&db, &["add-user", "-u", "u", "-B", "A"]);
    assert_eq!(user(&db, "u")[0]["active"], 1);

    // --force deletes the subtree rows.
    ok(&db, &["add-bank", "--parent-bank=root", "D", "1"]);
    ok(&db, &["add-bank", "--parent-bank=D", "D1", "1"]);
    ok(&db, &["add-user", "-u", "w", "-B", "D1"]);
    ok(&db, &["delete-bank", "D", "--force"]);
    assert_eq!(fails(&db, &["view-bank", "D1"]), "flux-account: error: bank D1 not found in bank_table");
    assert_eq!(fails(&db, &["view-user", "w"]), "flux-account: error: user w not found in association_table");
    assert!(ok(&db, &["verify"]).starts_with("ok:"));
}

#[test]
fn queue_and_project_deletes_warn_when_still_referenced() {
    let (_d, db) = new_db();
    site(&db);
    ok(&db, &["edit-user", "u", "-B", "A", "--queues", "gold", "--projects", "p1"]);
    let r = fa(&db, &["delete-queue", "gold"]);
    assert_eq!(r.code, 0);
    // On stdout, where flux-accounting prints it.
    assert!(r.stdout.starts_with("WARNING: user(s) in the association_table still reference this queue."), "{r:?}");
    assert_eq!(r.stderr, "");
    let r = fa(&db, &["delete-project", "p1"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with("WARNING: user(s) in the association_table still reference this project."));
    let r = fa(&db, &["delete-queue", "silver"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

#[test]
fn delete_bank_says_what_it_disabled_and_restore_subtree_brings_it_all_back() {
    let (_d, db) = new_db();
    site(&db);
    ok(&db, &["add-bank", "--parent-bank=root", "D", "1"]);
    ok(&db, &["add-bank", "--parent-bank=D", "D1", "1"]);
    ok(&db, &["add-bank", "--parent-bank=D", "D2", "1"]);
    ok(&db, &["add-user", "-u", "w", "-B", "D1"]);
    ok(&db, &["add-user", "-u", "x", "-B", "D2"]);
    ok(&db, &["add-user", "-u", "x", "-B", "C"]);
    ok(&db, &["add-bank", "--parent-bank=root", "E", "1"]);
    let before = ok(&db, &["list-users"]);
    let banks_before = ok(&db, &["list-banks"]);

    let out = ok(&db, &["delete-bank", "D"]);
    assert_eq!(
        out,
        "disabled bank D, 2 sub-banks and 2 associations (`flux account add-bank --restore-subtree D` brings them \
         back)\n"
    );
    // A bank alone says nothing, as in flux-accounting.
    assert_eq!(ok(&db, &["delete-bank", "E"]), "");

    assert_eq!(ok(&db, &["add-bank", "--restore-subtree", "D"]), "restored bank D, 2 sub-banks and 2 associations\n");
    ok(&db, &["add-bank", "--restore-subtree", "E"]);
    // Every bank and association is active again; only x's default bank
    // stays where delete-bank moved it.
    assert_eq!(ok(&db, &["list-banks"]), banks_before);
    let after = ok(&db, &["list-users"]);
    assert_eq!(after.lines().count(), before.lines().count());
    assert_eq!(user(&db, "w")[0]["active"], 1);
    let x = user(&db, "x");
    assert!(x.as_array().expect("list").iter().all(|r| r["active"] == 1), "{x}");

    // Nothing left to restore, shares with --restore-subtree: one line each.
    assert_eq!(
        fails(&db, &["add-bank", "--restore-subtree", "D"]),
        "flux-account: error: bank D and everything below it are active; nothing to restore"
    );
    let e = fa(&db, &["add-bank", "--restore-subtree", "D", "1"]);
    assert!(e.code != 0 && e.stderr.contains("cannot be used with"), "{}", e.stderr);
    // Replay equals live.
    assert!(ok(&db, &["rebuild", "--check"]).contains("ok"), "rebuild --check");
    assert!(ok(&db, &["verify"]).starts_with("ok:"));
}
