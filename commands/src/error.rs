/// The commands crate's error. Every variant renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input or a rule the command refuses to break. Exit 1.
    #[error("{0}")]
    Invalid(String),
    /// The ledger refused (missing file, not a ledger, too new...).
    #[error("{0}")]
    Ledger(#[from] ledger::Error),
    /// A projection problem.
    #[error("{0}")]
    Projection(#[from] projections::Error),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// I/O failed.
    #[error("{0}")]
    Io(String),
    /// A check found problems (verify, rebuild --check): the report is the
    /// output, and the process exits non-zero.
    #[error("{message}")]
    CheckFailed {
        /// One line summary (stderr).
        message: String,
        /// Full report (stdout).
        report: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        1
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
