//! Streaming sources of job records for `fetch-job-records`: JSON lines,
//! `{"jobs": [...]}` documents and old job-archive databases, read and
//! checked in batches so that memory is bounded by the batch, not by the
//! input. Each record becomes an [`Item`]: its [`Position`] and either a
//! checked `JobRecorded` or the [`Rejection`] of the rule it broke.

use std::borrow::Cow;
use std::io::{BufRead, Read};

use fluxacct_core::events::Event;
use projections::Encoded;

use crate::jobs::{self, Embedded, IdField, JobInput, Rejection};

/// Longest input line (one JSON-lines record), in bytes. A longer line is
/// rejected without being held in memory.
pub const MAX_LINE: usize = 4 << 20;

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
            Position::Live(id) => write!(f, "job {}", jobs::f58(*id)),
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
pub fn checked(pos: Position, rec: Result<fluxacct_core::events::JobRecorded, Rejection>) -> Item {
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
struct Batcher<'s, 'f> {
    size: usize,
    items: Vec<Item>,
    first_line: Option<u64>,
    sink: &'f mut Sink<'s>,
    stopped: bool,
}

impl<'s, 'f> Batcher<'s, 'f> {
    fn new(size: usize, sink: &'f mut Sink<'s>) -> Self {
        let size = size.max(1);
        Batcher { size, items: Vec::with_capacity(size.min(1 << 16)), first_line: None, sink, stopped: false }
    }

    /// Adds an item; `false` when the consumer has stopped.
    fn push(&mut self, line: u64, item: Item) -> bool {
        if self.items.is_empty() {
            self.first_line = Some(line);
        }
        self.items.push(item);
        if self.items.len() >= self.size {
            return self.flush();
        }
        true
    }

    fn flush(&mut self) -> bool {
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

    fn malformed(&self, line: u64, what: impl Into<String>) -> SourceError {
        SourceError::Malformed { line, what: what.into(), pending_from: self.first_line }
    }
}

fn item(pos: Position, text: &[u8], now: f64) -> Item {
    checked(pos, jobs::parse(text).and_then(|j| jobs::check(&j, now)))
}

/// Reads JSON lines or a `{"jobs": [...]}` document from `input`, checks
/// every record at ingest time `now`, and hands batches of `batch` items to
/// `sink`. Returns when the input ends or the sink stops.
pub fn read_json<R: BufRead>(mut input: R, batch: usize, now: f64, sink: &mut Sink<'_>) -> Result<(), SourceError> {
    let mut b = Batcher::new(batch, sink);
    // Look at the start of the input (a pipe may deliver it in pieces),
    // then read on from those bytes.
    let mut head = Vec::with_capacity(64);
    while head.len() < 64 {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(64 - head.len());
        head.extend_from_slice(&buf[..n]);
        input.consume(n);
        if head.iter().filter(|c| !c.is_ascii_whitespace()).count() >= 8 {
            break;
        }
    }
    let document = is_jobs_document(&head);
    let input = std::io::Cursor::new(head).chain(input);
    if document {
        read_document(input, now, &mut b)?;
    } else {
        read_lines(input, now, &mut b)?;
    }
    b.flush();
    Ok(())
}

/// Whether the input starts with `{"jobs"` (whitespace allowed).
fn is_jobs_document(head: &[u8]) -> bool {
    let mut rest = head.iter().copied().filter(|c| !c.is_ascii_whitespace());
    let key: Vec<u8> = rest.by_ref().take(7).collect();
    key == b"{\"jobs\""
}

/// Lines handed to a parsing worker at once.
const CHUNK_LINES: usize = 256;

/// Chunks in flight per parsing worker (read ahead, being parsed, or
/// parsed and waiting to be batched): memory stays bounded by
/// `workers × CHUNKS_IN_FLIGHT × CHUNK_LINES` lines.
const CHUNKS_IN_FLIGHT: usize = 3;

/// Threads that parse and check records: one per available CPU, at most 4
/// (the writer needs a CPU too; more parsers than the writer can take only
/// wait).
pub fn parse_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)
}

/// One line of a [`Chunk`].
enum Span {
    /// Line `line` is `data[start..end]` (trimmed, not empty).
    Text { line: u64, start: usize, end: usize },
    /// Line `line` is longer than [`MAX_LINE`] and was not kept.
    TooLong { line: u64 },
}

/// Consecutive lines of a JSON-lines input, parsed together by one worker.
#[derive(Default)]
struct Chunk {
    data: Vec<u8>,
    spans: Vec<Span>,
}

/// A chunk's lines as items, in order, and the line that is not UTF-8
/// text, if one is: the input is malformed there, and the items stop
/// before it.
struct Parsed {
    items: Vec<(u64, Item)>,
    not_text: Option<(u64, String)>,
}

impl Chunk {
    /// Its lines as items (checked as UTF-8 here, on the worker, once for
    /// the whole line: serde_json then reads it as text).
    fn items(self, now: f64) -> Parsed {
        let mut items = Vec::with_capacity(self.spans.len());
        for s in &self.spans {
            match *s {
                Span::Text { line, start, end } => match std::str::from_utf8(&self.data[start..end]) {
                    Ok(text) => {
                        let pos = Position::Line(line);
                        items.push((line, checked(pos, jobs::parse_str(text).and_then(|j| jobs::check(&j, now)))));
                    }
                    Err(e) => return Parsed { items, not_text: Some((line, format!("not UTF-8 text ({e})"))) },
                },
                Span::TooLong { line } => {
                    let rej = Rejection { id: None, reason: format!("record is longer than {MAX_LINE} bytes") };
                    items.push((line, Item { pos: Position::Line(line), rec: Err(rej) }));
                }
            }
        }
        Parsed { items, not_text: None }
    }
}

/// Why [`next_chunk`] stopped before a full chunk.
enum ChunkEnd {
    /// The chunk is full; more may follow.
    Full,
    /// The input ended.
    Eof,
    /// Line `line` cannot be split into a record: the input is malformed
    /// from there on.
    Malformed(u64, String),
}

/// Reads up to [`CHUNK_LINES`] lines into a chunk, each straight into its
/// buffer. `line` counts the lines read.
fn next_chunk<R: BufRead>(input: &mut R, line: &mut u64) -> std::io::Result<(Chunk, ChunkEnd)> {
    let mut c = Chunk { data: Vec::with_capacity(CHUNK_LINES * 640), spans: Vec::with_capacity(CHUNK_LINES) };
    while c.spans.len() < CHUNK_LINES {
        let at = c.data.len();
        let n = <&mut R as std::io::Read>::take(&mut *input, MAX_LINE as u64 + 1).read_until(b'\n', &mut c.data)?;
        if n == 0 {
            return Ok((c, ChunkEnd::Eof));
        }
        *line += 1;
        let raw = &c.data[at..];
        if raw.len() > MAX_LINE && raw.last() != Some(&b'\n') {
            let nul = raw.contains(&0);
            c.data.truncate(at);
            skip_line(input)?;
            if nul {
                return Ok((c, ChunkEnd::Malformed(*line, "binary data (a NUL byte)".into())));
            }
            c.spans.push(Span::TooLong { line: *line });
            continue;
        }
        let text = trim_ascii(raw);
        if text.is_empty() {
            c.data.truncate(at);
            continue;
        }
        if text.contains(&0) {
            c.data.truncate(at);
            return Ok((c, ChunkEnd::Malformed(*line, "binary data (a NUL byte)".into())));
        }
        let start = at + (text.as_ptr() as usize - raw.as_ptr() as usize);
        let end = start + text.len();
        c.spans.push(Span::Text { line: *line, start, end });
    }
    Ok((c, ChunkEnd::Full))
}

/// JSON lines, read here in chunks and parsed and checked by
/// [`parse_workers`] threads. Chunk k goes to worker k mod N and its items
/// are taken back in the same order, so the batches are exactly those of a
/// sequential read.
fn read_lines<R: BufRead>(mut input: R, now: f64, b: &mut Batcher<'_, '_>) -> Result<(), SourceError> {
    let workers = parse_workers();
    std::thread::scope(|s| {
        let mut to: Vec<std::sync::mpsc::Sender<Chunk>> = Vec::with_capacity(workers);
        let mut from: Vec<std::sync::mpsc::Receiver<Parsed>> = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = std::sync::mpsc::channel::<Chunk>();
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            s.spawn(move || {
                for chunk in rx {
                    if done_tx.send(chunk.items(now)).is_err() {
                        break;
                    }
                }
            });
            to.push(tx);
            from.push(done_rx);
        }
        let (mut sent, mut taken) = (0usize, 0usize);
        // Hands the oldest parsed chunk to the batcher; `false` when the
        // consumer has stopped.
        let take = |taken: &mut usize, b: &mut Batcher<'_, '_>| -> Result<bool, SourceError> {
            let parsed = from[*taken % workers]
                .recv()
                .map_err(|_| SourceError::Other(crate::Error::invalid("a parsing thread stopped")))?;
            *taken += 1;
            for (line, it) in parsed.items {
                if !b.push(line, it) {
                    return Ok(false);
                }
            }
            match parsed.not_text {
                Some((line, what)) => Err(b.malformed(line, what)),
                None => Ok(true),
            }
        };
        let mut line = 0u64;
        loop {
            let (chunk, end) = next_chunk(&mut input, &mut line)?;
            if !chunk.spans.is_empty() {
                if sent - taken >= workers * CHUNKS_IN_FLIGHT && !take(&mut taken, b)? {
                    return Ok(());
                }
                if to[sent % workers].send(chunk).is_err() {
                    return Err(SourceError::Other(crate::Error::invalid("a parsing thread stopped")));
                }
                sent += 1;
            }
            match end {
                ChunkEnd::Full => {}
                ChunkEnd::Eof | ChunkEnd::Malformed(..) => {
                    while taken < sent {
                        if !take(&mut taken, b)? {
                            return Ok(());
                        }
                    }
                    return match end {
                        ChunkEnd::Malformed(at, what) => Err(b.malformed(at, what)),
                        _ => Ok(()),
                    };
                }
            }
        }
        // Leaving the scope drops `to`: the workers' loops end.
    })
}

fn skip_line<R: BufRead>(input: &mut R) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&c| c == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &b[start..end]
}

/// A byte reader over a `BufRead` that counts lines.
struct Bytes<R> {
    input: R,
    line: u64,
}

impl<R: BufRead> Bytes<R> {
    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        Ok(self.input.fill_buf()?.first().copied())
    }

    fn bump(&mut self) -> std::io::Result<Option<u8>> {
        let c = self.peek()?;
        if let Some(c) = c {
            self.input.consume(1);
            if c == b'\n' {
                self.line += 1;
            }
        }
        Ok(c)
    }

    fn skip_ws(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            match self.peek()? {
                Some(c) if c.is_ascii_whitespace() => {
                    self.bump()?;
                }
                other => return Ok(other),
            }
        }
    }

    /// Copies one JSON value into `out`: an object or list (tracking
    /// strings and nesting), a string, or a scalar up to the next `,`, `]`,
    /// `}` or whitespace. `Err(what)` if the input ends inside it or holds
    /// a NUL byte.
    fn value(&mut self, out: &mut Vec<u8>) -> Result<Result<(), String>, std::io::Error> {
        match self.peek()? {
            Some(b'{') | Some(b'[') | Some(b'"') => {}
            _ => {
                while let Some(c) = self.peek()? {
                    if matches!(c, b',' | b']' | b'}') || c.is_ascii_whitespace() {
                        break;
                    }
                    if c == 0 {
                        return Ok(Err("binary data (a NUL byte)".into()));
                    }
                    out.push(c);
                    self.bump()?;
                    if out.len() > MAX_LINE {
                        return Ok(Err(format!("a job is longer than {MAX_LINE} bytes")));
                    }
                }
                return Ok(Ok(()));
            }
        }
        let mut depth = 0u32;
        let mut in_str = false;
        let mut esc = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                return Ok(Err("the input ends inside a job".into()));
            }
            let mut used = buf.len();
            let mut done = false;
            for (i, &c) in buf.iter().enumerate() {
                if c == 0 {
                    return Ok(Err("binary data (a NUL byte)".into()));
                }
                if c == b'\n' {
                    self.line += 1;
                }
                if in_str {
                    if esc {
                        esc = false;
                    } else if c == b'\\' {
                        esc = true;
                    } else if c == b'"' {
                        in_str = false;
                        if depth == 0 {
                            used = i + 1;
                            done = true;
                            break;
                        }
                    }
                    continue;
                }
                match c {
                    b'"' => in_str = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            used = i + 1;
                            done = true;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            out.extend_from_slice(&buf[..used]);
            self.input.consume(used);
            if out.len() > MAX_LINE {
                return Ok(Err(format!("a job is longer than {MAX_LINE} bytes")));
            }
            if done {
                return Ok(Ok(()));
            }
        }
    }

    fn expect(&mut self, want: u8, what: &str) -> Result<Result<(), String>, std::io::Error> {
        match self.skip_ws()? {
            Some(c) if c == want => {
                self.bump()?;
                Ok(Ok(()))
            }
            Some(c) => Ok(Err(format!("expected {what}, found {:?}", c as char))),
            None => Ok(Err(format!("expected {what}, found the end of the input"))),
        }
    }
}

fn read_document<R: BufRead>(input: R, now: f64, b: &mut Batcher<'_, '_>) -> Result<(), SourceError> {
    let mut r = Bytes { input, line: 1 };
    let fail = |b: &Batcher<'_, '_>, line: u64, what: String| {
        Err(b.malformed(line, format!("invalid {{\"jobs\": [...]}} document: {what}")))
    };
    // `{`, `"jobs"`, `:`, `[` (checked to be there by is_jobs_document for
    // the first two).
    for (c, what) in [(b'{', "'{'"), (b'"', "\"jobs\"")] {
        if let Err(w) = r.expect(c, what)? {
            return fail(b, r.line, w);
        }
    }
    for _ in 0..5 {
        r.bump()?;
    }
    for (c, what) in [(b':', "':'"), (b'[', "'['")] {
        if let Err(w) = r.expect(c, what)? {
            return fail(b, r.line, w);
        }
    }
    let mut buf = Vec::with_capacity(4096);
    let mut index = 0u64;
    loop {
        match r.skip_ws()? {
            Some(b']') if index == 0 => {
                r.bump()?;
                break;
            }
            Some(b',') | Some(b']') | Some(b'}') => {
                return fail(
                    b,
                    r.line,
                    format!("expected job {}, found {:?}", index + 1, r.peek()?.unwrap_or(b' ') as char),
                )
            }
            Some(_) => {}
            None => return fail(b, r.line, "the input ends inside the jobs list".into()),
        }
        index += 1;
        let line = r.line;
        buf.clear();
        if let Err(w) = r.value(&mut buf)? {
            return fail(b, r.line, format!("job {index}: {w}"));
        }
        let pos = Position::DocJob { index, line };
        let it = item(pos, &buf, now);
        if let Err(rej) = &it.rec {
            if rej.reason.starts_with("invalid JSON") {
                return fail(b, line, format!("job {index}: {}", rej.reason));
            }
        }
        if !b.push(line, it) {
            return Ok(());
        }
        match r.skip_ws()? {
            Some(b',') => {
                r.bump()?;
            }
            Some(b']') => {
                r.bump()?;
                break;
            }
            Some(c) => return fail(b, r.line, format!("expected ',' or ']' after job {index}, found {:?}", c as char)),
            None => return fail(b, r.line, "the input ends inside the jobs list".into()),
        }
    }
    // Other keys after the list are allowed; the document must close.
    let mut rest = Vec::new();
    loop {
        match r.skip_ws()? {
            Some(b'}') => {
                r.bump()?;
                break;
            }
            Some(b',') => {
                r.bump()?;
                let line = r.line;
                if let Err(w) = skip_member(&mut r, &mut rest)? {
                    return fail(b, line, w);
                }
            }
            Some(c) => return fail(b, r.line, format!("expected '}}' after the jobs list, found {:?}", c as char)),
            None => return fail(b, r.line, "the input ends before the closing '}'".into()),
        }
    }
    match r.skip_ws()? {
        None => Ok(()),
        Some(c) => fail(b, r.line, format!("unexpected {:?} after the document", c as char)),
    }
}

/// Skips `"key": value` after the jobs list of a document.
fn skip_member<R: BufRead>(r: &mut Bytes<R>, scratch: &mut Vec<u8>) -> std::io::Result<Result<(), String>> {
    if r.skip_ws()? != Some(b'"') {
        return Ok(Err("expected a key".into()));
    }
    r.bump()?;
    let mut esc = false;
    loop {
        match r.bump()? {
            None => return Ok(Err("the input ends inside a key".into())),
            Some(b'\\') if !esc => esc = true,
            Some(b'"') if !esc => break,
            Some(_) => esc = false,
        }
    }
    if let Err(w) = r.expect(b':', "':'")? {
        return Ok(Err(w));
    }
    match r.skip_ws()? {
        Some(_) => {
            scratch.clear();
            r.value(scratch)
        }
        None => Ok(Err("the input ends inside a member".into())),
    }
}

/// Reads an old flux-core job-archive database (`jobs` table: id, userid,
/// t_submit, t_run, t_inactive, ranks, R, jobspec) in `t_inactive` order,
/// checking every row at ingest time `now`. Rows with an empty `R` (jobs
/// that never ran) are skipped, as flux-accounting skips them.
pub fn read_archive(
    conn: &rusqlite::Connection,
    batch: usize,
    now: f64,
    sink: &mut Sink<'_>,
) -> Result<(), SourceError> {
    use rusqlite::types::ValueRef;
    let mut b = Batcher::new(batch, sink);
    let mut stmt = conn
        .prepare("SELECT id, userid, t_submit, t_run, t_inactive, ranks, R, jobspec FROM jobs ORDER BY t_inactive, id")
        .map_err(|e| SourceError::Other(crate::Error::invalid(format!("not a job-archive database: {e}"))))?;
    let mut rows = stmt.query([]).map_err(|e| SourceError::Other(e.into()))?;
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(|e| SourceError::Other(e.into()))? {
        n += 1;
        let pos = Position::ArchiveRow(n);
        let v = |i: usize| row.get_ref(i).unwrap_or(ValueRef::Null);
        let mut bad: Option<String> = None;
        let num = |i: usize, k: &str, bad: &mut Option<String>| -> Option<f64> {
            match v(i) {
                ValueRef::Null => None,
                ValueRef::Integer(x) => Some(x as f64),
                ValueRef::Real(x) => Some(x),
                ValueRef::Text(t) => match std::str::from_utf8(t).ok().and_then(|s| s.trim().parse::<f64>().ok()) {
                    Some(x) => Some(x),
                    None => {
                        bad.get_or_insert(format!("{k} is not a number"));
                        None
                    }
                },
                ValueRef::Blob(_) => {
                    bad.get_or_insert(format!("{k} is not a number"));
                    None
                }
            }
        };
        let text = |i: usize, k: &str, bad: &mut Option<String>| -> Option<&str> {
            match v(i) {
                ValueRef::Null => None,
                ValueRef::Text(t) | ValueRef::Blob(t) => match std::str::from_utf8(t) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        bad.get_or_insert(format!("{k} is not UTF-8 text"));
                        None
                    }
                },
                _ => {
                    bad.get_or_insert(format!("{k} is not text"));
                    None
                }
            }
        };
        let r = text(6, "R", &mut bad);
        if r.is_none_or(|s| s.trim().is_empty()) && bad.is_none() {
            continue;
        }
        let id = match v(0) {
            ValueRef::Integer(x) => {
                Some(u64::try_from(x).map(IdField::Ok).unwrap_or_else(|_| IdField::Bad(format!("id {x} is negative"))))
            }
            ValueRef::Text(t) => {
                let s = String::from_utf8_lossy(t);
                Some(
                    jobs::parse_jobid(s.trim())
                        .map(IdField::Ok)
                        .unwrap_or_else(|| IdField::Bad(format!("id {s:?} is not a job id"))),
                )
            }
            ValueRef::Null => None,
            _ => Some(IdField::Bad("id is not a job id".into())),
        };
        let input = JobInput {
            id,
            userid: num(1, "userid", &mut bad),
            t_submit: num(2, "t_submit", &mut bad),
            t_run: num(3, "t_run", &mut bad),
            t_inactive: num(4, "t_inactive", &mut bad),
            ranks: text(5, "ranks", &mut bad).map(Cow::Borrowed),
            r: r.map(Embedded::Text),
            jobspec: text(7, "jobspec", &mut bad).map(Embedded::Text),
            ..JobInput::default()
        };
        let rec = match bad {
            Some(why) => {
                let id = match input.id {
                    Some(IdField::Ok(id)) => Some(id),
                    _ => None,
                };
                Err(Rejection { id, reason: why })
            }
            None => jobs::check(&input, now),
        };
        if !b.push(n, checked(pos, rec)) {
            return Ok(());
        }
    }
    b.flush();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, batch: usize) -> (Vec<Vec<Item>>, Result<(), SourceError>) {
        let mut got = Vec::new();
        let r = read_json(text.as_bytes(), batch, 2e9, &mut |b| {
            got.push(b);
            true
        });
        (got, r)
    }

    const JOB: &str = r#"{"id":1,"userid":5,"t_run":1,"t_inactive":3}"#;

    #[test]
    fn json_lines_are_batched_with_their_line_numbers() {
        let text = format!("{JOB}\n\n{}\n{{oops\n{}\n", JOB.replace(":1,", ":2,"), JOB.replace(":1,", ":3,"));
        let (got, r) = read(&text, 2);
        r.unwrap();
        assert_eq!(got.len(), 2);
        let pos: Vec<Position> = got.iter().flatten().map(|i| i.pos).collect();
        assert_eq!(pos, [Position::Line(1), Position::Line(3), Position::Line(4), Position::Line(5)]);
        assert!(got[1][0].rec.as_ref().unwrap_err().reason.starts_with("invalid JSON"));
        assert!(matches!(got[1][1].rec.as_ref().unwrap().event(), Event::JobRecorded(j) if j.id == 3));
    }

    /// The parallel line reader keeps input order across chunks and
    /// workers, and a malformed line far into the input stops it exactly
    /// there: every earlier record handed over, the pending batch named.
    #[test]
    fn many_lines_keep_their_order_and_stop_at_a_malformed_line() {
        let n = 5 * CHUNK_LINES as u64 + 17;
        let mut text = String::new();
        for i in 1..=n {
            text.push_str(&JOB.replace("\"id\":1,", &format!("\"id\":{i},")));
            text.push('\n');
        }
        let (got, r) = read(&text, 300);
        r.unwrap();
        let lines: Vec<u64> = got
            .iter()
            .flatten()
            .map(|i| match i.pos {
                Position::Line(l) => l,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(lines, (1..=n).collect::<Vec<_>>());
        assert!(got[..got.len() - 1].iter().all(|b| b.len() == 300));
        text.push_str("{\"id\":\u{0}}\n");
        text.push_str(JOB);
        let (got, r) = read(&text, 300);
        assert_eq!(got.iter().map(Vec::len).sum::<usize>() as u64, n / 300 * 300, "whole batches only");
        match r {
            Err(SourceError::Malformed { line, pending_from, .. }) => {
                assert_eq!(line, n + 1);
                assert_eq!(pending_from, Some(n / 300 * 300 + 1));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A line that is not UTF-8 (checked by the parsing workers) stops the
    /// input there too, after every earlier record.
    #[test]
    fn a_non_utf8_line_far_in_stops_the_input_there() {
        let n = 3 * CHUNK_LINES as u64 + 5;
        let mut text = Vec::new();
        for i in 1..=n {
            text.extend_from_slice(JOB.replace("\"id\":1,", &format!("\"id\":{i},")).as_bytes());
            text.push(b'\n');
        }
        text.extend_from_slice(b"{\"id\":\"\xff\"}\n");
        text.extend_from_slice(JOB.as_bytes());
        let mut got = Vec::new();
        let r = read_json(&text[..], 100, 2e9, &mut |b| {
            got.push(b);
            true
        });
        assert_eq!(got.iter().map(Vec::len).sum::<usize>() as u64, n / 100 * 100);
        match r {
            Err(SourceError::Malformed { line, what, pending_from }) => {
                assert_eq!(line, n + 1);
                assert!(what.starts_with("not UTF-8 text"), "{what}");
                assert_eq!(pending_from, Some(n / 100 * 100 + 1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn documents_stream_their_jobs() {
        let text = format!("{{\"jobs\": [\n {JOB},\n {}\n], \"extra\": {{\"a\": [1]}}}}\n", JOB.replace(":1,", ":2,"));
        let (got, r) = read(&text, 10);
        r.unwrap();
        let pos: Vec<Position> = got.iter().flatten().map(|i| i.pos).collect();
        assert_eq!(pos, [Position::DocJob { index: 1, line: 2 }, Position::DocJob { index: 2, line: 3 }]);
        let (got, r) = read("{\"jobs\": []}", 10);
        r.unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn invalid_document_is_malformed_with_its_line_and_pending_batch() {
        let text = format!("{{\"jobs\": [\n{JOB},\n{JOB},\n{JOB}\n{JOB}]}}");
        let (got, r) = read(&text, 2);
        assert_eq!(got.len(), 1, "the first full batch was handed over");
        match r {
            Err(SourceError::Malformed { line, what, pending_from }) => {
                assert_eq!(line, 5);
                assert_eq!(pending_from, Some(4));
                assert!(what.contains("expected ',' or ']' after job 3"), "{what}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn binary_input_is_malformed() {
        let (got, r) = read("\u{0}\u{1}garbage\n", 10);
        assert!(got.is_empty());
        assert!(matches!(r, Err(SourceError::Malformed { line: 1, .. })), "{r:?}");
        let (_, r) = read(std::str::from_utf8(b"{\"id\":1}\n").unwrap(), 10);
        r.unwrap();
    }

    #[test]
    fn overlong_lines_are_rejected_alone() {
        let long = format!("{{\"id\":1,\"userid\":5,\"t_inactive\":3,\"bank\":\"{}\"}}", "x".repeat(MAX_LINE));
        let (got, r) = read(&format!("{long}\n{JOB}\n"), 10);
        r.unwrap();
        let items: Vec<&Item> = got.iter().flatten().collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].rec.as_ref().unwrap_err().reason.contains("longer than"));
        assert_eq!(items[1].pos, Position::Line(2));
    }
}
