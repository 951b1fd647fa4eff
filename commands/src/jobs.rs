//! Job records as they come from Flux: idsets, RFC 20 `R` objects, FLUID
//! job id forms, and the job objects of `flux jobs --json`, job-list and the
//! old job-archive database.

use projections::events::JobRecorded;
use serde_json::Value;

/// The number of ids in an RFC 22 idset string (`"0-3,7"` → 5). `None` if
/// the string is not an idset.
pub fn idset_count(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    if s.is_empty() {
        return Some(0);
    }
    let mut n = 0u64;
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u64 = a.trim().parse().ok()?;
                let b: u64 = b.trim().parse().ok()?;
                if b < a {
                    return None;
                }
                n = n.checked_add(b - a + 1)?;
            }
            None => {
                part.parse::<u64>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

/// Resource counts derived from an RFC 20 `R` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Ranks (nodes).
    pub nnodes: i64,
    /// Cores.
    pub ncores: i64,
    /// GPUs.
    pub ngpus: i64,
}

/// Counts nodes, cores and GPUs of an RFC 20 `R` (`execution.R_lite[]`):
/// each entry's rank idset gives its nodes, and its `children.core` /
/// `children.gpu` idsets apply to each of those ranks. `R` may be an object
/// or a JSON string holding one.
pub fn r_counts(r: &Value) -> Result<Counts, String> {
    let parsed;
    let r = match r {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).map_err(|e| format!("R is not valid JSON: {e}"))?;
            &parsed
        }
        other => other,
    };
    if r.get("version").is_none() {
        return Err("R has no version".into());
    }
    let lite = r
        .get("execution")
        .and_then(|e| e.get("R_lite"))
        .and_then(Value::as_array)
        .ok_or_else(|| "R has no execution.R_lite list".to_string())?;
    let mut c = Counts::default();
    for entry in lite {
        let ranks = entry
            .get("rank")
            .and_then(Value::as_str)
            .and_then(idset_count)
            .ok_or_else(|| "R_lite entry has no valid rank idset".to_string())? as i64;
        let child = |k: &str| -> Result<i64, String> {
            match entry.get("children").and_then(|c| c.get(k)) {
                None => Ok(0),
                Some(v) => v
                    .as_str()
                    .and_then(idset_count)
                    .map(|n| n as i64)
                    .ok_or_else(|| format!("R_lite entry has an invalid {k} idset")),
            }
        };
        c.nnodes += ranks;
        c.ncores += ranks * child("core")?;
        c.ngpus += ranks * child("gpu")?;
    }
    Ok(c)
}

const F58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A job id in flux's f58 form (`ƒ` + base58).
pub fn f58(id: u64) -> String {
    let mut digits = Vec::new();
    let mut x = id;
    loop {
        digits.push(F58[(x % 58) as usize] as char);
        x /= 58;
        if x == 0 {
            break;
        }
    }
    let mut s = String::from("ƒ");
    s.extend(digits.iter().rev());
    s
}

/// A job id in f58 form as flux prints it: `ƒ` under a UTF-8 locale,
/// plain `f` otherwise.
pub fn f58_in(id: u64, utf8: bool) -> String {
    let s = f58(id);
    if utf8 {
        s
    } else {
        format!("f{}", s.strip_prefix('ƒ').unwrap_or(&s))
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

fn num(job: &Value, key: &str) -> Result<Option<f64>, String> {
    match job.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| format!("{key} is not a number")),
    }
}

fn int(job: &Value, key: &str) -> Result<Option<i64>, String> {
    match job.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(i) => Ok(Some(i)),
            None => match v.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => Ok(Some(f as i64)),
                _ => Err(format!("{key} is not an integer")),
            },
        },
    }
}

fn text(job: &Value, key: &str) -> Result<Option<String>, String> {
    match job.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} is not a string")),
    }
}

/// A JSON value (`jobspec`, `R`) given as an object or as a JSON string.
/// Absent, null and the empty string are `None`; a string that does not
/// parse is the error `<key> is not valid JSON: ...`.
fn embedded_json(job: &Value, key: &str) -> Result<Option<Value>, String> {
    match job.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => {
            serde_json::from_str(s).map(Some).map_err(|e| format!("{key} is not valid JSON: {e}"))
        }
        Some(v) => Ok(Some(v.clone())),
    }
}

/// Converts one job object into a `JobRecorded` event payload.
///
/// Accepted keys: `id` (integer, or a string in any FLUID form), `userid`,
/// `username`, `bank`/`project`/`queue` (else `jobspec.attributes.system.*`),
/// `t_submit`, `t_run` (0 if absent), `t_inactive`, `nnodes`/`ncores`/`ngpus`
/// (else derived from `R`), `duration`/`requested_duration` (else
/// `jobspec.attributes.system.duration`), `ranks`, `R`, `jobspec`.
/// `id`, `userid` and `t_inactive` are required.
pub fn job_from_json(job: &Value) -> Result<JobRecorded, String> {
    if !job.is_object() {
        return Err("a job record must be a JSON object".into());
    }
    let id = match job.get("id") {
        Some(Value::Number(n)) => n.as_u64().ok_or("id is not a non-negative integer")?,
        Some(Value::String(s)) => parse_jobid(s).ok_or_else(|| format!("id {s:?} is not a job id"))?,
        _ => return Err("missing id".into()),
    };
    let idt = |e: String| format!("job {id}: {e}");
    let userid = int(job, "userid").map_err(idt)?.ok_or_else(|| idt("missing userid".into()))?;
    let t_inactive = num(job, "t_inactive").map_err(idt)?.ok_or_else(|| idt("missing t_inactive".into()))?;
    let t_run = num(job, "t_run").map_err(idt)?.unwrap_or(0.0);
    let t_submit = num(job, "t_submit").map_err(idt)?.unwrap_or(t_run);
    let spec = embedded_json(job, "jobspec").map_err(idt)?;
    let system = spec.as_ref().and_then(|s| s.get("attributes")).and_then(|a| a.get("system"));
    let sys_text = |k: &str| system.and_then(|s| s.get(k)).and_then(Value::as_str).map(str::to_string);
    let bank = text(job, "bank").map_err(idt)?.or_else(|| sys_text("bank")).unwrap_or_default();
    let project = text(job, "project").map_err(idt)?.or_else(|| sys_text("project")).unwrap_or_default();
    let queue = text(job, "queue").map_err(idt)?.or_else(|| sys_text("queue")).unwrap_or_default();
    let r = embedded_json(job, "R").map_err(idt)?;
    let counts = match &r {
        Some(rv) => Some(r_counts(rv).map_err(idt)?),
        None => None,
    };
    let nnodes = int(job, "nnodes").map_err(idt)?.or(counts.map(|c| c.nnodes)).unwrap_or(0);
    let ncores = int(job, "ncores").map_err(idt)?.or(counts.map(|c| c.ncores)).unwrap_or(0);
    let ngpus = int(job, "ngpus").map_err(idt)?.or(counts.map(|c| c.ngpus)).unwrap_or(0);
    if nnodes < 0 || ncores < 0 || ngpus < 0 {
        return Err(idt("negative resource count".into()));
    }
    let requested_duration = match num(job, "requested_duration").map_err(idt)? {
        Some(d) => d,
        None => match num(job, "duration").map_err(idt)? {
            Some(d) => d,
            None => system.and_then(|s| s.get("duration")).and_then(Value::as_f64).unwrap_or(0.0),
        },
    };
    for (k, v) in
        [("t_submit", t_submit), ("t_run", t_run), ("t_inactive", t_inactive), ("duration", requested_duration)]
    {
        if !v.is_finite() {
            return Err(idt(format!("{k} is not finite")));
        }
    }
    Ok(JobRecorded {
        id,
        userid,
        username: text(job, "username").map_err(idt)?.filter(|s| !s.is_empty()),
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
        ranks: text(job, "ranks").map_err(idt)?,
        r,
    })
}

/// Splits an input document into job objects, each with the position used
/// in error messages (`line N`, or `job N` inside a `{"jobs": [...]}`
/// document). A line that is not JSON becomes an `Err` in place.
pub fn split_input(text: &str) -> Vec<(String, Result<Value, String>)> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        if let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(trimmed) {
            if let Some(Value::Array(jobs)) = doc.get("jobs") {
                return jobs.iter().enumerate().map(|(i, j)| (format!("job {}", i + 1), Ok(j.clone()))).collect();
            }
        }
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v = serde_json::from_str::<Value>(l).map_err(|e| format!("invalid JSON: {e}"));
            (format!("line {}", i + 1), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn idsets() {
        assert_eq!(idset_count("0"), Some(1));
        assert_eq!(idset_count("0-3,7"), Some(5));
        assert_eq!(idset_count("[1-2]"), Some(2));
        assert_eq!(idset_count(""), Some(0));
        assert_eq!(idset_count("3-1"), None);
        assert_eq!(idset_count("x"), None);
    }

    #[test]
    fn r_objects() {
        let r = json!({"version":1,"execution":{"R_lite":[
            {"rank":"0-1","children":{"core":"0-3","gpu":"0"}},
            {"rank":"5","children":{"core":"0"}}]}});
        assert_eq!(r_counts(&r).unwrap(), Counts { nnodes: 3, ncores: 9, ngpus: 2 });
        let s =
            Value::String(r#"{"version":1,"execution": {"R_lite":[{"rank":"0","children": {"core": "0"}}]}}"#.into());
        assert_eq!(r_counts(&s).unwrap(), Counts { nnodes: 1, ncores: 1, ngpus: 0 });
        assert!(r_counts(&json!({"execution":{}})).is_err());
    }

    #[test]
    fn f58_round_trip() {
        assert_eq!(f58(0), "ƒ1");
        assert_eq!(f58(57), "ƒz");
        assert_eq!(f58(58), "ƒ21");
        assert_eq!(f58_in(58, true), "ƒ21");
        assert_eq!(f58_in(58, false), "f21");
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
            f58(id),
            f58_in(id, false),
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
        assert_eq!(f58_in(u64::MAX, false), "fjpXCZedGfVQ");
        for id in [1u64, 102, 1234567890123, u64::MAX] {
            assert_eq!(parse_jobid(&f58(id)), Some(id));
        }
        assert_eq!(parse_jobid("0x10"), Some(16));
        assert_eq!(parse_jobid("0000.0000.0000.0010"), Some(16));
        assert_eq!(parse_jobid("job.0000.0000.0000.0010"), Some(16));
        assert_eq!(parse_jobid("nope"), None);
    }

    #[test]
    fn job_objects() {
        let j = job_from_json(&json!({
            "id": 7, "userid": 1002, "t_submit": 1.0, "t_run": 2.0, "t_inactive": 12.0,
            "jobspec": {"attributes": {"system": {"bank": "A", "project": "p", "duration": 60.0}}},
            "R": {"version":1,"execution":{"R_lite":[{"rank":"0-1","children":{"core":"0-1"}}]}}
        }))
        .unwrap();
        assert_eq!((j.bank.as_str(), j.project.as_str(), j.nnodes, j.ncores), ("A", "p", 2, 4));
        assert_eq!(j.requested_duration, 60.0);
        assert_eq!(job_from_json(&json!({"id": 7})).unwrap_err(), "job 7: missing userid");
        assert_eq!(job_from_json(&json!({"userid": 7})).unwrap_err(), "missing id");
        let d = split_input("{\"jobs\": [{\"id\": 1}, {\"id\": 2}]}");
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].0, "job 2");
        let l = split_input("{\"id\": 1}\n\n{oops\n");
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].0, "line 3");
        assert!(l[1].1.is_err());
    }
}
