//! # fluxacct-metrics
//!
//! The ledger's state as OpenMetrics text (Prometheus's exposition format)
//! for dashboards and alerts: per association and bank usage, fair-share,
//! shares and limits; per queue priority; per allocation balances; and the
//! ledger's health (head, verification, the pipeline's last runs, the job
//! counters, the snapshot, the journal follower). docs/metrics.md lists
//! every metric.
//!
//! * [`gather`] reads everything from a read-only open into a [`Scrape`]
//!   (one read transaction; it never writes the ledger).
//! * [`encode`] renders a [`Scrape`] with the Prometheus project's client
//!   (`prometheus-client`'s OpenMetrics text encoder).
//! * [`serve`] answers `GET /metrics` over HTTP (`tiny_http`, no async
//!   runtime), re-gathering at most once per cache period.
//!
//! The library reads neither the clock nor the environment: the caller
//! passes the time.

#![forbid(unsafe_code)]

mod encode;
mod error;
mod gather;
mod serve;

pub use encode::{encode, escape_label_value, to_classic_text, TEXT_CONTENT_TYPE};
pub use error::Error;
pub use gather::{
    gather, Allocation, AssociationRow, BankRow, Follower, Health, QueueRow, Scrape, Snapshot, StageRun, STAGES,
};
pub use serve::{serve, ServeOptions, CONTENT_TYPE};

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
