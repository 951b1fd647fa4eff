//! `follow-status`: where the journal follower is, and how stale.

use crate::context::{Context, Output};
use crate::error::Result;

/// Show the journal follower's position and heartbeat: the newest job it
/// recorded and that job's end, the lag of its last batch, its batch
/// count, and how long ago it last showed signs of life (a follower that
/// is connected beats at least every 10 s).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print the values as one JSON object (times in µs since the epoch).
    #[arg(long)]
    pub json: bool,
}

/// A heartbeat older than this means the follower is not running (or
/// stalled).
pub const STALE_US: i64 = 30_000_000;

/// The report, given the follower's bookkeeping and the time now.
pub fn render(ctx: &Context, s: &ledger::follower::FollowerState, now_us: i64, json: bool) -> String {
    let age = s.heartbeat_us.map(|h| now_us - h);
    if json {
        let v = serde_json::json!({
            "last_job_id": s.last_job_id,
            "last_clean_us": s.last_clean_us,
            "heartbeat_us": s.heartbeat_us,
            "heartbeat_age_us": age,
            "lag_us": s.lag_us,
            "batches": s.batches,
            "stale": age.is_none_or(|a| a > STALE_US),
        });
        return format!("{v}\n");
    }
    let Some(hb) = s.heartbeat_us else {
        return "follower: never ran on this ledger\n".to_string();
    };
    let secs = |us: i64| format!("{:.3} s", us as f64 / 1e6);
    let mut out = String::new();
    match (s.last_job_id, s.last_clean_us) {
        (Some(id), Some(c)) => {
            out.push_str(&format!("last job:   {} (ended {})\n", ctx.jobid(id), ctx.format_time(c)));
        }
        _ => out.push_str("last job:   none recorded yet\n"),
    }
    out.push_str(&format!("lag:        {}\n", s.lag_us.map_or("-".to_string(), secs)));
    out.push_str(&format!("batches:    {}\n", s.batches.unwrap_or(0)));
    let a = now_us - hb;
    let state = if a > STALE_US { "  STALE: the follower is not running or is stuck" } else { "" };
    out.push_str(&format!("heartbeat:  {} ({} ago){state}\n", ctx.format_time(hb), secs(a)));
    out
}

/// Runs `follow-status`.
pub fn cmd_follow_status(ctx: &Context, args: &Args) -> Result<Output> {
    if ctx.as_of.is_some() {
        return Err(crate::error::Error::invalid(
            "follow-status shows the follower's bookkeeping, which has no history: --as-of does not apply",
        ));
    }
    let ledger = ledger::Ledger::open(&ctx.db_path, ledger::OpenMode::ReadOnly)?;
    let s = ledger::follower::read(ledger.conn())?;
    Ok(Output::text(render(ctx, &s, ctx.clock.now_us(), args.json)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::follower::FollowerState;

    fn state() -> FollowerState {
        FollowerState {
            last_job_id: Some(13_861_017_092_096),
            last_clean_us: Some(1_000_000),
            heartbeat_us: Some(2_000_000),
            lag_us: Some(250_000),
            batches: Some(7),
        }
    }

    #[test]
    fn given_a_recent_heartbeat_when_shown_then_position_lag_and_age_are_printed() {
        let ctx = Context::for_tests("/nonexistent", 0);
        let out = render(&ctx, &state(), 3_000_000, false);
        assert!(out.contains("last job:   ƒ"), "{out}");
        assert!(out.contains("lag:        0.250 s"), "{out}");
        assert!(out.contains("batches:    7"), "{out}");
        assert!(out.contains("(1.000 s ago)") && !out.contains("STALE"), "{out}");
    }

    #[test]
    fn given_an_old_heartbeat_when_shown_then_it_is_called_stale() {
        let ctx = Context::for_tests("/nonexistent", 0);
        assert!(render(&ctx, &state(), 2_000_000 + STALE_US + 1, false).contains("STALE"));
        let v: serde_json::Value =
            serde_json::from_str(&render(&ctx, &state(), 2_000_000 + STALE_US + 1, true)).unwrap();
        assert_eq!(v["stale"], true);
        assert_eq!(v["batches"], 7);
        assert_eq!(v["heartbeat_age_us"], STALE_US + 1);
    }

    #[test]
    fn given_no_follower_when_shown_then_it_says_so() {
        let ctx = Context::for_tests("/nonexistent", 0);
        assert_eq!(render(&ctx, &FollowerState::default(), 0, false), "follower: never ran on this ledger\n");
    }
}
