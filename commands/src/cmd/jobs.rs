//! `jobs`: a user's jobs in a live instance, with their priority broken
//! down into its factors.

use std::collections::BTreeMap;

use projections::model::State;
use serde_json::{json, Value};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::format::{as_format, py_float, Rows};
use fluxacct_flux::{job_result, job_state, JobListQuery};

/// List USERNAME's jobs in the running Flux instance with their priority
/// broken down into its factors: the bank's and the queue's priority, the
/// fair-share the priority plugin used (its `user.fairshare` annotation; the
/// ledger's value when the plugin has not posted one) and the urgency, each
/// with the ledger's current factor weight. Without `-f`, every job the
/// instance lists for the user (as flux-accounting does); `-f pending,running`
/// for the active ones. Needs a Flux instance (`FLUX_URI` or the system
/// instance).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// User name.
    pub username: String,
    /// Only jobs of this bank.
    #[arg(long)]
    pub bank: Option<String>,
    /// Only jobs of this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Python-style format string over JOBID, USER, BANK, BANKPRIO, BANKFACT,
    /// QUEUE, QPRIO, QFACT, FAIRSHARE, FSFACTOR, URGENCY, URGFACT, PRIORITY.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
    /// Only jobs in these states or with these results (comma list of depend,
    /// priority, sched, run, cleanup, inactive, pending, running, active,
    /// completed, failed, canceled, timeout).
    #[arg(short = 'f', long = "filter", value_name = "STATES|RESULTS", value_parser = filter_arg)]
    pub filter: Option<String>,
    /// At most N jobs (0: all).
    #[arg(short = 'c', long = "count", default_value_t = 0, value_name = "N")]
    pub count: u32,
    /// Only jobs that were active since WHEN (epoch seconds or a date).
    #[arg(long, value_name = "WHEN", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only these jobs (any FLUID form); other filters but --bank are ignored.
    #[arg(short = 'j', long = "jobids", num_args = 1.., value_name = "ID", value_parser = crate::validate::jobid_arg)]
    pub jobids: Vec<String>,
    /// Show each job's priority calculation.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// The job-list attributes `jobs` asks for (`id` always comes).
pub const ATTRS: &[&str] = &["userid", "urgency", "priority", "state", "queue", "bank", "annotations"];

/// The output columns.
pub const COLUMNS: &[&str] = &[
    "JOBID",
    "USER",
    "BANK",
    "BANKPRIO",
    "BANKFACT",
    "QUEUE",
    "QPRIO",
    "QFACT",
    "FAIRSHARE",
    "FSFACTOR",
    "URGENCY",
    "URGFACT",
    "PRIORITY",
];

/// Widths of the default layout (left-aligned, no separators).
const WIDTHS: &[usize] = &[15, 9, 8, 10, 10, 8, 7, 7, 10, 10, 8, 8, 8];

/// Clap's value parser of `--filter` ([`parse_filter`]): an unknown state
/// or result is a usage error.
fn filter_arg(s: &str) -> std::result::Result<String, String> {
    parse_filter(s).map(|_| s.to_string()).map_err(|e| e.to_string())
}

/// `-f/--filter`: the state and result bits of a comma list, as
/// `flux.job.JobList.add_filter` reads it.
pub fn parse_filter(s: &str) -> Result<(u32, u32)> {
    let (mut states, mut results) = (0, 0);
    for f in s.split(',') {
        let f = f.trim().to_lowercase();
        match f.as_str() {
            "depend" => states |= job_state::DEPEND,
            "priority" => states |= job_state::PRIORITY,
            "sched" => states |= job_state::SCHED,
            "run" => states |= job_state::RUN,
            "cleanup" => states |= job_state::CLEANUP,
            "inactive" => states |= job_state::INACTIVE,
            "pending" => states |= job_state::PENDING,
            "running" => states |= job_state::RUNNING,
            "active" => states |= job_state::ACTIVE,
            "completed" => results |= job_result::COMPLETED,
            "failed" => results |= job_result::FAILED,
            "canceled" => results |= job_result::CANCELED,
            "timeout" => results |= job_result::TIMEOUT,
            other => return Err(Error::invalid(format!("Invalid filter specified: {other}"))),
        }
    }
    Ok((states, results))
}

/// One job as job-list describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveJob {
    /// Job id.
    pub id: u64,
    /// Submitting uid.
    pub userid: i64,
    /// Urgency (0..31, default 16).
    pub urgency: i64,
    /// Priority the job manager holds.
    pub priority: i64,
    /// Queue ("" when none).
    pub queue: String,
    /// Bank (`attributes.system.bank`), if the job has one.
    pub bank: Option<String>,
    /// The priority plugin's `user.fairshare` annotation, if posted.
    pub fairshare: Option<f64>,
}

impl LiveJob {
    /// Reads a job object of a job-list response.
    pub fn from_json(v: &Value) -> Option<LiveJob> {
        Some(LiveJob {
            id: v.get("id")?.as_u64()?,
            userid: v.get("userid").and_then(Value::as_i64).unwrap_or(-1),
            urgency: v.get("urgency").and_then(Value::as_i64).unwrap_or(16),
            priority: v.get("priority").and_then(Value::as_i64).unwrap_or(0),
            queue: v.get("queue").and_then(Value::as_str).unwrap_or("").to_string(),
            bank: v.get("bank").and_then(Value::as_str).map(str::to_string),
            fairshare: v.pointer("/annotations/user/fairshare").and_then(Value::as_f64),
        })
    }
}

/// One output row: a job and the factors of its priority.
#[derive(Debug, Clone, PartialEq)]
pub struct PrioRow {
    /// Job id.
    pub id: u64,
    /// User name.
    pub user: String,
    /// Bank.
    pub bank: String,
    /// The bank's priority (bank_table).
    pub bank_prio: f64,
    /// The bank factor weight.
    pub bank_fact: i64,
    /// Queue.
    pub queue: String,
    /// The queue's priority (0 when the ledger does not know the queue).
    pub qprio: i64,
    /// The queue factor weight.
    pub qfact: i64,
    /// Fair-share used for the priority.
    pub fairshare: f64,
    /// The fair-share factor weight.
    pub fs_fact: i64,
    /// Urgency.
    pub urgency: i64,
    /// The urgency factor weight.
    pub urg_fact: i64,
    /// The priority the job manager holds.
    pub priority: i64,
}

/// The user's associations (checked against `--bank`) and the bank
/// (checked against bank_table): flux-accounting's two errors.
pub fn check_user(state: &State<'_>, args: &Args) -> Result<Vec<projections::model::Association>> {
    let assocs: Vec<_> = state
        .associations_of_user(&args.username)?
        .into_iter()
        .filter(|a| args.bank.as_deref().is_none_or(|b| a.bank == b))
        .collect();
    if assocs.is_empty() {
        return Err(Error::invalid(format!("could not find entry for {} in association_table", args.username)));
    }
    if let Some(b) = &args.bank {
        if state.bank(b)?.is_none() {
            return Err(Error::invalid(format!("could not find entry for {b} in bank_table")));
        }
    }
    Ok(assocs)
}

/// The job-list query of `args` for `uid` (without `-j`).
pub fn query(args: &Args, uid: Option<u32>, since: f64) -> Result<JobListQuery> {
    let (states, results) = match &args.filter {
        Some(f) => parse_filter(f)?,
        None => (0, 0),
    };
    Ok(JobListQuery {
        userid: uid,
        queue: args.queue.clone(),
        states,
        results,
        since,
        max_entries: args.count,
        attrs: ATTRS.iter().map(|s| s.to_string()).collect(),
    })
}

/// Joins the live jobs with the ledger: bank and queue priorities, the
/// current factor weights, and the fair-share (annotation, else the
/// association's). Jobs of other banks than `--bank` are left out; a job
/// without a bank is in its user's default bank.
pub fn rows(
    state: &State<'_>,
    args: &Args,
    jobs: &[LiveJob],
    name_of: &dyn Fn(i64) -> Option<String>,
) -> Result<Vec<PrioRow>> {
    let assocs = check_user(state, args)?;
    let weight = |f: &str| -> Result<i64> { Ok(state.factor(f)?.unwrap_or(0)) };
    let (fs_fact, qfact, bank_fact, urg_fact) =
        (weight("fairshare")?, weight("queue")?, weight("bank")?, weight("urgency")?);
    let default_bank = assocs.first().map(|a| a.default_bank.clone()).unwrap_or_default();
    let mut bank_prio: BTreeMap<String, f64> = BTreeMap::new();
    let mut qprio: BTreeMap<String, i64> = BTreeMap::new();
    let mut out = Vec::new();
    for j in jobs {
        let bank = j.bank.clone().filter(|b| !b.is_empty()).unwrap_or_else(|| default_bank.clone());
        if args.bank.as_deref().is_some_and(|b| b != bank) {
            continue;
        }
        if !bank_prio.contains_key(&bank) {
            let p = state.bank(&bank)?.map_or(0.0, |b| b.priority);
            bank_prio.insert(bank.clone(), p);
        }
        if !qprio.contains_key(&j.queue) {
            let p = if j.queue.is_empty() { 0 } else { state.queue(&j.queue)?.map_or(0, |q| q.limits.priority) };
            qprio.insert(j.queue.clone(), p);
        }
        let fairshare = match j.fairshare {
            Some(f) => f,
            None => state.association(&args.username, &bank)?.map_or(0.0, |a| a.fairshare),
        };
        out.push(PrioRow {
            id: j.id,
            user: name_of(j.userid).unwrap_or_else(|| args.username.clone()),
            bank_prio: bank_prio[&bank],
            bank,
            bank_fact,
            qprio: qprio[&j.queue],
            queue: j.queue.clone(),
            qfact,
            fairshare,
            fs_fact,
            urgency: j.urgency,
            urg_fact,
            priority: j.priority,
        });
    }
    Ok(out)
}

fn cells(ctx: &Context, r: &PrioRow) -> Vec<Value> {
    vec![
        json!(ctx.jobid(r.id)),
        json!(r.user),
        json!(r.bank),
        json!(r.bank_prio),
        json!(r.bank_fact),
        json!(r.queue),
        json!(r.qprio),
        json!(r.qfact),
        json!(r.fairshare),
        json!(r.fs_fact),
        json!(r.urgency),
        json!(r.urg_fact),
        json!(r.priority),
    ]
}

/// The default layout: each column left-aligned to its fixed width, no
/// separators; a header line, then one line per job.
pub fn table(ctx: &Context, rows: &[PrioRow]) -> String {
    let line =
        |vals: Vec<String>| -> String { vals.iter().zip(WIDTHS).map(|(v, w)| format!("{v:<w$}")).collect::<String>() };
    let mut out = line(COLUMNS.iter().map(|c| c.to_string()).collect());
    for r in rows {
        out.push('\n');
        out.push_str(&line(cells(ctx, r).iter().map(crate::format::py_str).collect()));
    }
    out.push('\n');
    out
}

/// `-v`: per job, its id and the priority formula with the job's numbers.
pub fn verbose(ctx: &Context, rows: &[PrioRow]) -> String {
    let mut blocks = Vec::new();
    for r in rows {
        let fs = py_float(r.fairshare);
        let bp = py_float(r.bank_prio);
        let fs_term = py_float(r.fairshare * r.fs_fact as f64);
        let b_term = py_float(r.bank_prio * r.bank_fact as f64);
        let q_term = r.qprio.saturating_mul(r.qfact);
        let u_term = r.urg_fact.saturating_mul(r.urgency - 16);
        blocks.push(format!(
            "{}\n\
             = (FAIRSHARE * FAIRSHARE_WEIGHT) + (QUEUE_PRIORITY * QUEUE_WEIGHT) + (BANK_PRIORITY * BANK_WEIGHT) + (URGENCY_WEIGHT * (URGENCY - 16))\n\
             = ({fs} * {}) + ({} * {}) + ({bp} * {}) + ({} * ({} - 16))\n\
             = {fs_term} + {q_term} + {b_term} + {u_term}\n\
             = {}\n",
            ctx.jobid(r.id),
            r.fs_fact,
            r.qprio,
            r.qfact,
            r.bank_fact,
            r.urg_fact,
            r.urgency,
            r.priority
        ));
    }
    blocks.join("\n")
}

/// Renders the rows as `args` asks.
pub fn render(ctx: &Context, rows: &[PrioRow], args: &Args) -> Result<String> {
    if let Some(fmt) = &args.format {
        let mut t = Rows::new(COLUMNS);
        for r in rows {
            t.push(cells(ctx, r));
        }
        return Ok(as_format(&t, fmt)? + "\n");
    }
    if args.verbose {
        return Ok(verbose(ctx, rows));
    }
    Ok(table(ctx, rows))
}

/// `--since`: epoch seconds (0 by default), refused in the future.
pub fn since(args: &Args, now: f64, zone: crate::time::Zone) -> Result<f64> {
    let s = match &args.since {
        None => return Ok(0.0),
        Some(s) => crate::time::parse_time_in(s, (now * 1e6) as i64, zone)? as f64 / 1e6,
    };
    if s > now {
        return Err(Error::invalid(format!("--since appears to be in the future: {}", py_float(s))));
    }
    Ok(s.max(0.0))
}

/// Runs `jobs`.
pub fn cmd_jobs(ctx: &Context, args: &Args) -> Result<Output> {
    let now = ctx.clock.now_secs();
    let db = crate::db::open_read(ctx)?;
    let state = State::new(db.conn());
    let assocs = check_user(&state, args)?;
    let since = since(args, now, ctx.zone)?;
    let ids = args
        .jobids
        .iter()
        .map(|j| fluxacct_ingest::record::parse_jobid(j).ok_or_else(|| Error::invalid(format!("invalid job id: {j}"))))
        .collect::<Result<Vec<u64>>>()?;
    let uid = ctx.users.uid_of(&args.username).or_else(|| assocs.first().and_then(|a| u32::try_from(a.userid).ok()));
    let q = query(args, uid, since)?;
    let flux = fluxacct_flux::Flux::open(&ctx.flux_env)
        .map_err(|why| Error::invalid(format!("jobs needs a running Flux instance: {why}")))?;
    let mut warnings = Vec::new();
    let raw: Vec<Value> = if ids.is_empty() {
        flux.job_list(&q)?
    } else {
        let mut v = Vec::new();
        for id in ids {
            match flux.job_list_id(id, &q.attrs)? {
                Some(j) => v.push(j),
                None => warnings.push(format!("flux-account: warning: job {} not found", ctx.jobid(id))),
            }
        }
        v
    };
    let live: Vec<LiveJob> = raw.iter().filter_map(LiveJob::from_json).collect();
    let name_of = |uid: i64| u32::try_from(uid).ok().and_then(|u| ctx.users.name_of(u));
    let out = render(ctx, &rows(&state, args, &live, &name_of)?, args)?;
    Ok(Output { stdout: out, warnings, ..Output::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, parse_args, Given};
    use fluxacct_core::events::{AssociationEdited, BankEdited, Event, FactorWeightSet, QueueAdded};

    fn job(id: u64, bank: &str, queue: &str, fs: Option<f64>, urgency: i64, priority: i64) -> LiveJob {
        LiveJob { id, userid: 5001, urgency, priority, queue: queue.into(), bank: Some(bank.into()), fairshare: fs }
    }

    /// t1057's site: banks A (priority 100), B (10), C (1); queues bronze (1),
    /// silver (100), gold (1000); bank weight 1000.
    fn site() -> crate::testing::World {
        let bank = |b: &str, p: f64| {
            Given::Event(Event::BankEdited(BankEdited { bank: b.into(), priority: Some(p), ..Default::default() }))
        };
        let queue = |q: &str, p: i64| {
            let mut e: QueueAdded = crate::testing::queue(q);
            e.limits.priority = p;
            Given::Event(Event::QueueAdded(e))
        };
        let fs = |b: &str, f: f64| {
            Given::Event(Event::AssociationEdited(AssociationEdited {
                username: "moussa".into(),
                bank: b.into(),
                fairshare: Some(f),
                ..Default::default()
            }))
        };
        given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::Bank("C", "root"),
            bank("A", 100.0),
            bank("B", 10.0),
            bank("C", 1.0),
            queue("bronze", 1),
            queue("silver", 100),
            queue("gold", 1000),
            Given::User("moussa", "A"),
            Given::User("moussa", "B"),
            Given::User("moussa", "C"),
            fs("A", 0.99),
            fs("B", 0.5),
            fs("C", 0.08),
            Given::Event(Event::FactorWeightSet(FactorWeightSet { factor: "bank".into(), weight: 1000 })),
        ])
    }

    fn jobs() -> Vec<LiveJob> {
        vec![
            job(1 << 24, "A", "bronze", Some(0.99), 16, 209_000),
            job(2 << 24, "B", "bronze", Some(0.5), 16, 70_000),
            job(3 << 24, "C", "silver", None, 16, 1_009_000),
        ]
    }

    fn run(argv: &[&str]) -> Result<String> {
        run_in(argv, true)
    }

    fn run_in(argv: &[&str], utf8: bool) -> Result<String> {
        let g = site();
        let args: Args = parse_args(argv);
        let ctx = Context { utf8, ..Context::for_tests("unused.db", 0) };
        render(&ctx, &rows(&g.state(), &args, &jobs(), &|_| Some("moussa".into()))?, &args)
    }

    #[test]
    fn given_t1057_jobs_when_listing_then_the_fixed_width_layout() {
        let out = run(&["moussa"]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "JOBID          USER     BANK    BANKPRIO  BANKFACT  QUEUE   QPRIO  QFACT  FAIRSHARE FSFACTOR  URGENCY URGFACT PRIORITY"
        );
        let f58 = "ƒ2UzHM";
        assert_eq!(
            lines[1],
            format!("{f58:<15}moussa   A       100.0     1000      bronze  1      10000  0.99      100000    16      1000    209000  ")
        );
        assert_eq!(lines.len(), 4);
        // No annotation: the ledger's fair-share of the association.
        assert!(lines[3].contains(" 0.08 "), "{}", lines[3]);
    }

    #[test]
    fn given_a_non_utf8_locale_when_listing_then_ids_start_with_a_plain_f() {
        for argv in [&["moussa"][..], &["moussa", "-v"], &["moussa", "-o", "{JOBID}"]] {
            let out = run_in(argv, false).unwrap();
            assert!(!out.contains('ƒ'), "{out}");
            assert!(out.contains("f2UzHM"), "{out}");
        }
    }

    #[test]
    fn given_bank_filter_when_listing_then_only_that_bank() {
        let out = run(&["moussa", "--bank", "C", "-o", "{BANK:<8} | {PRIORITY:<10}"]).unwrap();
        assert_eq!(out, "BANK     | PRIORITY  \nC        | 1009000   \n");
    }

    #[test]
    fn given_verbose_when_listing_then_the_priority_calculation() {
        let out = run(&["moussa", "-v"]).unwrap();
        assert!(out.contains("ƒ2UzHM\n= (FAIRSHARE"), "{out}");
        assert!(out.contains(
            "= (FAIRSHARE * FAIRSHARE_WEIGHT) + (QUEUE_PRIORITY * QUEUE_WEIGHT) + (BANK_PRIORITY * BANK_WEIGHT) + (URGENCY_WEIGHT * (URGENCY - 16))"
        ));
        assert!(out.contains("= (0.99 * 100000) + (1 * 10000) + (100.0 * 1000) + (1000 * (16 - 16))\n= 99000.0 + 10000 + 100000.0 + 0\n= 209000\n"), "{out}");
        assert!(out.contains("= (0.5 * 100000) + (1 * 10000) + (10.0 * 1000) + (1000 * (16 - 16))\n= 50000.0 + 10000 + 10000.0 + 0\n= 70000\n"), "{out}");
    }

    #[test]
    fn given_unknown_user_or_bank_when_listing_then_flux_accountings_errors() {
        let g = site();
        let e = |argv: &[&str]| check_user(&g.state(), &parse_args(argv)).unwrap_err().to_string();
        assert_eq!(e(&["foo"]), "could not find entry for foo in association_table");
        assert_eq!(e(&["moussa", "--bank", "Z"]), "could not find entry for moussa in association_table");
        assert_eq!(
            run(&["moussa", "-o", "{NOPE}"]).unwrap_err().to_string(),
            "Invalid column name in format string: NOPE. Available columns: JOBID,USER,BANK,BANKPRIO,BANKFACT,QUEUE,QPRIO,QFACT,FAIRSHARE,FSFACTOR,URGENCY,URGFACT,PRIORITY"
        );
    }

    #[test]
    fn filters_count_since_and_queue_make_the_query() {
        assert_eq!(parse_filter("pending,canceled").unwrap(), (job_state::PENDING, job_result::CANCELED));
        assert_eq!(parse_filter("RUNNING").unwrap(), (job_state::RUNNING, 0));
        assert_eq!(parse_filter("foo").unwrap_err().to_string(), "Invalid filter specified: foo");
        let args: Args = parse_args(&["u", "--queue", "gold", "-c", "2", "-f", "active", "--since", "100"]);
        let q = query(&args, Some(5001), since(&args, 1000.0, crate::time::Zone::Utc).unwrap()).unwrap();
        assert_eq!(q.userid, Some(5001));
        assert_eq!(q.queue.as_deref(), Some("gold"));
        assert_eq!((q.states, q.results, q.max_entries, q.since), (job_state::ACTIVE, 0, 2, 100.0));
        let future: Args = parse_args(&["u", "--since", "2000"]);
        assert_eq!(
            since(&future, 1000.0, crate::time::Zone::Utc).unwrap_err().to_string(),
            "--since appears to be in the future: 2000.0"
        );
        let ids: Args = parse_args(&["u", "-j", "ƒ2", "123"]);
        assert_eq!(ids.jobids, ["ƒ2", "123"]);
    }

    #[test]
    fn job_list_objects_are_read() {
        let v = json!({"id": 1234, "userid": 5001, "urgency": 17, "priority": 1000, "state": 8,
                       "queue": "gold", "bank": "A", "annotations": {"user": {"fairshare": 0.25}}});
        assert_eq!(
            LiveJob::from_json(&v),
            Some(LiveJob {
                id: 1234,
                userid: 5001,
                urgency: 17,
                priority: 1000,
                queue: "gold".into(),
                bank: Some("A".into()),
                fairshare: Some(0.25)
            })
        );
        let bare = LiveJob::from_json(&json!({"id": 1})).unwrap();
        assert_eq!((bare.urgency, bare.queue.as_str(), bare.bank, bare.fairshare), (16, "", None, None));
    }
}
