//! Shipping a cluster's ledger to the centre: its new events in seq order,
//! in batches keyed `(cluster, seq)`, each batch committed with the
//! cluster's shipped position, checked against the centre's copy of the
//! chain on arrival.
//!
//! A batch is sent with `COPY … FROM STDIN (FORMAT binary)` into a
//! temporary staging table, checked by one statement (a seq already stored
//! with other bytes; a `prev_hash` that is not the hash of the event
//! before it, in the batch or in the centre's copy) and moved by one
//! statement per table. The cluster's row in `clusters` is locked for the
//! batch (`SELECT … FOR UPDATE`), so two shippers of one cluster take
//! turns and the second starts where the first stopped.

use std::time::{Duration, Instant};

use fluxacct_core::{EventHash, Seq};
use ledger::Ledger;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, Transaction};

use crate::error::{Error, Result};
use crate::schema;

/// Events per batch by default.
pub const DEFAULT_BATCH_EVENTS: usize = 50_000;

/// How to ship.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events per batch (each batch is one PostgreSQL transaction).
    pub batch_events: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { batch_events: DEFAULT_BATCH_EVENTS }
    }
}

/// What a ship did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shipped {
    /// Events the centre stored in this run.
    pub events: u64,
    /// Batches committed.
    pub batches: u64,
    /// The cluster's shipped position at the centre after this run.
    pub shipped_seq: u64,
    /// The ledger's head when the run started (what it shipped up to).
    pub head_seq: u64,
    /// Time spent, for the summary line.
    pub elapsed: Duration,
}

const STAGING_DDL: &str = "CREATE TEMP TABLE IF NOT EXISTS centre_staging (
    seq bigint, recorded_at bigint, actor_uid bigint, actor_name text, argv text,
    kind text, version integer, payload bytea, prev_hash bytea, hash bytea
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS centre_job_staging (
    seq bigint, id numeric(20), userid bigint, username text, bank text, project text, queue text,
    t_submit float8, t_run float8, t_inactive float8, nnodes bigint, ncores bigint, ngpus bigint,
    requested_duration float8
) ON COMMIT DELETE ROWS";

/// The check of a batch once stored in `events`, one statement over the
/// range of its primary key from the shipped position (`$2`) to the batch's
/// last seq (`$3`): the first seq whose `prev_hash` is not the hash of the
/// stored event before it, or that leaves a gap. A seq the centre already
/// holds cannot be stored twice (the primary key refuses the batch).
const CHECK_SQL: &str = "
SELECT seq FROM (
    SELECT seq, prev_hash, lag(seq) OVER w AS before_seq, lag(hash) OVER w AS before_hash
    FROM events WHERE cluster = $1 AND seq BETWEEN $2 AND $3 WINDOW w AS (ORDER BY seq)
) c
WHERE c.seq > $2 AND CASE
    WHEN c.seq = 1 THEN c.prev_hash IS DISTINCT FROM '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
    ELSE c.before_seq IS DISTINCT FROM c.seq - 1 OR c.prev_hash IS DISTINCT FROM c.before_hash END
ORDER BY seq LIMIT 1";

/// Moves the staged events into `events`.
const MOVE_EVENTS_SQL: &str = "
INSERT INTO events (cluster, seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash)
SELECT $1, seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash
FROM centre_staging";

/// Moves the job records the shipper decoded into `job_records`.
const MOVE_JOBS_SQL: &str = "
INSERT INTO job_records (cluster, seq, id, userid, username, bank, project, queue, t_submit, t_run,
                         t_inactive, nnodes, ncores, ngpus, requested_duration)
SELECT $1, seq, id, userid, username, bank, project, queue, t_submit, t_run,
       t_inactive, nnodes, ncores, ngpus, requested_duration
FROM centre_job_staging";

/// Adds the staged job records' node-seconds to the per-day usage.
const ADD_USAGE_DAYS_SQL: &str = "
INSERT INTO usage_days (cluster, inactive_day, run_day, userid, bank, nnodes, username, usage)
SELECT $1, floor(t_inactive / 86400)::bigint, floor(t_run / 86400)::bigint, userid, bank, nnodes,
       max(username), sum(nnodes * (t_inactive - t_run))
FROM centre_job_staging GROUP BY 2, 3, 4, 5, 6
ON CONFLICT (cluster, inactive_day, run_day, userid, bank, nnodes) DO UPDATE
SET usage = usage_days.usage + excluded.usage, username = greatest(usage_days.username, excluded.username)";

/// The job records of a cluster's stored `JobRecorded` events projected
/// from their payloads on the PostgreSQL side (`json_to_record`), in the
/// columns and order of `job_records`: the twin of the shipper's decoding,
/// which a test holds equal to what the shipper stored. `$1` the cluster.
pub const PROJECT_JOBS_SQL: &str = "
SELECT e.cluster, e.seq, j.id, j.userid, j.username, j.bank, j.project, j.queue, j.t_submit, j.t_run,
       j.t_inactive, j.nnodes, j.ncores, j.ngpus, j.requested_duration
FROM events e,
     json_to_record(convert_from(e.payload, 'UTF8')::json) AS j(id numeric, userid bigint, username text,
         bank text, project text, queue text, t_submit float8, t_run float8, t_inactive float8, nnodes bigint,
         ncores bigint, ngpus bigint, requested_duration float8)
WHERE e.cluster = $1 AND e.kind = 'JobRecorded' AND e.version = 1 ORDER BY e.seq";

fn hash_bytes(h: &EventHash) -> Vec<u8> {
    h.0.to_vec()
}

/// Ships `ledger`'s events the centre lacks, as `cluster`. The ledger is
/// read in one read transaction (a consistent snapshot: its head, events
/// and projections); events appended meanwhile go with the next run.
pub fn ship(ledger: &Ledger, client: &mut Client, cluster: &str, opts: &Options) -> Result<Shipped> {
    let started = Instant::now();
    schema::ensure(client)?;
    client.batch_execute(STAGING_DDL)?;
    let conn = ledger.conn();
    conn.execute_batch("BEGIN")?;
    let result = ship_snapshot(ledger, client, cluster, opts);
    let _ = conn.execute_batch("COMMIT");
    result.map(|mut s| {
        s.elapsed = started.elapsed();
        s
    })
}

fn local_hash(ledger: &Ledger, seq: u64) -> Result<Option<EventHash>> {
    Ok(ledger.event(Seq(seq))?.map(|e| e.hash))
}

fn centre_hash(tx: &mut Transaction<'_>, cluster: &str, seq: u64) -> Result<Option<Vec<u8>>> {
    Ok(tx
        .query_opt("SELECT hash FROM events WHERE cluster = $1 AND seq = $2", &[&cluster, &(seq as i64)])?
        .map(|r| r.get(0)))
}

/// The first seq at which the ledger and the centre's copy differ, given
/// that they differ at `differs` (both chains are hash-linked, so equal
/// hashes at a seq mean equal histories up to it: a binary search).
fn first_difference(ledger: &Ledger, tx: &mut Transaction<'_>, cluster: &str, differs: u64) -> Result<u64> {
    let (mut same, mut diff) = (0u64, differs);
    while diff - same > 1 {
        let mid = same + (diff - same) / 2;
        let here = local_hash(ledger, mid)?.map(|h| hash_bytes(&h));
        if here.is_some() && here == centre_hash(tx, cluster, mid)? {
            same = mid;
        } else {
            diff = mid;
        }
    }
    Ok(diff)
}

fn refused(cluster: &str, seq: u64, why: &str) -> Error {
    Error::Refused { cluster: cluster.to_string(), seq, why: why.to_string() }
}

/// Binds the cluster name to this ledger's chain (its first event's hash)
/// at the first ship; refuses a name bound to another chain.
fn bind_name(client: &mut Client, cluster: &str, genesis_hash: &EventHash) -> Result<()> {
    let genesis = hash_bytes(genesis_hash);
    let row = client.query_opt("SELECT genesis_hash FROM clusters WHERE name = $1", &[&cluster])?;
    match row {
        Some(r) => match r.get::<_, Option<Vec<u8>>>(0) {
            Some(g) if g == genesis => Ok(()),
            Some(_) => Err(Error::NameTaken { cluster: cluster.to_string() }),
            None => {
                client.execute(
                    "UPDATE clusters SET genesis_hash = $2 WHERE name = $1 AND genesis_hash IS NULL",
                    &[&cluster, &genesis],
                )?;
                bind_name(client, cluster, genesis_hash)
            }
        },
        None => {
            let inserted = client.execute(
                "INSERT INTO clusters(name, role, genesis_hash) VALUES ($1, current_user, $2) ON CONFLICT DO NOTHING",
                &[&cluster, &genesis],
            );
            match inserted {
                Ok(1) => Ok(()),
                // Another shipper registered it meanwhile: check its chain.
                Ok(_) => bind_name(client, cluster, genesis_hash),
                Err(e) => Err(Error::Other(format!(
                    "cluster {cluster}: not registered at the centre for this role, and this role cannot register it \
                     ({}); the centre's admin registers it: flux account ship --to URL --cluster {cluster} --register ROLE",
                    Error::from(e)
                ))),
            }
        }
    }
}

fn ship_snapshot(ledger: &Ledger, client: &mut Client, cluster: &str, opts: &Options) -> Result<Shipped> {
    let Some((head, _)) = ledger.head()? else {
        return Ok(Shipped::default());
    };
    let head = head.0;
    let genesis = ledger.event(Seq(1))?.ok_or_else(|| Error::Other("ledger: no event at seq 1".into()))?;
    bind_name(client, cluster, &genesis.hash)?;
    let mut out = Shipped { head_seq: head, ..Default::default() };
    let batch = opts.batch_events.max(1) as u64;
    // A seq found unlinked, and why: nothing from it on is stored.
    let mut cap: Option<(u64, String)> = None;
    loop {
        let mut tx = client.transaction()?;
        let row = tx
            .query_opt("SELECT shipped_seq, projected_seq FROM clusters WHERE name = $1 FOR UPDATE", &[&cluster])?
            .ok_or_else(|| Error::NameTaken { cluster: cluster.to_string() })?;
        let shipped = row.get::<_, i64>(0) as u64;
        let projected = row.get::<_, i64>(1) as u64;
        out.shipped_seq = shipped;
        if shipped > 0 {
            let at = shipped.min(head);
            let here = local_hash(ledger, at)?.map(|h| hash_bytes(&h));
            if here.is_none() || here != centre_hash(&mut tx, cluster, at)? {
                let seq = first_difference(ledger, &mut tx, cluster, at)?;
                return Err(refused(
                    cluster,
                    seq,
                    "the centre's copy of this seq differs (the cluster's history was rewritten or forked after it was shipped); nothing after it is stored",
                ));
            }
            if shipped > head {
                return Err(refused(
                    cluster,
                    head + 1,
                    &format!(
                        "the centre holds this cluster's events up to seq {shipped} but the ledger ends at seq {head} \
                         (restored from an older backup?)"
                    ),
                ));
            }
        }
        if shipped == head {
            if projected != head {
                upload_projections(ledger, &mut tx, cluster, head)?;
                tx.commit()?;
            }
            return Ok(out);
        }
        let (first, mut last) = (shipped + 1, (shipped + batch).min(head));
        if let Some((seq, _)) = &cap {
            last = last.min(seq - 1);
        }
        let prev = if shipped == 0 {
            EventHash([0u8; 32])
        } else {
            local_hash(ledger, shipped)?.ok_or_else(|| Error::Other(format!("ledger: no event at seq {shipped}")))?
        };
        let staged = if last >= first { stage(ledger, &mut tx, first, last, prev)? } else { Staged::default() };
        if let Some(seq) = staged.unlinked {
            cap = Some((seq, "its prev_hash is not the hash of the event before it".to_string()));
        }
        let moved = tx.execute(MOVE_EVENTS_SQL, &[&cluster])?;
        if tx.execute(MOVE_JOBS_SQL, &[&cluster])? > 0 {
            tx.execute(ADD_USAGE_DAYS_SQL, &[&cluster])?;
        }
        let new_pos = shipped + moved;
        if new_pos > shipped {
            // Checked on arrival: the stored range links to the centre's copy.
            let bad: Option<i64> =
                tx.query_opt(CHECK_SQL, &[&cluster, &(shipped as i64), &(new_pos as i64)])?.map(|r| r.get(0));
            if let Some(seq) = bad {
                // Store nothing from the unlinked seq on: this batch is
                // rolled back and shipped again up to the seq before it.
                drop(tx);
                cap = Some((
                    seq as u64,
                    "its prev_hash is not the hash of the centre's copy of the event before it".into(),
                ));
                continue;
            }
            let h = local_hash(ledger, new_pos)?.map(|h| hash_bytes(&h));
            tx.execute(
                "UPDATE clusters SET shipped_seq = $2, shipped_hash = $3 WHERE name = $1",
                &[&cluster, &(new_pos as i64), &h],
            )?;
        }
        let stopped = cap.as_ref().filter(|(seq, _)| new_pos + 1 >= *seq);
        if stopped.is_none() && new_pos == head {
            upload_projections(ledger, &mut tx, cluster, head)?;
        }
        tx.commit()?;
        out.events += moved;
        out.batches += 1;
        out.shipped_seq = new_pos;
        if let Some((seq, why)) = stopped {
            return Err(refused(cluster, *seq, &format!("{why}; nothing after it is stored")));
        }
    }
}

/// What [`stage`] staged.
#[derive(Debug, Default)]
struct Staged {
    /// The first seq whose `prev_hash` is not the hash of the event before
    /// it (not staged, nor anything after it).
    unlinked: Option<u64>,
}

/// Copies the ledger's events `first..=last` into the staging table,
/// checking each against its own hash and its link to the one before it
/// (`prev`, the hash of the event before `first`) on the way, and the job
/// records of its `JobRecorded` events, decoded, into the job staging table.
fn stage(ledger: &Ledger, tx: &mut Transaction<'_>, first: u64, last: u64, mut prev: EventHash) -> Result<Staged> {
    let sink = tx.copy_in(
        "COPY centre_staging (seq, recorded_at, actor_uid, actor_name, argv, kind, version, payload, prev_hash, hash) \
         FROM STDIN (FORMAT binary)",
    )?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT4,
        Type::BYTEA,
        Type::BYTEA,
        Type::BYTEA,
    ];
    let mut w = BinaryCopyInWriter::new(sink, &types);
    let mut jobs = Vec::new();
    let mut staged = Staged::default();
    for ev in ledger.stream_range(Seq(first), Seq(last)) {
        let ev = ev?;
        if ev.compute_hash() != ev.hash {
            return Err(Error::Other(format!(
                "ledger: event seq {} does not match its hash (the local chain is broken): run `flux account verify`",
                ev.seq.0
            )));
        }
        if ev.prev_hash != prev {
            staged.unlinked = Some(ev.seq.0);
            break;
        }
        prev = ev.hash;
        if ev.kind == "JobRecorded" && ev.version == 1 {
            job_copy_line(&mut jobs, ev.seq.0, &ev.payload)?;
        }
        let argv = serde_json::to_string(&ev.argv).map_err(|e| Error::Other(e.to_string()))?;
        let prev_bytes = hash_bytes(&ev.prev_hash);
        let hash = hash_bytes(&ev.hash);
        w.write(&[
            &(ev.seq.0 as i64),
            &ev.recorded_at_us,
            &(ev.actor.uid as i64),
            &ev.actor.name,
            &argv,
            &ev.kind,
            &(ev.version as i32),
            &ev.payload,
            &prev_bytes,
            &hash,
        ])?;
    }
    w.finish()?;
    if !jobs.is_empty() {
        use std::io::Write;
        let mut sink = tx.copy_in(
            "COPY centre_job_staging (seq, id, userid, username, bank, project, queue, t_submit, t_run, t_inactive, \
             nnodes, ncores, ngpus, requested_duration) FROM STDIN",
        )?;
        sink.write_all(&jobs).map_err(|e| Error::Other(format!("copying job records: {e}")))?;
        sink.finish()?;
    }
    Ok(staged)
}

/// Appends one `JobRecorded` payload's job record as a line of COPY's text
/// format. Numbers go as serde_json reads them (floats in shortest
/// round-trip form, which PostgreSQL reads back to the same double).
fn job_copy_line(out: &mut Vec<u8>, seq: u64, payload: &[u8]) -> Result<()> {
    use std::io::Write;
    let j: fluxacct_core::events::JobRecorded = serde_json::from_slice(payload)
        .map_err(|e| Error::Other(format!("ledger: event seq {seq}: JobRecorded payload: {e}")))?;
    let io = |e: std::io::Error| Error::Other(e.to_string());
    write!(out, "{seq}\t{}\t{}\t", j.id, j.userid).map_err(io)?;
    match &j.username {
        Some(u) => copy_text(out, u),
        None => out.extend_from_slice(b"\\N"),
    }
    for t in [&j.bank, &j.project, &j.queue] {
        out.push(b'\t');
        copy_text(out, t);
    }
    writeln!(
        out,
        "\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        j.t_submit, j.t_run, j.t_inactive, j.nnodes, j.ncores, j.ngpus, j.requested_duration
    )
    .map_err(io)?;
    Ok(())
}

/// A text value escaped for COPY's text format.
fn copy_text(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// One projection table's rows as a JSON array of objects (column → value).
fn table_json(conn: &rusqlite::Connection, sql: &str) -> Result<String> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut obj = serde_json::Map::new();
        for (i, n) in names.iter().enumerate() {
            use rusqlite::types::ValueRef;
            let v = match r.get_ref(i)? {
                ValueRef::Null => serde_json::Value::Null,
                ValueRef::Integer(x) => x.into(),
                ValueRef::Real(x) => serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                ValueRef::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect::<String>().into(),
            };
            obj.insert(n.clone(), v);
        }
        out.push(serde_json::Value::Object(obj));
    }
    serde_json::to_string(&out).map_err(|e| Error::Other(e.to_string()))
}

/// Replaces the cluster's bank and association rows with the ledger's own
/// projections as of `head` (the snapshot the ship read), in the batch
/// that brings the shipped position to `head`.
fn upload_projections(ledger: &Ledger, tx: &mut Transaction<'_>, cluster: &str, head: u64) -> Result<()> {
    let conn = ledger.conn();
    let banks = table_json(conn, "SELECT * FROM bank_table ORDER BY bank_id")?;
    let assocs = table_json(conn, "SELECT * FROM association_table ORDER BY username, bank")?;
    tx.execute("DELETE FROM banks WHERE cluster = $1", &[&cluster])?;
    tx.execute("DELETE FROM associations WHERE cluster = $1", &[&cluster])?;
    tx.execute(
        "INSERT INTO banks (cluster, bank, parent_bank, shares, active, job_usage, row_json)
         SELECT $1, r->>'bank', r->>'parent_bank', (r->>'shares')::bigint, (r->>'active')::bigint,
                (r->>'job_usage')::float8, r
         FROM jsonb_array_elements($2::text::jsonb) r",
        &[&cluster, &banks],
    )?;
    tx.execute(
        "INSERT INTO associations (cluster, username, bank, userid, shares, active, job_usage, fairshare, row_json)
         SELECT $1, r->>'username', r->>'bank', (r->>'userid')::bigint, (r->>'shares')::bigint,
                (r->>'active')::bigint, (r->>'job_usage')::float8, (r->>'fairshare')::float8, r
         FROM jsonb_array_elements($2::text::jsonb) r",
        &[&cluster, &assocs],
    )?;
    tx.execute("UPDATE clusters SET projected_seq = $2 WHERE name = $1", &[&cluster, &(head as i64)])?;
    Ok(())
}

/// Walks the centre's copy of a cluster's chain: every event's `prev_hash`
/// is the hash of the event before it and seqs have no gap. Returns the
/// number of events, or the first bad seq.
pub fn verify_centre_chain(client: &mut Client, cluster: &str) -> Result<std::result::Result<u64, u64>> {
    let row = client.query_one(
        "SELECT count(*), min(seq) FILTER (WHERE NOT ok) FROM (
             SELECT seq, prev_hash = coalesce(lag(hash) OVER w,
                 '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
               AND seq = row_number() OVER w AS ok
             FROM events WHERE cluster = $1 WINDOW w AS (ORDER BY seq)) c",
        &[&cluster],
    )?;
    let n: i64 = row.get(0);
    Ok(match row.get::<_, Option<i64>>(1) {
        None => Ok(n as u64),
        Some(bad) => Err(bad as u64),
    })
}
