//! The event catalogue. `docs/events.md` lists every kind and version.
//!
//! Events are named in the past tense. Each payload struct serializes to
//! the canonical JSON stored in the log (field order = declaration order,
//! no whitespace, floats in shortest round-trip form). Old versions are
//! upcast in [`Event::decode`]; stored bytes are never rewritten.

use serde::{Deserialize, Serialize};

use crate::limits::INTEGER_MAX;
use crate::queue::QueueLimits;
use crate::EventError as Error;

/// flux-core's `FLUX_USERID_UNKNOWN`. In stored events it means the same
/// as [`USERID_NOBODY`]: a user the passwd database did not know when the
/// association was added (fluxacct wrote it before it followed
/// flux-accounting); such events replay as they were written. It is never
/// a valid `--userid`.
pub const USERID_UNKNOWN: i64 = 4_294_967_295;

/// The uid flux-accounting gives a user not in the passwd database
/// (`nobody`, its `association_table.userid` default): what new
/// associations of such users get.
pub const USERID_NOBODY: i64 = 65_534;

/// Whether `uid` is one of the placeholders for a user whose uid was not
/// known when the association was added.
pub fn is_placeholder_uid(uid: i64) -> bool {
    uid == USERID_UNKNOWN || uid == USERID_NOBODY
}

/// Genesis: written by `create-db`; carries the usage configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbCreated {
    /// Format of the ledger's event catalogue (1).
    pub format: u32,
    /// `T0`, the anchor of usage periods, in epoch seconds.
    pub t0: f64,
    /// Half-life (length of one usage period) in seconds.
    pub priority_decay_half_life: f64,
    /// Usage reset period in seconds.
    pub priority_usage_reset_period: f64,
    /// Decay factor D, 0 < D < 1.
    pub decay_factor: f64,
    /// Node weight for job usage.
    pub node_weight: f64,
    /// Core weight for job usage.
    pub core_weight: f64,
    /// GPU weight for job usage.
    pub gpu_weight: f64,
}

impl DbCreated {
    /// Genesis at `t0` with flux-accounting's defaults: a one-week
    /// half-life, a four-week reset period, decay factor 0.5, and usage in
    /// node-seconds.
    pub fn with_defaults(t0: f64) -> DbCreated {
        DbCreated {
            format: 1,
            t0,
            priority_decay_half_life: 604800.0,
            priority_usage_reset_period: 2419200.0,
            decay_factor: 0.5,
            node_weight: 1.0,
            core_weight: 0.0,
            gpu_weight: 0.0,
        }
    }
}

/// A bank was added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankAdded {
    /// Bank name.
    pub bank: String,
    /// Parent bank ("" for the root).
    pub parent_bank: String,
    /// Shares.
    pub shares: i64,
    /// Bank priority.
    pub priority: f64,
    /// Jobs that ended at or before this time do not count (epoch seconds).
    pub ignore_older_than: i64,
}

/// Names one bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankRef {
    /// Bank name.
    pub bank: String,
}

/// Some fields of a bank changed (absent = unchanged).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BankEdited {
    /// Bank name.
    pub bank: String,
    /// New shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<i64>,
    /// New parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_bank: Option<String>,
    /// New priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<f64>,
    /// New ignore-older-than time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_older_than: Option<i64>,
}

/// A user/bank association was added. All values are resolved (no
/// defaults left to apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssociationAdded {
    /// User name.
    pub username: String,
    /// Numeric uid.
    pub userid: i64,
    /// Bank.
    pub bank: String,
    /// The user's default bank.
    pub default_bank: String,
    /// Shares.
    pub shares: i64,
    /// Initial fair-share.
    pub fairshare: f64,
    /// Max running jobs.
    pub max_running_jobs: i64,
    /// Max active jobs.
    pub max_active_jobs: i64,
    /// Max nodes.
    pub max_nodes: i64,
    /// Max cores.
    pub max_cores: i64,
    /// Allowed queues, comma separated.
    pub queues: String,
    /// Allowed projects, comma separated.
    pub projects: String,
    /// Default project.
    pub default_project: String,
    /// Max jobs in SCHED.
    pub max_sched_jobs: i64,
}

impl AssociationAdded {
    /// An association with flux-accounting's `add-user` defaults (shares 1,
    /// fair-share 0.5, 5 running / 7 active jobs, no node, core or SCHED
    /// limit, no queues, projects `*`), whose default bank is `bank`.
    pub fn with_defaults(username: impl Into<String>, userid: i64, bank: impl Into<String>) -> AssociationAdded {
        let bank = bank.into();
        AssociationAdded {
            username: username.into(),
            userid,
            default_bank: bank.clone(),
            bank,
            shares: 1,
            fairshare: 0.5,
            max_running_jobs: 5,
            max_active_jobs: 7,
            max_nodes: INTEGER_MAX,
            max_cores: INTEGER_MAX,
            queues: String::new(),
            projects: "*".into(),
            default_project: "*".into(),
            max_sched_jobs: INTEGER_MAX,
        }
    }
}

/// Names one association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssocRef {
    /// User name.
    pub username: String,
    /// Bank.
    pub bank: String,
}

/// Some fields of one association changed (absent = unchanged). Values are
/// resolved: a `-1` reset arrives here as the default value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AssociationEdited {
    /// User name.
    pub username: String,
    /// Bank (the association's bank before the edit).
    pub bank: String,
    /// Moves the association to another bank (edit-all-users --bank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_bank: Option<String>,
    /// New uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userid: Option<i64>,
    /// New default bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_bank: Option<String>,
    /// New shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shares: Option<i64>,
    /// New fair-share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairshare: Option<f64>,
    /// New max running jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running_jobs: Option<i64>,
    /// New max active jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_jobs: Option<i64>,
    /// New max nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<i64>,
    /// New max cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cores: Option<i64>,
    /// New queue list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queues: Option<String>,
    /// New project list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projects: Option<String>,
    /// New default project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_project: Option<String>,
    /// New max sched jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sched_jobs: Option<i64>,
}

/// The default bank of every association of a user changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultBankChanged {
    /// User name.
    pub username: String,
    /// New default bank.
    pub default_bank: String,
}

/// A queue was added, with all its limits resolved. The payload is flat:
/// the limits' fields stand between `queue` and `max_nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueAdded {
    /// Queue name.
    pub queue: String,
    /// Priority and per-association limits.
    #[serde(flatten)]
    pub limits: QueueLimits,
    /// Queue-wide max nodes (stored only).
    pub max_nodes: i64,
    /// Queue-wide max cores (stored only).
    pub max_cores: i64,
    /// What a job of this queue is charged against allocations, as a
    /// factor of its resources × elapsed time (absent = 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_factor: Option<f64>,
}

impl QueueAdded {
    /// A queue with flux-accounting's `add-queue` defaults
    /// ([`QueueLimits::default`]: 1 min and max node per job, 60 max time
    /// per job, priority 0, 100 running jobs per association, and no other
    /// limit), and no queue-wide node or core limit ([`INTEGER_MAX`]).
    pub fn with_defaults(queue: impl Into<String>) -> QueueAdded {
        QueueAdded {
            queue: queue.into(),
            limits: QueueLimits::default(),
            max_nodes: INTEGER_MAX,
            max_cores: INTEGER_MAX,
            charge_factor: None,
        }
    }
}

/// Some limits of a queue changed (absent = unchanged; resets resolved).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueueEdited {
    /// Queue name.
    pub queue: String,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_nodes_per_job: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes_per_job: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_time_per_job: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running_jobs: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes_per_assoc: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sched_jobs: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sched_nodes_per_assoc: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sched_cores_per_assoc: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_nodes: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cores: Option<i64>,
    /// See [`QueueAdded`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_factor: Option<f64>,
}

/// Names one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRef {
    /// Queue name.
    pub queue: String,
}

/// Names one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRef {
    /// Project name.
    pub project: String,
}

/// A priority factor weight was set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorWeightSet {
    /// Factor: fairshare, queue, bank or urgency.
    pub factor: String,
    /// Integer weight.
    pub weight: i64,
}

/// A config key was added or given a new value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSet {
    /// Key.
    pub key: String,
    /// Value, as text (as in flux-accounting's config_table).
    pub value: String,
}

/// A config key was removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRef {
    /// Key.
    pub key: String,
}

/// A finished job was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecorded {
    /// Flux job id (decimal).
    pub id: u64,
    /// Submitting uid.
    pub userid: i64,
    /// User name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Bank ("" when none).
    pub bank: String,
    /// Project ("" when none).
    pub project: String,
    /// Queue ("" when none).
    pub queue: String,
    /// Submit time (epoch seconds).
    pub t_submit: f64,
    /// Run time (0 if it never ran).
    pub t_run: f64,
    /// Inactive time.
    pub t_inactive: f64,
    /// Nodes.
    pub nnodes: i64,
    /// Cores.
    pub ncores: i64,
    /// GPUs.
    pub ngpus: i64,
    /// Requested duration in seconds (0 if none).
    pub requested_duration: f64,
    /// Ranks idset, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranks: Option<String>,
    /// RFC 20 R, if it was given, in canonical form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<CanonicalJson>,
}

impl JobRecorded {
    /// Appends its payload to `out`: exactly what `serde_json::to_vec`
    /// gives (fields in declaration order, `None`s skipped, numbers and
    /// strings written by serde_json, `r` verbatim), written field by field
    /// without serde's machinery. Bulk ingest encodes a million of these;
    /// a proptest pins the bytes to serde's.
    pub fn write_payload(&self, out: &mut Vec<u8>) {
        fn key(out: &mut Vec<u8>, first: bool, k: &str) {
            if !first {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
        }
        fn text(out: &mut Vec<u8>, s: &str) {
            if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            } else {
                // Writing a str into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, s);
            }
        }
        fn int(out: &mut Vec<u8>, n: i64) {
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        }
        fn float(out: &mut Vec<u8>, f: f64) {
            // serde_json's own formatting (and `null` for a non-finite value).
            let _ = serde_json::to_writer(&mut *out, &f);
        }
        out.push(b'{');
        key(out, true, "id");
        out.extend_from_slice(itoa::Buffer::new().format(self.id).as_bytes());
        key(out, false, "userid");
        int(out, self.userid);
        if let Some(u) = &self.username {
            key(out, false, "username");
            text(out, u);
        }
        key(out, false, "bank");
        text(out, &self.bank);
        key(out, false, "project");
        text(out, &self.project);
        key(out, false, "queue");
        text(out, &self.queue);
        key(out, false, "t_submit");
        float(out, self.t_submit);
        key(out, false, "t_run");
        float(out, self.t_run);
        key(out, false, "t_inactive");
        float(out, self.t_inactive);
        key(out, false, "nnodes");
        int(out, self.nnodes);
        key(out, false, "ncores");
        int(out, self.ncores);
        key(out, false, "ngpus");
        int(out, self.ngpus);
        key(out, false, "requested_duration");
        float(out, self.requested_duration);
        if let Some(r) = &self.ranks {
            key(out, false, "ranks");
            text(out, r);
        }
        if let Some(r) = &self.r {
            key(out, false, "r");
            out.extend_from_slice(r.as_str().as_bytes());
        }
        out.push(b'}');
    }
}

/// A nested JSON value (the `R` of a job) kept as its canonical text: no
/// whitespace, object keys sorted bytewise (the last of duplicate keys
/// kept), numbers and strings as serde_json writes them. This is exactly
/// what a `serde_json::Value` encodes to, so payloads written before this
/// type existed decode and re-encode to the same bytes. Serialized
/// verbatim; never parsed into a tree on the write path.
#[derive(Debug, Clone)]
pub struct CanonicalJson(Box<str>);

impl Serialize for CanonicalJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Verbatim, as serde_json's raw value (the text is valid JSON: every
        // constructor checks it, or writes it from parsed JSON).
        let raw = serde_json::value::RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for CanonicalJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CanonicalJson, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
        Ok(CanonicalJson(raw.into()))
    }
}

impl CanonicalJson {
    /// The canonical text of a `Value`.
    pub fn from_value(v: &serde_json::Value) -> CanonicalJson {
        CanonicalJson(v.to_string().into_boxed_str())
    }

    /// Wraps text the caller has already written in canonical form (see
    /// the type's doc). `None` if it is not valid JSON.
    pub fn from_canonical_text(text: String) -> Option<CanonicalJson> {
        serde_json::value::RawValue::from_string(text).ok().map(|r| CanonicalJson(r.into()))
    }

    /// Wraps text that a canonicalizer wrote from JSON it parsed, without
    /// parsing it again (bulk ingest: `fluxacct_commands::canon`, whose
    /// output a proptest pins to `serde_json::Value`'s). The text must be
    /// valid JSON in canonical form; debug builds check that it is JSON.
    pub fn from_canonicalizer_output(text: String) -> CanonicalJson {
        debug_assert!(serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(), "not JSON: {text}");
        CanonicalJson(text.into_boxed_str())
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as a tree (for reports and tests).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

impl PartialEq for CanonicalJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

/// A job record that broke an ingest rule (docs/ingest.md) and was not
/// recorded as a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRejected {
    /// The job id, when the record had a readable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Where the record was: `line N`, `job N`, `archive row N`, `job ƒ…`.
    pub position: String,
    /// Which rule it broke.
    pub reason: String,
}

/// A break of the hash chain was accepted (`repair --accept-break`): the
/// event at `seq` (the first bad seq `verify` named) no longer matches the
/// chain, and an operator recorded why. `verify` then reports the break as
/// accepted and writes resume. No effect on the projections. Its kind is
/// `ledger::integrity::BREAK_ACCEPTED_KIND`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakAccepted {
    /// The first bad seq of the break.
    pub seq: u64,
    /// Why it is accepted (who checked what).
    pub reason: String,
}

/// `update-usage` ran: the usage projection is now as of `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageUpdated {
    /// Epoch seconds.
    pub as_of: f64,
}

/// `clear-usage` ran for one bank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageCleared {
    /// Bank.
    pub bank: String,
    /// Jobs of the bank's associations that ended at or before this time no
    /// longer count (epoch seconds).
    pub ignore_older_than: i64,
    /// The exact time when it has a fraction (version 2): a default reset
    /// happens at the current time, and a job that ended earlier in the
    /// same second must not count. `ignore_older_than` is its floor (what
    /// `bank_table` shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<f64>,
}

/// `update-fshare` ran: fair-share is recomputed from the current usage
/// projection and tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FairshareUpdated {
    /// Number of active associations ranked.
    pub associations: u64,
    /// blake3 (hex) over the computed values (see docs/events.md); replay
    /// recomputes and compares.
    pub digest: String,
}

/// `scrub-old-jobs` ran: job records that ended before `before` no longer
/// appear in `view-job-records` or the usage reports. Nothing is deleted:
/// the records stay in the log, and a view `--as-of` before this event
/// still shows them. The cut only moves forward (the latest of every
/// scrub's `before` holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobsScrubbed {
    /// Records with `t_inactive` before this time (epoch seconds) are hidden.
    pub before: f64,
    /// The age given to `scrub-old-jobs`, in weeks.
    pub weeks: u64,
}

/// A flux-accounting database was imported into this (new) ledger. It is
/// the first event after genesis; the `events` events that follow it (seq
/// `seq + 1 ..= seq + events`, all in the same transaction) are the
/// imported rows, and this event is their cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteImported {
    /// Path of the source database (absolute).
    pub source: String,
    /// blake3 (hex) of the source file's bytes.
    pub blake3: String,
    /// Size of the source file in bytes.
    pub size: u64,
    /// blake3 (hex) of the source's `-wal` file, when committed pages were
    /// read from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_blake3: Option<String>,
    /// Size of that `-wal` file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_size: Option<u64>,
    /// The source's `PRAGMA user_version` (its schema version).
    pub schema_version: i64,
    /// The fluxacct version that imported it.
    pub fluxacct_version: String,
    /// One line per kind of value the source's schema lacked and that was
    /// given flux-accounting's default.
    pub defaulted: Vec<String>,
    /// Number of events after this one that the import wrote.
    pub events: u64,
}

/// The carried state of one imported association.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedAssociation {
    /// User name.
    pub username: String,
    /// Bank.
    pub bank: String,
    /// The source's `creation_time`.
    pub creation_time: i64,
    /// The source's `mod_time`.
    pub mod_time: i64,
    /// The source's `job_usage`.
    pub job_usage: f64,
    /// The source's `fairshare`.
    pub fairshare: f64,
    /// Raw usage per period, `bins[k]` for the period `k` periods before the
    /// import's current one (the source's decayed bin `k` divided by `D^k`).
    pub bins: Vec<f64>,
    /// The source's `last_job_timestamp`: imported jobs of this
    /// association's (userid, bank) that ended at or before it are already
    /// in `bins`.
    pub counted_until: f64,
}

/// The carried state of one imported bank.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedBank {
    /// Bank.
    pub bank: String,
    /// The source's `job_usage`.
    pub job_usage: f64,
}

/// The usage and fair-share state of an imported flux-accounting database,
/// which cannot be re-derived from its job records: written last by
/// `import-db`. The usage projection takes it as of `as_of`, with the
/// current period `p(as_of)` = the source's current period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageImported {
    /// The time the carried values hold at (epoch seconds): the start of
    /// the source's current period, or the import time if earlier.
    pub as_of: f64,
    /// The source's `end_half_life_period` (0 if it had none).
    pub end_half_life_period: f64,
    /// Banks, in the source's order.
    pub banks: Vec<ImportedBank>,
    /// Associations, in the source's order.
    pub associations: Vec<ImportedAssociation>,
}

/// An allocation was added: a budget of `amount_milli` thousandths of
/// `unit` for the jobs of `bank` (and its sub-banks), or of `project` in
/// them, that end within [`start_s`, `end_s`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationAdded {
    /// Allocation name (unique, never reused).
    pub name: String,
    /// Bank it covers (with its sub-banks).
    pub bank: String,
    /// Project it is limited to (absent: every project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Unit (`node-hours`, `core-hours`, `gpu-hours`, `charge`).
    pub unit: String,
    /// Initial amount in milli-units.
    pub amount_milli: i64,
    /// Start of the period (epoch seconds, inclusive).
    pub start_s: i64,
    /// End of the period (epoch seconds, exclusive).
    pub end_s: i64,
    /// Policy when exhausted (`hold`, `deny`, `lowpriority`); absent: the
    /// site's (`allocation_exhausted`, else `hold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted: Option<String>,
}

/// An amount was added to (deposit) or taken from (withdrawal) an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationAmount {
    /// Allocation name.
    pub name: String,
    /// Amount in milli-units (positive).
    pub amount_milli: i64,
}

/// An allocation's period changed (extended, or its end moved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPeriodChanged {
    /// Allocation name.
    pub name: String,
    /// New start (epoch seconds).
    pub start_s: i64,
    /// New end (epoch seconds).
    pub end_s: i64,
}

/// An allocation's exhausted policy changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPolicySet {
    /// Allocation name.
    pub name: String,
    /// `hold`, `deny`, `lowpriority`; absent: back to the site's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted: Option<String>,
}

/// Names one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationRef {
    /// Allocation name.
    pub name: String,
}

/// One association's usage on the other clusters of the centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentreUsage {
    /// User name.
    pub username: String,
    /// Bank.
    pub bank: String,
    /// The association's `job_usage` summed over every other cluster, as
    /// each last shipped it.
    pub usage: f64,
}

/// `update-fshare` with `fairshare_scope = centre` fetched the usage of
/// this cluster's associations on the other clusters from the accounting
/// centre (docs/centre.md). The fair-share computed after it adds these
/// figures to each association's own `job_usage`; they stay in force
/// until the next fetch, so replays and `--as-of` need no centre.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CentreUsageFetched {
    /// This cluster's name at the centre.
    pub cluster: String,
    /// Associations with usage elsewhere, by username then bank.
    pub associations: Vec<CentreUsage>,
}

macro_rules! catalogue {
    ($( $kind:ident($ty:ty) = $ver:literal ),* $(,)?) => {
        /// Every event fluxacct writes.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $(
                #[doc = concat!("`", stringify!($kind), "` (current version ", stringify!($ver), ")")]
                $kind($ty),
            )*
        }

        impl Event {
            /// The kind string stored in the log.
            pub fn kind(&self) -> &'static str {
                match self { $( Event::$kind(_) => stringify!($kind), )* }
            }

            /// The current schema version of this kind.
            pub fn version(&self) -> u32 {
                match self { $( Event::$kind(_) => $ver, )* }
            }

            /// Canonical JSON payload bytes.
            pub fn encode(&self) -> Result<Vec<u8>, Error> {
                if let Event::JobRecorded(j) = self {
                    let mut out = Vec::with_capacity(256 + j.r.as_ref().map_or(0, |r| r.as_str().len()));
                    j.write_payload(&mut out);
                    return Ok(out);
                }
                let bytes = match self { $( Event::$kind(p) => serde_json::to_vec(p), )* };
                bytes.map_err(|e| Error::Encode(e.to_string()))
            }

            /// Decodes a stored payload, upcasting old versions.
            pub fn decode(kind: &str, version: u32, payload: &[u8]) -> Result<Event, Error> {
                let bad = |e: serde_json::Error| Error::Decode {
                    kind: kind.to_string(), version, what: e.to_string(),
                };
                match (kind, version) {
                    $( (stringify!($kind), $ver) => Ok(Event::$kind(serde_json::from_slice(payload).map_err(bad)?)), )*
                    _ => upcast(kind, version, payload),
                }
            }

            /// Every (kind, current version) pair, for docs and tests.
            pub fn catalogue() -> &'static [(&'static str, u32)] {
                &[ $( (stringify!($kind), $ver), )* ]
            }
        }
    };
}

catalogue! {
    DbCreated(DbCreated) = 1,
    BankAdded(BankAdded) = 1,
    BankReactivated(BankRef) = 1,
    BankEdited(BankEdited) = 1,
    BankDisabled(BankRef) = 1,
    BankDeleted(BankRef) = 1,
    AssociationAdded(AssociationAdded) = 1,
    AssociationReactivated(AssocRef) = 1,
    AssociationEdited(AssociationEdited) = 1,
    AssociationDisabled(AssocRef) = 1,
    AssociationDeleted(AssocRef) = 1,
    DefaultBankChanged(DefaultBankChanged) = 1,
    QueueAdded(QueueAdded) = 1,
    QueueEdited(QueueEdited) = 1,
    QueueDeleted(QueueRef) = 1,
    ProjectAdded(ProjectRef) = 1,
    ProjectDeleted(ProjectRef) = 1,
    FactorWeightSet(FactorWeightSet) = 1,
    ConfigAdded(ConfigSet) = 1,
    ConfigEdited(ConfigSet) = 1,
    ConfigDeleted(ConfigRef) = 1,
    JobRecorded(JobRecorded) = 1,
    UsageUpdated(UsageUpdated) = 1,
    UsageCleared(UsageCleared) = 2,
    FairshareUpdated(FairshareUpdated) = 1,
    JobsScrubbed(JobsScrubbed) = 1,
    BreakAccepted(BreakAccepted) = 1,
    SiteImported(SiteImported) = 1,
    UsageImported(UsageImported) = 1,
    JobRejected(JobRejected) = 1,
    AllocationAdded(AllocationAdded) = 1,
    AllocationDeposited(AllocationAmount) = 1,
    AllocationWithdrawn(AllocationAmount) = 1,
    AllocationPeriodChanged(AllocationPeriodChanged) = 1,
    AllocationPolicySet(AllocationPolicySet) = 1,
    AllocationDeleted(AllocationRef) = 1,
    CentreUsageFetched(CentreUsageFetched) = 1,
}

/// Upcasts payloads of older schema versions into the current struct.
/// `UsageCleared` 1 → 2: version 1 had no `at` (whole seconds only).
fn upcast(kind: &str, version: u32, payload: &[u8]) -> Result<Event, Error> {
    let bad = |e: serde_json::Error| Error::Decode { kind: kind.to_string(), version, what: e.to_string() };
    match (kind, version) {
        ("UsageCleared", 1) => {
            let mut c: UsageCleared = serde_json::from_slice(payload).map_err(bad)?;
            c.at = None;
            Ok(Event::UsageCleared(c))
        }
        _ => Err(Error::UnknownEvent { kind: kind.to_string(), version }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip_and_canonical_bytes() {
        let ev = Event::BankAdded(BankAdded {
            bank: "root".into(),
            parent_bank: String::new(),
            shares: 1,
            priority: 0.0,
            ignore_older_than: 0,
        });
        let bytes = ev.encode().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"bank":"root","parent_bank":"","shares":1,"priority":0.0,"ignore_older_than":0}"#
        );
        assert_eq!(Event::decode("BankAdded", 1, &bytes).unwrap(), ev);
        assert_eq!(ev.kind(), "BankAdded");
        assert_eq!(ev.version(), 1);
    }

    #[test]
    fn unknown_kind_or_version_is_an_error() {
        assert!(matches!(Event::decode("Nope", 1, b"{}"), Err(Error::UnknownEvent { .. })));
        assert!(matches!(Event::decode("BankAdded", 99, b"{}"), Err(Error::UnknownEvent { .. })));
        assert!(matches!(Event::decode("BankAdded", 1, b"{"), Err(Error::Decode { .. })));
    }

    #[test]
    fn skipped_options_are_absent() {
        let ev = Event::AssociationEdited(AssociationEdited {
            username: "u".into(),
            bank: "b".into(),
            shares: Some(3),
            ..Default::default()
        });
        assert_eq!(ev.encode().unwrap(), br#"{"username":"u","bank":"b","shares":3}"#);
    }

    #[test]
    fn usage_cleared_version_1_is_upcast_without_an_exact_time() {
        let v1 = br#"{"bank":"A","ignore_older_than":5}"#;
        let ev = Event::decode("UsageCleared", 1, v1).unwrap();
        assert_eq!(ev, Event::UsageCleared(UsageCleared { bank: "A".into(), ignore_older_than: 5, at: None }));
        assert_eq!(ev.version(), 2);
        let exact = Event::UsageCleared(UsageCleared { bank: "A".into(), ignore_older_than: 5, at: Some(5.25) });
        let bytes = exact.encode().unwrap();
        assert_eq!(bytes, br#"{"bank":"A","ignore_older_than":5,"at":5.25}"#);
        assert_eq!(Event::decode("UsageCleared", 2, &bytes).unwrap(), exact);
    }

    #[test]
    fn queue_added_payload_is_flat_and_canonical() {
        let mut q = QueueAdded::with_defaults("gold");
        q.limits.priority = 5;
        q.max_cores = 64;
        let ev = Event::QueueAdded(q);
        let bytes = ev.encode().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"queue":"gold","min_nodes_per_job":1,"max_nodes_per_job":1,"max_time_per_job":60,"priority":5,"max_running_jobs":100,"max_nodes_per_assoc":2147483647,"max_sched_jobs":2147483647,"max_sched_nodes_per_assoc":2147483647,"max_sched_cores_per_assoc":2147483647,"max_nodes":2147483647,"max_cores":64}"#
        );
        assert_eq!(Event::decode("QueueAdded", 1, &bytes).unwrap(), ev);
        assert!(Event::decode("QueueAdded", 1, br#"{"queue":"q","priority":1}"#).is_err());
    }
}
