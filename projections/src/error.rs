/// Errors from the projections crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An event payload that does not decode or encode (unknown kind or
    /// version, bad payload).
    #[error(transparent)]
    Event(#[from] fluxacct_core::EventError),
    /// An event that cannot be applied to the current projections (the log
    /// contradicts itself, or the projection tables were damaged).
    #[error("cannot apply event at seq {seq}: {what}")]
    Apply {
        /// The seq.
        seq: u64,
        /// Why.
        what: String,
    },
    /// A recorded digest (`FairshareUpdated`) that the recomputation does
    /// not reproduce: the event was recorded from projection values the
    /// log does not imply (a hand edit), or its payload was changed. The
    /// recomputed values have been written when this is returned; a
    /// replay ([`crate::apply::Applier::replaying`]) carries on.
    #[error("cannot apply event at seq {seq}: {what}")]
    DigestMismatch {
        /// The seq.
        seq: u64,
        /// The two digests.
        what: String,
    },
    /// The projection tables were written by a newer fluxacct.
    #[error("projection schema version {found} is newer than this fluxacct supports ({supported})")]
    TooNew {
        /// Found.
        found: i64,
        /// Supported.
        supported: i64,
    },
    /// A snapshot problem.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] ledger::Error),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
