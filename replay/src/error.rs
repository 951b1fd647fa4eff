/// Errors from the replay crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input (an unknown seq, a malformed checkpoint line...).
    #[error("{0}")]
    Invalid(String),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] ledger::Error),
    /// Applying or reading projections failed.
    #[error(transparent)]
    Projection(#[from] projections::Error),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }
}
