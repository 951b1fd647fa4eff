/// The ingest crate's error. Every variant renders as one line (the
/// messages are those `fetch-job-records` prints).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, or a source that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// The ledger refused.
    #[error("{0}")]
    Ledger(#[from] ledger::Error),
    /// A projection problem.
    #[error("{0}")]
    Projection(#[from] projections::Error),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The Flux instance failed or refused a request.
    #[error(transparent)]
    Flux(#[from] fluxacct_flux::Error),
    /// Reading failed, or a response was unreadable. `context` is the
    /// one-line message; `source` the I/O error behind it, if any.
    #[error("{context}")]
    Io {
        /// What failed, and why, on one line.
        context: String,
        /// The I/O error behind it.
        #[source]
        source: Option<std::io::Error>,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }

    /// A failure with no I/O error behind it (a Flux error string, an
    /// unreadable response).
    pub fn io_msg(context: impl Into<String>) -> Error {
        Error::Io { context: context.into(), source: None }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io { context: e.to_string(), source: Some(e) }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
