//! `priority-update`: write the plugin snapshot and tell mf_priority.so to
//! load it.

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::snapshot::{default_snapshot_path, write_snapshot};
use crate::usage_view::summary;

/// Write the priority plugin's snapshot (a compact, checksummed MessagePack
/// file reflecting the ledger head), then ask mf_priority.so in the Flux
/// instance (FLUX_URI, or the system instance) to load it and reprioritize
/// all jobs. Fails (after writing the snapshot) when no instance can be
/// reached, unless --no-flux is given.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Where to write the snapshot (default: `<db>.snapshot`).
    #[arg(long)]
    pub snapshot: Option<std::path::PathBuf>,
    /// Only write the snapshot; do not contact Flux (and do not fail
    /// without it).
    #[arg(long = "no-flux")]
    pub no_flux: bool,
    /// Print one summary line: associations that differ from the
    /// previous snapshot, and the time taken.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// The association records of the snapshot at `path` (none when there is
/// no readable snapshot).
fn association_records(path: &std::path::Path) -> Vec<fluxacct_core::snapshot::AssociationRecord> {
    match fluxacct_core::snapshot::Snapshot::read(path) {
        Ok(s) => s.associations.iter().map(|a| s.association_record(a)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Runs `priority-update`.
pub fn cmd_priority_update(ctx: &Context, args: &Args) -> Result<Output> {
    // Writing the plugin's snapshot is a write: the owner's alone, refused
    // in the same line as every other write.
    crate::db::check_owner(ctx)?;
    let path = args.snapshot.clone().unwrap_or_else(|| default_snapshot_path(&ctx.db_path));
    let path = std::path::absolute(&path).unwrap_or(path);
    // The pipeline does not build on a broken chain: no new snapshot while
    // a break is recorded (the plugin keeps its last good one).
    {
        let ledger = ledger::Ledger::open(&ctx.db_path, ledger::OpenMode::ReadOnly)?;
        if let Some(f) = ledger::integrity::chain_state(ledger.conn())?.broken {
            return Err(crate::chain::broken(f));
        }
    }
    let started = std::time::Instant::now();
    let previous = if args.verbose { association_records(&path) } else { Vec::new() };
    let head = write_snapshot(ctx, &path)?;
    let summary = if args.verbose {
        let now = association_records(&path);
        let changed = now.iter().filter(|a| !previous.contains(a)).count();
        Some(summary("priority-update", "changed in the snapshot", changed, now.len(), started.elapsed()))
    } else {
        None
    };
    let mut out = format!("wrote snapshot {} (seq {}, hash {})\n", path.display(), head.seq, head.hash);
    let with_summary = |mut out: String| {
        out.extend(summary.clone());
        Output::text(out)
    };
    if args.no_flux {
        return Ok(with_summary(out));
    }
    match fluxacct_flux::Flux::open(&ctx.flux_env) {
        Err(why) => Err(Error::io_msg(format!(
            "wrote snapshot {}, but mf_priority.so was not told to load it: {why} (use --no-flux to only write the snapshot)",
            path.display()
        ))),
        Ok(flux) => {
            let payload = serde_json::json!({ "path": path.display().to_string() }).to_string();
            let reply = flux.rpc("job-manager.mf_priority.load_snapshot", Some(&payload))?;
            out.push_str(&format!("mf_priority.so loaded the snapshot: {}\n", reply.unwrap_or_default()));
            Ok(with_summary(out))
        }
    }
}
