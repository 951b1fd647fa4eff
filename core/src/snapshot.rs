//! The plugin snapshot: everything `mf_priority.so` needs, in one compact,
//! checksummed MessagePack file.
//!
//! The snapshot is what `flux account priority-update` hands to the priority
//! plugin (`load_snapshot` RPC, or `snapshot=PATH` at load time). It holds
//! every association with its limits and permissions, the queues with their
//! limits and priorities, the banks with their priorities, the projects, the
//! factor weights and `deny_unknown_queues`, plus the ledger head it
//! reflects.
//!
//! This module needs no SQLite: the plugin decodes snapshots with it.
//!
//! # Compactness
//!
//! All names live once in a string table ([`Snapshot::strings`]) and are
//! referred to by [`StrId`]; queue and project permission lists are interned
//! too ([`Snapshot::lists`], referred to by [`ListId`]), so the thousands of
//! associations that share the same lists share one copy. An [`Association`]
//! is therefore plain data (no heap allocation when decoded), encoded by
//! rmp-serde as a MessagePack array with the smallest integer encodings:
//! about 50–60 bytes per association including its user name.
//!
//! # File format (version [`SNAPSHOT_VERSION`])
//!
//! ```text
//! offset  size  field
//!      0     8  magic "FXACSNAP"
//!      8     4  format version, u32 little-endian
//!     12     8  body length in bytes, u64 little-endian
//!     20    32  blake3 hash of the body
//!     52     …  body: the Snapshot, rmp-serde compact (tuple) encoding
//! ```
//!
//! [`Snapshot::decode`] refuses a wrong magic, an unknown version, a
//! truncated file, trailing bytes, a checksum mismatch, a body that does not
//! decode, and a body whose ids point outside their tables; after a
//! successful decode every [`StrId`] and [`ListId`] is in range.
//!
//! # Building one
//!
//! ```
//! use fluxacct_core::limits::AssocLimits;
//! use fluxacct_core::snapshot::*;
//! let mut b = SnapshotBuilder::new(LedgerHead::default());
//! b.add_association(&AssociationRecord {
//!     userid: 5035,
//!     username: "crawford".into(),
//!     bank: "giants".into(),
//!     default_bank: "giants".into(),
//!     active: true,
//!     fairshare: 0.5,
//!     limits: AssocLimits {
//!         max_running_jobs: 5,
//!         max_active_jobs: 7,
//!         max_nodes: 2147483647,
//!         max_cores: 2147483647,
//!         max_sched_jobs: 2147483647,
//!     },
//!     queues: vec![],
//!     projects: vec!["*".into(), "shortstops".into()],
//!     default_project: "shortstops".into(),
//! });
//! b.add_bank("giants", 0.0);
//! b.add_project("*");
//! b.add_project("shortstops");
//! let snap = b.build();
//! let bytes = snap.encode().unwrap();
//! assert_eq!(Snapshot::decode(&bytes).unwrap(), snap);
//! ```

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::limits::AssocLimits;
use crate::queue::QueueLimits;
use crate::{EventHash, Seq};
use serde::{Deserialize, Serialize};

/// Magic bytes at the start of every snapshot file.
pub const MAGIC: [u8; 8] = *b"FXACSNAP";

/// The snapshot format version this code writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Length of the fixed header (magic, version, body length, checksum).
pub const HEADER_LEN: usize = 8 + 4 + 8 + 32;

/// Index into [`Snapshot::strings`].
pub type StrId = u32;

/// Index into [`Snapshot::lists`].
pub type ListId = u32;

/// Errors reading, decoding, encoding or writing a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data does not start with the snapshot magic.
    #[error("not a fluxacct snapshot (bad magic)")]
    BadMagic,
    /// The format version is not one this code knows.
    #[error("unsupported snapshot version {found} (this fluxacct reads version {SNAPSHOT_VERSION})")]
    UnsupportedVersion {
        /// The version found in the header.
        found: u32,
    },
    /// The data ends before the header or the body does.
    #[error("snapshot is truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// There are bytes after the body.
    #[error("snapshot has {0} trailing bytes after its body")]
    TrailingBytes(u64),
    /// The body's blake3 hash does not match the header.
    #[error("snapshot checksum mismatch (file is corrupt)")]
    Checksum,
    /// The body is not a valid MessagePack snapshot.
    #[error("snapshot body does not decode: {0}")]
    Decode(String),
    /// The body decoded but is inconsistent (an id out of range, …).
    #[error("snapshot is inconsistent: {0}")]
    Invalid(String),
    /// Encoding failed (should not happen).
    #[error("snapshot encoding failed: {0}")]
    Encode(String),
}

/// The ledger position a snapshot reflects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LedgerHead {
    /// Sequence number of the last event applied.
    pub seq: Seq,
    /// Hash of that event.
    pub hash: EventHash,
}

/// Factor weights of the priority formula
/// `P = round(W_fs·fairshare + W_q·queue_priority + W_b·bank_priority + W_u·(urgency − 16))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// `W_fs` (default 100000).
    pub fairshare: i64,
    /// `W_q` (default 10000).
    pub queue: i64,
    /// `W_b` (default 0).
    pub bank: i64,
    /// `W_u` (default 1000).
    pub urgency: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights::DEFAULT
    }
}

impl Weights {
    /// flux-accounting's default weights, the one definition of them (the
    /// projections' `priority_factor_weight_table` starts from
    /// [`Weights::factors`] of these).
    pub const DEFAULT: Weights = Weights { fairshare: 100_000, queue: 10_000, bank: 0, urgency: 1_000 };

    /// The weights by flux-accounting factor name, in its table order.
    pub const fn factors(&self) -> [(&'static str, i64); 4] {
        [("fairshare", self.fairshare), ("queue", self.queue), ("bank", self.bank), ("urgency", self.urgency)]
    }

    /// Sets the weight of a factor by its flux-accounting name (`fairshare`,
    /// `queue`, `bank`, `urgency`); returns false for any other name.
    pub fn set(&mut self, factor: &str, weight: i64) -> bool {
        match factor {
            "fairshare" => self.fairshare = weight,
            "queue" => self.queue = weight,
            "bank" => self.bank = weight,
            "urgency" => self.urgency = weight,
            _ => return false,
        }
        true
    }
}

/// One association (user in a bank), names interned. Stored as a flat
/// array: the fields before `limits`, then the limits in [`AssocLimits`]'
/// field order, then the fields after it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "AssociationWire", into = "AssociationWire")]
pub struct Association {
    /// Unix uid.
    pub userid: u32,
    /// User name.
    pub username: StrId,
    /// Bank name.
    pub bank: StrId,
    /// The user's default bank.
    pub default_bank: StrId,
    /// False when disabled: new jobs are rejected.
    pub active: bool,
    /// Fair-share value in [0, 1].
    pub fairshare: f64,
    /// Job and resource limits.
    pub limits: AssocLimits,
    /// Allowed queues (names).
    pub queues: ListId,
    /// Allowed projects (names).
    pub projects: ListId,
    /// Default project ("" for none).
    pub default_project: StrId,
}

/// [`Association`] as the snapshot body stores it.
type AssociationWire = (u32, StrId, StrId, StrId, bool, f64, i64, i64, i64, i64, i64, ListId, ListId, StrId);

impl From<Association> for AssociationWire {
    fn from(a: Association) -> AssociationWire {
        let l = a.limits;
        (
            a.userid,
            a.username,
            a.bank,
            a.default_bank,
            a.active,
            a.fairshare,
            l.max_running_jobs,
            l.max_active_jobs,
            l.max_nodes,
            l.max_cores,
            l.max_sched_jobs,
            a.queues,
            a.projects,
            a.default_project,
        )
    }
}

impl From<AssociationWire> for Association {
    fn from(w: AssociationWire) -> Association {
        let limits = AssocLimits {
            max_running_jobs: w.6,
            max_active_jobs: w.7,
            max_nodes: w.8,
            max_cores: w.9,
            max_sched_jobs: w.10,
        };
        Association {
            userid: w.0,
            username: w.1,
            bank: w.2,
            default_bank: w.3,
            active: w.4,
            fairshare: w.5,
            limits,
            queues: w.11,
            projects: w.12,
            default_project: w.13,
        }
    }
}

/// One queue, name interned. Stored as a flat array: the name, then the
/// limits in [`QueueLimits`]' field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "QueueWire", into = "QueueWire")]
pub struct Queue {
    /// Queue name.
    pub name: StrId,
    /// Priority and limits.
    pub limits: QueueLimits,
}

/// [`Queue`] as the snapshot body stores it.
type QueueWire = (StrId, i64, i64, i64, i64, i64, i64, i64, i64, i64);

impl From<Queue> for QueueWire {
    fn from(q: Queue) -> QueueWire {
        let l = q.limits;
        (
            q.name,
            l.min_nodes_per_job,
            l.max_nodes_per_job,
            l.max_time_per_job,
            l.priority,
            l.max_running_jobs,
            l.max_nodes_per_assoc,
            l.max_sched_jobs,
            l.max_sched_nodes_per_assoc,
            l.max_sched_cores_per_assoc,
        )
    }
}

impl From<QueueWire> for Queue {
    fn from(w: QueueWire) -> Queue {
        let limits = QueueLimits {
            min_nodes_per_job: w.1,
            max_nodes_per_job: w.2,
            max_time_per_job: w.3,
            priority: w.4,
            max_running_jobs: w.5,
            max_nodes_per_assoc: w.6,
            max_sched_jobs: w.7,
            max_sched_nodes_per_assoc: w.8,
            max_sched_cores_per_assoc: w.9,
        };
        Queue { name: w.0, limits }
    }
}

/// One bank, name interned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bank {
    /// Bank name.
    pub name: StrId,
    /// Bank priority (the formula's `bank_priority`).
    pub priority: f64,
}

/// A decoded snapshot. Build one with [`SnapshotBuilder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The ledger head this snapshot reflects.
    pub head: LedgerHead,
    /// Interned strings; every [`StrId`] indexes this.
    pub strings: Vec<String>,
    /// Interned name lists; every [`ListId`] indexes this.
    pub lists: Vec<Vec<StrId>>,
    /// Every association, active or not.
    pub associations: Vec<Association>,
    /// Every queue.
    pub queues: Vec<Queue>,
    /// Every bank.
    pub banks: Vec<Bank>,
    /// Every project, in table order (`*` first).
    pub projects: Vec<StrId>,
    /// Factor weights.
    pub weights: Weights,
    /// Reject jobs that name a queue unknown to flux-accounting.
    pub deny_unknown_queues: bool,
    /// Allocations and their enforcement settings; absent (and not
    /// encoded, so a ledger without allocations gives the same bytes as
    /// before they existed) when the ledger has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations: Option<Allocations>,
}

/// What the plugin needs to enforce allocations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Allocations {
    /// The site's exhausted policy ([`crate::allocation::Exhausted`] code).
    pub site_exhausted: u8,
    /// Whether liens are on.
    pub liens: bool,
    /// The duration a lien assumes for a job whose jobspec names none.
    pub lien_default_duration_s: i64,
    /// The resource weights of the `charge` unit.
    pub weights: crate::allocation::ResourceWeights,
    /// Queue charge factors other than 1.0: (queue name, factor).
    pub queue_factors: Vec<(StrId, f64)>,
    /// Every allocation not deleted, in name order.
    pub entries: Vec<AllocationEntry>,
}

/// One allocation as the plugin sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AllocationEntry {
    /// Name.
    pub name: StrId,
    /// Banks it covers: its bank and every bank below it.
    pub banks: ListId,
    /// Project it is limited to ("" for any).
    pub project: StrId,
    /// [`crate::allocation::Unit`] code.
    pub unit: u8,
    /// Allocated (deposits − withdrawals), milli-units.
    pub allocated_milli: i64,
    /// Remaining (allocated − charged), milli-units; may be negative.
    pub remaining_milli: i64,
    /// Period start (epoch seconds).
    pub start_s: i64,
    /// Period end (epoch seconds, exclusive).
    pub end_s: i64,
    /// [`crate::allocation::Exhausted`] code of its own policy, or `None` for the site's.
    pub exhausted: Option<u8>,
}

/// An allocation with its names spelled out (input of [`SnapshotBuilder::add_allocation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationRecord {
    /// Name.
    pub name: String,
    /// Banks covered.
    pub banks: Vec<String>,
    /// Project ("" for any).
    pub project: String,
    /// Unit.
    pub unit: crate::allocation::Unit,
    /// Allocated, milli-units.
    pub allocated_milli: i64,
    /// Remaining, milli-units.
    pub remaining_milli: i64,
    /// Period start.
    pub start_s: i64,
    /// Period end.
    pub end_s: i64,
    /// Own policy.
    pub exhausted: Option<crate::allocation::Exhausted>,
}

/// An association with its names spelled out (input of
/// [`SnapshotBuilder::add_association`], output of [`Snapshot::association_record`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AssociationRecord {
    /// Unix uid.
    pub userid: u32,
    /// User name.
    pub username: String,
    /// Bank name.
    pub bank: String,
    /// The user's default bank.
    pub default_bank: String,
    /// False when disabled.
    pub active: bool,
    /// Fair-share value.
    pub fairshare: f64,
    /// Job and resource limits.
    pub limits: AssocLimits,
    /// Allowed queues.
    pub queues: Vec<String>,
    /// Allowed projects.
    pub projects: Vec<String>,
    /// Default project ("" for none).
    pub default_project: String,
}

/// A queue with its name spelled out (input of [`SnapshotBuilder::add_queue`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRecord {
    /// Queue name.
    pub name: String,
    /// Priority and limits.
    pub limits: QueueLimits,
}

impl QueueRecord {
    /// A queue with flux-accounting's defaults ([`QueueLimits::default`]).
    pub fn with_defaults(name: impl Into<String>) -> QueueRecord {
        QueueRecord::new(name, QueueLimits::default())
    }

    /// A queue with the given limits.
    pub fn new(name: impl Into<String>, limits: QueueLimits) -> QueueRecord {
        QueueRecord { name: name.into(), limits }
    }
}

/// Builds a [`Snapshot`], interning names and lists.
#[derive(Debug)]
pub struct SnapshotBuilder {
    snap: Snapshot,
    string_ids: HashMap<String, StrId>,
    list_ids: HashMap<Vec<StrId>, ListId>,
}

impl SnapshotBuilder {
    /// An empty snapshot at `head`, with default weights and
    /// `deny_unknown_queues` off.
    pub fn new(head: LedgerHead) -> SnapshotBuilder {
        SnapshotBuilder {
            snap: Snapshot {
                head,
                strings: Vec::new(),
                lists: Vec::new(),
                associations: Vec::new(),
                queues: Vec::new(),
                banks: Vec::new(),
                projects: Vec::new(),
                weights: Weights::default(),
                deny_unknown_queues: false,
                allocations: None,
            },
            string_ids: HashMap::new(),
            list_ids: HashMap::new(),
        }
    }

    /// Interns a string.
    pub fn intern(&mut self, s: &str) -> StrId {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.snap.strings.len() as StrId;
        self.snap.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), id);
        debug_assert_eq!(self.string_ids.len(), self.snap.strings.len(), "every string interned once, ids dense");
        id
    }

    /// Interns a list of names (order kept).
    pub fn intern_list<S: AsRef<str>>(&mut self, names: &[S]) -> ListId {
        let ids: Vec<StrId> = names.iter().map(|n| self.intern(n.as_ref())).collect();
        if let Some(&id) = self.list_ids.get(&ids) {
            return id;
        }
        let id = self.snap.lists.len() as ListId;
        self.snap.lists.push(ids.clone());
        self.list_ids.insert(ids, id);
        debug_assert_eq!(self.list_ids.len(), self.snap.lists.len(), "every list interned once, ids dense");
        id
    }

    /// Adds an association.
    pub fn add_association(&mut self, a: &AssociationRecord) -> &mut Self {
        let assoc = Association {
            userid: a.userid,
            username: self.intern(&a.username),
            bank: self.intern(&a.bank),
            default_bank: self.intern(&a.default_bank),
            active: a.active,
            fairshare: a.fairshare,
            limits: a.limits,
            queues: self.intern_list(&a.queues),
            projects: self.intern_list(&a.projects),
            default_project: self.intern(&a.default_project),
        };
        self.snap.associations.push(assoc);
        self
    }

    /// Adds a queue.
    pub fn add_queue(&mut self, q: &QueueRecord) -> &mut Self {
        let queue = Queue { name: self.intern(&q.name), limits: q.limits };
        self.snap.queues.push(queue);
        self
    }

    /// Adds a bank with its priority.
    pub fn add_bank(&mut self, name: &str, priority: f64) -> &mut Self {
        let name = self.intern(name);
        self.snap.banks.push(Bank { name, priority });
        self
    }

    /// Adds a project.
    pub fn add_project(&mut self, name: &str) -> &mut Self {
        let id = self.intern(name);
        self.snap.projects.push(id);
        self
    }

    /// Sets the factor weights.
    pub fn weights(&mut self, w: Weights) -> &mut Self {
        self.snap.weights = w;
        self
    }

    /// Sets `deny_unknown_queues`.
    pub fn deny_unknown_queues(&mut self, deny: bool) -> &mut Self {
        self.snap.deny_unknown_queues = deny;
        self
    }

    /// Sets the allocation settings (creating the allocations part).
    pub fn allocation_settings(
        &mut self,
        site: crate::allocation::Exhausted,
        liens: bool,
        lien_default_duration_s: i64,
        weights: crate::allocation::ResourceWeights,
    ) -> &mut Self {
        let a = self.snap.allocations.get_or_insert_with(Allocations::default);
        a.site_exhausted = site.code();
        a.liens = liens;
        a.lien_default_duration_s = lien_default_duration_s;
        a.weights = weights;
        self
    }

    /// Adds a queue charge factor (creating the allocations part).
    pub fn add_queue_factor(&mut self, queue: &str, factor: f64) -> &mut Self {
        let q = self.intern(queue);
        self.snap.allocations.get_or_insert_with(Allocations::default).queue_factors.push((q, factor));
        self
    }

    /// Adds an allocation (creating the allocations part).
    pub fn add_allocation(&mut self, r: &AllocationRecord) -> &mut Self {
        let e = AllocationEntry {
            name: self.intern(&r.name),
            banks: self.intern_list(&r.banks),
            project: self.intern(&r.project),
            unit: r.unit.code(),
            allocated_milli: r.allocated_milli,
            remaining_milli: r.remaining_milli,
            start_s: r.start_s,
            end_s: r.end_s,
            exhausted: r.exhausted.map(|p| p.code()),
        };
        self.snap.allocations.get_or_insert_with(Allocations::default).entries.push(e);
        self
    }

    /// Finishes the snapshot.
    pub fn build(self) -> Snapshot {
        self.snap
    }
}

impl Snapshot {
    /// The string with id `id` ("" if out of range, which cannot happen for
    /// ids taken from a decoded or built snapshot).
    pub fn str(&self, id: StrId) -> &str {
        self.strings.get(id as usize).map(String::as_str).unwrap_or("")
    }

    /// The list with id `id` (empty if out of range).
    pub fn list(&self, id: ListId) -> &[StrId] {
        self.lists.get(id as usize).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The names of list `id`.
    pub fn list_names(&self, id: ListId) -> Vec<String> {
        self.list(id).iter().map(|&s| self.str(s).to_string()).collect()
    }

    /// Association `a` with its names spelled out.
    pub fn association_record(&self, a: &Association) -> AssociationRecord {
        AssociationRecord {
            userid: a.userid,
            username: self.str(a.username).to_string(),
            bank: self.str(a.bank).to_string(),
            default_bank: self.str(a.default_bank).to_string(),
            active: a.active,
            fairshare: a.fairshare,
            limits: a.limits,
            queues: self.list_names(a.queues),
            projects: self.list_names(a.projects),
            default_project: self.str(a.default_project).to_string(),
        }
    }

    /// Encodes the snapshot into the file format (header + body).
    pub fn encode(&self) -> Result<Vec<u8>, SnapshotError> {
        let body = rmp_serde::to_vec(self).map_err(|e| SnapshotError::Encode(e.to_string()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decodes and validates a snapshot file's bytes.
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let found = bytes.len() as u64;
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                SnapshotError::Truncated { expected: HEADER_LEN as u64, found }
            } else {
                SnapshotError::BadMagic
            });
        }
        if bytes[..8] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        if bytes.len() < HEADER_LEN {
            return Err(SnapshotError::Truncated { expected: HEADER_LEN as u64, found });
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion { found: version });
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&bytes[12..20]);
        let body_len = u64::from_le_bytes(len8);
        let expected = (HEADER_LEN as u64).saturating_add(body_len);
        if found < expected {
            return Err(SnapshotError::Truncated { expected, found });
        }
        if found > expected {
            return Err(SnapshotError::TrailingBytes(found - expected));
        }
        let body = &bytes[HEADER_LEN..];
        if blake3::hash(body).as_bytes() != &bytes[20..52] {
            return Err(SnapshotError::Checksum);
        }
        let snap: Snapshot = rmp_serde::from_slice(body).map_err(|e| SnapshotError::Decode(e.to_string()))?;
        snap.validate()?;
        Ok(snap)
    }

    /// Checks that every id is in range.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        let ns = self.strings.len();
        let nl = self.lists.len();
        let bad_s = |what: &str, id: StrId| {
            SnapshotError::Invalid(format!("{what}: string id {id} out of range ({ns} strings)"))
        };
        let bad_l =
            |what: &str, id: ListId| SnapshotError::Invalid(format!("{what}: list id {id} out of range ({nl} lists)"));
        for (i, l) in self.lists.iter().enumerate() {
            if let Some(&s) = l.iter().find(|&&s| s as usize >= ns) {
                return Err(bad_s(&format!("list {i}"), s));
            }
        }
        for a in &self.associations {
            for s in [a.username, a.bank, a.default_bank, a.default_project] {
                if s as usize >= ns {
                    return Err(bad_s("association", s));
                }
            }
            for l in [a.queues, a.projects] {
                if l as usize >= nl {
                    return Err(bad_l("association", l));
                }
            }
        }
        if let Some(q) = self.queues.iter().find(|q| q.name as usize >= ns) {
            return Err(bad_s("queue", q.name));
        }
        if let Some(b) = self.banks.iter().find(|b| b.name as usize >= ns) {
            return Err(bad_s("bank", b.name));
        }
        if let Some(&p) = self.projects.iter().find(|&&p| p as usize >= ns) {
            return Err(bad_s("project", p));
        }
        if let Some(al) = &self.allocations {
            if let Some(&(q, _)) = al.queue_factors.iter().find(|(q, _)| *q as usize >= ns) {
                return Err(bad_s("queue factor", q));
            }
            for e in &al.entries {
                for s in [e.name, e.project] {
                    if s as usize >= ns {
                        return Err(bad_s("allocation", s));
                    }
                }
                if e.banks as usize >= nl {
                    return Err(bad_l("allocation", e.banks));
                }
            }
        }
        Ok(())
    }

    /// Reads and decodes a snapshot file.
    pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
        let bytes = fs::read(path).map_err(|source| SnapshotError::Io { path: path.display().to_string(), source })?;
        Snapshot::decode(&bytes)
    }

    /// Writes the snapshot to `path` atomically: a temporary file in the same
    /// directory is written and fsynced, then renamed over `path`, then the
    /// directory is fsynced.
    pub fn write_atomic(&self, path: &Path) -> Result<(), SnapshotError> {
        let bytes = self.encode()?;
        let io = |p: &Path| {
            let p = p.display().to_string();
            move |source| SnapshotError::Io { path: p, source }
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let result = (|| {
            let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            drop(f);
            fs::rename(&tmp, path).map_err(io(path))?;
            // Make the rename durable; not all filesystems allow fsync on a
            // directory, so a failure here is not an error.
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(uid: u32, user: &str, bank: &str) -> AssociationRecord {
        AssociationRecord {
            userid: uid,
            username: user.into(),
            bank: bank.into(),
            default_bank: bank.into(),
            active: true,
            fairshare: 0.5,
            limits: AssocLimits {
                max_running_jobs: 5,
                max_active_jobs: 7,
                max_nodes: 2_147_483_647,
                max_cores: 2_147_483_647,
                max_sched_jobs: 2_147_483_647,
            },
            queues: vec![],
            projects: vec!["*".into()],
            default_project: "*".into(),
        }
    }

    fn sample() -> Snapshot {
        let head = LedgerHead { seq: Seq(42), hash: EventHash([7; 32]) };
        let mut b = SnapshotBuilder::new(head);
        let mut a = record(5035, "crawford", "giants");
        a.projects = vec!["*".into(), "shortstops".into()];
        a.default_project = "shortstops".into();
        a.queues = vec!["orange".into()];
        b.add_association(&a);
        let mut a2 = record(5036, "posey", "giants");
        a2.fairshare = 0.25;
        a2.active = false;
        b.add_association(&a2);
        b.add_queue(&QueueRecord::new("orange", QueueLimits { priority: 100, ..QueueLimits::default() }));
        b.add_bank("root", 0.0).add_bank("giants", 1.5);
        b.add_project("*").add_project("shortstops");
        b.weights(Weights { bank: 7, ..Weights::default() }).deny_unknown_queues(true);
        b.build()
    }

    /// Builds `n` associations shaped like a big site: 20 banks, a handful
    /// of queue/project lists, realistic user names.
    fn big(n: u32) -> Snapshot {
        let mut b = SnapshotBuilder::new(LedgerHead { seq: Seq(1_000_000), hash: EventHash([1; 32]) });
        for i in 0..n {
            let bank = format!("bank{}", i % 20);
            let mut a = record(10_000 + i, &format!("user{i:06}"), &bank);
            a.fairshare = (i % 1000) as f64 / 1000.0;
            a.queues = match i % 3 {
                0 => vec![],
                1 => vec!["batch".into()],
                _ => vec!["batch".into(), "debug".into()],
            };
            b.add_association(&a);
        }
        for q in ["batch", "debug"] {
            b.add_queue(&QueueRecord::with_defaults(q));
        }
        for i in 0..20 {
            b.add_bank(&format!("bank{i}"), 0.0);
        }
        b.add_project("*");
        b.build()
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let bytes = s.encode().unwrap();
        let back = Snapshot::decode(&bytes).unwrap();
        assert_eq!(back, s);
        let rec = back.association_record(&back.associations[0]);
        assert_eq!(rec.username, "crawford");
        assert_eq!(rec.queues, vec!["orange".to_string()]);
        assert_eq!(rec.projects, vec!["*".to_string(), "shortstops".to_string()]);
        assert_eq!(back.head.seq, Seq(42));
    }

    #[test]
    fn round_trip_via_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.mp");
        let s = sample();
        s.write_atomic(&path).unwrap();
        assert_eq!(Snapshot::read(&path).unwrap(), s);
        // Overwrite in place (rename over the old one).
        let mut s2 = s.clone();
        s2.associations[0].fairshare = 0.9;
        s2.write_atomic(&path).unwrap();
        assert_eq!(Snapshot::read(&path).unwrap(), s2);
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_bad_files() {
        let bytes = sample().encode().unwrap();
        // Truncated at every length.
        for cut in [0, 3, 8, 20, HEADER_LEN, bytes.len() - 1] {
            let e = Snapshot::decode(&bytes[..cut]).unwrap_err();
            assert!(matches!(e, SnapshotError::Truncated { .. }), "cut {cut}: {e}");
        }
        // Flipped body byte.
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x55;
        assert!(matches!(Snapshot::decode(&bad), Err(SnapshotError::Checksum)));
        // Wrong version.
        let mut v2 = bytes.clone();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(Snapshot::decode(&v2), Err(SnapshotError::UnsupportedVersion { found: 2 })));
        // Wrong magic.
        let mut m = bytes.clone();
        m[0] = b'X';
        assert!(matches!(Snapshot::decode(&m), Err(SnapshotError::BadMagic)));
        // Trailing bytes.
        let mut t = bytes.clone();
        t.push(0);
        assert!(matches!(Snapshot::decode(&t), Err(SnapshotError::TrailingBytes(1))));
        // Missing file.
        assert!(matches!(Snapshot::read(Path::new("/nonexistent/snap")), Err(SnapshotError::Io { .. })));
    }

    #[test]
    fn refuses_out_of_range_ids() {
        let mut s = sample();
        s.associations[0].bank = 999;
        let bytes = s.encode().unwrap();
        assert!(matches!(Snapshot::decode(&bytes), Err(SnapshotError::Invalid(_))));
        let mut s = sample();
        s.lists.push(vec![12345]);
        assert!(matches!(Snapshot::decode(&s.encode().unwrap()), Err(SnapshotError::Invalid(_))));
    }

    #[test]
    fn garbage_body_with_good_checksum_is_a_decode_error() {
        let body = b"\x93\x01\x02\x03";
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(blake3::hash(body).as_bytes());
        bytes.extend_from_slice(body);
        assert!(matches!(Snapshot::decode(&bytes), Err(SnapshotError::Decode(_))));
    }

    /// Target: at most 100 bytes per association for a big site.
    #[test]
    fn size_per_association_is_small() {
        let n = 100_000;
        let bytes = big(n).encode().unwrap();
        let per = bytes.len() as f64 / n as f64;
        assert!(per <= 100.0, "{per} bytes per association");
    }

    #[test]
    fn weights_by_name() {
        let mut w = Weights::default();
        assert!(w.set("queue", 5));
        assert!(!w.set("age", 5));
        assert_eq!(w.queue, 5);
    }

    #[test]
    fn queue_is_stored_as_a_flat_array() {
        let l = QueueLimits { priority: 7, ..QueueLimits::default() };
        let q = Queue { name: 3, limits: l };
        let flat = (
            3u32,
            1i64,
            1i64,
            60i64,
            7i64,
            100i64,
            l.max_nodes_per_assoc,
            l.max_sched_jobs,
            l.max_sched_nodes_per_assoc,
            l.max_sched_cores_per_assoc,
        );
        assert_eq!(rmp_serde::to_vec(&q).unwrap(), rmp_serde::to_vec(&flat).unwrap());
        assert_eq!(rmp_serde::from_slice::<Queue>(&rmp_serde::to_vec(&flat).unwrap()).unwrap(), q);
    }
}
