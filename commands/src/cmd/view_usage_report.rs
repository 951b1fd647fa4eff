//! `view-usage-report`: node usage by association, user or bank.

use std::collections::BTreeMap;

use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::names::{display_user, user_uid};

/// Report node usage (nnodes × elapsed, resource weights ignored) of the
/// jobs that ended between `--start` and `--end`, grouped by association,
/// user or bank, optionally split into job-size bins.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Start (default: yesterday at local midnight).
    #[arg(short = 's', long, value_name = "DATE", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub start: Option<String>,
    /// End (default: today at local midnight).
    #[arg(short = 'e', long, value_name = "DATE", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub end: Option<String>,
    /// Only this user.
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Only this bank.
    #[arg(short = 'b', long)]
    pub bank: Option<String>,
    /// byassociation, byuser or bybank.
    #[arg(short = 'r', long = "report-type", default_value = "byassociation",
          value_parser = ["byassociation", "byuser", "bybank"])]
    pub report_type: String,
    /// sec, min or hour.
    #[arg(short = 't', long = "time-unit", default_value = "sec", value_parser = ["sec", "min", "hour"])]
    pub time_unit: String,
    /// Job-size bins (node counts), e.g. `1,2,4`; any non-numeric value
    /// gives 0,2,8,32,128,512,2048,8192. A job goes into the largest bin not
    /// above its node count; a job smaller than the smallest bin counts in
    /// the smallest bin.
    #[arg(short = 'S', long = "job-size-bins", value_name = "N,N,...", value_parser = bins_arg)]
    pub job_size_bins: Option<String>,
    /// The accounting centre instead of the ledger.
    #[command(flatten)]
    pub centre: crate::centre_view::CentreArgs,
}

/// Clap's value parser of `--job-size-bins` ([`parse_bins`]): bad bins
/// are a usage error.
fn bins_arg(s: &str) -> std::result::Result<String, String> {
    parse_bins(Some(s)).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// Parses `-S`: an integer list, or the default bins.
pub fn parse_bins(s: Option<&str>) -> Result<Vec<i64>> {
    match s {
        None => Ok(vec![0]),
        Some(t) if t.trim().starts_with(|c: char| c.is_ascii_digit()) => {
            let mut v = t
                .split(',')
                .map(|x| x.trim().parse::<i64>().map_err(|_| Error::invalid(format!("invalid job size bins: {t}"))))
                .collect::<Result<Vec<_>>>()?;
            v.sort_unstable();
            v.dedup();
            Ok(v)
        }
        Some(_) => Ok(vec![0, 2, 8, 32, 128, 512, 2048, 8192]),
    }
}

/// Read-only: renders the report (job records that cannot be read are
/// named and left out: [`crate::db::without_unreadable_jobs`]).
pub fn report(ctx: &Context, state: &State<'_>, args: &Args) -> Result<String> {
    crate::db::without_unreadable_jobs(ctx, state.conn(), |skip| report_without(ctx, state, args, skip))
}

/// The report's period in seconds: `--start`/`--end`, by default
/// yesterday (local midnight to midnight).
fn period(ctx: &Context, args: &Args) -> Result<(f64, f64)> {
    let now = ctx.clock.now_us();
    let start = match &args.start {
        Some(s) => ctx.parse_time_secs(s)?,
        None => ctx.zone.midnight_secs(now, 1),
    };
    let end = match &args.end {
        Some(s) => ctx.parse_time_secs(s)?,
        None => ctx.zone.midnight_secs(now, 0),
    };
    Ok((start, end))
}

fn report_without(ctx: &Context, state: &State<'_>, args: &Args, skip: Option<String>) -> Result<String> {
    let (start, end) = period(ctx, args)?;
    let bins = parse_bins(args.job_size_bins.as_deref())?;
    let uid = match &args.username {
        Some(u) => Some(user_uid(ctx, state, u)?),
        None => None,
    };
    let mut stmt = state.conn().prepare(
        "SELECT userid, username, bank, nnodes, t_run, t_inactive FROM jobs \
         WHERE (?8 IS NULL OR seq NOT IN (SELECT value FROM json_each(?8))) AND seq IN (SELECT seq FROM job_times WHERE t_inactive_us >= ?6 AND t_inactive_us <= ?7) \
         AND t_run > ?1 AND t_inactive < ?2 AND t_inactive >= ?3 AND bank != '' \
         AND (?4 IS NULL OR userid = ?4) AND (?5 IS NULL OR bank = ?5) ORDER BY seq",
    )?;
    // key -> (total, per-bin)
    let mut groups: BTreeMap<String, (f64, Vec<f64>)> = BTreeMap::new();
    let mut names: BTreeMap<i64, String> = BTreeMap::new();
    // Records before the last scrub-old-jobs cut no longer count.
    let from = state.jobs_scrubbed_before()?.map_or(start, |cut| start.max(cut));
    let (from_us, to_us) = (projections::schema::t_us(start), projections::schema::t_us(end));
    let mut q =
        stmt.query(rusqlite::params![start - 7.0 * 86400.0, end, from, uid, args.bank, from_us, to_us, skip])?;
    while let Some(r) = q.next()? {
        let userid: i64 = r.get(0)?;
        let recorded: Option<String> = r.get(1)?;
        let bank: String = r.get(2)?;
        let nnodes: i64 = r.get(3)?;
        let usage = nnodes as f64 * (r.get::<_, f64>(5)? - r.get::<_, f64>(4)?);
        let user = names.entry(userid).or_insert_with(|| display_user(ctx, userid, recorded)).clone();
        let key = match args.report_type.as_str() {
            "byuser" => user,
            "bybank" => bank,
            _ => format!("{bank}:{user}"),
        };
        let bin = bins.iter().rposition(|&b| b <= nnodes).unwrap_or(0);
        let g = groups.entry(key).or_insert_with(|| (0.0, vec![0.0; bins.len()]));
        g.0 += usage;
        g.1[bin] += usage;
    }
    Ok(render(args, &bins, &groups, &BTreeMap::new()))
}

/// Renders the groups (key -> total, per-bin usage in node-seconds); with
/// `clusters` (key -> cluster) non-empty, a leading `cluster` column.
fn render(
    args: &Args,
    bins: &[i64],
    groups: &BTreeMap<String, (f64, Vec<f64>)>,
    clusters: &BTreeMap<String, String>,
) -> String {
    let div = match args.time_unit.as_str() {
        "hour" => 3600.0,
        "min" => 60.0,
        _ => 1.0,
    };
    let kind = match args.report_type.as_str() {
        "byuser" => "user",
        "bybank" => "bank",
        _ => "association",
    };
    let label = format!("{kind}(node{})", args.time_unit);
    let mut out = String::new();
    let cw = clusters.values().map(|c| c.len()).max().map_or(0, |w| w.max(7) + 1);
    if cw > 0 {
        out.push_str(&format!("{:<cw$}", "cluster"));
    }
    if bins.len() == 1 {
        out.push_str(&format!("{label:<26}        total\n"));
    } else {
        out.push_str(&format!("{label:<24}"));
        for b in bins {
            out.push_str(&format!(" {b:>13}+"));
        }
        out.push('\n');
    }
    let mut sorted: Vec<(&String, &(f64, Vec<f64>))> = groups.iter().collect();
    sorted.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0).then_with(|| a.0.cmp(b.0)));
    let mut totals = vec![0.0; bins.len()];
    for (key, (_, per)) in sorted {
        let (cluster, key) = match clusters.get(key) {
            Some(c) => (c.as_str(), key.split_once('\0').map_or(key.as_str(), |(_, k)| k)),
            None => ("", key.as_str()),
        };
        if cw > 0 {
            out.push_str(&format!("{cluster:<cw$}"));
        }
        out.push_str(&format!("{key:<24}"));
        for (i, v) in per.iter().enumerate() {
            totals[i] += v;
            out.push_str(&format!(" {:>14.2}", v / div));
        }
        out.push('\n');
    }
    if cw > 0 {
        out.push_str(&format!("{:<cw$}", ""));
    }
    out.push_str(&format!("{:<24}", "TOTAL"));
    for v in totals {
        out.push_str(&format!(" {:>14.2}", v / div));
    }
    out.push('\n');
    out
}

/// Read-only: the report over the centre's clusters, summed by PostgreSQL
/// (one row per cluster, uid, bank and node count) and binned and
/// rendered as the local report is; several clusters get a `cluster`
/// column.
fn report_centre(ctx: &Context, client: &mut postgres::Client, names: &[String], args: &Args) -> Result<String> {
    let (start, end) = period(ctx, args)?;
    let bins = parse_bins(args.job_size_bins.as_deref())?;
    let uid = match &args.username {
        Some(u) => {
            // As locally: passwd, else an association's uid (any cluster's).
            let views = crate::centre_view::views(client, names)?;
            let mut uid = None;
            for v in &views {
                if ctx.users.uid_of(u).is_some() || !v.state().associations_of_user(u)?.is_empty() {
                    uid = Some(user_uid(ctx, &v.state(), u)?);
                    break;
                }
            }
            Some(uid.unwrap_or_else(|| u.parse::<i64>().unwrap_or(fluxacct_core::events::USERID_UNKNOWN)))
        }
        None => None,
    };
    let rows = centre::read::usage_groups(client, names, start - 7.0 * 86400.0, end, start, uid, args.bank.as_deref())?;
    let several = names.len() > 1;
    let mut groups: BTreeMap<String, (f64, Vec<f64>)> = BTreeMap::new();
    let mut clusters: BTreeMap<String, String> = BTreeMap::new();
    for g in rows {
        let user = display_user(ctx, g.userid, g.username.clone());
        let key = match args.report_type.as_str() {
            "byuser" => user,
            "bybank" => g.bank.clone(),
            _ => format!("{}:{user}", g.bank),
        };
        let key = if several {
            let k = format!("{}\0{key}", g.cluster);
            clusters.insert(k.clone(), g.cluster.clone());
            k
        } else {
            key
        };
        let bin = bins.iter().rposition(|&b| b <= g.nnodes).unwrap_or(0);
        let e = groups.entry(key).or_insert_with(|| (0.0, vec![0.0; bins.len()]));
        e.0 += g.usage;
        e.1[bin] += g.usage;
    }
    Ok(render(args, &bins, &groups, &clusters))
}

/// Runs `view-usage-report`.
pub fn cmd_view_usage_report(ctx: &Context, args: &Args) -> Result<Output> {
    if let Some((mut client, names)) = crate::centre_view::open(&args.centre)? {
        return Ok(Output::text(report_centre(ctx, &mut client, &names, args)?));
    }
    let db = crate::db::open_read(ctx)?;
    Ok(Output::text(report(ctx, &State::new(db.conn()), args)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins() {
        assert_eq!(parse_bins(None).unwrap(), vec![0]);
        assert_eq!(parse_bins(Some("4,1,2")).unwrap(), vec![1, 2, 4]);
        assert_eq!(parse_bins(Some("default")).unwrap().len(), 8);
        assert!(parse_bins(Some("1,x")).is_err());
    }
}
