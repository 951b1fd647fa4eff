/// The Flux client's error. Every variant renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request the client refuses to send (a topic, payload, namespace
    /// or key containing NUL).
    #[error("{0}")]
    Invalid(String),
    /// Sending failed, or the instance answered with an error: `context`
    /// is the one-line message (what failed, and why); `errno` the error
    /// number of an error response (0 when there is none); `source` the
    /// operating system's error behind a failure to send, if any.
    #[error("{context}")]
    Io {
        /// What failed, and why, on one line.
        context: String,
        /// The errno of an error response (0: none).
        errno: i32,
        /// The I/O error behind it.
        #[source]
        source: Option<std::io::Error>,
    },
}

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::Invalid(msg.into())
    }

    /// `context: source`, keeping the I/O error.
    pub(crate) fn io(context: impl std::fmt::Display, source: std::io::Error) -> Error {
        let errno = source.raw_os_error().unwrap_or(0);
        Error::Io { context: format!("{context}: {source}"), errno, source: Some(source) }
    }

    /// A failure with no I/O error behind it (an error string).
    pub(crate) fn msg(context: impl Into<String>) -> Error {
        Error::Io { context: context.into(), errno: 0, source: None }
    }

    /// An error response carrying `errno`.
    pub(crate) fn response(context: impl Into<String>, errno: i32) -> Error {
        Error::Io { context: context.into(), errno, source: None }
    }

    /// No response to a request on `topic` within `timeout`: errno
    /// `ETIMEDOUT`.
    pub(crate) fn timed_out(topic: &str, timeout: std::time::Duration) -> Error {
        Error::Io {
            context: format!("{topic}: no response within {} s", timeout.as_secs_f64()),
            errno: libc::ETIMEDOUT,
            source: None,
        }
    }

    /// Whether this is [`Error::timed_out`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Io { errno, source: None, .. } if *errno == libc::ETIMEDOUT)
    }

    /// The errno of an error response or of a failed send (0 if none).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Invalid(_) => 0,
            Error::Io { errno, .. } => *errno,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
