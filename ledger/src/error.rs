use fluxacct_core::Seq;

/// Errors from the ledger crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file does not exist.
    #[error("database file does not exist: {0}")]
    Missing(String),
    /// The database file exists already (when creating).
    #[error("database file already exists: {0}")]
    AlreadyExists(String),
    /// The file is a SQLite database but not a fluxacct ledger.
    #[error("{path} is not a fluxacct ledger{hint}")]
    NotALedger {
        /// The path.
        path: String,
        /// Extra explanation, starting with "; " when present.
        hint: String,
    },
    /// The file cannot be used, for the reason given (a directory, no
    /// permission, read-only, truncated or malformed, a damaged header).
    #[error("cannot use ledger {path}: {why}")]
    Unusable {
        /// The path.
        path: String,
        /// Why, in one line.
        why: String,
    },
    /// The file was written by a newer fluxacct.
    #[error(
        "{path} has ledger schema version {found}, newer than this fluxacct supports ({supported}); upgrade fluxacct"
    )]
    TooNew {
        /// The path.
        path: String,
        /// user_version found in the file.
        found: i64,
        /// Highest version this code knows.
        supported: i64,
    },
    /// Appending would break the chain (e.g. the head moved under us).
    #[error("ledger head moved: expected seq {expected}, found {found}")]
    HeadMoved {
        /// Expected next seq.
        expected: Seq,
        /// Found.
        found: Seq,
    },
    /// The hash chain is broken (recorded by `verify` or found at the head):
    /// writes are refused.
    #[error(
        "the ledger's hash chain is broken at seq {seq} ({reason}); writes are refused: see `flux-account verify`, \
         then restore a copy or run `flux-account repair --accept-break {seq} --reason ...`"
    )]
    ChainBroken {
        /// The first bad seq.
        seq: Seq,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored row could not be decoded.
    #[error("corrupt event row at seq {seq}: {what}")]
    Corrupt {
        /// The seq.
        seq: Seq,
        /// What is wrong.
        what: String,
    },
    /// Pages of the log itself (table `events`) cannot be read: `seqs`
    /// names the seqs they hold ([`crate::describe_seq_ranges`]).
    #[error("the log (table events) cannot be read at {seqs}: {why}; restore the ledger from a copy")]
    LogUnreadable {
        /// The unreadable seqs, in words.
        seqs: String,
        /// SQLite's error.
        why: String,
    },
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// JSON (argv column) failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}
