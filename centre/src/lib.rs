//! The accounting centre: every cluster's ledger shipped to one PostgreSQL
//! database, its chain checked on arrival, projected for reports across
//! clusters, and the usage summed over clusters fetched back for a
//! centre-wide fair-share (docs/centre.md).
//!
//! Each cluster's SQLite ledger stays authoritative; the centre is a copy
//! of the logs plus projections. The plugin never links this crate.

#![forbid(unsafe_code)]

pub mod error;
pub mod read;
pub mod schema;
pub mod ship;
pub mod testing;

pub use error::{Error, Result};

/// Connects to the centre (a libpq-style connection string or URL; a host
/// starting with `/` is a Unix socket directory).
pub fn connect(url: &str) -> Result<postgres::Client> {
    postgres::Client::connect(url, postgres::NoTls).map_err(|e| match e.as_db_error() {
        Some(_) => Error::from(e),
        None => Error::Postgres(format!("cannot connect to {}: {e}", redact(url))),
    })
}

/// The URL with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let auth_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                return format!("{}{}:***{}", &url[..scheme_end + 3], &rest[..colon], &rest[at..]);
            }
        }
    }
    url.to_string()
}
