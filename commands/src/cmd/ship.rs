//! `ship`: copy the ledger's new events to the accounting centre
//! (PostgreSQL; docs/centre.md).

use ledger::{Ledger, OpenMode};
use projections::model::State;

use crate::centre_view::CENTRE_URL_KEY;
use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Copy the ledger's events the accounting centre lacks to it, in seq
/// order and in batches, under this cluster's name. Each batch commits with
/// the cluster's shipped position, so a run cut short (or a centre outage)
/// only delays: the next run catches up. The centre checks the chain on
/// arrival and refuses a rewritten or forked history, naming the first
/// differing seq. Quiet unless `-v`; for cron or a systemd timer.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The centre: a libpq-style URL or connection string
    /// (`postgresql://user@host/db`, `postgresql://user@/db?host=/run/postgresql`,
    /// `host=/run/postgresql dbname=acct user=c1`). Default: the config
    /// key `centre_url`.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// The cluster's name at the centre. Kept in the ledger after the first
    /// ship; later runs may omit it, and another name is refused.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    /// Events per batch (one PostgreSQL transaction each).
    #[arg(long = "batch-events", value_name = "N", default_value_t = centre::ship::DEFAULT_BATCH_EVENTS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_events: u64,
    /// Centre admin: create the centre's schema (or migrate it), create the
    /// login role ROLE when missing, register `--cluster` for it (only
    /// ROLE may ship that cluster's rows), and ship nothing.
    #[arg(long, value_name = "ROLE", conflicts_with = "add_reader")]
    pub register: Option<String>,
    /// Centre admin: create the read-only login role ROLE (reads every
    /// cluster, writes none) and ship nothing.
    #[arg(long = "add-reader", value_name = "ROLE")]
    pub add_reader: Option<String>,
    /// Print one summary line.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Pure decision: the cluster name to ship under, from the name the ledger
/// recorded at its first ship and the one given now.
pub fn cluster_name(recorded: Option<&str>, given: Option<&str>) -> Result<String> {
    match (recorded, given) {
        (Some(r), Some(g)) if r != g => Err(Error::invalid(format!(
            "this ledger ships as cluster {r}; refusing --cluster {g} (a ledger has one name at the centre)"
        ))),
        (Some(r), _) => Ok(r.to_string()),
        (None, Some(g)) => {
            crate::validate::name("cluster", g)?;
            Ok(g.to_string())
        }
        (None, None) => Err(Error::invalid("no cluster name: give --cluster NAME for this ledger's first ship")),
    }
}

/// Pure decision: the centre's URL, from `--to` or the config key.
pub fn centre_url(state: &State<'_>, given: Option<&str>) -> Result<String> {
    match given {
        Some(u) => Ok(u.to_string()),
        None => state
            .config(CENTRE_URL_KEY)?
            .ok_or_else(|| Error::invalid(format!("no centre: give --to URL or set the config key {CENTRE_URL_KEY}"))),
    }
}

/// Runs `ship`.
pub fn cmd_ship(ctx: &Context, args: &Args) -> Result<Output> {
    if let Some(role) = &args.add_reader {
        let url = args.to.clone().ok_or_else(|| Error::invalid("--add-reader needs --to URL"))?;
        centre::schema::add_reader(&mut centre::connect(&url)?, role)?;
        return Ok(Output::none());
    }
    if let Some(role) = &args.register {
        let url = args.to.clone().ok_or_else(|| Error::invalid("--register needs --to URL"))?;
        let cluster = args.cluster.clone().ok_or_else(|| Error::invalid("--register needs --cluster NAME"))?;
        crate::validate::name("cluster", &cluster)?;
        centre::schema::register_cluster(&mut centre::connect(&url)?, &cluster, role)?;
        return Ok(Output::none());
    }
    let ledger = Ledger::open(&ctx.db_path, OpenMode::ReadOnly)?;
    let recorded = ledger::integrity::centre_cluster(ledger.conn())?;
    let cluster = cluster_name(recorded.as_deref(), args.cluster.as_deref())?;
    let url = centre_url(&State::new(ledger.conn()), args.to.as_deref())?;
    if recorded.is_none() {
        // Keep the name before the first event leaves: a run cut short
        // then resumes under it.
        let w = crate::db::open_write(ctx)?;
        ledger::integrity::record_centre_cluster(w.conn(), &cluster)?;
    }
    let mut client = centre::connect(&url)?;
    let opts = centre::ship::Options { batch_events: args.batch_events as usize };
    let shipped = centre::ship::ship(&ledger, &mut client, &cluster, &opts)?;
    if !args.verbose {
        return Ok(Output::none());
    }
    Ok(Output::text(format!(
        "ship: cluster {cluster}: {} event(s) in {} batch(es); the centre holds seq 1..{} ({:.2} s)\n",
        shipped.events,
        shipped.batches,
        shipped.shipped_seq,
        shipped.elapsed.as_secs_f64()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_no_recorded_name_when_one_is_given_then_it_is_used() {
        assert_eq!(cluster_name(None, Some("east")).unwrap(), "east");
    }

    #[test]
    fn given_a_recorded_name_when_none_is_given_then_it_is_kept() {
        assert_eq!(cluster_name(Some("east"), None).unwrap(), "east");
        assert_eq!(cluster_name(Some("east"), Some("east")).unwrap(), "east");
    }

    #[test]
    fn given_a_recorded_name_when_another_is_given_then_refused() {
        assert_eq!(
            cluster_name(Some("east"), Some("west")).unwrap_err().to_string(),
            "this ledger ships as cluster east; refusing --cluster west (a ledger has one name at the centre)"
        );
    }

    #[test]
    fn given_no_name_at_all_then_refused() {
        assert!(cluster_name(None, None).unwrap_err().to_string().contains("--cluster NAME"));
    }
}
