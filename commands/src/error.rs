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
    /// The accounting centre refused or failed (docs/centre.md).
    #[error("{0}")]
    Centre(#[from] centre::Error),
    /// I/O (or a write, or a Flux RPC) failed. `context` is the one-line
    /// message (it already quotes the cause); `source` is the operating
    /// system's error behind it, when there is one, kept for callers that
    /// look at its kind.
    #[error("{context}")]
    Io {
        /// What failed, and why, on one line.
        context: String,
        /// The I/O error behind it.
        #[source]
        source: Option<std::io::Error>,
    },
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

    /// An I/O failure: `context` (e.g. `cannot read PATH`), then the error.
    pub fn io(context: impl std::fmt::Display, source: std::io::Error) -> Error {
        Error::Io { context: format!("{context}: {source}"), source: Some(source) }
    }

    /// A failure to write or exchange data that has no I/O error behind it
    /// (a Flux RPC error string, an encoder's message).
    pub fn io_msg(context: impl Into<String>) -> Error {
        Error::Io { context: context.into(), source: None }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        1
    }
}

impl From<fluxacct_core::EventError> for Error {
    fn from(e: fluxacct_core::EventError) -> Error {
        Error::Projection(projections::Error::Event(e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io { context: e.to_string(), source: Some(e) }
    }
}

impl From<fluxacct_flux::Error> for Error {
    fn from(e: fluxacct_flux::Error) -> Error {
        match e {
            fluxacct_flux::Error::Invalid(m) => Error::Invalid(m),
            fluxacct_flux::Error::Io { context, source, .. } => Error::Io { context, source },
        }
    }
}

impl From<fluxacct_ingest::Error> for Error {
    fn from(e: fluxacct_ingest::Error) -> Error {
        use fluxacct_ingest::Error as E;
        match e {
            E::Invalid(m) => Error::Invalid(m),
            E::Ledger(e) => Error::Ledger(e),
            E::Projection(e) => Error::Projection(e),
            E::Sqlite(e) => Error::Sqlite(e),
            E::Flux(e) => e.into(),
            E::Io { context, source } => Error::Io { context, source },
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn io_errors_keep_their_source() {
        let e = Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        let src = e.source().and_then(|s| s.downcast_ref::<std::io::Error>()).expect("source kept");
        assert_eq!(src.kind(), std::io::ErrorKind::NotFound);
        let e = Error::io("cannot read f", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(e.to_string().starts_with("cannot read f: "), "{e}");
        assert!(e.source().is_some());
        assert!(Error::io_msg("rpc failed").source().is_none());
    }
}
