//! What identifies a ledger file and how it is opened: shared by the store
//! and by `diagnose`, which names why a file cannot be opened.

/// `PRAGMA application_id` of a fluxacct ledger ("FXAL").
pub const APPLICATION_ID: i64 = 0x4658_414c;

/// How to open an existing ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read and write (runs pending migrations).
    ReadWrite,
    /// Read only (refuses files that need migrating).
    ReadOnly,
}
