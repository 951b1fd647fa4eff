//! The JSON source: JSON lines of job objects, or the `{"jobs": [...]}`
//! document `flux jobs -a --json` prints, read as a stream.

use std::io::{BufRead, Read};

use super::{checked, Batcher, Item, Position, Sink, SourceError};
use crate::record::{self as jobs, Rejection};

/// Longest input line (one JSON-lines record), in bytes. A longer line is
/// rejected without being held in memory.
pub const MAX_LINE: usize = 4 << 20;

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

/// A chunk's lines as items, in order.
struct Parsed {
    items: Vec<(u64, Item)>,
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
                    // A line is a record: one that is not UTF-8 text is
                    // rejected alone (with its id, when a lossy reading
                    // finds one), and the lines after it are read on.
                    Err(e) => {
                        let raw = &self.data[start..end];
                        let lossy = String::from_utf8_lossy(raw);
                        let id = match jobs::parse_str(&lossy) {
                            Ok(j) => match j.id {
                                Some(jobs::IdField::Ok(id)) => Some(id),
                                Some(jobs::IdField::Bad(_)) | None => None,
                            },
                            Err(r) => r.id,
                        };
                        let rej = Rejection { id, reason: format!("record is not UTF-8 text ({e})") };
                        items.push((line, Item { pos: Position::Line(line), rec: Err(rej) }));
                    }
                },
                Span::TooLong { line } => {
                    let rej = Rejection { id: None, reason: format!("record is longer than {MAX_LINE} bytes") };
                    items.push((line, Item { pos: Position::Line(line), rec: Err(rej) }));
                }
            }
        }
        Parsed { items }
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
            Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;
    use fluxacct_core::events::Event;

    fn read(text: &str, batch: usize) -> (Vec<Vec<Item>>, Result<(), SourceError>) {
        let mut got = Vec::new();
        let r = read_json(text.as_bytes(), batch, 2e9, &mut |b| {
            got.push(b);
            true
        });
        (got, r)
    }

    const JOB: &str = r#"{"id":1,"userid":5,"t_run":1700000001,"t_inactive":1700000003}"#;

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

    /// A line that is not UTF-8 (checked by the parsing workers) is a
    /// record like any other bad line: rejected alone, with its id and the
    /// rule, and every record before and after it is handed over. (It once
    /// stopped the whole input there.)
    #[test]
    fn a_non_utf8_line_far_in_is_rejected_alone_and_the_lines_after_it_are_read() {
        let n = 3 * CHUNK_LINES as u64 + 5;
        let mut text = Vec::new();
        for i in 1..=n {
            text.extend_from_slice(JOB.replace("\"id\":1,", &format!("\"id\":{i},")).as_bytes());
            text.push(b'\n');
        }
        text.extend_from_slice(b"{\"id\":77777,\"bank\":\"\xff\"}\n");
        text.extend_from_slice(JOB.as_bytes());
        let mut got = Vec::new();
        let r = read_json(&text[..], 100, 2e9, &mut |b| {
            got.push(b);
            true
        });
        r.unwrap();
        let items: Vec<&Item> = got.iter().flatten().collect();
        assert_eq!(items.len() as u64, n + 2, "every line handed over");
        let bad = items[n as usize];
        assert_eq!(bad.pos, Position::Line(n + 1));
        let rej = bad.rec.as_ref().unwrap_err();
        assert_eq!(rej.id, Some(77777));
        assert!(rej.reason.starts_with("record is not UTF-8 text"), "{rej:?}");
        assert_eq!(items[n as usize + 1].pos, Position::Line(n + 2));
        assert!(items[n as usize + 1].rec.is_ok());
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
        let long = format!("{{\"id\":1,\"userid\":5,\"t_inactive\":1700000003,\"bank\":\"{}\"}}", "x".repeat(MAX_LINE));
        let (got, r) = read(&format!("{long}\n{JOB}\n"), 10);
        r.unwrap();
        let items: Vec<&Item> = got.iter().flatten().collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].rec.as_ref().unwrap_err().reason.contains("longer than"));
        assert_eq!(items[1].pos, Position::Line(2));
    }
}
