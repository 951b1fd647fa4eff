//! Reads across clusters: what the centre's projections hold.

use postgres::Client;

use crate::error::Result;

/// The clusters the centre knows, by name.
pub fn clusters(client: &mut Client) -> Result<Vec<String>> {
    Ok(client.query("SELECT name FROM clusters ORDER BY name", &[])?.into_iter().map(|r| r.get(0)).collect())
}

/// Resolves `--cluster NAME|all` to cluster names (an unknown name is an
/// error naming it).
pub fn resolve(client: &mut Client, which: &str) -> Result<Vec<String>> {
    let all = clusters(client)?;
    if which == "all" {
        return Ok(all);
    }
    if all.iter().any(|c| c == which) {
        Ok(vec![which.to_string()])
    } else {
        Err(crate::Error::Other(format!("the centre has no cluster {which} (it has: {})", all.join(", "))))
    }
}

/// A cluster's association rows as the cluster's `association_table` held
/// them at its last ship (column → value), by username and bank.
pub fn associations(client: &mut Client, cluster: &str) -> Result<Vec<serde_json::Value>> {
    rows_json(client, "SELECT row_json::text FROM associations WHERE cluster = $1 ORDER BY username, bank", cluster)
}

/// A cluster's bank rows (its `bank_table` at its last ship), in bank_id order.
pub fn banks(client: &mut Client, cluster: &str) -> Result<Vec<serde_json::Value>> {
    rows_json(
        client,
        "SELECT row_json::text FROM banks WHERE cluster = $1 ORDER BY (row_json->>'bank_id')::bigint",
        cluster,
    )
}

fn rows_json(client: &mut Client, sql: &str, cluster: &str) -> Result<Vec<serde_json::Value>> {
    client
        .query(sql, &[&cluster])?
        .into_iter()
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| crate::Error::Other(e.to_string())))
        .collect()
}

/// Loads a cluster's bank and association rows into `conn` (an empty
/// SQLite database with the projection tables: `projections::schema::create`),
/// so that the local read model and renderers show them as they show a
/// ledger's.
pub fn load_projection(client: &mut Client, cluster: &str, conn: &rusqlite::Connection) -> Result<()> {
    load_rows(conn, banks(client, cluster)?, associations(client, cluster)?)
}

/// Loads the several clusters' bank and association rows into `conn` as
/// one site: a bank or association present on several clusters is one row
/// (the first cluster's, in the order given) whose `job_usage` is the sum
/// over the clusters; banks are numbered in order of first appearance.
pub fn load_merged_projection(client: &mut Client, clusters: &[String], conn: &rusqlite::Connection) -> Result<()> {
    use std::collections::BTreeMap;
    let mut banks_out: Vec<serde_json::Value> = Vec::new();
    let mut bank_at: BTreeMap<String, usize> = BTreeMap::new();
    let mut assocs_out: Vec<serde_json::Value> = Vec::new();
    let mut assoc_at: BTreeMap<(String, String), usize> = BTreeMap::new();
    let add_usage = |row: &mut serde_json::Value, more: f64| {
        let now = row["job_usage"].as_f64().unwrap_or(0.0);
        row["job_usage"] = serde_json::json!(now + more);
    };
    for c in clusters {
        for row in banks(client, c)? {
            let name = row["bank"].as_str().unwrap_or_default().to_string();
            match bank_at.get(&name) {
                Some(&i) => add_usage(&mut banks_out[i], row["job_usage"].as_f64().unwrap_or(0.0)),
                None => {
                    let mut row = row;
                    row["bank_id"] = serde_json::json!(banks_out.len() as i64 + 1);
                    bank_at.insert(name, banks_out.len());
                    banks_out.push(row);
                }
            }
        }
        for row in associations(client, c)? {
            let key = (
                row["username"].as_str().unwrap_or_default().to_string(),
                row["bank"].as_str().unwrap_or_default().to_string(),
            );
            match assoc_at.get(&key) {
                Some(&i) => add_usage(&mut assocs_out[i], row["job_usage"].as_f64().unwrap_or(0.0)),
                None => {
                    assoc_at.insert(key, assocs_out.len());
                    assocs_out.push(row);
                }
            }
        }
    }
    load_rows(conn, banks_out, assocs_out)
}

fn load_rows(conn: &rusqlite::Connection, banks: Vec<serde_json::Value>, assocs: Vec<serde_json::Value>) -> Result<()> {
    for (table, rows) in [("bank_table", banks), ("association_table", assocs)] {
        conn.execute(&format!("DELETE FROM {table}"), [])?;
        for row in rows {
            let Some(obj) = row.as_object() else { continue };
            let cols: Vec<&String> = obj.keys().collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                cols.iter().map(|c| format!("\"{}\"", c.replace('"', "\"\""))).collect::<Vec<_>>().join(", "),
                (1..=cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
            );
            let values: Vec<rusqlite::types::Value> = obj.values().map(json_to_sql).collect();
            conn.execute(&sql, rusqlite::params_from_iter(values))?;
        }
    }
    Ok(())
}

fn json_to_sql(v: &serde_json::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(*b as i64),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// One job record at the centre.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    /// The cluster.
    pub cluster: String,
    /// Its seq in the cluster's log.
    pub seq: i64,
    /// Flux job id.
    pub id: u64,
    /// Submitting uid.
    pub userid: i64,
    /// User name, when recorded.
    pub username: Option<String>,
    /// Bank.
    pub bank: String,
    /// Run time (epoch seconds).
    pub t_run: f64,
    /// Inactive time.
    pub t_inactive: f64,
    /// Nodes.
    pub nnodes: i64,
}

/// A cluster's job records, in seq order.
pub fn job_records(client: &mut Client, cluster: &str) -> Result<Vec<JobRow>> {
    Ok(client
        .query(
            "SELECT cluster, seq, id::text, userid, username, bank, t_run, t_inactive, nnodes FROM job_records \
             WHERE cluster = $1 ORDER BY seq",
            &[&cluster],
        )?
        .into_iter()
        .map(|r| JobRow {
            cluster: r.get(0),
            seq: r.get(1),
            id: r.get::<_, String>(2).parse().unwrap_or(0),
            userid: r.get(3),
            username: r.get(4),
            bank: r.get(5),
            t_run: r.get(6),
            t_inactive: r.get(7),
            nnodes: r.get(8),
        })
        .collect())
}

/// Usage (`job_usage`) per user summed over every cluster, by username.
pub fn usage_by_user(client: &mut Client) -> Result<Vec<(String, f64)>> {
    Ok(client
        .query("SELECT username, job_usage FROM usage_by_user ORDER BY username", &[])?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Usage per association summed over every cluster but `except` (the
/// asking cluster's own usage is its ledger's), by username and bank.
pub fn usage_elsewhere(client: &mut Client, except: &str) -> Result<Vec<(String, String, f64)>> {
    Ok(client
        .query(
            "SELECT username, bank, sum(job_usage) FROM associations WHERE cluster <> $1 \
             GROUP BY username, bank ORDER BY username, bank",
            &[&except],
        )?
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Node usage (nnodes × elapsed) of the jobs that ended in `[from, end)`
/// and ran after `after`, grouped per cluster, uid, bank and node count:
/// what `view-usage-report` sums and bins, computed by PostgreSQL.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageGroup {
    /// The cluster.
    pub cluster: String,
    /// Uid.
    pub userid: i64,
    /// A recorded user name of the uid, if any.
    pub username: Option<String>,
    /// Bank.
    pub bank: String,
    /// Node count of the jobs.
    pub nnodes: i64,
    /// Sum of nnodes × (t_inactive − t_run), node-seconds.
    pub usage: f64,
}

/// The groups of [`UsageGroup`] for the clusters named: whole days from
/// the per-day usage (`usage_days`), the rest (the partial first and last
/// days, a margin of a day each side, and the jobs whose run day is near
/// `after`) from `job_records`, in three disjoint index range scans.
pub fn usage_groups(
    client: &mut Client,
    clusters: &[String],
    after: f64,
    end: f64,
    from: f64,
    userid: Option<i64>,
    bank: Option<&str>,
) -> Result<Vec<UsageGroup>> {
    // Whole days read from the aggregate: inactive day in [lo, hi), run day
    // >= rlo; a day of margin each side keeps every such record inside the
    // report's bounds despite rounding of t / 86400.
    let lo = (from / 86400.0).ceil() as i64 + 1;
    let hi = ((end / 86400.0).floor() as i64 - 1).max(lo);
    let rlo = (after / 86400.0).ceil() as i64 + 1;
    const DAY: &str = "floor(t_inactive / 86400)::bigint";
    const RUN_DAY: &str = "floor(t_run / 86400)::bigint";
    let sql = format!(
        "SELECT cluster, userid, max(username), bank, nnodes, sum(u) FROM (
            SELECT cluster, userid, username, bank, nnodes, usage AS u FROM usage_days
            WHERE cluster = ANY($1) AND inactive_day >= $7 AND inactive_day < $8 AND run_day >= $9 {filter}
          UNION ALL
            SELECT cluster, userid, username, bank, nnodes, nnodes * (t_inactive - t_run) FROM job_records
            WHERE cluster = ANY($1) AND {base} AND t_inactive < (($7 + 1) * 86400)::float8 AND {DAY} < $7
          UNION ALL
            SELECT cluster, userid, username, bank, nnodes, nnodes * (t_inactive - t_run) FROM job_records
            WHERE cluster = ANY($1) AND {base} AND t_inactive >= (($8 - 1) * 86400)::float8 AND {DAY} >= $8
          UNION ALL
            SELECT cluster, userid, username, bank, nnodes, nnodes * (t_inactive - t_run) FROM job_records
            WHERE cluster = ANY($1) AND {base} AND t_run < (($9 + 1) * 86400)::float8
              AND {DAY} >= $7 AND {DAY} < $8 AND {RUN_DAY} < $9
         ) g GROUP BY cluster, userid, bank, nnodes ORDER BY cluster, userid, bank, nnodes",
        filter = "AND bank <> '' AND ($5::bigint IS NULL OR userid = $5) AND ($6::text IS NULL OR bank = $6)",
        base = "t_inactive >= $4 AND t_inactive < $3 AND t_run > $2 \
                AND bank <> '' AND ($5::bigint IS NULL OR userid = $5) AND ($6::text IS NULL OR bank = $6)",
    );
    Ok(client
        .query(&sql, &[&clusters, &after, &end, &from, &userid, &bank, &lo, &hi, &rlo])?
        .into_iter()
        .map(|r| UsageGroup {
            cluster: r.get(0),
            userid: r.get(1),
            username: r.get(2),
            bank: r.get(3),
            nnodes: r.get(4),
            usage: r.get(5),
        })
        .collect())
}

/// Copies a cluster's job events (`JobRecorded`, `JobRejected`,
/// `JobsScrubbed`) from the centre into an `events` table created on
/// `conn` with the ledger's columns, so that the ledger's `jobs` view and
/// job index (`projections::schema::create`) read them as they read a
/// ledger's. Returns the latest `JobsScrubbed` cut, if any.
pub fn load_job_log(client: &mut Client, cluster: &str, conn: &rusqlite::Connection) -> Result<Option<f64>> {
    conn.execute_batch(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, recorded_at INTEGER NOT NULL, actor_uid INTEGER NOT NULL, \
         actor_name TEXT NOT NULL, argv TEXT NOT NULL, kind TEXT NOT NULL, version INTEGER NOT NULL, \
         payload BLOB NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL); BEGIN",
    )?;
    let mut cut: Option<f64> = None;
    {
        let mut ins = conn.prepare("INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?;
        let rows = client.query(
            "SELECT seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash \
             FROM events WHERE cluster = $1 AND kind IN ('JobRecorded', 'JobRejected', 'JobsScrubbed') ORDER BY seq",
            &[&cluster],
        )?;
        for r in rows {
            let kind: String = r.get(5);
            let payload: Vec<u8> = r.get(7);
            if kind == "JobsScrubbed" {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&payload) {
                    let before = v["before"].as_f64();
                    cut = match (cut, before) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            ins.execute(rusqlite::params![
                r.get::<_, i64>(0),
                r.get::<_, i64>(1),
                r.get::<_, i64>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                kind,
                r.get::<_, i32>(6),
                payload,
                r.get::<_, Vec<u8>>(8),
                r.get::<_, Vec<u8>>(9),
            ])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(cut)
}
