//! Streaming sources of job records: JSON lines and `{"jobs": [...]}`
//! documents ([`json`]), old job-archive databases ([`archive`]) and the
//! running instance's job-list ([`live`]), one module each, read and
//! checked in batches so that memory is bounded by the batch, not by the
//! input. Each record becomes an [`Item`]: its [`Position`] and either a
//! checked `JobRecorded` or the [`Rejection`] of the rule it broke. A
//! source hands its batches to a [`Sink`] (or, the live one, yields them
//! as an iterator); [`crate::write`] appends them to the ledger.

use fluxacct_core::events::{Event, JobRecorded};
use projections::Encoded;

use crate::record::{self, Rejection};

pub mod archive;
pub mod journal;
pub mod json;
pub mod live;

pub use json::{parse_workers, read_json, MAX_LINE};

/// Where a record was in its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Line N of a JSON-lines input.
    Line(u64),
    /// The N-th job of a `{"jobs": [...]}` document, starting on a line.
    DocJob {
        /// 1-based index in the `jobs` array.
        index: u64,
        /// The line it starts on.
        line: u64,
    },
    /// Row N (in `t_inactive` order) of a job-archive database.
    ArchiveRow(u64),
    /// A job of the live instance, by id.
    Live(u64),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::DocJob { index, line } => write!(f, "job {index} (line {line})"),
            Position::ArchiveRow(n) => write!(f, "archive row {n}"),
            // Stored in the log: the same text in every locale.
            Position::Live(id) => write!(f, "job {}", record::show_id(*id, record::IdForm::STORED)),
        }
    }
}

/// One record of the input, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Where it was.
    pub pos: Position,
    /// The job's `JobRecorded`, encoded (off the writer's thread), or why
    /// it is not recorded.
    pub rec: Result<Encoded, Rejection>,
}

/// The item of a checked record: its `JobRecorded` encoded.
pub fn checked(pos: Position, rec: Result<JobRecorded, Rejection>) -> Item {
    let rec = rec.and_then(|j| {
        let id = j.id;
        Encoded::new(Event::JobRecorded(j)).map_err(|e| Rejection { id: Some(id), reason: e.to_string() })
    });
    Item { pos, rec }
}

/// Why a source stopped early.
#[derive(Debug)]
pub enum SourceError {
    /// The input cannot be split into records from `line` on (invalid
    /// JSON in a document, binary data).
    Malformed {
        /// The line where the input went wrong.
        line: u64,
        /// What is wrong.
        what: String,
        /// The line of the first record not yet handed over, if any.
        pending_from: Option<u64>,
    },
    /// Reading failed.
    Other(crate::Error),
}

impl From<std::io::Error> for SourceError {
    fn from(e: std::io::Error) -> Self {
        SourceError::Other(e.into())
    }
}

/// Hands over a full batch; `false` when the consumer has stopped.
pub type Sink<'s> = dyn FnMut(Vec<Item>) -> bool + 's;

/// Collects items into batches of `size` and hands them to `sink`.
pub(crate) struct Batcher<'s, 'f> {
    size: usize,
    items: Vec<Item>,
    first_line: Option<u64>,
    sink: &'f mut Sink<'s>,
    stopped: bool,
}

impl<'s, 'f> Batcher<'s, 'f> {
    pub(crate) fn new(size: usize, sink: &'f mut Sink<'s>) -> Self {
        let size = size.max(1);
        Batcher { size, items: Vec::with_capacity(size.min(1 << 16)), first_line: None, sink, stopped: false }
    }

    /// Adds an item; `false` when the consumer has stopped.
    pub(crate) fn push(&mut self, line: u64, item: Item) -> bool {
        if self.items.is_empty() {
            self.first_line = Some(line);
        }
        self.items.push(item);
        if self.items.len() >= self.size {
            return self.flush();
        }
        true
    }

    pub(crate) fn flush(&mut self) -> bool {
        if self.items.is_empty() || self.stopped {
            return !self.stopped;
        }
        let batch = std::mem::replace(&mut self.items, Vec::with_capacity(self.size.min(1 << 16)));
        self.first_line = None;
        if !(self.sink)(batch) {
            self.stopped = true;
        }
        !self.stopped
    }

    pub(crate) fn malformed(&self, line: u64, what: impl Into<String>) -> SourceError {
        SourceError::Malformed { line, what: what.into(), pending_from: self.first_line }
    }
}
