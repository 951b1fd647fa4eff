//! Reads from the accounting centre (`--centre URL --cluster NAME|all`):
//! the centre's copy of each cluster's projections loaded into an
//! in-memory projection database, so that the local read model and
//! renderers show them exactly as they show a ledger's (docs/centre.md).

use projections::model::State;
use serde_json::json;

use crate::error::{Error, Result};
use crate::format::Rows;

/// The config key naming the centre (`ship` without `--to`, and
/// `update-fshare` with `fairshare_scope = centre`).
pub const CENTRE_URL_KEY: &str = "centre_url";

/// The options of a read command that can read the centre instead of the
/// ledger.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CentreArgs {
    /// Read the accounting centre at this URL instead of the ledger (a
    /// libpq-style URL or connection string; a read-only report role is enough).
    #[arg(long, value_name = "URL", requires = "cluster")]
    pub centre: Option<String>,
    /// With `--centre`: one cluster's rows, or `all` (rows get a `cluster` column).
    #[arg(long, value_name = "NAME|all", requires = "centre")]
    pub cluster: Option<String>,
}

/// One cluster's projections as the centre holds them.
pub struct ClusterView {
    /// The cluster.
    pub name: String,
    /// An in-memory database with the projection tables, holding them.
    pub conn: rusqlite::Connection,
}

impl ClusterView {
    /// The read model over it.
    pub fn state(&self) -> State<'_> {
        State::new(&self.conn)
    }
}

/// Connects to the centre and resolves `--cluster`.
pub fn open(args: &CentreArgs) -> Result<Option<(postgres::Client, Vec<String>)>> {
    let Some(url) = &args.centre else { return Ok(None) };
    let which = args.cluster.as_deref().ok_or_else(|| Error::invalid("--centre needs --cluster NAME|all"))?;
    let mut client = centre::connect(url)?;
    let names = centre::read::resolve(&mut client, which)?;
    Ok(Some((client, names)))
}

/// The clusters' projections, loaded from the centre.
pub fn views(client: &mut postgres::Client, names: &[String]) -> Result<Vec<ClusterView>> {
    names
        .iter()
        .map(|name| {
            let conn = rusqlite::Connection::open_in_memory()?;
            projections::schema::create(&conn)?;
            centre::read::load_projection(client, name, &conn)?;
            Ok(ClusterView { name: name.clone(), conn })
        })
        .collect()
}

/// The clusters' projections and job records (for `view-job-records`):
/// each view also holds the cluster's job events, under the ledger's
/// `jobs` view and job index.
pub fn job_views(client: &mut postgres::Client, names: &[String]) -> Result<Vec<ClusterView>> {
    names
        .iter()
        .map(|name| {
            let conn = rusqlite::Connection::open_in_memory()?;
            let cut = centre::read::load_job_log(client, name, &conn)?;
            projections::schema::create(&conn)?;
            centre::read::load_projection(client, name, &conn)?;
            if let Some(cut) = cut {
                conn.execute(
                    "INSERT OR REPLACE INTO usage_state(key, value) VALUES ('jobs_scrubbed_before', ?1)",
                    [cut],
                )?;
            }
            Ok(ClusterView { name: name.clone(), conn })
        })
        .collect()
}

/// The clusters' projections as one site: banks and associations found on
/// several clusters are one row with the usage summed over them, and the
/// fair-share is recomputed over the summed usage (what `fairshare_scope =
/// centre` would give a cluster holding every association).
pub fn merged(client: &mut postgres::Client, names: &[String]) -> Result<ClusterView> {
    let conn = rusqlite::Connection::open_in_memory()?;
    projections::schema::create(&conn)?;
    centre::read::load_merged_projection(client, names, &conn)?;
    if names.len() > 1 {
        let values = projections::usage::fairshare_values(&conn)?;
        let mut stmt = conn.prepare("UPDATE association_table SET fairshare = ?3 WHERE username = ?1 AND bank = ?2")?;
        for v in &values {
            stmt.execute(rusqlite::params![v.username, v.bank, fluxacct_core::fairshare::round6(v.fairshare)])?;
        }
    }
    Ok(ClusterView { name: names.join(","), conn })
}

/// Rows of several clusters as one list with a leading `cluster` column.
pub fn with_cluster_column(parts: Vec<(String, Rows)>) -> Rows {
    let mut columns = vec!["cluster".to_string()];
    if let Some((_, first)) = parts.first() {
        columns.extend(first.columns.iter().cloned());
    }
    let mut out = Rows { columns, rows: Vec::new() };
    for (cluster, rows) in parts {
        for mut r in rows.rows {
            r.insert(0, json!(cluster));
            out.rows.push(r);
        }
    }
    out
}
