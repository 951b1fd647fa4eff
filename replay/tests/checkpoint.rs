//! Checkpoints through the library: `take` refuses a
//! broken chain, and `verify` names a broken link before the checkpoint
//! even when the event at the checkpoint's seq is untouched. The CLI tests
//! (`commands/tests/replay_cli.rs`) cover rewriting with a recomputed
//! chain, truncation and swaps.

use fluxacct_core::events::*;
use fluxacct_core::{Actor, EventMeta, Seq};
use fluxacct_replay as replay;
use ledger::Ledger;
use replay::CheckpointFailure;

fn bank(name: &str, parent: &str) -> Event {
    Event::BankAdded(BankAdded {
        bank: name.into(),
        parent_bank: parent.into(),
        shares: 1,
        priority: 0.0,
        ignore_older_than: 0,
    })
}

/// Appends `DbCreated`, root and `banks` more banks, one per transaction.
fn append_banks(ledger: &mut Ledger, from: usize, banks: usize) {
    for i in from..from + banks {
        let meta = EventMeta {
            recorded_at_us: 1_767_225_600_000_000 + i as i64,
            actor: Actor { uid: 0, name: "root".into() },
            argv: vec!["test".into(), format!("{i}")],
        };
        let events = match i {
            0 => vec![Event::DbCreated(DbCreated::with_defaults(1_767_225_600.0)), bank("root", "")],
            _ => vec![bank(&format!("b{i}"), "root")],
        };
        let mut tx = ledger.transaction().expect("tx");
        projections::append_and_apply(&mut tx, &meta, &events).expect("append");
        tx.commit().expect("commit");
    }
}

fn tamper(ledger: &Ledger, sql: &str) {
    ledger.conn().execute_batch("DROP TRIGGER IF EXISTS events_no_update").expect("drop trigger");
    ledger.conn().execute_batch(sql).expect("tamper");
}

#[test]
fn a_file_and_an_in_memory_ledger_give_the_same_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut file = Ledger::create(&dir.path().join("l.db")).expect("create");
    projections::schema::create(file.conn()).expect("schema");
    let mut mem = Ledger::in_memory().expect("memory");
    projections::schema::create(mem.conn()).expect("schema");
    append_banks(&mut file, 0, 40);
    append_banks(&mut mem, 0, 40);
    let (a, _) = replay::checkpoint::take(&file, Some(Seq(30)), "t".into()).expect("take");
    let (b, _) = replay::checkpoint::take(&mem, Some(Seq(30)), "t".into()).expect("take");
    assert_eq!(a, b);
    assert_eq!(replay::checkpoint::verify(&file, &a).expect("verify"), Ok(()));
    assert_eq!(replay::checkpoint::verify(&mem, &a).expect("verify"), Ok(()));
}

#[test]
fn a_broken_link_before_the_checkpoint_is_named() {
    for in_memory in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ledger = if in_memory {
            Ledger::in_memory().expect("memory")
        } else {
            Ledger::create(&dir.path().join("l.db")).expect("create")
        };
        projections::schema::create(ledger.conn()).expect("schema");
        append_banks(&mut ledger, 0, 60);
        let (cp, _) = replay::checkpoint::take(&ledger, Some(Seq(50)), "t".into()).expect("take");
        append_banks(&mut ledger, 60, 5);
        assert_eq!(replay::checkpoint::verify(&ledger, &cp).expect("verify"), Ok(()));

        // Event 20's content changes; its stored hash, and so every link
        // after it and the event at seq 50, stay as they were.
        tamper(&ledger, "UPDATE events SET actor_uid = 7 WHERE seq = 20");
        match replay::checkpoint::verify(&ledger, &cp).expect("verify") {
            Err(CheckpointFailure::ChainBroken { seq: 50, reason }) => {
                assert_eq!(reason, "seq 20: stored hash does not match the event's content", "memory {in_memory}")
            }
            other => panic!("memory {in_memory}: {other:?}"),
        }
        // A checkpoint is not taken over a broken chain, and one taken
        // before the damage still verifies.
        let err = replay::checkpoint::take(&ledger, None, "t".into()).expect_err("broken chain");
        assert!(err.to_string().contains("seq 20"), "{err}");
        let (early, _) = replay::checkpoint::take(&ledger, Some(Seq(19)), "t".into()).expect("take");
        assert_eq!(replay::checkpoint::verify(&ledger, &early).expect("verify"), Ok(()));
    }
}

/// `verify_after_walk` skips the second walk only on a report that found
/// the chain intact to the checkpoint's seq or beyond; any other report
/// means the links are walked again.
#[test]
fn a_walk_report_saves_the_second_walk_only_when_it_covers_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("l.db");
    let mut ledger = Ledger::create(&path).expect("create");
    projections::schema::create(ledger.conn()).expect("schema");
    append_banks(&mut ledger, 0, 60);
    let (cp, _) = replay::checkpoint::take(&ledger, Some(Seq(50)), "t".into()).expect("take");
    let intact = ledger::verify_chain(&path, 2).expect("walk");
    let short = ledger.verify_chain(2, Some(Seq(49))).expect("walk");
    assert!(intact.ok() && short.ok());

    // Damage that leaves the projections as they were (the actor is not
    // projected): only a walk of the links sees it.
    tamper(&ledger, "UPDATE events SET actor_uid = 7 WHERE seq = 20");
    let broken = ledger::verify_chain(&path, 2).expect("walk");
    assert_eq!(broken.failure.as_ref().map(|f| f.seq), Some(Seq(20)));
    for report in [&broken, &short] {
        match replay::checkpoint::verify_after_walk(&ledger, &cp, report).expect("verify") {
            Err(CheckpointFailure::ChainBroken { seq: 50, reason }) => {
                assert!(reason.starts_with("seq 20:"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    // The earlier walk found the chain intact past the checkpoint: trusted.
    assert_eq!(replay::checkpoint::verify_after_walk(&ledger, &cp, &intact).expect("verify"), Ok(()));
}
