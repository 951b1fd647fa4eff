/// Errors from the projections crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An event kind/version this code does not know.
    #[error("unknown event kind {kind} version {version}")]
    UnknownEvent {
        /// Kind.
        kind: String,
        /// Version.
        version: u32,
    },
    /// A payload that does not decode.
    #[error("cannot decode {kind} v{version}: {what}")]
    Decode {
        /// Kind.
        kind: String,
        /// Version.
        version: u32,
        /// Decoder message.
        what: String,
    },
    /// A payload that does not encode (e.g. a non-finite float).
    #[error("cannot encode event: {0}")]
    Encode(String),
    /// An event that cannot be applied to the current projections (the log
    /// contradicts itself, or the projection tables were damaged).
    #[error("cannot apply event at seq {seq}: {what}")]
    Apply {
        /// The seq.
        seq: u64,
        /// Why.
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

impl From<fluxacct_core::EventError> for Error {
    fn from(e: fluxacct_core::EventError) -> Error {
        use fluxacct_core::EventError as E;
        match e {
            E::UnknownEvent { kind, version } => Error::UnknownEvent { kind, version },
            E::Decode { kind, version, what } => Error::Decode { kind, version, what },
            E::Encode(what) => Error::Encode(what),
        }
    }
}
