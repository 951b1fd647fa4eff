//! The sample site of `demo`: the command lines that build it, synthetic
//! job records, and the run of the whole pipeline through the commands'
//! own decisions and outputs.

use std::path::{Path, PathBuf};

use fluxacct_core::events::{Event, JobRecorded};
use ledger::Ledger;
use projections::model::State;

use crate::cmd::{
    add_bank, add_project, add_queue, add_user, checkpoint, create_db, show_usage, update_fshare, update_usage, verify,
    view_bank,
};
use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// The sample site as command lines (without the program name).
pub const SCRIPT: &[&[&str]] = &[
    &["add-bank", "root", "1"],
    &["add-bank", "--parent-bank=root", "giants", "1"],
    &["add-bank", "--parent-bank=root", "dodgers", "2"],
    &["add-bank", "--parent-bank=dodgers", "infield", "1"],
    &["add-bank", "--parent-bank=dodgers", "outfield", "1"],
    &["add-queue", "orange", "--priority=100"],
    &["add-project", "shortstops"],
    &["add-user", "--username=crawford", "--bank=giants", "--projects=shortstops", "--queues=orange"],
    &["add-user", "--username=posey", "--bank=giants"],
    &["add-user", "--username=betts", "--bank=infield", "--shares=2"],
    &["add-user", "--username=freeman", "--bank=infield"],
    &["add-user", "--username=ohtani", "--bank=outfield", "--max-active-jobs=20"],
    &["add-user", "--username=crawford", "--bank=outfield"],
];

/// How many synthetic job records the demo records.
pub const DEMO_JOBS: usize = 400;

/// Over how many weeks before "now" the synthetic jobs ran.
pub const DEMO_WEEKS: f64 = 4.0;

fn parse<A: clap::Args + clap::FromArgMatches>(argv: &[&str]) -> Result<A> {
    let cmd = A::augment_args(clap::Command::new("demo").no_binary_name(true));
    let m = cmd.try_get_matches_from(&argv[1..]).map_err(|e| Error::invalid(e.to_string()))?;
    A::from_arg_matches(&m).map_err(|e| Error::invalid(e.to_string()))
}

/// The events of one script line, decided against `state`.
fn decide(state: &State<'_>, argv: &[&str], uid: i64) -> Result<Vec<Event>> {
    match argv[0] {
        "add-bank" => add_bank::decide(state, &parse(argv)?),
        "add-queue" => add_queue::decide(state, &parse(argv)?),
        "add-project" => add_project::decide(state, &parse(argv)?),
        "add-user" => add_user::decide(state, &parse(argv)?, uid),
        other => Err(Error::invalid(format!("demo: unknown step {other}"))),
    }
}

/// splitmix64: a small deterministic generator, so the demo's job records
/// depend only on the clock.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `count` synthetic job records of the site's active associations, ending
/// in the `weeks` weeks before `now`. Associations get different amounts of
/// work (their position in the site weighs how often they are picked), so
/// their usage and fair-share differ. Pure: depends only on `state` and
/// `now`.
pub fn synthetic_jobs(state: &State<'_>, now: f64, count: usize, weeks: f64) -> Result<Vec<JobRecorded>> {
    let assocs: Vec<_> = state.associations()?.into_iter().filter(|a| a.active != 0).collect();
    if assocs.is_empty() {
        return Ok(Vec::new());
    }
    // Weights 1, 2, 4, ... capped, in a fixed scrambled order.
    let weights: Vec<u64> = (0..assocs.len()).map(|i| [5u64, 1, 3, 2, 8, 1, 4, 6][i % 8]).collect();
    let total: u64 = weights.iter().sum();
    let mut rng = Rng(0x5EED_F1A5_u64 ^ now.to_bits());
    let span = weeks * 7.0 * 86_400.0;
    let start = now - span;
    let mut jobs = Vec::with_capacity(count);
    for i in 0..count {
        let mut pick = rng.below(total);
        let mut k = 0;
        while pick >= weights[k] {
            pick -= weights[k];
            k += 1;
        }
        let a = &assocs[k];
        let duration = 600.0 + (rng.unit() * 4.0 * 3600.0).floor();
        let t_inactive = (start + rng.unit() * (span - 60.0)).floor().min(now - 1.0);
        let t_run = t_inactive - duration;
        let t_submit = t_run - rng.below(1800) as f64;
        let nnodes = 1 + rng.below(4) as i64;
        // A FLUID-like id: milliseconds since the start of the window (as
        // FLUIDs count from the instance's start; 40 bits), then a sequence
        // number (24 bits), so ids stay below 2^63.
        let ms = (((t_submit - start).max(0.0) * 1000.0) as u64) & ((1 << 39) - 1);
        let id = (ms << 24) | (i as u64 & 0xFF_FFFF);
        let queue = if a.queues.split(',').any(|q| q == "orange") { "orange" } else { "" };
        let project = a.default_project.clone();
        jobs.push(JobRecorded {
            id,
            userid: a.userid,
            username: Some(a.username.clone()),
            bank: a.bank.clone(),
            project: if project == "*" { String::new() } else { project },
            queue: queue.to_string(),
            t_submit,
            t_run,
            t_inactive,
            nnodes,
            ncores: nnodes * 8,
            ngpus: 0,
            requested_duration: (duration / 3600.0).ceil() * 3600.0,
            ranks: Some(if nnodes == 1 { "0".to_string() } else { format!("0-{}", nnodes - 1) }),
            r: None,
        });
    }
    jobs.sort_by(|a, b| a.t_inactive.total_cmp(&b.t_inactive).then(a.id.cmp(&b.id)));
    Ok(jobs)
}

/// Where the demo writes its usage chart: `<db>.usage.svg`.
pub fn svg_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".usage.svg");
    PathBuf::from(s)
}

/// Runs one step of the pipeline as its own command line in the log.
fn step<F>(ctx: &Context, ledger: &mut Ledger, argv: &[&str], decide: F) -> Result<()>
where
    F: FnOnce(&State<'_>) -> Result<Vec<Event>>,
{
    let mut meta = ctx.meta();
    meta.argv = std::iter::once("flux-account").chain(argv.iter().copied()).map(str::to_string).collect();
    projections::Writer::run(ledger, &meta, decide)?;
    Ok(())
}

/// Builds the sample site in the new ledger `ctx.db_path`, runs the
/// pipeline on it and reports (what `demo` prints).
pub fn run(ctx: &Context) -> Result<Output> {
    if ctx.db_path.exists() {
        return Err(Error::invalid(format!(
            "{} already exists; demo only creates new ledgers (pass -p NEW.db)",
            ctx.db_path.display()
        )));
    }
    let cargs = create_db::Args {
        priority_decay_half_life: "1w".into(),
        priority_usage_reset_period: "4w".into(),
        decay_factor: "0.5".into(),
    };
    create_db::cmd_create_db(ctx, &cargs)?;
    let now = ctx.clock.now_secs();
    let mut ledger = Ledger::open(&ctx.db_path, ledger::OpenMode::ReadWrite)?;
    for (i, argv) in SCRIPT.iter().enumerate() {
        let uid = 5000 + i as i64;
        step(ctx, &mut ledger, argv, |s| decide(s, argv, uid))?;
    }
    let mut recorded = 0;
    step(ctx, &mut ledger, &["fetch-job-records", "--from-file", "(synthetic demo jobs)"], |s| {
        let jobs = synthetic_jobs(s, now, DEMO_JOBS, DEMO_WEEKS)?;
        // A new ledger: every synthetic record is new and passes the ingest
        // rules, so each becomes a `JobRecorded`.
        let evs: Vec<Event> = jobs.into_iter().map(Event::JobRecorded).collect();
        recorded = evs.len();
        Ok(evs)
    })?;
    step(ctx, &mut ledger, &["update-usage"], |s| update_usage::decide(s, now))?;
    step(ctx, &mut ledger, &["update-fshare"], update_fshare::decide)?;
    drop(ledger);

    let snapshot = crate::snapshot::default_snapshot_path(&ctx.db_path);
    let snapshot = std::path::absolute(&snapshot).unwrap_or(snapshot);
    let head = crate::snapshot::write_snapshot(ctx, &snapshot)?;
    let svg = svg_path(&ctx.db_path);
    let svg = std::path::absolute(&svg).unwrap_or(svg);

    let view = view_bank::Args {
        bank: "root".into(),
        tree: true,
        users: false,
        parsable: false,
        fields: None,
        format: None,
        concise: false,
        active: false,
        centre: Default::default(),
    };
    let mut out = format!(
        "sample site: {} commands; {recorded} job records over the last {DEMO_WEEKS} weeks; \
         update-usage; update-fshare; priority-update --no-flux\n\n",
        SCRIPT.len()
    );
    out.push_str(&view_bank::cmd_view_bank(ctx, &view)?.stdout);
    out.push_str("\ntop job usage (show-usage associations):\n");
    let chart = show_usage::Args { table: "associations".into(), limit: 10, svg: Some(svg.clone()), columns: 80 };
    out.push_str(&show_usage::cmd_show_usage(ctx, &chart)?.stdout);
    out.push('\n');
    out.push_str(
        &verify::cmd_verify(ctx, &verify::Args { threads: None, checkpoint: None, file: false, full: false })?.stdout,
    );
    let cp = checkpoint::cmd_checkpoint(ctx, &checkpoint::Args { no_store: false })?;
    out.push_str("checkpoint: ");
    out.push_str(&cp.stdout);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("snapshot: {} (seq {})\n", snapshot.display(), head.seq));
    out.push_str(&format!("chart: {}\n", svg.display()));
    let mut output = Output::text(out);
    output.warnings.extend(cp.warnings);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_jobs_are_deterministic_and_in_the_window() {
        let g = crate::testing::given(&[
            crate::testing::Given::Bank("root", ""),
            crate::testing::Given::Bank("A", "root"),
            crate::testing::Given::User("u1", "A"),
            crate::testing::Given::User("u2", "A"),
        ]);
        let now = 1_767_225_600.0;
        let a = synthetic_jobs(&g.state(), now, 50, 2.0).unwrap();
        let b = synthetic_jobs(&g.state(), now, 50, 2.0).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 50);
        assert!(a.iter().all(|j| j.t_inactive < now && j.t_inactive >= now - 14.0 * 86_400.0 - 4.0 * 3600.0));
        assert!(a.iter().all(|j| j.t_run < j.t_inactive && j.t_submit <= j.t_run));
        let ids: std::collections::BTreeSet<u64> = a.iter().map(|j| j.id).collect();
        assert_eq!(ids.len(), 50, "ids are unique");
        assert!(a.iter().all(|j| j.id < 1 << 63), "ids fit SQLite's integers");
    }
}
