//! Streaming the source's `jobs` rows into the ledger: each row's job
//! record, read straight from the columns, and the batches the reading
//! thread hands to the appending one.

use fluxacct_core::events::JobRecorded;

use super::source as fa;
use crate::error::{Error, Result};

/// The parts of a jobspec the import reads (`attributes.system`).
#[derive(serde::Deserialize, Default)]
struct SpecView<'a> {
    #[serde(default, borrow)]
    attributes: Option<AttrsView<'a>>,
}

#[derive(serde::Deserialize, Default)]
struct AttrsView<'a> {
    #[serde(default, borrow)]
    system: Option<SystemView<'a>>,
}

#[derive(serde::Deserialize, Default)]
struct SystemView<'a> {
    #[serde(default, borrow)]
    bank: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    project: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    queue: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    duration: Option<serde_json::Value>,
}

/// Calls `f` with the job record of every source `jobs` row, in rowid
/// order, streaming; returns the number of rows. The same record as the
/// events module's test-only `job_event` gives (a unit test pins the two
/// together), read straight from the columns: `jobs` is the bulk of a site.
pub fn for_each_job<F>(conn: &rusqlite::Connection, mut f: F) -> Result<u64>
where
    F: FnMut(JobRecorded) -> Result<()>,
{
    use rusqlite::types::ValueRef as V;
    let cols = fa::columns(conn, "jobs")?;
    if cols.is_empty() {
        return Ok(0);
    }
    let opt = |c: &str| if cols.iter().any(|x| x == c) { format!("\"{c}\"") } else { "NULL".to_string() };
    let sql = format!(
        "SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM jobs ORDER BY rowid",
        opt("id"),
        opt("userid"),
        opt("t_submit"),
        opt("t_run"),
        opt("t_inactive"),
        opt("ranks"),
        opt("R"),
        opt("jobspec"),
        opt("project"),
        opt("bank"),
        opt("requested_duration")
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut q = stmt.query([])?;
    let mut n = 0u64;
    while let Some(r) = q.next()? {
        n += 1;
        let txt = |v: V<'_>| -> Option<String> {
            match v {
                V::Text(t) | V::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
                V::Integer(i) => Some(i.to_string()),
                V::Real(x) => Some(x.to_string()),
                V::Null => None,
            }
        };
        let id_cell = r.get_ref(0)?;
        let id_text = txt(id_cell).unwrap_or_default();
        let err = |what: String| Error::invalid(format!("import-db: jobs row {n} (id={id_text}): {what}"));
        let id = match id_cell {
            V::Integer(i) if i >= 0 => i as u64,
            V::Text(_) | V::Blob(_) => fluxacct_ingest::record::parse_jobid(&id_text)
                .ok_or_else(|| err(format!("id {id_text:?} is not a job id")))?,
            V::Null => return Err(err("missing id".into())),
            _ => return Err(err("id is not a non-negative integer".into())),
        };
        let num = |i: usize, name: &str| -> Result<Option<f64>> {
            let v = match r.get_ref(i)? {
                V::Null => return Ok(None),
                V::Integer(x) => x as f64,
                V::Real(x) => x,
                V::Text(t) | V::Blob(t) => std::str::from_utf8(t)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or_else(|| err(format!("job {id}: {name} is not a number")))?,
            };
            if v.is_finite() {
                Ok(Some(v))
            } else {
                Err(err(format!("job {id}: {name} is not finite")))
            }
        };
        let userid = match r.get_ref(1)? {
            V::Null => return Err(err("NULL in column userid".into())),
            V::Integer(x) => x,
            _ => match num(1, "userid")? {
                Some(x) if x.fract() == 0.0 && x.abs() < 9e15 => x as i64,
                _ => return Err(err(format!("job {id}: userid is not an integer"))),
            },
        };
        let t_inactive = num(4, "t_inactive")?.ok_or_else(|| err("NULL in column t_inactive".into()))?;
        let t_run = num(3, "t_run")?.unwrap_or(0.0);
        let t_submit = num(2, "t_submit")?.unwrap_or(t_run);
        let ranks = txt(r.get_ref(5)?);
        let (rv, counts) = match r.get_ref(6)? {
            V::Text(t) | V::Blob(t) if !t.is_empty() => {
                let text = std::str::from_utf8(t).map_err(|e| err(format!("job {id}: R is not valid UTF-8: {e}")))?;
                let (c, n) = fluxacct_ingest::record::canonical_r(text).map_err(|e| err(format!("job {id}: {e}")))?;
                (Some(c), Some(n))
            }
            _ => (None, None),
        };
        let spec_bytes: Option<&[u8]> = match r.get_ref(7)? {
            V::Text(t) | V::Blob(t) if !t.is_empty() => Some(t),
            _ => None,
        };
        let mut spec_value: Option<serde_json::Value> = None;
        let spec: SpecView<'_> = match spec_bytes {
            Some(t) => match serde_json::from_slice(t) {
                Ok(v) => v,
                Err(e) if e.classify() == serde_json::error::Category::Data => {
                    // Valid JSON of another shape: read it as job_from_json does.
                    spec_value = serde_json::from_slice(t).ok();
                    SpecView::default()
                }
                Err(e) => return Err(err(format!("job {id}: jobspec is not valid JSON: {e}"))),
            },
            None => SpecView::default(),
        };
        let mut system = spec.attributes.and_then(|a| a.system).unwrap_or_default();
        if let Some(sys) = spec_value.as_ref().and_then(|v| v.get("attributes")).and_then(|a| a.get("system")) {
            let s = |k: &str| {
                sys.get(k).and_then(serde_json::Value::as_str).map(|x| std::borrow::Cow::Owned(x.to_string()))
            };
            system = SystemView {
                bank: s("bank"),
                project: s("project"),
                queue: s("queue"),
                duration: sys.get("duration").cloned(),
            };
        }
        let pick = |i: usize, from_spec: Option<std::borrow::Cow<'_, str>>| -> Result<String> {
            Ok(match txt(r.get_ref(i)?) {
                Some(s) => s,
                None => from_spec.map(|c| c.into_owned()).unwrap_or_default(),
            })
        };
        let bank = pick(9, system.bank)?;
        let project = pick(8, system.project)?;
        let queue = system.queue.map(|c| c.into_owned()).unwrap_or_default();
        let requested_duration = match num(10, "duration")? {
            Some(d) => d,
            None => system.duration.as_ref().and_then(serde_json::Value::as_f64).unwrap_or(0.0),
        };
        if !requested_duration.is_finite() {
            return Err(err(format!("job {id}: duration is not finite")));
        }
        let c = counts.unwrap_or_default();
        f(JobRecorded {
            id,
            userid,
            username: None,
            bank,
            project,
            queue,
            t_submit,
            t_run,
            t_inactive,
            nnodes: c.nnodes,
            ncores: c.ncores,
            ngpus: c.ngpus,
            requested_duration,
            ranks,
            r: rv,
        })?;
    }
    Ok(n)
}

/// Job records per message from the reading thread.
pub(crate) const JOB_BATCH: usize = 1024;

/// Encoded job records passed from the reading thread to the appending
/// one: flat buffers (a few allocations per batch, each freed by the
/// thread that receives it), the payloads and what binning needs.
#[derive(Default)]
pub(crate) struct JobBatch {
    payloads: Vec<u8>,
    ends: Vec<usize>,
    banks: String,
    bank_ends: Vec<usize>,
    /// userid, t_run, t_inactive, nnodes, ncores, ngpus.
    pub(crate) fields: Vec<(i64, f64, f64, i64, i64, i64)>,
    /// Job ids.
    pub(crate) ids: Vec<u64>,
}

impl JobBatch {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn push(&mut self, job: &JobRecorded) -> Result<()> {
        serde_json::to_writer(&mut self.payloads, job).map_err(|e| Error::io_msg(e.to_string()))?;
        self.ends.push(self.payloads.len());
        self.banks.push_str(&job.bank);
        self.bank_ends.push(self.banks.len());
        self.fields.push((job.userid, job.t_run, job.t_inactive, job.nnodes, job.ncores, job.ngpus));
        self.ids.push(job.id);
        Ok(())
    }

    pub(crate) fn payload(&self, i: usize) -> &[u8] {
        let from = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.payloads[from..self.ends[i]]
    }

    /// What `PendingJob::of` gives for record `i` at `seq`.
    pub(crate) fn pending(
        &self,
        i: usize,
        seq: u64,
        names: &mut projections::usage::BankNames,
    ) -> Option<projections::usage::PendingJob> {
        let from = if i == 0 { 0 } else { self.bank_ends[i - 1] };
        let bank = &self.banks[from..self.bank_ends[i]];
        if bank.is_empty() {
            return None;
        }
        let (userid, t_run, t_inactive, nnodes, ncores, ngpus) = self.fields[i];
        Some(projections::usage::PendingJob {
            seq: seq as i64,
            userid,
            bank: names.get(bank),
            t_run,
            t_inactive,
            nnodes,
            ncores,
            ngpus,
            id: self.ids[i],
            // Only charging reads these, and an import is the first thing
            // in its ledger: there is no allocation to charge yet.
            project: names.get(""),
            queue: names.get(""),
        })
    }
}
