//! The centre crate's errors.

/// What can go wrong between a cluster ledger and the centre.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The PostgreSQL server refused or failed a request.
    #[error("centre: {0}")]
    Postgres(String),
    /// The cluster ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] ledger::Error),
    /// The cluster ledger's projections could not be read.
    #[error(transparent)]
    Projections(#[from] projections::Error),
    /// SQLite failed while reading the ledger.
    #[error("ledger: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The centre refused a shipped event: the cluster's history differs
    /// from the centre's copy (an edited or forked history).
    #[error("cluster {cluster}: event seq {seq} refused by the centre: {why}")]
    Refused {
        /// The cluster.
        cluster: String,
        /// The first seq that differs.
        seq: u64,
        /// Why.
        why: String,
    },
    /// The cluster name is held by another chain (another ledger).
    #[error("cluster {cluster}: the centre holds that name for another ledger (its first event's hash differs); choose another --cluster name")]
    NameTaken {
        /// The cluster.
        cluster: String,
    },
    /// The centre's schema is newer than this program, or missing and not
    /// creatable with this connection.
    #[error("centre: {0}")]
    Schema(String),
    /// Anything else worth one line.
    #[error("{0}")]
    Other(String),
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => Error::Postgres(format!("{}: {}", db.severity(), db.message())),
            None => Error::Postgres(e.to_string()),
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
