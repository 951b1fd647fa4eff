//! `metrics`: the ledger's state as OpenMetrics text, printed once or
//! served over HTTP (the work is in the `fluxacct-metrics` crate).

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::snapshot::default_snapshot_path;

/// Print the ledger's state in the OpenMetrics text format (Prometheus's
/// exposition format): usage, fair-share, shares and limits per
/// association and bank, queue priorities, allocation balances, and the
/// ledger's health (head, verification, the pipeline's last runs, job
/// counters, the plugin snapshot, the journal follower). It opens the
/// ledger read-only, so any user who can read the ledger may run it. With
/// --listen it serves the same text on /metrics over HTTP instead, reading
/// the ledger again at most once per --cache-seconds, until stopped.
/// docs/metrics.md lists every metric.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Serve on ADDR:PORT (e.g. 127.0.0.1:9792) instead of printing once.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// With --listen: how long one reading of the ledger is served before
    /// the next scrape reads it again.
    #[arg(long = "cache-seconds", value_name = "SECONDS", default_value_t = 2.0)]
    pub cache_seconds: f64,
    /// Print in this format: `openmetrics` (the default) or `prometheus`,
    /// the classic text format (0.0.4) that `promtool check metrics`
    /// lints. With --listen the scraper's Accept header chooses.
    #[arg(long, value_name = "FORMAT", default_value = "openmetrics", value_parser = ["openmetrics", "prometheus"])]
    pub format: String,
    /// The plugin snapshot to report on (default: `<db>.snapshot`).
    #[arg(long, value_name = "PATH")]
    pub snapshot: Option<std::path::PathBuf>,
}

fn err(e: metrics::Error) -> Error {
    match e {
        metrics::Error::Ledger(e) => Error::Ledger(e),
        metrics::Error::Projection(e) => Error::Projection(e),
        metrics::Error::Sqlite(e) => Error::Sqlite(e),
        metrics::Error::Invalid(m) => Error::Invalid(m),
        metrics::Error::Io(m) => Error::io_msg(m),
    }
}

/// Runs `metrics`.
pub fn cmd_metrics(ctx: &Context, args: &Args) -> Result<Output> {
    if ctx.as_of.is_some() {
        return Err(Error::invalid("--as-of cannot be used with metrics: they show the ledger as it is"));
    }
    if !(args.cache_seconds.is_finite() && args.cache_seconds >= 0.0) {
        return Err(Error::invalid(format!("--cache-seconds must be a number of seconds, not {}", args.cache_seconds)));
    }
    let snapshot = args.snapshot.clone().unwrap_or_else(|| default_snapshot_path(&ctx.db_path));
    let Some(listen) = &args.listen else {
        let scrape = metrics::gather(&ctx.db_path, &snapshot, ctx.clock.now_us()).map_err(err)?;
        let text = metrics::encode(&scrape);
        return Ok(Output::text(if args.format == "prometheus" { metrics::to_classic_text(&text) } else { text }));
    };
    // Refuse a ledger that cannot be read before listening, in one line.
    metrics::gather(&ctx.db_path, &snapshot, ctx.clock.now_us()).map_err(err)?;
    let opts = metrics::ServeOptions {
        listen: listen.clone(),
        db: ctx.db_path.clone(),
        snapshot,
        cache: std::time::Duration::from_secs_f64(args.cache_seconds),
    };
    let now = || ctx.clock.now_us();
    let listening = |addr: std::net::SocketAddr| {
        ctx.progress.notice(&format!("flux-account: serving metrics on http://{addr}/metrics"))
    };
    metrics::serve(&opts, &now, &listening).map_err(err)?;
    Ok(Output::default())
}
