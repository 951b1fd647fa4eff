//! The snapshot's MessagePack bytes are the plugin's wire format: a change
//! in how the Rust types are laid out (grouping fields into a struct, for
//! example) must not change a single byte of an encoded snapshot.

use fluxacct_core::limits::AssocLimits;
use fluxacct_core::snapshot::{AssociationRecord, LedgerHead, QueueRecord, Snapshot, SnapshotBuilder, Weights};
use fluxacct_core::{EventHash, Seq};

fn sample() -> Snapshot {
    let mut b = SnapshotBuilder::new(LedgerHead { seq: Seq(42), hash: EventHash([7; 32]) });
    b.add_association(&association("alice", "A", 1001, 5, 7, 100, 200, 9))
        .add_association(&association("bob", "B", 1002, 1, 2147483647, 2147483647, 2147483647, 0));
    b.add_queue(&QueueRecord::with_defaults("batch"));
    b.add_bank("A", 1.5).add_bank("B", 0.0);
    b.add_project("*").add_project("p1");
    b.weights(Weights { fairshare: 100000, queue: 10000, bank: 3, urgency: 1000 });
    b.deny_unknown_queues(true);
    b.build()
}

#[allow(clippy::too_many_arguments)]
fn association(
    user: &str,
    bank: &str,
    userid: u32,
    max_running_jobs: i64,
    max_active_jobs: i64,
    max_nodes: i64,
    max_cores: i64,
    max_sched_jobs: i64,
) -> AssociationRecord {
    AssociationRecord {
        userid,
        username: user.into(),
        bank: bank.into(),
        default_bank: bank.into(),
        active: userid % 2 == 1,
        fairshare: 0.25,
        limits: AssocLimits { max_running_jobs, max_active_jobs, max_nodes, max_cores, max_sched_jobs },
        queues: vec!["batch".into(), "debug".into()],
        projects: vec!["*".into(), "p1".into()],
        default_project: "p1".into(),
    }
}

#[test]
fn encoded_snapshot_bytes_stay_the_same() {
    let bytes = sample().encode().expect("encodes");
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), GOLDEN);
    assert_eq!(Snapshot::decode(&bytes).expect("decodes"), sample());
}

/// blake3 of `sample()` encoded before the association limits became one
/// [`AssocLimits`] field.
const GOLDEN: &str = "94ccc12b47d7461281f98b844e3f8ef3d3c19d536800bc003071a31e04732044";

#[test]
fn a_snapshot_with_allocations_round_trips_and_one_without_keeps_the_old_bytes() {
    use fluxacct_core::allocation::{Exhausted, ResourceWeights, Unit};
    use fluxacct_core::snapshot::AllocationRecord;
    let mut b = SnapshotBuilder::new(LedgerHead { seq: Seq(42), hash: EventHash([7; 32]) });
    b.add_association(&association("alice", "A", 1001, 5, 7, 100, 200, 9));
    b.allocation_settings(Exhausted::Deny, true, 600, ResourceWeights::default());
    b.add_queue_factor("batch", 2.0);
    b.add_allocation(&AllocationRecord {
        name: "q1".into(),
        banks: vec!["A".into()],
        project: String::new(),
        unit: Unit::NodeHours,
        allocated_milli: 100_000,
        remaining_milli: 5,
        start_s: 0,
        end_s: 100,
        exhausted: Some(Exhausted::LowPriority),
    });
    let snap = b.build();
    let bytes = snap.encode().expect("encodes");
    assert_eq!(Snapshot::decode(&bytes).expect("decodes"), snap);
    assert!(sample().allocations.is_none());
}
