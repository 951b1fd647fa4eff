//! Job records as they come from Flux: idsets, RFC 20 `R` objects, FLUID
//! job id forms, and the job objects of `flux jobs --json`, job-list and the
//! old job-archive database, with the ingest rules (docs/ingest.md).
//!
//! A record is parsed into [`JobInput`], which borrows from the input line
//! (no `serde_json::Value` tree), then [`check`]ed into a `JobRecorded`
//! whose `R` is kept in canonical text ([`canonical_r`]).

use std::borrow::Cow;
use std::fmt;

use fluxacct_core::events::{CanonicalJson, JobRecorded};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

pub use crate::counts::{idset_count, Counts};

const F58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A job id in flux's dothex form (`0000.0c9b.2000.0000`: four 16-bit
/// groups); `job.` + it is the job's KVS directory.
pub fn dothex(id: u64) -> String {
    format!("{:04x}.{:04x}.{:04x}.{:04x}", id >> 48, (id >> 32) & 0xffff, (id >> 16) & 0xffff, id & 0xffff)
}

/// The base58 digits of a job id (flux's f58 form without its prefix).
fn base58(id: u64) -> String {
    let mut digits = Vec::new();
    let mut x = id;
    loop {
        digits.push(F58[(x % 58) as usize] as char);
        x /= 58;
        if x == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// A form a job id is shown in: flux's FLUID forms (`flux job id --to=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdForm {
    /// Decimal.
    Dec,
    /// `0x` + hex.
    Hex,
    /// Four dot-separated 16-bit hex groups.
    Dothex,
    /// `job.` + dothex: the job's KVS directory.
    Kvs,
    /// f58 as flux prints it: `ƒ` + base58 under a UTF-8 locale, `f` +
    /// base58 otherwise.
    F58 {
        /// Whether the locale's character set is UTF-8.
        utf8: bool,
    },
    /// `f` + base58 in every locale.
    F58Plain,
    /// Mnemonic words (mnemonicode of the id's 8 bytes, little-endian, as
    /// flux writes them on its platforms).
    Words,
}

impl IdForm {
    /// The form a job id takes in text that is stored (rejection
    /// positions in the log): f58 with `ƒ`, whatever the locale, so that
    /// the same input gives the same events everywhere.
    pub const STORED: IdForm = IdForm::F58 { utf8: true };
}

/// A job id shown in `form`: the one function that decides how an id is
/// written, for every listing, message and stored text.
pub fn show_id(id: u64, form: IdForm) -> String {
    match form {
        IdForm::Dec => id.to_string(),
        IdForm::Hex => format!("{id:#x}"),
        IdForm::Dothex => dothex(id),
        IdForm::Kvs => format!("job.{}", dothex(id)),
        IdForm::F58 { utf8: true } => format!("ƒ{}", base58(id)),
        IdForm::F58 { utf8: false } | IdForm::F58Plain => format!("f{}", base58(id)),
        IdForm::Words => mnemonic::to_string(id.to_le_bytes()),
    }
}

/// Parses a job id in every FLUID form flux accepts except emoji: decimal,
/// hex (`0x…`), dothex (`….….….…`), kvs (`job.….….….…`), f58 (`ƒ…`/`f…`)
/// and words (mnemonicode, `academy-academy-academy--academy-academy-academy`:
/// the id's 8 bytes little-endian, as flux writes them on its platforms).
pub fn parse_jobid(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Ok(v) = t.parse::<u64>() {
        return Some(v);
    }
    if t.contains('-') {
        let mut bytes = Vec::with_capacity(8);
        mnemonic::decode(t, &mut bytes).ok()?;
        return <[u8; 8]>::try_from(bytes.as_slice()).ok().map(u64::from_le_bytes);
    }
    if let Some(h) = t.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).ok();
    }
    let dot = t.strip_prefix("job.").unwrap_or(t);
    let parts: Vec<&str> = dot.split('.').collect();
    if parts.len() == 4 && parts.iter().all(|p| p.len() == 4) {
        let mut v = 0u64;
        for p in parts {
            v = (v << 16) | u64::from_str_radix(p, 16).ok()?;
        }
        return Some(v);
    }
    let b = t.strip_prefix('ƒ').or_else(|| t.strip_prefix('f'))?;
    if b.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for ch in b.bytes() {
        let d = F58.iter().position(|&c| c == ch)? as u64;
        v = v.checked_mul(58)?.checked_add(d)?;
    }
    Some(v)
}

/// Bounds of the ingest rules (docs/ingest.md).
pub mod limits {
    /// Largest `nnodes` of one job: ten times the node count of the
    /// largest machines (El Capitan, Frontier: about 10⁴ nodes).
    pub const MAX_NNODES: f64 = 1e5;
    /// Largest `ncores` of one job: about ten times the core count of the
    /// largest machines (Fugaku: 7.6·10⁶ cores).
    pub const MAX_NCORES: f64 = 1e8;
    /// Largest `ngpus` of one job: far above the largest machines (about
    /// 4·10⁴ GPUs).
    pub const MAX_NGPUS: f64 = 1e7;
    /// Earliest time a job may have (2000-01-01T00:00:00Z, years before
    /// Flux): `t_inactive`, and `t_submit` and `t_run` unless 0 (not set;
    /// `t_run` 0: never ran).
    pub const MIN_TIME: f64 = 946_684_800.0;
    /// Longest duration, requested or run, in seconds (a century).
    pub const MAX_DURATION: f64 = 100.0 * 365.25 * 86_400.0;
    /// Largest uid (2³² − 2; 2³² − 1 is `FLUX_USERID_UNKNOWN`).
    pub const MAX_UID: f64 = 4_294_967_294.0;
    /// Longest user, bank, project and queue name, in bytes.
    pub const MAX_NAME: usize = 4096;
    /// Longest `R`, `jobspec` and `ranks`, in bytes.
    pub const MAX_BLOB: usize = 1 << 20;
    /// How far past the ingest time a job's times may be, in seconds.
    pub const FUTURE_SLACK: f64 = 86_400.0;
}

/// A job id as the input gave it: a number or any FLUID string, or why it
/// is not a job id. Deserializing never fails on a scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdField {
    /// A job id.
    Ok(u64),
    /// Not a job id: the reason.
    Bad(String),
}

impl<'de> Deserialize<'de> for IdField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IdField, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IdField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a job id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdField, E> {
                Ok(IdField::Ok(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdField, E> {
                Ok(u64::try_from(v).map(IdField::Ok).unwrap_or_else(|_| IdField::Bad(format!("id {v} is negative"))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IdField, E> {
                Ok(IdField::Bad(format!("id {v} is not an integer")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<IdField, E> {
                Ok(parse_jobid(s).map(IdField::Ok).unwrap_or_else(|| IdField::Bad(format!("id {s:?} is not a job id"))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<IdField, E> {
                Ok(IdField::Bad("id is not a job id".into()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<IdField, E> {
                Ok(IdField::Bad("missing id".into()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<IdField, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IdField::Bad("id is not a job id".into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<IdField, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(IdField::Bad("id is not a job id".into()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A nested JSON value (`R`, `jobspec`): the raw JSON of an object, or a
/// string holding JSON text (old archives, some tools).
#[derive(Debug, Clone, Copy)]
pub enum Embedded<'a> {
    /// The value as it appears in the input.
    Raw(&'a RawValue),
    /// JSON text (already unescaped).
    Text(&'a str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Embedded<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Embedded<'a>, D::Error> {
        <&'a RawValue>::deserialize(d).map(Embedded::Raw)
    }
}

impl<'a> Embedded<'a> {
    /// The JSON text of the value; `None` for null and the empty string.
    /// `key` names the field in errors.
    fn text(self, key: &str) -> Result<Option<Cow<'a, str>>, String> {
        let t = match self {
            Embedded::Text(t) => Cow::Borrowed(t),
            Embedded::Raw(r) => {
                let s = r.get();
                if s == "null" {
                    return Ok(None);
                }
                if s.starts_with('"') {
                    if s.len() > limits::MAX_BLOB + 2 {
                        return Err(format!("{key} is longer than {} bytes", limits::MAX_BLOB));
                    }
                    Cow::Owned(serde_json::from_str::<String>(s).map_err(|e| format!("{key} is not valid JSON: {e}"))?)
                } else {
                    Cow::Borrowed(s)
                }
            }
        };
        if t.trim().is_empty() {
            return Ok(None);
        }
        if t.len() > limits::MAX_BLOB {
            return Err(format!("{key} is longer than {} bytes", limits::MAX_BLOB));
        }
        Ok(Some(t))
    }
}

/// One job object as read from the input, borrowing its strings and
/// nested values from the input buffer. Unknown keys are skipped.
///
/// Keys: `id` (integer, or a string in any FLUID form), `userid`,
/// `username`, `bank`/`project`/`queue` (else `jobspec.attributes.system.*`),
/// `t_submit`, `t_run`, `t_inactive`, `nnodes`/`ncores`/`ngpus` (else
/// derived from `R`), `requested_duration`/`duration` (else
/// `jobspec.attributes.system.duration`), `ranks`, `R`, `jobspec`.
#[derive(Debug, Default, Deserialize)]
pub struct JobInput<'a> {
    /// Job id.
    #[serde(default)]
    pub id: Option<IdField>,
    /// Submitting uid.
    #[serde(default)]
    pub userid: Option<f64>,
    /// User name.
    #[serde(default, borrow)]
    pub username: Option<Cow<'a, str>>,
    /// Bank.
    #[serde(default, borrow)]
    pub bank: Option<Cow<'a, str>>,
    /// Project.
    #[serde(default, borrow)]
    pub project: Option<Cow<'a, str>>,
    /// Queue.
    #[serde(default, borrow)]
    pub queue: Option<Cow<'a, str>>,
    /// Submit time.
    #[serde(default)]
    pub t_submit: Option<f64>,
    /// Run time (absent or 0: never ran).
    #[serde(default)]
    pub t_run: Option<f64>,
    /// Inactive time.
    #[serde(default)]
    pub t_inactive: Option<f64>,
    /// Nodes.
    #[serde(default)]
    pub nnodes: Option<f64>,
    /// Cores.
    #[serde(default)]
    pub ncores: Option<f64>,
    /// GPUs.
    #[serde(default)]
    pub ngpus: Option<f64>,
    /// Requested duration (job-list's name).
    #[serde(default)]
    pub duration: Option<f64>,
    /// Requested duration (fluxacct's name).
    #[serde(default)]
    pub requested_duration: Option<f64>,
    /// Ranks idset.
    #[serde(default, borrow)]
    pub ranks: Option<Cow<'a, str>>,
    /// RFC 20 R.
    #[serde(default, borrow, rename = "R")]
    pub r: Option<Embedded<'a>>,
    /// Jobspec.
    #[serde(default, borrow)]
    pub jobspec: Option<Embedded<'a>>,
    /// `R`'s expiration as job-list reports it (with `resource-update`
    /// events applied), any JSON value: not checked; the live source
    /// compares it with the expiration of the `R` it read.
    #[serde(default, borrow)]
    pub expiration: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<IdField>,
}

/// Why a record was not recorded: its id when readable, and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The job id, if the record had a readable one.
    pub id: Option<u64>,
    /// The rule broken, e.g. `t_inactive 5 is before t_run 7`.
    pub reason: String,
}

impl Rejection {
    fn new(id: Option<u64>, reason: impl Into<String>) -> Rejection {
        Rejection { id, reason: reason.into() }
    }
}

/// Parses one JSON job object. A record that is not a JSON object of the
/// right types is a [`Rejection`] (with its id if one can be read).
pub fn parse(text: &[u8]) -> Result<JobInput<'_>, Rejection> {
    // Checked as UTF-8 once here, so that serde_json does not check each
    // string again.
    match std::str::from_utf8(text) {
        Ok(s) => parse_str(s),
        Err(_) => rejection(text, serde_json::from_slice::<JobInput<'_>>(text)),
    }
}

/// [`parse`] of text.
pub fn parse_str(text: &str) -> Result<JobInput<'_>, Rejection> {
    rejection(text.as_bytes(), serde_json::from_str::<JobInput<'_>>(text))
}

/// The rejection of a record serde_json could not read.
fn rejection<'a>(text: &[u8], parsed: Result<JobInput<'a>, serde_json::Error>) -> Result<JobInput<'a>, Rejection> {
    match parsed {
        Ok(j) => Ok(j),
        Err(e) => {
            let id = match serde_json::from_slice::<IdOnly>(text) {
                Ok(IdOnly { id: Some(IdField::Ok(id)) }) => Some(id),
                _ => None,
            };
            let what = if e.is_syntax() || e.is_eof() { "invalid JSON" } else { "invalid job record" };
            Err(Rejection::new(id, format!("{what}: {e}")))
        }
    }
}

#[derive(Deserialize, Default)]
struct Spec<'a> {
    #[serde(default, borrow)]
    attributes: Option<SpecAttributes<'a>>,
}

#[derive(Deserialize, Default)]
struct SpecAttributes<'a> {
    #[serde(default, borrow)]
    system: Option<SpecSystem<'a>>,
}

#[derive(Deserialize, Default)]
struct SpecSystem<'a> {
    #[serde(default, borrow)]
    bank: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    project: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    queue: Option<Cow<'a, str>>,
    #[serde(default)]
    duration: Option<f64>,
}

/// Checks one record against the ingest rules (docs/ingest.md) at ingest
/// time `now` (epoch seconds) and builds its `JobRecorded` payload.
pub fn check(job: &JobInput<'_>, now: f64) -> Result<JobRecorded, Rejection> {
    let id = match &job.id {
        None => return Err(Rejection::new(None, "missing id")),
        Some(IdField::Bad(why)) => return Err(Rejection::new(None, why.clone())),
        Some(IdField::Ok(id)) => *id,
    };
    let fail = |reason: String| Rejection::new(Some(id), reason);
    let userid = job.userid.ok_or_else(|| fail("missing userid".into()))?;
    if !(userid.fract() == 0.0 && (0.0..=limits::MAX_UID).contains(&userid)) {
        return Err(fail(format!("userid {userid} is not a valid uid (0 to {})", limits::MAX_UID)));
    }
    let t_inactive = job.t_inactive.ok_or_else(|| fail("missing t_inactive".into()))?;
    let t_run = job.t_run.unwrap_or(0.0);
    let t_submit = job.t_submit.unwrap_or(t_run);
    let latest = now + limits::FUTURE_SLACK;
    for (k, v) in [("t_submit", t_submit), ("t_run", t_run), ("t_inactive", t_inactive)] {
        if !v.is_finite() || v < 0.0 {
            return Err(fail(format!("{k} {v} is negative")));
        }
        if v > latest {
            return Err(fail(format!("{k} {v} is more than a day after the ingest time {now:.0}")));
        }
        if v < limits::MIN_TIME && (k == "t_inactive" || v != 0.0) {
            return Err(fail(format!(
                "{k} {v} is before 2000-01-01 ({}), earlier than any Flux job",
                limits::MIN_TIME
            )));
        }
    }
    if t_run > 0.0 && t_inactive - t_run > limits::MAX_DURATION {
        return Err(fail(format!(
            "ran {} s (t_run {t_run} to t_inactive {t_inactive}), more than a century",
            t_inactive - t_run
        )));
    }
    if t_run > 0.0 {
        if t_submit > t_run {
            return Err(fail(format!("t_submit {t_submit} is after t_run {t_run}")));
        }
        if t_run > t_inactive {
            return Err(fail(format!("t_inactive {t_inactive} is before t_run {t_run}")));
        }
    } else if t_submit > t_inactive {
        return Err(fail(format!("t_inactive {t_inactive} is before t_submit {t_submit}")));
    }
    let name = |k: &str, v: &Option<Cow<'_, str>>| -> Result<(), Rejection> {
        match v {
            Some(s) if s.len() > limits::MAX_NAME => {
                Err(fail(format!("{k} is longer than {} bytes", limits::MAX_NAME)))
            }
            _ => Ok(()),
        }
    };
    name("username", &job.username)?;
    name("bank", &job.bank)?;
    name("project", &job.project)?;
    name("queue", &job.queue)?;
    if job.ranks.as_ref().is_some_and(|r| r.len() > limits::MAX_BLOB) {
        return Err(fail(format!("ranks is longer than {} bytes", limits::MAX_BLOB)));
    }
    let spec_text = match job.jobspec {
        Some(e) => e.text("jobspec").map_err(fail)?,
        None => None,
    };
    let spec: Spec<'_> = match &spec_text {
        Some(t) => serde_json::from_str(t).map_err(|e| fail(format!("jobspec is not valid: {e}")))?,
        None => Spec::default(),
    };
    let system = spec.attributes.and_then(|a| a.system).unwrap_or_default();
    let pick = |k: &str, own: &Option<Cow<'_, str>>, sys: Option<Cow<'_, str>>| -> Result<String, Rejection> {
        let v = own.as_ref().map(|s| s.to_string()).or(sys.map(Cow::into_owned)).unwrap_or_default();
        if v.len() > limits::MAX_NAME {
            return Err(fail(format!("{k} is longer than {} bytes", limits::MAX_NAME)));
        }
        Ok(v)
    };
    let bank = pick("bank", &job.bank, system.bank)?;
    let project = pick("project", &job.project, system.project)?;
    let queue = pick("queue", &job.queue, system.queue)?;
    let r_text = match job.r {
        Some(e) => e.text("R").map_err(fail)?,
        None => None,
    };
    let (r, from_r) = match &r_text {
        Some(t) => {
            let (canon, counts) = canonical_r(t).map_err(fail)?;
            (Some(canon), Some(counts))
        }
        None => (None, None),
    };
    let count = |k: &str, given: Option<f64>, derived: Option<i64>, max: f64| -> Result<i64, Rejection> {
        let v = match (given, derived) {
            (Some(g), d) => {
                if !(g.fract() == 0.0 && (0.0..=max).contains(&g)) {
                    return Err(fail(format!("{k} {g} is not an integer from 0 to {max}")));
                }
                let g = g as i64;
                if let Some(d) = d {
                    if d != g {
                        return Err(fail(format!("{k} {g} does not match R ({d})")));
                    }
                }
                g
            }
            (None, Some(d)) => d,
            (None, None) => 0,
        };
        if v as f64 > max {
            return Err(fail(format!("{k} {v} (from R) is more than {max}")));
        }
        Ok(v)
    };
    let nnodes = count("nnodes", job.nnodes, from_r.map(|c| c.nnodes), limits::MAX_NNODES)?;
    let ncores = count("ncores", job.ncores, from_r.map(|c| c.ncores), limits::MAX_NCORES)?;
    let ngpus = count("ngpus", job.ngpus, from_r.map(|c| c.ngpus), limits::MAX_NGPUS)?;
    let requested_duration = job.requested_duration.or(job.duration).or(system.duration).unwrap_or(0.0);
    if !(requested_duration.is_finite() && requested_duration >= 0.0) {
        return Err(fail(format!("duration {requested_duration} is negative")));
    }
    if requested_duration > limits::MAX_DURATION {
        return Err(fail(format!("duration {requested_duration} is more than a century ({} s)", limits::MAX_DURATION)));
    }
    Ok(JobRecorded {
        id,
        userid: userid as i64,
        username: job.username.as_ref().filter(|s| !s.is_empty()).map(|s| s.to_string()),
        bank,
        project,
        queue,
        t_submit,
        t_run,
        t_inactive,
        nnodes,
        ncores,
        ngpus,
        requested_duration,
        ranks: job.ranks.as_ref().map(|s| s.to_string()),
        r,
    })
}

/// A JSON value borrowed from its text, for canonicalizing `R` without a
/// `serde_json::Value` (whose maps and strings are all owned).
#[derive(Debug)]
enum J<'a> {
    Null,
    Bool(bool),
    U(u64),
    I(i64),
    F(f64),
    S(Cow<'a, str>),
    A(Vec<J<'a>>),
    O(Vec<(Cow<'a, str>, J<'a>)>),
}

struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'a>, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for J<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J<'a>, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = J<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E: de::Error>(self) -> Result<J<'a>, E> {
                Ok(J::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<J<'a>, E> {
                Ok(J::Bool(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<J<'a>, E> {
                Ok(J::U(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<J<'a>, E> {
                Ok(J::I(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<J<'a>, E> {
                Ok(J::F(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<J<'a>, E> {
                Ok(J::S(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<J<'a>, E> {
                Ok(J::S(Cow::Owned(s.to_string())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<J<'a>, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(J::A(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<J<'a>, A::Error> {
                let mut v: Vec<(Cow<'a, str>, J<'a>)> = Vec::new();
                while let Some(k) = a.next_key::<Key<'a>>()? {
                    let x = a.next_value()?;
                    v.push((k.0, x));
                }
                // A serde_json::Value map: keys sorted bytewise, the last
                // of equal keys kept.
                v.sort_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
                let mut out: Vec<(Cow<'a, str>, J<'a>)> = Vec::with_capacity(v.len());
                for e in v {
                    match out.last_mut() {
                        Some(last) if last.0 == e.0 => *last = e,
                        _ => out.push(e),
                    }
                }
                Ok(J::O(out))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Serialize for J<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::U(u) => s.serialize_u64(*u),
            J::I(i) => s.serialize_i64(*i),
            J::F(f) => s.serialize_f64(*f),
            J::S(t) => s.serialize_str(t),
            J::A(v) => {
                let mut q = s.serialize_seq(Some(v.len()))?;
                for x in v {
                    q.serialize_element(x)?;
                }
                q.end()
            }
            J::O(v) => {
                let mut m = s.serialize_map(Some(v.len()))?;
                for (k, x) in v {
                    m.serialize_entry(k.as_ref(), x)?;
                }
                m.end()
            }
        }
    }
}

impl<'a> J<'a> {
    fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::O(v) => v.binary_search_by(|(k, _)| k.as_bytes().cmp(key.as_bytes())).ok().map(|i| &v[i].1),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            J::S(s) => Some(s),
            _ => None,
        }
    }
}

/// Counts nodes, cores and GPUs of a parsed `R` (`execution.R_lite[]`):
/// each entry's rank idset gives its nodes, and its `children.core` /
/// `children.gpu` idsets apply to each of those ranks.
fn counts_of(r: &J<'_>) -> Result<Counts, String> {
    if !matches!(r, J::O(_)) {
        return Err("R is not a JSON object".into());
    }
    if r.get("version").is_none() {
        return Err("R has no version".into());
    }
    let Some(J::A(lite)) = r.get("execution").and_then(|e| e.get("R_lite")) else {
        return Err("R has no execution.R_lite list".into());
    };
    let mut c = Counts::default();
    for entry in lite {
        let ranks = entry
            .get("rank")
            .and_then(J::as_str)
            .and_then(idset_count)
            .ok_or_else(|| "R_lite entry has no valid rank idset".to_string())?;
        let child = |k: &str| -> Result<u64, String> {
            match entry.get("children").and_then(|c| c.get(k)) {
                None => Ok(0),
                Some(v) => {
                    v.as_str().and_then(idset_count).ok_or_else(|| format!("R_lite entry has an invalid {k} idset"))
                }
            }
        };
        let add = |acc: i64, n: u64| -> Result<i64, String> {
            i64::try_from(n).ok().and_then(|n| acc.checked_add(n)).ok_or_else(|| "R counts overflow".to_string())
        };
        let mul = |a: u64, b: u64| a.checked_mul(b).ok_or_else(|| "R counts overflow".to_string());
        c.nnodes = add(c.nnodes, ranks)?;
        c.ncores = add(c.ncores, mul(ranks, child("core")?)?)?;
        c.ngpus = add(c.ngpus, mul(ranks, child("gpu")?)?)?;
    }
    Ok(c)
}

/// The canonical text of an `R` (what a `serde_json::Value` of it encodes
/// to: keys sorted, no whitespace) and its resource counts, parsed once
/// into a borrowed tree.
pub fn canonical_r(text: &str) -> Result<(CanonicalJson, Counts), String> {
    if let Some((canon, counts)) = crate::canon::fast_canonical_r(text) {
        return Ok((CanonicalJson::from_canonicalizer_output(canon), counts));
    }
    canonical_r_tree(text)
}

/// [`canonical_r`] through serde's borrowed tree: every `R`, and the exact
/// error for one that is not valid.
pub fn canonical_r_tree(text: &str) -> Result<(CanonicalJson, Counts), String> {
    let tree: J<'_> = serde_json::from_str(text).map_err(|e| format!("R is not valid JSON: {e}"))?;
    let counts = counts_of(&tree)?;
    let mut out = Vec::with_capacity(text.len());
    serde_json::to_writer(&mut out, &tree).map_err(|e| format!("R cannot be encoded: {e}"))?;
    // serde_json writes UTF-8.
    let s = String::from_utf8(out).map_err(|e| format!("R cannot be encoded: {e}"))?;
    let canon = CanonicalJson::from_canonical_text(s).ok_or("R cannot be encoded")?;
    Ok((canon, counts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const NOW: f64 = 1_800_000_000.0;

    fn rec(v: Value) -> Result<JobRecorded, Rejection> {
        let text = v.to_string();
        check(&parse(text.as_bytes())?, NOW)
    }

    #[test]
    fn r_objects_counts_and_canonical_text() {
        let (c, n) = canonical_r(
            r#"{"version":1,"execution":{"R_lite":[
            {"rank":"0-1","children":{"gpu":"0","core":"0-3"}},
            {"rank":"5","children":{"core":"0"}}]}}"#,
        )
        .unwrap();
        assert_eq!(n, Counts { nnodes: 3, ncores: 9, ngpus: 2 });
        assert_eq!(
            c.as_str(),
            r#"{"execution":{"R_lite":[{"children":{"core":"0-3","gpu":"0"},"rank":"0-1"},{"children":{"core":"0"},"rank":"5"}]},"version":1}"#
        );
        assert!(canonical_r(r#"{"execution":{}}"#).is_err());
        assert!(canonical_r(r#"[1]"#).is_err());
    }

    #[test]
    fn canonical_r_is_what_a_value_encodes_to() {
        for t in [
            r#"{"version":1,"execution":{"R_lite":[{"rank":"0","children":{"core":"0"}}],"starttime":1.5e9,"expiration":0,"nodelist":["n\u00e9[0-3]","a\"b"]},"b":-3,"a":[null,true,false,1.25,-0.0,1e300,18446744073709551615],"a":2}"#,
            r#"{"version":1,"execution":{"R_lite":[]},"z":{"y":{"x":{}}},"\u0001":"\t"}"#,
        ] {
            let (c, _) = canonical_r(t).unwrap();
            let v: Value = serde_json::from_str(t).unwrap();
            assert_eq!(c.as_str(), v.to_string());
            assert_eq!(c, CanonicalJson::from_value(&v));
        }
    }

    #[test]
    fn f58_shows_the_florin_only_under_a_utf8_locale() {
        assert_eq!(show_id(0, IdForm::F58 { utf8: true }), "ƒ1");
        assert_eq!(show_id(57, IdForm::F58 { utf8: true }), "ƒz");
        assert_eq!(show_id(58, IdForm::F58 { utf8: true }), "ƒ21");
        assert_eq!(show_id(58, IdForm::F58 { utf8: false }), "f21");
        assert_eq!(show_id(58, IdForm::STORED), "ƒ21");
    }

    #[test]
    fn f58plain_keeps_its_f() {
        assert_eq!(show_id(58, IdForm::F58Plain), "f21");
        assert_eq!(show_id(u64::MAX, IdForm::F58Plain), "fjpXCZedGfVQ");
    }

    #[test]
    fn every_form_is_shown_as_flux_shows_it() {
        // flux-core's t2201 and `flux job id --to=…` of 16.
        assert_eq!(show_id(0, IdForm::Words), "academy-academy-academy--academy-academy-academy");
        assert_eq!(show_id(u64::MAX, IdForm::Words), "natural-analyze-verbal--natural-analyze-verbal");
        assert_eq!(show_id(16, IdForm::Dec), "16");
        assert_eq!(show_id(16, IdForm::Hex), "0x10");
        assert_eq!(show_id(16, IdForm::Dothex), "0000.0000.0000.0010");
        assert_eq!(show_id(16, IdForm::Kvs), "job.0000.0000.0000.0010");
    }

    #[test]
    fn every_shown_form_parses_back() {
        let forms = [
            IdForm::Dec,
            IdForm::Hex,
            IdForm::Dothex,
            IdForm::Kvs,
            IdForm::F58 { utf8: true },
            IdForm::F58 { utf8: false },
            IdForm::F58Plain,
            IdForm::Words,
        ];
        for id in [0u64, 1, 102, 0x2a_0f00_0000_0001, 1234567890123, u64::MAX] {
            for form in forms {
                assert_eq!(parse_jobid(&show_id(id, form)), Some(id), "{form:?} of {id}");
            }
        }
    }

    #[test]
    fn every_fluid_form_parses() {
        let id: u64 = 0x2a_0f00_0000_0001;
        let words = mnemonic::to_string(id.to_le_bytes());
        for s in [
            id.to_string(),
            format!("{id:#x}"),
            "002a.0f00.0000.0001".to_string(),
            "job.002a.0f00.0000.0001".to_string(),
            "ƒ2bSenkrsMz".to_string(),
            words,
        ] {
            assert_eq!(parse_jobid(&s), Some(id), "{s}");
        }
        // flux-core's t2201: the smallest and largest ids in words.
        assert_eq!(parse_jobid("academy-academy-academy--academy-academy-academy"), Some(0));
        assert_eq!(parse_jobid("natural-analyze-verbal--natural-analyze-verbal"), Some(u64::MAX));
        assert_eq!(parse_jobid("foo-bar-baz--qux-quux-corge"), None);
        assert_eq!(parse_jobid("fjpXCZedGfVQ"), Some(u64::MAX));
        assert_eq!(parse_jobid("f1"), Some(0));
        assert_eq!(parse_jobid("0x10"), Some(16));
        assert_eq!(parse_jobid("0000.0000.0000.0010"), Some(16));
        assert_eq!(parse_jobid("job.0000.0000.0000.0010"), Some(16));
        assert_eq!(parse_jobid("nope"), None);
    }

    #[test]
    fn job_objects() {
        let j = rec(json!({
            "id": 7, "userid": 1002, "t_submit": 1_700_000_001.0, "t_run": 1_700_000_002.0, "t_inactive": 1_700_000_012.0, "state": "INACTIVE",
            "jobspec": {"attributes": {"system": {"bank": "A", "project": "p", "duration": 60.0}}},
            "R": {"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0-1"}}]}}
        }))
        .unwrap();
        assert_eq!((j.bank.as_str(), j.project.as_str(), j.nnodes, j.ncores), ("A", "p", 2, 4));
        assert_eq!(j.requested_duration, 60.0);
        // R and jobspec given as JSON strings, as old archives store them.
        let j2 = rec(json!({
            "id": "ƒ8", "userid": 1002, "t_run": 1_700_000_002.0, "t_inactive": 1_700_000_012.0,
            "jobspec": "{\"attributes\": {\"system\": {\"bank\": \"A\"}}}",
            "R": "{\"version\":1,\"execution\":{\"R_lite\":[{\"rank\":\"0-1\",\"children\":{\"core\":\"0-1\"}}]}}"
        }))
        .unwrap();
        assert_eq!(j2.r, j.r);
        assert_eq!(j2.id, 7);
        assert_eq!(rec(json!({"id": 7})).unwrap_err(), Rejection::new(Some(7), "missing userid"));
        assert_eq!(rec(json!({"userid": 7})).unwrap_err(), Rejection::new(None, "missing id"));
        let e = rec(json!({"id": 9, "userid": "x"})).unwrap_err();
        assert_eq!(e.id, Some(9));
        assert!(e.reason.starts_with("invalid job record: invalid type: string"), "{e:?}");
        let e = parse(b"{oops").unwrap_err();
        assert!(e.reason.starts_with("invalid JSON: "), "{e:?}");
    }

    #[test]
    fn absurd_but_well_typed_claims_are_rejected_with_the_rule_named() {
        let ok = json!({"id": 1, "userid": 5, "t_submit": 1.7e9, "t_run": 1.7e9 + 10.0, "t_inactive": 1.7e9 + 70.0});
        rec(ok.clone()).unwrap();
        let with = |k: &str, v: Value| {
            let mut j = ok.clone();
            j[k] = v;
            rec(j).map(|_| ()).map_err(|e| e.reason)
        };
        // The drill's record: submitted at 0, ran from 1 s after the epoch.
        let mut drill = ok.clone();
        drill["t_submit"] = json!(0);
        drill["t_run"] = json!(1);
        drill["nnodes"] = json!(1_000_000);
        let e = rec(drill).unwrap_err();
        assert_eq!(e.id, Some(1));
        assert!(e.reason.starts_with("t_run 1 is before 2000-01-01"), "{e:?}");
        assert!(with("t_inactive", json!(5)).unwrap_err().starts_with("t_inactive 5 is before 2000-01-01"));
        assert!(with("nnodes", json!(1_000_000)).unwrap_err().contains("is not an integer from 0 to 100000"));
        assert!(with("ncores", json!(2e8)).unwrap_err().contains("ncores 200000000 is not an integer"));
        assert!(with("ngpus", json!(2e7)).unwrap_err().contains("ngpus 20000000 is not an integer"));
        let e = with("requested_duration", json!(f64::MAX)).unwrap_err();
        assert!(e.contains("is more than a century"), "{e}");
        let e = with("duration", json!(4e9)).unwrap_err();
        assert!(e.contains("is more than a century"), "{e}");
        let mut long = ok.clone();
        long["t_submit"] = json!(1e9);
        long["t_run"] = json!(1e9);
        long["t_inactive"] = json!(1e9 + 101.0 * 365.25 * 86_400.0);
        assert!(check(&parse(long.to_string().as_bytes()).unwrap(), 5e9)
            .unwrap_err()
            .reason
            .contains("more than a century"));
        // Generous for real jobs: a year-long job on 10⁴ nodes with a
        // week's request, never-run and unset t_submit.
        for (k, v) in [("nnodes", json!(10_000)), ("ncores", json!(8_000_000)), ("ngpus", json!(40_000))] {
            with(k, v).unwrap();
        }
        with("requested_duration", json!(7.0 * 86_400.0)).unwrap();
        with("t_submit", json!(0)).unwrap();
        let mut never_ran = ok.clone();
        never_ran["t_run"] = json!(0);
        rec(never_ran).unwrap();
    }
}
