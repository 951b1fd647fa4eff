//! The fast path of [`crate::record::canonical_r`]: the canonical text of an
//! `R` and its resource counts from one scan into a flat arena, without
//! serde's tree (four times fewer instructions on a typical `R`).
//!
//! It covers what Flux writes: objects, arrays, strings without escapes,
//! `true`/`false`/`null` and numbers, and the usual `R_lite` shape. For
//! anything else (escapes, duplicate keys, invalid JSON, an `R` whose
//! counts would be an error) it answers `None` and the caller takes the
//! tree path, which gives the same text and the exact error. A proptest
//! (`tests/canonical_r.rs`) pins the two paths to the same answers.

use crate::counts::{idset_count, Counts};

/// A node of the arena: `start..end` is its text in the input (a string
/// without its quotes); the children of an array or object are
/// `kids[first..first + len]` (for an object, alternately key and value).
#[derive(Clone, Copy)]
struct Node {
    kind: Kind,
    start: u32,
    end: u32,
    first: u32,
    len: u32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Array,
    Str,
    /// An integer written as serde_json writes it back.
    Int,
    /// Any other number: re-encoded through serde_json's `f64`.
    Float,
    /// `true`, `false`, `null`.
    Lit,
}

/// Nesting deeper than this takes the tree path (which has serde_json's
/// own limit).
const MAX_DEPTH: usize = 100;

struct Parser<'t, 's> {
    text: &'t [u8],
    at: usize,
    nodes: &'s mut Vec<Node>,
    kids: &'s mut Vec<u32>,
    /// Children being collected, per open container.
    stack: &'s mut Vec<u32>,
}

/// The arena's buffers, kept per thread between calls.
#[derive(Default)]
struct Scratch {
    nodes: Vec<Node>,
    kids: Vec<u32>,
    stack: Vec<u32>,
    members: Vec<(u32, u32)>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

impl Parser<'_, '_> {
    fn ws(&mut self) {
        while let Some(c) = self.text.get(self.at) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.at += 1;
        }
    }

    fn node(&mut self, kind: Kind, start: usize, end: usize) -> Option<u32> {
        let i = u32::try_from(self.nodes.len()).ok()?;
        self.nodes.push(Node { kind, start: start as u32, end: end as u32, first: 0, len: 0 });
        Some(i)
    }

    fn string(&mut self) -> Option<u32> {
        // At the opening quote. No escapes, no control characters: the
        // text between the quotes is written back verbatim.
        let start = self.at + 1;
        let rest = self.text.get(start..)?;
        let n = rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[n] != b'"' {
            return None;
        }
        self.at = start + n + 1;
        self.node(Kind::Str, start, start + n)
    }

    fn number(&mut self) -> Option<u32> {
        let start = self.at;
        let rest = &self.text[start..];
        let n = rest
            .iter()
            .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .unwrap_or(rest.len());
        let tok = &rest[..n];
        self.at = start + n;
        let (neg, digits) = match tok.split_first() {
            Some((b'-', d)) => (true, d),
            _ => (false, tok),
        };
        let plain = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits[0] != b'0' || digits.len() == 1)
            && !(neg && digits == b"0");
        // An integer that fits i64 (negative) or u64: serde_json writes it
        // back as it is. Digit strings of equal length compare as numbers.
        let fits = |max: &[u8]| digits.len() < max.len() || (digits.len() == max.len() && digits <= max);
        if plain && if neg { fits(b"9223372036854775808") } else { fits(b"18446744073709551615") } {
            return self.node(Kind::Int, start, start + n);
        }
        // Anything else: serde_json's own reading decides what it is.
        let s = std::str::from_utf8(tok).ok()?;
        serde_json::from_str::<f64>(s).ok().filter(|f| f.is_finite())?;
        self.node(Kind::Float, start, start + n)
    }

    fn value(&mut self, depth: usize) -> Option<u32> {
        self.ws();
        match *self.text.get(self.at)? {
            b'{' => self.container(Kind::Object, depth),
            b'[' => self.container(Kind::Array, depth),
            b'"' => self.string(),
            b't' | b'f' | b'n' => {
                let start = self.at;
                for lit in [&b"true"[..], b"false", b"null"] {
                    if self.text[start..].starts_with(lit) {
                        self.at += lit.len();
                        return self.node(Kind::Lit, start, self.at);
                    }
                }
                None
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn container(&mut self, kind: Kind, depth: usize) -> Option<u32> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let close = if kind == Kind::Object { b'}' } else { b']' };
        let start = self.at;
        self.at += 1;
        let base = self.stack.len();
        self.ws();
        if self.text.get(self.at) == Some(&close) {
            self.at += 1;
        } else {
            loop {
                if kind == Kind::Object {
                    self.ws();
                    if self.text.get(self.at) != Some(&b'"') {
                        return None;
                    }
                    let k = self.string()?;
                    self.stack.push(k);
                    self.ws();
                    if self.text.get(self.at) != Some(&b':') {
                        return None;
                    }
                    self.at += 1;
                }
                let v = self.value(depth + 1)?;
                self.stack.push(v);
                self.ws();
                match self.text.get(self.at) {
                    Some(b',') => self.at += 1,
                    Some(&c) if c == close => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let first = u32::try_from(self.kids.len()).ok()?;
        let len = u32::try_from(self.stack.len() - base).ok()?;
        self.kids.extend(self.stack.drain(base..));
        let i = self.node(kind, start, self.at)?;
        let n = &mut self.nodes[i as usize];
        n.first = first;
        n.len = len;
        Some(i)
    }

    fn text_of(&self, n: &Node) -> &[u8] {
        &self.text[n.start as usize..n.end as usize]
    }

    fn kids_of(&self, n: &Node) -> &[u32] {
        &self.kids[n.first as usize..(n.first + n.len) as usize]
    }

    /// Pushes the members of an object onto `members` as (key node,
    /// value node), sorted by key; `None` on a duplicate key.
    fn members(&self, n: &Node, members: &mut Vec<(u32, u32)>) -> Option<()> {
        let base = members.len();
        members.extend(self.kids_of(n).chunks_exact(2).map(|kv| (kv[0], kv[1])));
        let m = &mut members[base..];
        let key = |i: u32| self.text_of(&self.nodes[i as usize]);
        if !m.windows(2).all(|w| key(w[0].0) < key(w[1].0)) {
            m.sort_unstable_by(|a, b| key(a.0).cmp(key(b.0)));
            if m.windows(2).any(|w| key(w[0].0) == key(w[1].0)) {
                return None;
            }
        }
        Some(())
    }

    fn get(&self, n: &Node, key: &str) -> Option<Node> {
        if n.kind != Kind::Object {
            return None;
        }
        let kids = self.kids_of(n);
        kids.chunks_exact(2)
            .find(|kv| self.text_of(&self.nodes[kv[0] as usize]) == key.as_bytes())
            .map(|kv| self.nodes[kv[1] as usize])
    }

    fn str_of(&self, n: &Node) -> Option<&str> {
        (n.kind == Kind::Str).then(|| std::str::from_utf8(self.text_of(n)).ok()).flatten()
    }

    fn emit(&self, i: u32, out: &mut Vec<u8>, members: &mut Vec<(u32, u32)>) -> Option<()> {
        let n = self.nodes[i as usize];
        match n.kind {
            Kind::Object => {
                out.push(b'{');
                let base = members.len();
                self.members(&n, members)?;
                for j in base..members.len() {
                    let (k, v) = members[j];
                    if j > base {
                        out.push(b',');
                    }
                    out.push(b'"');
                    out.extend_from_slice(self.text_of(&self.nodes[k as usize]));
                    out.extend_from_slice(b"\":");
                    self.emit(v, out, members)?;
                }
                members.truncate(base);
                out.push(b'}');
            }
            Kind::Array => {
                out.push(b'[');
                for (j, &v) in self.kids_of(&n).iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    self.emit(v, out, members)?;
                }
                out.push(b']');
            }
            Kind::Str => {
                out.push(b'"');
                out.extend_from_slice(self.text_of(&n));
                out.push(b'"');
            }
            Kind::Int | Kind::Lit => out.extend_from_slice(self.text_of(&n)),
            Kind::Float => {
                let f: f64 = serde_json::from_slice(self.text_of(&n)).ok()?;
                serde_json::to_writer(&mut *out, &f).ok()?;
            }
        }
        Some(())
    }

    /// The counts of `R_lite`, as `jobs::counts_of` gives them; `None`
    /// where that gives an error.
    fn counts(&self, root: &Node) -> Option<Counts> {
        self.get(root, "version")?;
        let lite = self.get(&self.get(root, "execution")?, "R_lite")?;
        if lite.kind != Kind::Array {
            return None;
        }
        let mut c = Counts::default();
        for &e in self.kids_of(&lite) {
            let entry = self.nodes[e as usize];
            let ranks = idset_count(self.str_of(&self.get(&entry, "rank")?)?)?;
            let child = |k: &str| -> Option<u64> {
                match self.get(&entry, "children").and_then(|c| self.get(&c, k)) {
                    None => Some(0),
                    Some(v) => idset_count(self.str_of(&v)?),
                }
            };
            let add = |acc: i64, n: u64| i64::try_from(n).ok().and_then(|n| acc.checked_add(n));
            c.nnodes = add(c.nnodes, ranks)?;
            c.ncores = add(c.ncores, ranks.checked_mul(child("core")?)?)?;
            c.ngpus = add(c.ngpus, ranks.checked_mul(child("gpu")?)?)?;
        }
        Some(c)
    }
}

/// The canonical text of `text` (an `R`) and its counts, or `None` when
/// the tree path must answer (see the module doc).
pub fn fast_canonical_r(text: &str) -> Option<(String, Counts)> {
    SCRATCH.with(|cell| {
        let mut guard = cell.try_borrow_mut().ok()?;
        let Scratch { nodes, kids, stack, members } = &mut *guard;
        nodes.clear();
        kids.clear();
        stack.clear();
        members.clear();
        let mut p = Parser { text: text.as_bytes(), at: 0, nodes, kids, stack };
        let root = p.value(0)?;
        p.ws();
        if p.at != p.text.len() {
            return None;
        }
        let root_node = p.nodes[root as usize];
        if root_node.kind != Kind::Object {
            return None;
        }
        let counts = p.counts(&root_node)?;
        let mut out = Vec::with_capacity(text.len());
        p.emit(root, &mut out, members)?;
        // Only input bytes (valid UTF-8, cut at ASCII delimiters) and ASCII.
        let s = String::from_utf8(out).ok()?;
        Some((s, counts))
    })
}
