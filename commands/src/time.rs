//! Times on the command line: epoch seconds, or dates.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::{Error, Result};

/// Formats microseconds since the epoch as RFC 3339 UTC with microseconds.
pub fn format_us(us: i64) -> String {
    match Utc.timestamp_micros(us).single() {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => us.to_string(),
    }
}

/// Parses a time given on the command line into microseconds since the
/// epoch. Accepts epoch seconds (`1741284758.36`), RFC 3339
/// (`2026-03-01T08:00:00Z`), `YYYY-MM-DD[ HH:MM[:SS]]` (UTC),
/// `MM/DD/YYYY`, `now`, and `now`-relative `+1h`/`-2d` offsets.
pub fn parse_time_us(s: &str, now_us: i64) -> Result<i64> {
    let t = s.trim();
    let bad = || {
        Error::invalid(format!(
            "invalid time '{s}': use epoch seconds or a date like 2026-03-01 or 2026-03-01T08:00:00Z"
        ))
    };
    if t.eq_ignore_ascii_case("now") {
        return Ok(now_us);
    }
    if let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) {
        if rest.chars().last().is_some_and(|c| c.is_ascii_alphabetic()) {
            let secs = crate::validate::duration("time", rest).map_err(|_| bad())?;
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
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(n.and_utc().timestamp_micros());
        }
    }
    for f in ["%Y-%m-%d", "%m/%d/%y", "%m/%d/%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, f) {
            return Ok(d.and_hms_opt(0, 0, 0).ok_or_else(bad)?.and_utc().timestamp_micros());
        }
    }
    Err(bad())
}

/// Like [`parse_time_us`] but in fractional seconds.
pub fn parse_time_secs(s: &str, now_secs: f64) -> Result<f64> {
    Ok(parse_time_us(s, (now_secs * 1e6) as i64)? as f64 / 1e6)
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
        assert_eq!(parse_time_us("now", 5).unwrap(), 5);
        assert!(parse_time_us("yesterdayish", 0).is_err());
        assert_eq!(format_us(86_400_000_000), "1970-01-02T00:00:00.000000Z");
    }
}
