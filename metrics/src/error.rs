//! The metrics crate's error.

/// Why the metrics could not be gathered or served. Every variant renders
/// as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ledger refused (missing file, not a ledger, too new, ...).
    #[error("{0}")]
    Ledger(#[from] ledger::Error),
    /// A projection problem.
    #[error("{0}")]
    Projection(#[from] projections::Error),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The ledger cannot be read as it is (its projections need the
    /// owner's rebuild).
    #[error("{0}")]
    Invalid(String),
    /// The HTTP server could not start or answer.
    #[error("{0}")]
    Io(String),
}
