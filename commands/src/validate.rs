//! Input validation shared by commands. Every failure is one line.

use fluxacct_core::events::USERID_UNKNOWN;
use fluxacct_core::limits::INTEGER_MAX;
use projections::model::State;

use crate::error::{Error, Result};

/// Checks a name (bank, user, queue, project, config key): not empty, no
/// control characters, at most 255 bytes. SQL metacharacters are fine:
/// every query binds parameters.
pub fn name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid(format!("{what} name must not be empty")));
    }
    if s.len() > 255 {
        return Err(Error::invalid(format!("{what} name is longer than 255 bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(format!("{what} name must not contain control characters")));
    }
    Ok(())
}

/// Parses an integer option value.
pub fn int(opt: &str, s: &str) -> Result<i64> {
    s.trim().parse::<i64>().map_err(|_| Error::invalid(format!("{opt}: invalid integer value: '{s}'")))
}

/// Parses a non-negative integer option value.
pub fn non_negative(opt: &str, s: &str) -> Result<i64> {
    let v = int(opt, s)?;
    if v < 0 {
        return Err(Error::invalid(format!("{opt}: value must be a non-negative integer, got {v}")));
    }
    Ok(v)
}

/// Parses a limit option value: a non-negative integer no greater than
/// [`INTEGER_MAX`] (which means "unlimited"). A larger value is refused,
/// never silently stored as "unlimited".
pub fn limit(opt: &str, s: &str) -> Result<i64> {
    at_most_max(opt, non_negative(opt, s)?)
}

/// Clap's value parser of every integer limit option (and of the edit
/// commands' integer fields): an integer from -1 (reset) to
/// [`INTEGER_MAX`], or `unlimited` (any case). Anything else is a usage
/// error (clap's message, exit 2), as a malformed or out-of-range value is
/// for any option; whether the command takes `-1` or `unlimited` is its
/// own check.
pub fn limit_arg(s: &str) -> std::result::Result<String, String> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(s.to_string());
    }
    match s.trim().parse::<i128>() {
        Ok(v) if v > INTEGER_MAX as i128 => {
            Err(format!("{v} is above the maximum {INTEGER_MAX} (use -1 or 'unlimited' for no limit)"))
        }
        Ok(v) if v < -1 => Err(format!("{v} is negative (use -1 or 'unlimited' for no limit)")),
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err("not an integer".to_string()),
    }
}

/// Clap's value parser of an integer option: any integer.
pub fn int_arg(s: &str) -> std::result::Result<String, String> {
    int("", s).map(|_| s.to_string()).map_err(|_| "not an integer".to_string())
}

/// Clap's value parser of a non-negative integer option.
pub fn non_negative_arg(s: &str) -> std::result::Result<String, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if v < 0 => Err("must be a non-negative integer".to_string()),
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err("not an integer".to_string()),
    }
}

/// Clap's value parser of a queue's `--charge-factor`: a finite,
/// non-negative number.
pub fn charge_factor_arg(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be a finite, non-negative number".to_string()),
        Err(_) => Err("not a number".to_string()),
    }
}

/// Clap's value parser of a positive integer option (`edit-bank --shares`).
pub fn positive_arg(s: &str) -> std::result::Result<String, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if v <= 0 => Err("must be a positive integer".to_string()),
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err("not an integer".to_string()),
    }
}

/// Clap's value parser of a float option: a finite number.
pub fn float_arg(s: &str) -> std::result::Result<String, String> {
    float("", s).map(|_| s.to_string()).map_err(|_| "not a number".to_string())
}

/// Clap's value parser of a job id option (`-j/--jobid`): any FLUID form
/// ([`fluxacct_ingest::record::parse_jobid`]).
pub fn jobid_arg(s: &str) -> std::result::Result<String, String> {
    match fluxacct_ingest::record::parse_jobid(s) {
        Some(_) => Ok(s.to_string()),
        None => Err("invalid job id (decimal, hex, dothex, kvs or f58)".to_string()),
    }
}

/// Clap's value parser of `--userid`: an integer from 0 to the unknown-uid
/// marker.
pub fn userid_arg(s: &str) -> std::result::Result<String, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if !(0..=USERID_UNKNOWN).contains(&v) => Err(format!("out of range (0 to {USERID_UNKNOWN})")),
        Ok(_) => Ok(s.to_string()),
        Err(_) => Err("not an integer".to_string()),
    }
}

/// Clap's value parser of a duration option ([`duration`]): a malformed
/// duration, or a bare number of weeks over ten years (surely meant as
/// seconds), is a usage error.
pub fn duration_arg(s: &str) -> std::result::Result<String, String> {
    match duration("", s) {
        Ok(_) => Ok(s.to_string()),
        Err(e) => Err(e.to_string().trim_start_matches(": ").to_string()),
    }
}

/// Clap's value parser of `--fairshare`: a number from 0 to 1, or (for the
/// edit commands) `-1`/`unlimited`, the reset.
pub fn fairshare_arg(s: &str) -> std::result::Result<String, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t == "-1" {
        return Ok(s.to_string());
    }
    match t.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(s.to_string()),
        Ok(_) => Err("must be between 0 and 1".to_string()),
        Err(_) => Err("not a number".to_string()),
    }
}

/// Refuses a limit above [`INTEGER_MAX`].
pub fn at_most_max(opt: &str, v: i64) -> Result<i64> {
    if v > INTEGER_MAX {
        return Err(Error::invalid(format!(
            "{opt}: {v} is above the maximum {INTEGER_MAX} (use -1 or 'unlimited' for no limit)"
        )));
    }
    Ok(v)
}

/// Parses a finite float option value.
pub fn float(opt: &str, s: &str) -> Result<f64> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(Error::invalid(format!("{opt}: invalid float value: '{s}'"))),
    }
}

/// Parses a `--userid` value: a non-negative integer below
/// [`USERID_UNKNOWN`] (flux's unknown uid is not a user's).
pub fn userid(s: &str) -> Result<i64> {
    let v = non_negative("--userid", s)?;
    if v == USERID_UNKNOWN {
        return Err(Error::invalid(format!(
            "--userid: {USERID_UNKNOWN} is flux's unknown user id, not a user's; leave --userid out for a user \
             not in the passwd database (uid {})",
            fluxacct_core::events::USERID_NOBODY
        )));
    }
    if v > USERID_UNKNOWN {
        return Err(Error::invalid("--userid: value out of range"));
    }
    Ok(v)
}

/// Parses a `--fairshare` value: a float between 0 and 1 (inclusive).
pub fn fairshare(s: &str) -> Result<f64> {
    let v = float("--fairshare", s)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(Error::invalid("--fairshare: value must be between 0 and 1"));
    }
    Ok(v)
}

/// Checks, in order, that every queue named exists in queue_table; the
/// first missing one is the error.
pub fn queues_exist<'a>(state: &State<'_>, queues: impl IntoIterator<Item = &'a str>) -> Result<()> {
    for q in queues {
        if state.queue(q)?.is_none() {
            return Err(Error::invalid(format!("queue {q} does not exist in queue_table")));
        }
    }
    Ok(())
}

/// Checks, in order, that every project named exists in project_table; the
/// first missing one is the error.
pub fn projects_exist<'a>(state: &State<'_>, projects: impl IntoIterator<Item = &'a str>) -> Result<()> {
    for p in projects {
        if state.project(p)?.is_none() {
            return Err(Error::invalid(format!("project {p} does not exist in project_table")));
        }
    }
    Ok(())
}

/// Appends the `*` project to a project list unless it is already there.
pub fn add_any_project(projects: &mut Vec<String>) {
    if !projects.iter().any(|p| p == "*") {
        projects.push("*".into());
    }
}

/// An edit value for an integer field: `-1` or `unlimited` (any case)
/// resets; other negatives are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditInt {
    /// Reset to the default.
    Reset,
    /// Set to this value.
    Set(i64),
}

/// Parses an edit value (`-1`/`unlimited` = reset).
pub fn edit_int(opt: &str, s: &str, allow_unlimited: bool) -> Result<EditInt> {
    if allow_unlimited && s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(EditInt::Reset);
    }
    match int(opt, s)? {
        -1 => Ok(EditInt::Reset),
        v if v < 0 => {
            Err(Error::invalid(format!("{opt}: value must be a non-negative integer or -1 to reset to default")))
        }
        v => Ok(EditInt::Set(v)),
    }
}

/// Parses an optional edit value for an integer field with [`edit_int`]:
/// absent is `None` (unchanged), a reset is `default`, a value above
/// [`INTEGER_MAX`] is refused ([`at_most_max`]).
pub fn int_field(opt: &str, v: &Option<String>, default: i64, unlimited: bool) -> Result<Option<i64>> {
    match v {
        None => Ok(None),
        Some(s) => match edit_int(opt, s, unlimited)? {
            EditInt::Reset => Ok(Some(default)),
            EditInt::Set(x) => Ok(Some(at_most_max(opt, x)?)),
        },
    }
}

/// Parses a duration: a bare integer is weeks (as in the seeds); otherwise a
/// Flux Standard Duration `<float>[ms|s|m|h|d|w]`. Returns seconds.
pub fn duration(opt: &str, s: &str) -> Result<f64> {
    let t = s.trim();
    let bad = || {
        Error::invalid(format!(
            "{opt}: invalid duration '{s}' (weeks as an integer, or a Flux Standard Duration such as 2w, 30d, 3600s)"
        ))
    };
    bare_weeks_trap(opt, t)?;
    if let Ok(weeks) = t.parse::<u64>() {
        if weeks == 0 {
            return Err(bad());
        }
        return Ok(weeks as f64 * 604800.0);
    }
    projections::usage::parse_fsd(t).ok_or_else(bad)
}

/// Refuses a usage reset period shorter than the half-life (no whole
/// period would count), naming both: `reset_name` and `half_name` are how
/// the caller's input names them.
pub fn reset_not_shorter_than_half_life(reset_name: &str, reset: f64, half_name: &str, half: f64) -> Result<()> {
    if reset < half {
        let secs = |v: f64| format!("{}s", crate::format::py_float(v).trim_end_matches(".0"));
        return Err(Error::invalid(format!(
            "{reset_name} ({}) is shorter than {half_name} ({}): the reset period must be at least one half-life",
            secs(reset),
            secs(half)
        )));
    }
    Ok(())
}

/// Longest duration a bare number (weeks) may give: 10 years.
const MAX_BARE_WEEKS: u64 = 521;

/// Refuses a bare number that, read as weeks, is more than 10 years: it
/// was almost surely meant as seconds (flux-accounting 0.60 reads a bare
/// number as seconds: `604800` would otherwise become 11 000 years). The
/// message says how to write it.
pub fn bare_weeks_trap(opt: &str, s: &str) -> Result<()> {
    let t = s.trim();
    let Ok(n) = t.parse::<u64>() else { return Ok(()) };
    if n <= MAX_BARE_WEEKS {
        return Ok(());
    }
    let as_weeks = if n % 604800 == 0 { format!("{}w", n / 604800) } else { "1w".to_string() };
    Err(Error::invalid(format!(
        "{opt}: a bare number is weeks, and {n} weeks is over 10 years; for {n} seconds write {n}s (or a duration such as {as_weeks})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("bank", "giants").is_ok());
        assert!(name("bank", "a'; DROP TABLE x; --").is_ok());
        assert!(name("bank", "").is_err());
        assert!(name("bank", "a\nb").is_err());
        assert!(name("bank", &"x".repeat(256)).is_err());
        assert!(name("bank", &"x".repeat(255)).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("d", "2").unwrap(), 1209600.0);
        assert_eq!(duration("d", "2w").unwrap(), 1209600.0);
        assert_eq!(duration("d", "30d").unwrap(), 2592000.0);
        assert_eq!(duration("d", "3600s").unwrap(), 3600.0);
        assert_eq!(duration("d", "1.5h").unwrap(), 5400.0);
        assert!(duration("d", "-1d").is_err());
        assert!(duration("d", "abc").is_err());
        assert!(duration("d", "0").is_err());
        assert_eq!(duration("d", "521").unwrap(), 521.0 * 604800.0);
        assert_eq!(duration("d", "604800s").unwrap(), 604800.0);
    }

    #[test]
    fn bare_seconds_are_refused_with_a_hint() {
        let e = duration("--priority-decay-half-life", "604800").unwrap_err().to_string();
        assert_eq!(
            e,
            "--priority-decay-half-life: a bare number is weeks, and 604800 weeks is over 10 years; \
             for 604800 seconds write 604800s (or a duration such as 1w)"
        );
        assert!(duration("d", "522").is_err());
    }

    #[test]
    fn edit_ints() {
        assert_eq!(edit_int("x", "-1", true).unwrap(), EditInt::Reset);
        assert_eq!(edit_int("x", "UNLIMITED", true).unwrap(), EditInt::Reset);
        assert_eq!(edit_int("x", "4", true).unwrap(), EditInt::Set(4));
        assert!(edit_int("x", "-2", true).is_err());
        assert!(edit_int("x", "unlimited", false).is_err());
    }
}
