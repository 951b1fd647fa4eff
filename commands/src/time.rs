//! Times on the command line: epoch seconds, or dates, read and shown in
//! one time zone (the local one, `TZ`, for the binary; UTC in unit tests).

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// The time zone dates are read and shown in. The binary uses
/// [`Zone::Local`] (chrono follows `TZ`, then `/etc/localtime`), as
/// flux-accounting does; [`crate::Context::for_tests`] uses [`Zone::Utc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Coordinated Universal Time.
    Utc,
    /// The local time zone of the process.
    Local,
}

impl Zone {
    /// The instant a local wall-clock time names (the earlier one when a
    /// DST fold repeats it; one hour later when a DST gap skips it).
    fn instant_of(self, n: NaiveDateTime) -> Option<i64> {
        match self {
            Zone::Utc => Some(n.and_utc().timestamp_micros()),
            Zone::Local => Local
                .from_local_datetime(&n)
                .earliest()
                .or_else(|| Local.from_local_datetime(&(n + chrono::Duration::hours(1))).earliest())
                .map(|t| t.timestamp_micros()),
        }
    }

    /// Local midnight `days_back` days before the day holding `now_us`, in
    /// seconds since the epoch.
    pub fn midnight_secs(self, now_us: i64, days_back: i64) -> f64 {
        let date = match self {
            Zone::Utc => Utc.timestamp_micros(now_us).single().map(|t| t.date_naive()),
            Zone::Local => Local.timestamp_micros(now_us).single().map(|t| t.date_naive()),
        };
        let Some(date) = date else { return 0.0 };
        let day = date - chrono::Duration::days(days_back);
        self.instant_of(day.and_time(NaiveTime::MIN)).map(|us| (us / 1_000_000) as f64).unwrap_or(0.0)
    }
}

// Times are shown in one form per output type, each made by one helper
// here and nowhere else:
// - tables and text lines: [`table_time`], the local time (the context's
//   zone) with its offset, as flux-accounting shows local times;
// - JSON (and the checkpoint line): [`json_time`], RFC 3339 in UTC with an
//   explicit `+00:00` offset.
// Both carry microseconds, so `log`, `log --json` and `view-job-records
// --rejected` name the same instants.

/// A time (microseconds since the epoch) for a table or a line of text:
/// RFC 3339 in `zone` with microseconds and the numeric offset
/// (`2026-12-04T08:00:00.000000-08:00`).
pub fn table_time(us: i64, zone: Zone) -> String {
    let t = match zone {
        Zone::Utc => Utc.timestamp_micros(us).single().map(|t| t.fixed_offset()),
        Zone::Local => Local.timestamp_micros(us).single().map(|t| t.fixed_offset()),
    };
    match t {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string(),
        None => us.to_string(),
    }
}

/// A time (microseconds since the epoch) for JSON output: RFC 3339 in UTC
/// with microseconds and the offset spelled out
/// (`2026-12-04T16:00:00.000000+00:00`).
pub fn json_time(us: i64) -> String {
    table_time(us, Zone::Utc)
}

/// Formats microseconds since the epoch as flux-accounting's log lines
/// stamp them (`2026-01-01 00:00:00`, Python logging's `%Y-%m-%d %H:%M:%S`)
/// in `zone`.
pub fn format_log_stamp(us: i64, zone: Zone) -> String {
    const FMT: &str = "%Y-%m-%d %H:%M:%S";
    let t = match zone {
        Zone::Utc => Utc.timestamp_micros(us).single().map(|t| t.format(FMT).to_string()),
        Zone::Local => Local.timestamp_micros(us).single().map(|t| t.format(FMT).to_string()),
    };
    t.unwrap_or_else(|| us.to_string())
}

/// Date-and-time layouts accepted (besides RFC 3339), read in the zone.
const DATETIME_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%y %H:%M",
    "%b %d, %Y %I:%M%p",
    "%b %d, %Y %I:%M %p",
    "%b %d, %Y %H:%M:%S",
    "%b %d, %Y %H:%M",
    "%b %d %Y %I:%M%p",
    "%b %d %Y %H:%M:%S",
    "%b %d %Y %H:%M",
    "%d %b %Y %H:%M:%S",
    "%d %b %Y %H:%M",
    "%a %b %d %H:%M:%S %Y",
];

/// Date-only layouts accepted (midnight in the zone).
const DATE_FORMATS: &[&str] = &["%Y-%m-%d", "%m/%d/%y", "%m/%d/%Y", "%b %d, %Y", "%b %d %Y", "%d %b %Y", "%B %d, %Y"];

/// Parses a time given on the command line into microseconds since the
/// epoch. Accepts epoch seconds (`1741284758`, `1741284758.36`), RFC 3339
/// (`2026-03-01T08:00:00Z`, `2026-03-01T08:00:00-08:00`), dates and times
/// in `zone` (`2026-12-04`, `2026-12-04 08:00[:00]`, `12/04/2026`,
/// `Dec 04, 2026`, `Dec 04, 2026 8am`, `Dec 04, 2026 08:30`), `now`, and
/// `now`-relative offsets (`-1h`, `-2d`, `+30m`, in Flux Standard Duration
/// units).
pub fn parse_time_in(s: &str, now_us: i64, zone: Zone) -> Result<i64> {
    let t = s.trim();
    let bad = || {
        Error::invalid(format!(
            "invalid time '{s}': use epoch seconds, a date like 2026-03-01, 2026-03-01 08:00:00 or \
             'Mar 01, 2026 8am', or an offset from now like -1h or -2d"
        ))
    };
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_us);
    }
    if let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) {
        if rest.chars().last().is_some_and(|c| c.is_ascii_alphabetic()) {
            let secs = projections::usage::parse_fsd(rest).ok_or_else(bad)?;
            let delta = (secs * 1e6) as i64;
            return Ok(if t.starts_with('-') { now_us - delta } else { now_us + delta });
        }
    }
    if let Ok(x) = t.parse::<f64>() {
        if x.is_finite() {
            return Ok((x * 1e6).round() as i64);
        }
        return Err(bad());
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_micros());
    }
    let t = &with_minutes(t);
    for f in DATETIME_FORMATS {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return zone.instant_of(n).ok_or_else(bad);
        }
    }
    for f in DATE_FORMATS {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return zone.instant_of(d.and_time(NaiveTime::MIN)).ok_or_else(bad);
        }
    }
    Err(bad())
}

/// `8am` → `8:00am` (chrono needs the minutes); other text unchanged.
fn with_minutes(t: &str) -> String {
    let lower = t.to_ascii_lowercase();
    let Some(stem) = lower.strip_suffix("am").or_else(|| lower.strip_suffix("pm")) else { return t.to_string() };
    let stem = stem.trim_end();
    let hour_len = stem.bytes().rev().take_while(u8::is_ascii_digit).count();
    if hour_len == 0 || hour_len > 2 || stem[..stem.len() - hour_len].ends_with(':') {
        return t.to_string();
    }
    format!("{}:00{}", &t[..stem.len()], &t[t.len() - 2..])
}

/// [`parse_time_in`] in UTC.
pub fn parse_time_us(s: &str, now_us: i64) -> Result<i64> {
    parse_time_in(s, now_us, Zone::Utc)
}

/// Clap's value parser of every option that takes a time (`--since`,
/// `--as-of`, `-s/--start`, …): the syntax is checked when the command line
/// is parsed, so a malformed time is a usage error (clap's message and
/// usage line, exit 2); the text is kept, to be read later against the
/// clock and time zone. With `points`, also a point of history (`seq:N`,
/// `@EPOCH`, a plain seq) as `--as-of` and `diff` take.
///
/// These options take hyphen values (`-s -1d`, `--as-of -1h`); a word that
/// looks like an option rather than an offset (`--json`, `-j`) is reported
/// as a missing value, not read as a time.
#[derive(Debug, Clone, Copy)]
pub struct TimeArg {
    points: bool,
}

impl TimeArg {
    /// A time.
    pub const fn time() -> Self {
        TimeArg { points: false }
    }
    /// A seq or a time.
    pub const fn point() -> Self {
        TimeArg { points: true }
    }

    fn check(self, s: &str) -> std::result::Result<(), String> {
        let t = s.trim();
        if self.points {
            if let Some(n) = t.strip_prefix("seq:") {
                return if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(())
                } else {
                    Err(format!("invalid seq '{n}' (seq:N takes a non-negative integer)"))
                };
            }
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                return Ok(());
            }
            let t = t.strip_prefix('@').unwrap_or(t);
            return parse_time_in(t, 0, Zone::Utc).map(|_| ()).map_err(|e| e.to_string());
        }
        parse_time_in(t, 0, Zone::Utc).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Whether a word given as an option's value is an option itself: `--x`,
/// or `-x` not followed by a digit or `.` (an offset like `-1d`, `-.5h`).
pub fn looks_like_option(s: &str) -> bool {
    match s.strip_prefix('-') {
        None => false,
        Some(rest) => !rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') && !rest.is_empty(),
    }
}

impl clap::builder::TypedValueParser for TimeArg {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> std::result::Result<String, clap::Error> {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        if looks_like_option(&value.to_string_lossy()) {
            // "a value is required for '--since <WHEN>' but none was supplied"
            let mut e = clap::Error::new(ErrorKind::InvalidValue).with_cmd(cmd);
            let name = arg.map(ToString::to_string).unwrap_or_else(|| "...".to_string());
            e.insert(ContextKind::InvalidArg, ContextValue::String(name));
            e.insert(ContextKind::InvalidValue, ContextValue::String(String::new()));
            e.insert(ContextKind::Usage, ContextValue::StyledStr(cmd.clone().render_usage()));
            return Err(e);
        }
        let this = *self;
        let check = move |s: &str| this.check(s).map(|()| s.to_string());
        check.parse_ref(cmd, arg, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_time_us("10.5", 0).unwrap(), 10_500_000);
        assert_eq!(parse_time_us("1970-01-02", 0).unwrap(), 86_400_000_000);
        assert_eq!(parse_time_us("1970-01-01T00:01:00Z", 0).unwrap(), 60_000_000);
        assert_eq!(parse_time_us("01/02/1970", 0).unwrap(), 86_400_000_000);
        assert_eq!(parse_time_us("-1h", 7_200_000_000).unwrap(), 3_600_000_000);
        assert_eq!(parse_time_us("-2d", 3 * 86_400_000_000).unwrap(), 86_400_000_000);
        assert_eq!(parse_time_us("now", 5).unwrap(), 5);
        assert!(parse_time_us("yesterdayish", 0).is_err());
        assert_eq!(json_time(86_400_000_000), "1970-01-02T00:00:00.000000+00:00");
    }

    /// Every form flux-accounting's date parser takes names the same instant.
    #[test]
    fn flux_accounting_date_forms() {
        let at8 = parse_time_us("2026-12-04 08:00:00", 0).unwrap();
        assert_eq!(at8, 1_796_371_200_000_000);
        for s in ["Dec 04, 2026 8am", "Dec 4, 2026 8AM", "Dec 04, 2026 08:00", "2026-12-04T08:00", "1796371200"] {
            assert_eq!(parse_time_us(s, 0).unwrap(), at8, "{s}");
        }
        let day = parse_time_us("2026-12-04", 0).unwrap();
        for s in ["Dec 04, 2026", "12/04/2026", "12/04/26", "December 04, 2026"] {
            assert_eq!(parse_time_us(s, 0).unwrap(), day, "{s}");
        }
        assert_eq!(parse_time_us("Dec 04, 2026 8pm", 0).unwrap(), at8 + 12 * 3_600_000_000);
    }
}
