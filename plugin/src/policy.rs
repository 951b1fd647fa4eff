//! The safe decision core (policy) of `mf_priority`: the snapshot, per-association counters
//! and per-job bookkeeping, and every decision (accept, reject, hold,
//! release, priority). No C, no `unsafe`.
//!
//! Every method returns an [`Outcome`]: a [`Decision`] for the callback's
//! return value and OUT arguments, plus a list of [`Effect`]s (dependency
//! changes, jobspec updates, memo events, exceptions) that the FFI shim
//! carries out **after** the core is no longer borrowed, because some of
//! them (removing another job's last dependency) make the job manager call
//! back into the plugin synchronously.
//!
//! Differences from flux-accounting's plugin, on purpose:
//! * the queue factor is the priority of the **job's own** queue, looked up
//!   when the priority is computed (not cached on the association);
//! * a job that reaches SCHED several times is counted once; leaving SCHED
//!   for PRIORITY (urgency change, jobspec update, restart) uncounts it;
//! * the release pass and the hold checks count jobs already released from a
//!   hold but not yet running, so no more jobs are released than there is
//!   room for;
//! * a job that names its bank keeps it (the default bank is posted only for
//!   jobs that name none);
//! * no placeholder association: jobs of users the plugin cannot look up yet
//!   are simply not attached to any association until data arrives.

use std::collections::{BTreeMap, HashMap};

use fluxacct_core::allocation::Exhausted;
use fluxacct_core::limits::AssocLimits;
pub use fluxacct_core::priority::{priority_formula, PRIORITY_MAX};
use fluxacct_core::snapshot::{
    Association, AssociationRecord, LedgerHead, Queue, QueueRecord, Snapshot, SnapshotBuilder, StrId, Weights,
};
use serde_json::{json, Map, Value};

use crate::jobin::{Attr, JobIn, Resources};
use crate::rpc::RpcUpdate;

mod alloc;
use alloc::{AllocIndex, Ask, Verdict};

/// The `FLUX_JOB_STATE_*` bits a jobtap callback reports.
pub use fluxacct_core::job_state::{
    CLEANUP as STATE_CLEANUP, DEPEND as STATE_DEPEND, INACTIVE as STATE_INACTIVE, NEW as STATE_NEW,
    PRIORITY as STATE_PRIORITY, RUN as STATE_RUN, SCHED as STATE_SCHED,
};

/// Hold: the association's running jobs in the job's queue are at the queue limit.
pub const D_QUEUE_MRJ: &str = "max-run-jobs-queue";
/// Hold: SCHED jobs in the queue at the queue limit.
pub const D_QUEUE_MSJ: &str = "max-sched-jobs-queue-limit";
/// Hold: SCHED nodes in the queue would exceed the queue limit.
pub const D_QUEUE_MSN: &str = "max-sched-nodes-queue-limit";
/// Hold: SCHED cores in the queue would exceed the queue limit.
pub const D_QUEUE_MSC: &str = "max-sched-cores-queue-limit";
/// Hold: running + SCHED nodes in the queue would exceed the queue limit.
pub const D_QUEUE_MRES: &str = "max-resources-queue";
/// Hold: the association's running jobs are at its limit.
pub const D_ASSOC_MRJ: &str = "max-running-jobs-user-limit";
/// Hold: the association's SCHED jobs are at its limit.
pub const D_ASSOC_MSJ: &str = "max-sched-jobs-user-limit";
/// Hold: the association's running nodes/cores would exceed its limits.
pub const D_ASSOC_MRES: &str = "max-resources-user-limit";

/// flux-accounting's marker for an association whose information is missing
/// (`max_running_jobs` −1, sent by its tests through `rec_update`): its
/// jobs get a fatal exception at `job.state.depend`.
pub const BANK_INFO_MISSING: i64 = -1;

/// All hold dependencies, in the order they are checked.
pub const HOLDS: [&str; 8] =
    [D_QUEUE_MRJ, D_QUEUE_MSJ, D_QUEUE_MSN, D_QUEUE_MSC, D_QUEUE_MRES, D_ASSOC_MRJ, D_ASSOC_MSJ, D_ASSOC_MRES];

/// What the callback returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Return 0.
    Ok,
    /// Set OUT `errmsg` and return −1.
    Reject(String),
    /// Set OUT `priority` (an integer) and return 0.
    Priority(i64),
    /// Priority unavailable (`flux_jobtap_priority_unavail`): the job waits in PRIORITY.
    Unavail,
    /// Return −1 without a message (an exception effect says why).
    Fail,
}

/// Something the shim must do after the core is released.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Post one `jobspec-update` on the current job.
    JobspecUpdate {
        /// `attributes.system.bank`, if it is to be set.
        bank: Option<String>,
        /// `attributes.system.project`, if it is to be set.
        project: Option<String>,
    },
    /// `flux_jobtap_dependency_add`.
    DependencyAdd {
        /// Job.
        id: u64,
        /// Dependency description (one of [`HOLDS`]).
        dep: &'static str,
    },
    /// `flux_jobtap_dependency_remove`; `quiet` when failure is expected
    /// (clearing holds that may not be there after a reload).
    DependencyRemove {
        /// Job.
        id: u64,
        /// Dependency description.
        dep: &'static str,
        /// Do not raise an exception if the removal fails.
        quiet: bool,
    },
    /// `flux_jobtap_dependency_add` of an allocation hold, whose
    /// description is the message (`allocation NAME exhausted: …`).
    AllocationHoldAdd {
        /// Job.
        id: u64,
        /// Dependency description.
        dep: String,
    },
    /// `flux_jobtap_dependency_remove` of an allocation hold.
    AllocationHoldRemove {
        /// Job.
        id: u64,
        /// Dependency description (as added).
        dep: String,
    },
    /// Post a `memo` event `{"fairshare": f}`.
    Memo {
        /// Job.
        id: u64,
        /// The fair-share value used.
        fairshare: f64,
    },
    /// Raise a fatal `mf_priority` exception on a job.
    Exception {
        /// Job.
        id: u64,
        /// Note.
        note: String,
    },
}

/// A decision plus effects.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The callback's result.
    pub decision: Decision,
    /// Side effects, in order.
    pub effects: Vec<Effect>,
}

impl Outcome {
    fn ok() -> Outcome {
        Outcome { decision: Decision::Ok, effects: Vec::new() }
    }
    fn reject(msg: impl Into<String>) -> Outcome {
        Outcome { decision: Decision::Reject(msg.into()), effects: Vec::new() }
    }
    fn with(decision: Decision, effects: Vec<Effect>) -> Outcome {
        Outcome { decision, effects }
    }
}

/// The loaded data, indexed for lookups.
#[derive(Debug)]
struct Data {
    snap: Snapshot,
    /// uid → (default bank, association indices).
    users: HashMap<u32, User>,
    /// queue name → index into `snap.queues`.
    queues: HashMap<String, usize>,
    /// bank name → priority.
    banks: HashMap<String, f64>,
    /// project name → string id.
    projects: HashMap<String, StrId>,
    /// The allocations, when the snapshot has any.
    alloc: Option<AllocIndex>,
}

#[derive(Debug, Default)]
struct User {
    default_bank: StrId,
    assocs: Vec<usize>,
}

impl Data {
    fn new(snap: Snapshot) -> Data {
        let mut users: HashMap<u32, User> = HashMap::with_capacity(snap.associations.len());
        for (i, a) in snap.associations.iter().enumerate() {
            let u = users.entry(a.userid).or_default();
            u.default_bank = a.default_bank;
            u.assocs.push(i);
        }
        let queues = snap.queues.iter().enumerate().map(|(i, q)| (snap.str(q.name).to_string(), i)).collect();
        let banks = snap.banks.iter().map(|b| (snap.str(b.name).to_string(), b.priority)).collect();
        let projects = snap.projects.iter().map(|&p| (snap.str(p).to_string(), p)).collect();
        let alloc = AllocIndex::new(&snap);
        Data { snap, users, queues, banks, projects, alloc }
    }

    fn has_associations(&self) -> bool {
        !self.snap.associations.is_empty()
    }

    /// The association for `uid` in `bank`, or in the user's default bank.
    fn lookup(&self, uid: u32, bank: Option<&str>) -> Option<usize> {
        let u = self.users.get(&uid)?;
        let want = bank.unwrap_or_else(|| self.snap.str(u.default_bank));
        u.assocs.iter().copied().find(|&i| self.snap.str(self.snap.associations[i].bank) == want)
    }

    fn assoc(&self, i: usize) -> &Association {
        &self.snap.associations[i]
    }

    fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.get(name).map(|&i| &self.snap.queues[i])
    }

    fn queue_allowed(&self, a: &Association, q: &Queue) -> bool {
        self.snap.list(a.queues).contains(&q.name)
    }

    fn names(&self, list: u32) -> String {
        self.snap.list(list).iter().map(|&s| self.snap.str(s)).collect::<Vec<_>>().join(",")
    }
}

/// The association values the counters are checked against (kept per
/// counter entry so an association dropped from a newer snapshot keeps its
/// last known values for the jobs it still has).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Params {
    fairshare: f64,
    limits: AssocLimits,
    active: bool,
}

impl From<&Association> for Params {
    fn from(a: &Association) -> Params {
        Params { fairshare: a.fairshare, limits: a.limits, active: a.active }
    }
}

/// Per association, per queue usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct QueueUsage {
    run: i64,
    nodes: i64,
    sched: i64,
    sched_nodes: i64,
    sched_cores: i64,
}

/// Counters of one association (user, bank).
#[derive(Debug, Clone)]
struct AssocState {
    userid: u32,
    bank: String,
    params: Params,
    /// Index of the association in the current snapshot.
    snap_idx: Option<usize>,
    active: i64,
    run: i64,
    sched: i64,
    nodes: i64,
    cores: i64,
    queue_usage: BTreeMap<String, QueueUsage>,
    /// Held jobs, in hold order.
    held: Vec<u64>,
    /// Jobs released from a hold, not yet running.
    inflight: Vec<u64>,
}

impl AssocState {
    /// A counter entry with no jobs counted yet.
    fn new(userid: u32, bank: String, params: Params, snap_idx: Option<usize>) -> AssocState {
        AssocState {
            userid,
            bank,
            params,
            snap_idx,
            active: 0,
            run: 0,
            sched: 0,
            nodes: 0,
            cores: 0,
            queue_usage: BTreeMap::new(),
            held: Vec::new(),
            inflight: Vec::new(),
        }
    }
}

/// A job the plugin tracks (from job.new to job.state.inactive).
#[derive(Debug, Clone)]
struct Job {
    userid: u32,
    /// Counter entry, `None` while the plugin cannot look the user up.
    assoc: Option<usize>,
    /// The bank the jobspec names.
    bank: Option<String>,
    project_given: bool,
    queue: Option<String>,
    /// The project the jobspec names.
    project: Option<String>,
    /// Requested duration (0: none).
    duration_s: f64,
    /// The lien the job holds (allocation, milli-units).
    lien: Option<(String, i64)>,
    res: Resources,
    /// Hold dependencies still on the job.
    deps: Vec<&'static str>,
    in_sched: bool,
    in_run: bool,
    released: bool,
    /// Post bank/project at the next priority callback.
    spec_update_pending: bool,
    /// Replayed by a plugin load while in DEPEND: clear stale holds.
    replay_depend: bool,
    last_fairshare: Option<f64>,
}

/// Offsets for jobs released from holds but not yet running.
#[derive(Debug, Default, Clone, Copy)]
struct Offsets {
    run: i64,
    nodes: i64,
    cores: i64,
    unsched: i64,
    q_run: i64,
    q_unsched: i64,
    q_unsched_nodes: i64,
    q_unsched_cores: i64,
}

/// The plugin's state and decisions. See the module docs.
#[derive(Debug, Default)]
pub struct Policy {
    /// The instance owner (uid, name): given an association when the data
    /// has none for it (see [`Policy::set_owner`]).
    owner: Option<(u32, String)>,
    data: Option<Data>,
    slab: Vec<AssocState>,
    slab_by_uid: HashMap<u32, Vec<usize>>,
    jobs: HashMap<u64, Job>,
    /// Counter underflows since the shim last asked ([`Policy::take_errors`]).
    errors: Vec<String>,
    /// Update RPCs applied since the last snapshot load.
    rpc_updates: u64,
    /// Whether a snapshot (or load-time config) was ever loaded.
    snapshot_loaded: bool,
    /// The time now (epoch seconds), as the shim last set it.
    now_s: Option<i64>,
    /// Jobs held by an exhausted allocation → the hold's description.
    alloc_held: BTreeMap<u64, String>,
    /// Liens of finished jobs, kept until the next snapshot load.
    settled: Vec<(String, i64)>,
    /// Σ of every lien held (tracked jobs' and `settled`), per allocation:
    /// kept as liens are taken and dropped, so no decision walks all jobs.
    liens_held: BTreeMap<String, i64>,
}

/// flux-accounting's synthetic instance-owner association (reference
/// §1.2.6): bank and default bank named after the owner, fair-share 0.5,
/// run/active/node/core limits 1000000, no sched-jobs limit, no queues,
/// project `*`. Added only when the data has none for the owner, and, unless
/// `even_if_empty` (a loaded snapshot: the whole ledger, however empty),
/// only to data that has associations (update RPCs that have sent no
/// association yet still mean "no data yet").
fn add_owner(snap: &mut Snapshot, uid: u32, name: &str, even_if_empty: bool) {
    if (snap.associations.is_empty() && !even_if_empty) || snap.associations.iter().any(|a| a.userid == uid) {
        return;
    }
    let intern = |snap: &mut Snapshot, s: &str| -> StrId {
        match snap.strings.iter().position(|x| x == s) {
            Some(i) => i as StrId,
            None => {
                snap.strings.push(s.to_string());
                (snap.strings.len() - 1) as StrId
            }
        }
    };
    let name_id = intern(snap, name);
    let star = intern(snap, "*");
    snap.lists.push(Vec::new());
    let queues = (snap.lists.len() - 1) as u32;
    snap.lists.push(vec![star]);
    let projects = (snap.lists.len() - 1) as u32;
    snap.associations.push(Association {
        userid: uid,
        username: name_id,
        bank: name_id,
        default_bank: name_id,
        active: true,
        fairshare: 0.5,
        limits: AssocLimits {
            max_running_jobs: 1_000_000,
            max_active_jobs: 1_000_000,
            max_nodes: 1_000_000,
            max_cores: 1_000_000,
            max_sched_jobs: 2_147_483_647,
        },
        queues,
        projects,
        default_project: star,
    });
}

/// Adds `d` to a counter. A counter never goes below zero: if it would,
/// the bookkeeping is wrong somewhere, so it is clamped at zero (the plugin
/// keeps serving) and `false` is returned for the caller to report.
#[must_use]
fn add(x: &mut i64, d: i64) -> bool {
    let v = x.saturating_add(d);
    *x = v.max(0);
    debug_assert!(v >= 0, "mf_priority counter underflow: {} + {d}", v.saturating_sub(d));
    v >= 0
}

/// Adds `d` to a sum of offsets, saturating, never below zero.
fn bump(x: &mut i64, d: i64) {
    *x = x.saturating_add(d).max(0);
}

impl Policy {
    /// A core with no data: every job is accepted and waits in PRIORITY
    /// until a snapshot is loaded.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Names the instance owner (the user the broker runs as). Every later
    /// [`Policy::load`] of data with associations but none for the owner adds
    /// one, as flux-accounting's `priority-update` does, so the owner's jobs
    /// are accepted and run.
    pub fn set_owner(&mut self, uid: u32, name: impl Into<String>) {
        self.owner = Some((uid, name.into()));
    }

    /// The ledger head of the loaded snapshot, if one was loaded (data
    /// that only update RPCs filled has none).
    pub fn head(&self) -> Option<LedgerHead> {
        self.data.as_ref().filter(|_| self.snapshot_loaded).map(|d| d.snap.head)
    }

    /// The loaded data, if it has associations (data without any counts as
    /// no data: jobs are accepted and wait in PRIORITY).
    fn live_data(&self) -> Option<&Data> {
        self.data.as_ref().filter(|d| d.has_associations())
    }

    /// Whether there is data to look users up in (see [`Policy::live_data`]).
    fn has_data(&self) -> bool {
        self.live_data().is_some()
    }

    /// The bank of the counter entry job `id` is attached to, if any.
    fn current_bank(&self, id: u64) -> Option<&str> {
        self.jobs.get(&id)?.assoc.map(|s| self.slab[s].bank.as_str())
    }

    fn weights(&self) -> Weights {
        self.data.as_ref().map(|d| d.snap.weights).unwrap_or_default()
    }

    /// Replaces the data with `snap` (counters, holds and jobs are kept;
    /// whatever update RPCs changed before is replaced too), adds the
    /// owner's association if the snapshot has none for it (even to an
    /// empty snapshot: an empty ledger still lets the owner run jobs),
    /// attaches running and scheduled jobs whose users can now be looked up,
    /// and returns the new head. Call [`Policy::release_all`] afterwards (after
    /// reprioritizing).
    pub fn load(&mut self, mut snap: Snapshot) -> LedgerHead {
        let head = snap.head;
        if let Some((uid, name)) = &self.owner {
            add_owner(&mut snap, *uid, name, true);
        }
        self.rpc_updates = 0;
        self.snapshot_loaded = true;
        // The new snapshot's balances include what finished jobs were
        // charged (docs/allocations.md: the race with ingest).
        for (name, milli) in std::mem::take(&mut self.settled) {
            self.lien_delta(&name, -milli);
        }
        self.install(snap);
        head
    }

    /// Applies one of flux-accounting's update RPCs to the data in force
    /// (an empty snapshot if there is none): associations are upserted
    /// (never removed; the user's default bank is set on all of its
    /// associations), queues, projects and banks replaced, factor weights
    /// set one by one, `deny_unknown_queues` set. The ledger head stays the
    /// last snapshot's. Like flux-accounting, nothing is reprioritized: the
    /// `reprioritize` RPC does that.
    pub fn apply_rpc(&mut self, update: RpcUpdate) {
        let base = match &self.data {
            Some(d) => d.snap.clone(),
            None => SnapshotBuilder::new(LedgerHead::default()).build(),
        };
        let mut assocs: Vec<AssociationRecord> = base.associations.iter().map(|a| base.association_record(a)).collect();
        let mut queues: Vec<QueueRecord> =
            base.queues.iter().map(|q| QueueRecord::new(base.str(q.name), q.limits)).collect();
        let mut banks: Vec<(String, f64)> =
            base.banks.iter().map(|b| (base.str(b.name).to_string(), b.priority)).collect();
        let mut projects: Vec<String> = base.projects.iter().map(|&p| base.str(p).to_string()).collect();
        let mut weights = base.weights;
        let mut deny = base.deny_unknown_queues;
        match update {
            RpcUpdate::Associations(new) => {
                let mut index: HashMap<(u32, String), usize> =
                    assocs.iter().enumerate().map(|(i, a)| ((a.userid, a.bank.clone()), i)).collect();
                for mut a in new {
                    let def_bank = a.default_bank.clone();
                    for other in assocs.iter_mut().filter(|o| o.userid == a.userid) {
                        other.default_bank = def_bank.clone();
                    }
                    match index.get(&(a.userid, a.bank.clone())) {
                        Some(&i) => {
                            a.username = std::mem::take(&mut assocs[i].username);
                            assocs[i] = a;
                        }
                        None => {
                            a.username = assocs
                                .iter()
                                .find(|o| o.userid == a.userid)
                                .map(|o| o.username.clone())
                                .unwrap_or_else(|| a.userid.to_string());
                            index.insert((a.userid, a.bank.clone()), assocs.len());
                            assocs.push(a);
                        }
                    }
                }
            }
            RpcUpdate::Queues(q) => queues = q,
            RpcUpdate::Projects(p) => projects = p,
            RpcUpdate::Banks(b) => banks = b,
            RpcUpdate::Factors(f) => {
                for (factor, weight) in f {
                    // Factors the formula does not use are ignored.
                    let _ = weights.set(&factor, weight);
                }
            }
            RpcUpdate::Config { deny_unknown_queues } => deny = deny_unknown_queues,
        }
        let mut b = SnapshotBuilder::new(base.head);
        for a in &assocs {
            b.add_association(a);
        }
        for q in &queues {
            b.add_queue(q);
        }
        for (name, priority) in &banks {
            b.add_bank(name, *priority);
        }
        for p in &projects {
            b.add_project(p);
        }
        b.weights(weights).deny_unknown_queues(deny);
        let mut snap = b.build();
        if let Some((uid, name)) = &self.owner {
            add_owner(&mut snap, *uid, name, false);
        }
        self.rpc_updates = self.rpc_updates.saturating_add(1);
        self.install(snap);
    }

    /// Puts `snap` in force: indexes it, points counter entries at their
    /// associations (taking their new values) and attaches running and
    /// scheduled jobs whose users can now be looked up.
    fn install(&mut self, snap: Snapshot) {
        let data = Data::new(snap);
        for s in &mut self.slab {
            s.snap_idx = data.lookup(s.userid, Some(&s.bank));
            if let Some(i) = s.snap_idx {
                s.params = Params::from(data.assoc(i));
            }
        }
        self.data = Some(data);
        let waiting: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.assoc.is_none() && (j.in_sched || j.in_run))
            .map(|(&id, _)| id)
            .collect();
        for id in waiting {
            if let Some((uid, bank)) = self.jobs.get(&id).map(|j| (j.userid, j.bank.clone())) {
                if let Some(s) = self.slab_for(uid, bank.as_deref()) {
                    self.attach(id, s);
                }
            }
        }
    }

    /// Finds or creates the counter entry for (uid, bank or default bank).
    fn slab_for(&mut self, uid: u32, bank: Option<&str>) -> Option<usize> {
        let data = self.data.as_ref()?;
        let ai = data.lookup(uid, bank)?;
        let a = data.assoc(ai);
        let bank_name = data.snap.str(a.bank);
        if let Some(s) = self.find_slab(uid, bank_name) {
            return Some(s);
        }
        let s = self.slab.len();
        self.slab.push(AssocState::new(uid, bank_name.to_string(), Params::from(a), Some(ai)));
        self.slab_by_uid.entry(uid).or_default().push(s);
        Some(s)
    }

    /// The counter entry for (uid, bank name), if one exists.
    fn find_slab(&self, uid: u32, bank: &str) -> Option<usize> {
        self.slab_by_uid.get(&uid)?.iter().copied().find(|&s| self.slab[s].bank == bank)
    }

    /// Adds (`sign` = 1) or removes (−1) a job's contributions to its
    /// association's counters.
    fn contribute(&mut self, id: u64, sign: i64) {
        let Policy { jobs, slab, .. } = self;
        let Some(job) = jobs.get(&id) else { return };
        let Some(s) = job.assoc else { return };
        let (n, c) = (job.res.nnodes, job.res.ncores);
        let (in_sched, in_run) = (job.in_sched, job.in_run);
        let a = &mut slab[s];
        let mut ok = add(&mut a.active, sign);
        if in_sched {
            ok &= add(&mut a.sched, sign);
        }
        if in_run {
            ok &= add(&mut a.run, sign);
            ok &= add(&mut a.nodes, sign.saturating_mul(n));
            ok &= add(&mut a.cores, sign.saturating_mul(c));
        }
        if let Some(q) = &job.queue {
            if in_sched || in_run {
                // Clone the queue name only for a new entry (a −1 creates a
                // zero entry, as it always has).
                let u = match a.queue_usage.get_mut(q.as_str()) {
                    Some(u) => u,
                    None => a.queue_usage.entry(q.clone()).or_default(),
                };
                if in_sched {
                    ok &= add(&mut u.sched, sign);
                    ok &= add(&mut u.sched_nodes, sign.saturating_mul(n));
                    ok &= add(&mut u.sched_cores, sign.saturating_mul(c));
                }
                if in_run {
                    ok &= add(&mut u.run, sign);
                    ok &= add(&mut u.nodes, sign.saturating_mul(n));
                }
            }
        }
        if !ok {
            let msg = format!(
                "mf_priority: counter underflow uncounting job {id} from {}/{}: clamped at 0",
                a.userid, a.bank
            );
            self.errors.push(msg);
        }
    }

    /// The counter underflows found since the last call (each one a
    /// bookkeeping bug), for the shim to log as errors.
    pub fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    /// Attaches a job to counter entry `s` and counts it.
    fn attach(&mut self, id: u64, s: usize) {
        let Some(job) = self.jobs.get_mut(&id) else { return };
        job.assoc = Some(s);
        let (held, released) = (!job.deps.is_empty(), job.released);
        if held {
            self.slab[s].held.push(id);
        }
        if released {
            self.slab[s].inflight.push(id);
        }
        self.contribute(id, 1);
    }

    /// Uncounts a job and detaches it from its counter entry.
    fn detach(&mut self, id: u64) {
        self.contribute(id, -1);
        let Some(job) = self.jobs.get_mut(&id) else { return };
        if let Some(s) = job.assoc.take() {
            self.slab[s].held.retain(|&h| h != id);
            self.slab[s].inflight.retain(|&h| h != id);
        }
    }

    /// Changes a job's SCHED/RUN flags, keeping counters right.
    fn set_flags(&mut self, id: u64, in_sched: bool, in_run: bool) {
        self.contribute(id, -1);
        if let Some(j) = self.jobs.get_mut(&id) {
            j.in_sched = in_sched;
            j.in_run = in_run;
        }
        self.contribute(id, 1);
    }

    /// Sets the time now (epoch seconds): allocations outside their
    /// period are not enforced.
    pub fn set_now(&mut self, now_s: i64) {
        self.now_s = Some(now_s);
    }

    /// Adds `milli` (negative: removes) to the liens held on `name`.
    fn lien_delta(&mut self, name: &str, milli: i64) {
        let e = self.liens_held.entry(name.to_string()).or_default();
        *e = e.saturating_add(milli);
        if *e == 0 {
            self.liens_held.remove(name);
        }
    }

    /// Replaces the lien job `id` holds.
    fn set_lien(&mut self, id: u64, lien: Option<(String, i64)>) {
        let Some(j) = self.jobs.get_mut(&id) else { return };
        let old = std::mem::replace(&mut j.lien, lien.clone());
        if let Some((name, milli)) = old {
            self.lien_delta(&name, -milli);
        }
        if let Some((name, milli)) = lien {
            self.lien_delta(&name, milli);
        }
    }

    /// What the allocations say about tracked job `id` (`None` when there
    /// are none, or the job is not attached).
    fn judge(&self, id: u64, want_lien: bool) -> Option<Verdict> {
        let data = self.data.as_ref()?;
        let al = data.alloc.as_ref()?;
        let j = self.jobs.get(&id)?;
        let s = &self.slab[j.assoc?];
        let project = match (&j.project, s.snap_idx) {
            (Some(p), _) => p.as_str(),
            (None, Some(ai)) => data.snap.str(data.assoc(ai).default_project),
            (None, None) => "",
        };
        let ask = Ask {
            bank: &s.bank,
            project,
            queue: j.queue.as_deref(),
            res: j.res,
            duration_s: j.duration_s,
            now_s: self.now_s,
        };
        Some(al.judge(&ask, &self.liens_held, j.lien.as_ref(), want_lien))
    }

    /// Releases the jobs held by an exhausted allocation that now has room
    /// (in job id order), taking their liens.
    fn release_allocation_holds(&mut self, effects: &mut Vec<Effect>) {
        let held: Vec<(u64, String)> = self.alloc_held.iter().map(|(id, d)| (*id, d.clone())).collect();
        for (id, dep) in held {
            match self.judge(id, true) {
                Some(Verdict::Exhausted { policy: Exhausted::Hold | Exhausted::Deny, .. }) => continue,
                Some(Verdict::Fits(lien)) => self.set_lien(id, lien),
                _ => {}
            }
            self.alloc_held.remove(&id);
            effects.push(Effect::AllocationHoldRemove { id, dep });
        }
    }

    /// `job.validate`: accept or reject a job (at submission, or on update
    /// with the updated jobspec).
    pub fn validate(&self, job: &JobIn) -> Outcome {
        if [&job.bank, &job.queue, &job.project].iter().any(|a| **a == Attr::Invalid) {
            return Outcome::reject("unable to unpack bank arg");
        }
        let Some(data) = self.live_data() else {
            // No data yet: accept; the job waits in PRIORITY.
            return Outcome::ok();
        };
        let Some(ai) = data.lookup(job.userid, job.bank.as_str()) else {
            return Outcome::reject(format!(
                "cannot find user/bank or user/default bank entry for uid: {}",
                job.userid
            ));
        };
        let a = data.assoc(ai);
        if !a.active {
            return Outcome::reject("user/bank entry has been disabled from flux-accounting DB");
        }
        let queue = job.queue.as_str().and_then(|q| data.queue(q).map(|qi| (q, qi)));
        if let Some(q) = job.queue.as_str() {
            match queue {
                None if data.snap.deny_unknown_queues => {
                    return Outcome::reject(format!(
                        "queue \"{q}\" is unknown to flux-accounting and deny-unknown-queues is enabled"
                    ));
                }
                Some((_, qi)) if !data.queue_allowed(a, qi) => {
                    return Outcome::reject(format!(
                        "queue \"{q}\" not valid for user; valid queues for user: {}",
                        data.names(a.queues)
                    ));
                }
                _ => {}
            }
        }
        if let Some(p) = job.project.as_str() {
            let ok = data.projects.get(p).is_some_and(|id| data.snap.list(a.projects).contains(id));
            if !ok {
                return Outcome::reject(format!(
                    "project \"{p}\" not valid for user; valid projects for user: {}",
                    data.names(a.projects)
                ));
            }
        }
        if job.state == STATE_NEW && a.limits.max_active_jobs > 0 {
            let bank = data.snap.str(a.bank);
            let active = self.find_slab(job.userid, bank).map_or(0, |s| self.slab[s].active);
            if active >= a.limits.max_active_jobs {
                return Outcome::reject("user has max active jobs");
            }
        }
        let Some(res) = job.resources else {
            return Outcome::reject("unable to count resources for job");
        };
        if let Some(al) = &data.alloc {
            let project = job.project.as_str().unwrap_or_else(|| data.snap.str(a.default_project));
            let ask = Ask {
                bank: data.snap.str(a.bank),
                project,
                queue: job.queue.as_str(),
                res,
                duration_s: job.duration_s,
                now_s: self.now_s,
            };
            if let Verdict::Exhausted { policy: Exhausted::Deny, message } =
                al.judge(&ask, &self.liens_held, None, false)
            {
                return Outcome::reject(message);
            }
        }
        if let Some((_, qi)) = queue {
            if res.nnodes > qi.limits.max_nodes_per_assoc {
                return Outcome::reject(format!(
                    "job size ({} node(s)) is greater than max resources limit configured for queue ({} node(s))",
                    res.nnodes, qi.limits.max_nodes_per_assoc
                ));
            }
        }
        if res.nnodes > a.limits.max_nodes || res.ncores > a.limits.max_cores {
            return Outcome::reject(format!(
                "job size ({} node(s), {} core(s)) is greater than max resources limits configured for association ({} node(s), {} core(s))",
                res.nnodes, res.ncores, a.limits.max_nodes, a.limits.max_cores
            ));
        }
        Outcome::ok()
    }

    /// `job.new`: start tracking a job (at submission, or replayed by a
    /// plugin load with the job in any active state). At submission, posts
    /// the default bank and project for jobs that name none.
    pub fn job_new(&mut self, job: &JobIn) -> Outcome {
        if self.jobs.contains_key(&job.id) {
            return Outcome::ok();
        }
        let in_run = job.state == STATE_RUN || (job.state == STATE_CLEANUP && job.has_r);
        let entry = Job {
            userid: job.userid,
            assoc: None,
            bank: job.bank.as_str().map(str::to_string),
            project_given: job.project != Attr::Missing,
            queue: job.queue.as_str().map(str::to_string),
            project: job.project.as_str().map(str::to_string),
            duration_s: job.duration_s,
            lien: None,
            res: job.resources.unwrap_or_default(),
            deps: Vec::new(),
            in_sched: job.state == STATE_SCHED,
            in_run,
            released: false,
            spec_update_pending: false,
            replay_depend: job.state == STATE_DEPEND,
            last_fairshare: None,
        };
        let bank = entry.bank.clone();
        self.jobs.insert(job.id, entry);
        let mut effects = Vec::new();
        if !self.has_data() {
            return Outcome::ok();
        }
        let Some(s) = self.slab_for(job.userid, bank.as_deref()) else {
            return Outcome::ok();
        };
        self.attach(job.id, s);
        if let Some(update) = self.spec_update(job.id) {
            if job.state == STATE_NEW {
                effects.push(update);
            } else if job.state == STATE_DEPEND || job.state == STATE_PRIORITY || job.state == STATE_SCHED {
                if let Some(j) = self.jobs.get_mut(&job.id) {
                    j.spec_update_pending = true;
                }
            }
        }
        Outcome::with(Decision::Ok, effects)
    }

    /// The jobspec update (default bank and/or project) a job needs, if any.
    fn spec_update(&self, id: u64) -> Option<Effect> {
        let data = self.data.as_ref()?;
        let job = self.jobs.get(&id)?;
        let s = &self.slab[job.assoc?];
        let bank = job.bank.is_none().then(|| s.bank.clone());
        let project = if job.project_given {
            None
        } else {
            let a = data.assoc(s.snap_idx?);
            Some(data.snap.str(a.default_project).to_string()).filter(|p| !p.is_empty())
        };
        if bank.is_none() && project.is_none() {
            return None;
        }
        Some(Effect::JobspecUpdate { bank, project })
    }

    /// Offsets for released, not yet running jobs of counter entry `s`.
    fn offsets(&self, s: usize, queue: Option<&str>) -> Offsets {
        let mut o = Offsets::default();
        for id in &self.slab[s].inflight {
            let Some(j) = self.jobs.get(id) else { continue };
            if j.in_run {
                continue;
            }
            let same_q = queue.is_some() && j.queue.as_deref() == queue;
            bump(&mut o.run, 1);
            bump(&mut o.nodes, j.res.nnodes);
            bump(&mut o.cores, j.res.ncores);
            if same_q {
                bump(&mut o.q_run, 1);
            }
            if !j.in_sched {
                bump(&mut o.unsched, 1);
                if same_q {
                    bump(&mut o.q_unsched, 1);
                    bump(&mut o.q_unsched_nodes, j.res.nnodes);
                    bump(&mut o.q_unsched_cores, j.res.ncores);
                }
            }
        }
        o
    }

    /// Whether hold `dep` is needed for a job of counter entry `s` with
    /// queue `queue` and resources `res`.
    fn hold_needed(&self, dep: &str, s: usize, queue: Option<&str>, res: Resources, o: &Offsets) -> bool {
        let a = &self.slab[s];
        let p = &a.params;
        let qi = queue.and_then(|q| self.data.as_ref()?.queue(q));
        let qu = queue.and_then(|q| a.queue_usage.get(q)).copied().unwrap_or_default();
        let sum = |xs: &[i64]| xs.iter().fold(0i64, |acc, &x| acc.saturating_add(x));
        match (dep, qi) {
            (D_QUEUE_MRJ, Some(q)) => sum(&[qu.run, o.q_run]) >= q.limits.max_running_jobs,
            (D_QUEUE_MSJ, Some(q)) => sum(&[qu.sched, o.q_unsched]) >= q.limits.max_sched_jobs,
            (D_QUEUE_MSN, Some(q)) => {
                sum(&[qu.sched_nodes, o.q_unsched_nodes, res.nnodes]) > q.limits.max_sched_nodes_per_assoc
            }
            (D_QUEUE_MSC, Some(q)) => {
                sum(&[qu.sched_cores, o.q_unsched_cores, res.ncores]) > q.limits.max_sched_cores_per_assoc
            }
            (D_QUEUE_MRES, Some(q)) => {
                sum(&[qu.nodes, qu.sched_nodes, o.q_unsched_nodes, res.nnodes]) > q.limits.max_nodes_per_assoc
            }
            (D_ASSOC_MRJ, _) => sum(&[a.run, o.run]) >= p.limits.max_running_jobs,
            (D_ASSOC_MSJ, _) => sum(&[a.sched, o.unsched]) >= p.limits.max_sched_jobs,
            (D_ASSOC_MRES, _) => {
                !(p.limits.max_nodes > 0
                    && p.limits.max_cores > 0
                    && sum(&[a.nodes, o.nodes, res.nnodes]) <= p.limits.max_nodes
                    && sum(&[a.cores, o.cores, res.ncores]) <= p.limits.max_cores)
            }
            _ => false,
        }
    }

    /// `job.state.depend`: hold the job with one dependency per limit that
    /// has no room.
    pub fn depend(&mut self, job: &JobIn) -> Outcome {
        self.ensure_job(job);
        let Some(j) = self.jobs.get(&job.id) else { return Outcome::ok() };
        let replay = j.replay_depend;
        let Some(s) = j.assoc else {
            return Outcome::ok();
        };
        if self.slab[s].params.limits.max_running_jobs == BANK_INFO_MISSING {
            let note = "job.state.depend: bank info is missing".to_string();
            return Outcome::with(Decision::Fail, vec![Effect::Exception { id: job.id, note }]);
        }
        let (queue, res) = (j.queue.as_deref(), j.res);
        let o = self.offsets(s, queue);
        let deps: Vec<&'static str> =
            HOLDS.iter().copied().filter(|d| self.hold_needed(d, s, queue, res, &o)).collect();
        let mut effects = Vec::new();
        if replay {
            // Holds added by a previous instance may be stale.
            for d in HOLDS.iter().copied().filter(|d| !deps.contains(d)) {
                effects.push(Effect::DependencyRemove { id: job.id, dep: d, quiet: true });
            }
        }
        for &d in &deps {
            effects.push(Effect::DependencyAdd { id: job.id, dep: d });
        }
        if let Some(j) = self.jobs.get_mut(&job.id) {
            j.replay_depend = false;
            if !deps.is_empty() && j.deps.is_empty() {
                self.slab[s].held.push(job.id);
            }
            j.deps = deps;
        }
        if !self.alloc_held.contains_key(&job.id) {
            match self.judge(job.id, true) {
                Some(Verdict::Exhausted { policy: Exhausted::Hold | Exhausted::Deny, message }) => {
                    effects.push(Effect::AllocationHoldAdd { id: job.id, dep: message.clone() });
                    self.alloc_held.insert(job.id, message);
                }
                Some(Verdict::Fits(lien)) => self.set_lien(job.id, lien),
                _ => {}
            }
        }
        Outcome::with(Decision::Ok, effects)
    }

    /// Starts tracking a job the plugin has not seen (no job.new), without
    /// posting anything.
    fn ensure_job(&mut self, job: &JobIn) {
        if !self.jobs.contains_key(&job.id) {
            let mut quiet = job.clone();
            // Never post updates for a job first seen here.
            if quiet.state == STATE_NEW {
                quiet.state = STATE_DEPEND;
            }
            let _ = self.job_new(&quiet);
            if let Some(j) = self.jobs.get_mut(&job.id) {
                j.replay_depend = false;
            }
        }
    }

    /// `job.state.priority` and `job.priority.get`: the job's priority, or
    /// unavailable while the plugin cannot look its user up.
    pub fn priority(&mut self, job: &JobIn, entering_priority: bool) -> Outcome {
        self.ensure_job(job);
        let mut effects = Vec::new();
        if entering_priority {
            // Back from SCHED (urgency change, jobspec update, restart).
            let in_run = self.jobs.get(&job.id).is_some_and(|j| j.in_run);
            self.set_flags(job.id, false, in_run);
        }
        let Some(j) = self.jobs.get(&job.id) else { return Outcome::ok() };
        if j.assoc.is_none() {
            if !self.has_data() {
                return Outcome::with(Decision::Unavail, effects);
            }
            let bank = job.bank.as_str().map(str::to_string).or_else(|| j.bank.clone());
            match self.slab_for(job.userid, bank.as_deref()) {
                None => {
                    effects.push(Effect::Exception {
                        id: job.id,
                        note: format!("cannot find user/bank or user/default bank entry for uid: {}", job.userid),
                    });
                    return Outcome::with(Decision::Fail, effects);
                }
                Some(s) => {
                    if let Some(j) = self.jobs.get_mut(&job.id) {
                        j.bank = bank;
                        j.spec_update_pending = true;
                    }
                    self.attach(job.id, s);
                }
            }
        }
        if self.jobs.get(&job.id).is_some_and(|j| j.spec_update_pending) {
            if let Some(u) = self.spec_update(job.id) {
                effects.push(u);
            }
            if let Some(j) = self.jobs.get_mut(&job.id) {
                j.spec_update_pending = false;
            }
        }
        let Some((p, fs)) = self.compute(job.id, job.urgency) else {
            return Outcome::with(Decision::Unavail, effects);
        };
        let p = match self.judge(job.id, false) {
            Some(Verdict::Exhausted { policy: Exhausted::LowPriority, .. }) => 0,
            _ => p,
        };
        if let Some(j) = self.jobs.get_mut(&job.id) {
            if !matches!(j.last_fairshare, Some(l) if (l - fs).abs() <= 1e-9) {
                j.last_fairshare = Some(fs);
                effects.push(Effect::Memo { id: job.id, fairshare: fs });
            }
        }
        Outcome::with(Decision::Priority(p), effects)
    }

    /// The priority formula for a tracked, attached job. Returns the
    /// priority and the fair-share value used.
    fn compute(&self, id: u64, urgency: i64) -> Option<(i64, f64)> {
        let j = self.jobs.get(&id)?;
        let s = &self.slab[j.assoc?];
        let fs = s.params.fairshare;
        let data = self.data.as_ref();
        let queue_priority = match (data, j.queue.as_deref(), s.snap_idx) {
            (Some(d), Some(q), Some(ai)) => match d.queue(q) {
                Some(qi) if d.queue_allowed(d.assoc(ai), qi) => qi.limits.priority,
                _ => 0,
            },
            _ => 0,
        };
        let bank_priority = data.and_then(|d| d.banks.get(&s.bank)).copied().unwrap_or(0.0);
        Some((priority_formula(&self.weights(), fs, queue_priority, bank_priority, urgency), fs))
    }

    /// `job.state.sched`: count the job as scheduled (once).
    pub fn sched(&mut self, job: &JobIn) -> Outcome {
        self.ensure_job(job);
        if let Some(in_run) = self.jobs.get(&job.id).map(|j| j.in_run) {
            self.set_flags(job.id, true, in_run);
        }
        Outcome::ok()
    }

    /// `job.state.run`: move the job from scheduled to running, then
    /// release held jobs that now have room.
    pub fn run(&mut self, job: &JobIn) -> Outcome {
        self.ensure_job(job);
        if let Some(j) = self.jobs.get_mut(&job.id) {
            if job.resources.is_some() && j.res == Resources::default() {
                j.res = job.resources.unwrap_or_default();
            }
        }
        self.set_flags(job.id, false, true);
        let mut effects = Vec::new();
        let s = self.jobs.get_mut(&job.id).and_then(|j| {
            j.released = false;
            j.deps.clear();
            j.assoc
        });
        if let Some(s) = s {
            self.slab[s].inflight.retain(|&h| h != job.id);
            self.slab[s].held.retain(|&h| h != job.id);
            self.release(s, &mut effects);
        }
        Outcome::with(Decision::Ok, effects)
    }

    /// `job.state.inactive` (and `job.destroy`): forget the job, then
    /// release held jobs that now have room.
    pub fn inactive(&mut self, id: u64) -> Outcome {
        let s = self.jobs.get(&id).and_then(|j| j.assoc);
        self.alloc_held.remove(&id);
        if let Some(lien) = self.jobs.get_mut(&id).and_then(|j| j.lien.take()) {
            self.settled.push(lien);
        }
        self.detach(id);
        self.jobs.remove(&id);
        let mut effects = Vec::new();
        if let Some(s) = s {
            self.release(s, &mut effects);
        }
        Outcome::with(Decision::Ok, effects)
    }

    /// The held-job release pass for counter entry `s`: removes each hold
    /// whose limit now has room, counting jobs already released (so only as
    /// many jobs are released as there is room for).
    fn release(&mut self, s: usize, effects: &mut Vec<Effect>) {
        let held = std::mem::take(&mut self.slab[s].held);
        let mut still = Vec::new();
        for id in held {
            let Some(j) = self.jobs.get(&id) else { continue };
            let (queue, res) = (j.queue.as_deref(), j.res);
            let o = self.offsets(s, queue);
            let mut keep = Vec::new();
            for &dep in &j.deps {
                if self.hold_needed(dep, s, queue, res, &o) {
                    keep.push(dep);
                } else {
                    effects.push(Effect::DependencyRemove { id, dep, quiet: false });
                }
            }
            let Some(j) = self.jobs.get_mut(&id) else { continue };
            if keep.is_empty() {
                j.deps.clear();
                j.released = true;
                self.slab[s].inflight.push(id);
            } else {
                j.deps = keep;
                still.push(id);
            }
        }
        // Jobs held while the pass ran (none today) go after.
        still.append(&mut self.slab[s].held);
        self.slab[s].held = still;
    }

    /// Runs the release pass for every association with held jobs.
    pub fn release_all(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.release_allocation_holds(&mut effects);
        for s in 0..self.slab.len() {
            if !self.slab[s].held.is_empty() {
                self.release(s, &mut effects);
            }
        }
        effects
    }

    /// `job.update`: a jobspec update was applied; follow bank, queue and
    /// project changes.
    pub fn update(&mut self, job: &JobIn, updates: &Value) -> Outcome {
        self.ensure_job(job);
        let Some(updates) = updates.as_object() else { return Outcome::ok() };
        let mut effects = Vec::new();
        if let Some(p) = updates.get("attributes.system.project") {
            if let Some(j) = self.jobs.get_mut(&job.id) {
                j.project_given = true;
                j.project = p.as_str().map(str::to_string);
            }
        }
        if let Some(q) = updates.get("attributes.system.queue") {
            let q = q.as_str().map(str::to_string);
            if self.jobs.get(&job.id).is_some_and(|j| j.queue != q) {
                self.contribute(job.id, -1);
                if let Some(j) = self.jobs.get_mut(&job.id) {
                    j.queue = q;
                }
                self.contribute(job.id, 1);
            }
        }
        if let Some(b) = updates.get("attributes.system.bank").and_then(Value::as_str) {
            if !self.jobs.contains_key(&job.id) {
                return Outcome::ok();
            }
            if self.current_bank(job.id) != Some(b) {
                match self.slab_for(job.userid, Some(b)) {
                    Some(s) => {
                        self.detach(job.id);
                        self.attach(job.id, s);
                    }
                    None if self.has_data() => effects.push(Effect::Exception {
                        id: job.id,
                        note: format!(
                            "job.update: cannot find user/bank or user/default bank entry for uid: {}",
                            job.userid
                        ),
                    }),
                    None => {}
                }
            }
            if let Some(j) = self.jobs.get_mut(&job.id) {
                j.bank = Some(b.to_string());
            }
        }
        Outcome::with(Decision::Ok, effects)
    }

    /// `job.update.attributes.system.bank`: may the job move to bank `value`?
    pub fn update_bank(&self, job: &JobIn, value: &Value) -> Outcome {
        let Some(bank) = value.as_str() else {
            return Outcome::reject("unable to unpack bank arg");
        };
        let Some(data) = self.live_data() else {
            return Outcome::reject("update_bank: plugin still waiting on flux-accounting data");
        };
        let Some(ai) = data.lookup(job.userid, Some(bank)) else {
            return Outcome::reject(format!(
                "update_bank: cannot find flux-accounting entry for uid/bank: {}/{bank}",
                job.userid
            ));
        };
        if self.current_bank(job.id) == Some(bank) {
            return Outcome::ok();
        }
        let a = data.assoc(ai);
        let (active, run) =
            self.find_slab(job.userid, bank).map_or((0, 0), |s| (self.slab[s].active, self.slab[s].run));
        if a.limits.max_active_jobs > 0 && active >= a.limits.max_active_jobs {
            return Outcome::reject("new bank is already at max-active-jobs limit");
        }
        if a.limits.max_running_jobs > 0 && run >= a.limits.max_running_jobs {
            return Outcome::reject(format!(
                "updating to bank {bank} while it is already at max-run-jobs limit is not allowed; try again later"
            ));
        }
        Outcome::ok()
    }

    /// `job.update.attributes.system.queue`: may the job move to queue `value`?
    pub fn update_queue(&self, job: &JobIn, value: &Value) -> Outcome {
        let Some(queue) = value.as_str() else {
            return Outcome::reject("unable to unpack plugin args");
        };
        let Some(data) = self.live_data() else {
            return Outcome::ok();
        };
        let bank = job.bank.as_str().or_else(|| self.current_bank(job.id));
        let Some(ai) = data.lookup(job.userid, bank) else {
            return Outcome::reject(format!(
                "cannot find user/bank or user/default bank entry for uid: {}",
                job.userid
            ));
        };
        if let Some(qi) = data.queue(queue) {
            if !data.queue_allowed(data.assoc(ai), qi) {
                return Outcome::reject(format!("mf_priority: queue not valid for user: {queue}"));
            }
        }
        Outcome::ok()
    }

    /// The `plugin.query` additions: `mf_priority_map`, `queues`,
    /// `projects` (flux-accounting's shape) and `snapshot` (the ledger head,
    /// or null).
    pub fn query(&self) -> Value {
        // uid → bank → association object.
        let mut users: BTreeMap<u32, BTreeMap<String, Value>> = BTreeMap::new();
        let zero = AssocState::new(0, String::new(), Params::default(), None);
        let mut emit =
            |uid: u32, bank: String, p: Params, lists: (Vec<String>, Vec<String>, String), s: &AssocState| {
                let queue_usage: Map<String, Value> = s
                    .queue_usage
                    .iter()
                    .map(|(q, u)| {
                        (
                            q.clone(),
                            json!({"cur_run_jobs": u.run, "cur_nodes": u.nodes, "cur_sched_jobs": u.sched,
                               "cur_sched_nodes": u.sched_nodes, "cur_sched_cores": u.sched_cores}),
                        )
                    })
                    .collect();
                let held: Map<String, Value> = s
                    .held
                    .iter()
                    .filter_map(|id| {
                        let j = self.jobs.get(id)?;
                        Some((
                            id.to_string(),
                            json!({"nnodes": j.res.nnodes, "ncores": j.res.ncores,
                               "queue": j.queue.clone().unwrap_or_default(), "deps": j.deps}),
                        ))
                    })
                    .collect();
                let v = json!({
                    "bank_name": bank,
                    "fairshare": p.fairshare,
                    "max_run_jobs": p.limits.max_running_jobs,
                    "cur_run_jobs": s.run,
                    "max_active_jobs": p.limits.max_active_jobs,
                    "cur_active_jobs": s.active,
                    "queues": lists.0,
                    "queue_factor": 0,
                    "projects": lists.1,
                    "def_project": lists.2,
                    "max_nodes": p.limits.max_nodes,
                    "max_cores": p.limits.max_cores,
                    "cur_nodes": s.nodes,
                    "cur_cores": s.cores,
                    "active": i64::from(p.active),
                    "cur_sched_jobs": s.sched,
                    "max_sched_jobs": p.limits.max_sched_jobs,
                    "queue_usage": queue_usage,
                    "held_jobs": held,
                });
                users.entry(uid).or_default().insert(bank, v);
            };
        let mut queues = Map::new();
        let mut projects = Vec::new();
        if let Some(d) = &self.data {
            for a in &d.snap.associations {
                let bank = d.snap.str(a.bank).to_string();
                let s = self.find_slab(a.userid, &bank).map_or(&zero, |s| &self.slab[s]);
                let lists = (
                    d.snap.list_names(a.queues),
                    d.snap.list_names(a.projects),
                    d.snap.str(a.default_project).to_string(),
                );
                emit(a.userid, bank, Params::from(a), lists, s);
            }
            for q in &d.snap.queues {
                let name = d.snap.str(q.name).to_string();
                // The limits under their column names, plus the name.
                let mut v = serde_json::to_value(q.limits).unwrap_or_else(|_| json!({}));
                v["name"] = Value::String(name.clone());
                queues.insert(name, v);
            }
            projects = d.snap.projects.iter().map(|&p| d.snap.str(p).to_string()).collect();
        }
        // Associations no longer in the snapshot that still have counters.
        for s in self.slab.iter().filter(|s| s.snap_idx.is_none()) {
            emit(s.userid, s.bank.clone(), s.params, (Vec::new(), Vec::new(), String::new()), s);
        }
        let map: Vec<Value> = users
            .into_iter()
            .map(|(uid, banks)| json!({"userid": uid, "banks": banks.into_values().collect::<Vec<_>>()}))
            .collect();
        let snapshot = self.head().as_ref().map_or(Value::Null, head_json);
        json!({"mf_priority_map": map, "queues": queues, "projects": projects, "snapshot": snapshot,
               "rpc_updates": self.rpc_updates})
    }
}

/// A ledger head as JSON, `{"seq": N, "hash": "<hex>"}` (its serde form):
/// the `load_snapshot` reply and the `snapshot` member of `plugin.query`.
pub fn head_json(h: &LedgerHead) -> Value {
    serde_json::to_value(h).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests;
