//! The centre's schema in PostgreSQL: migrations keyed on a schema version
//! (`centre_meta.schema_version`), as the ledger's are keyed on SQLite's
//! `user_version`, and the roles: one login role per cluster (member of
//! `fluxacct_shipper`), which row-level security limits to its own
//! cluster's rows, and `fluxacct_report`, which reads everything.

use postgres::Client;

use crate::error::{Error, Result};

/// The group role every cluster's shipping role belongs to.
pub const SHIPPER_ROLE: &str = "fluxacct_shipper";
/// The read-only group role for reports.
pub const REPORT_ROLE: &str = "fluxacct_report";

/// Ordered migrations. Entry `i` takes the centre from schema version `i`
/// to `i + 1`; each runs in one transaction with the version update.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: clusters, the events per cluster, the job records projected
    // from them, the clusters' association and bank projections, the
    // roles and row-level security.
    r#"
    DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fluxacct_shipper') THEN
            CREATE ROLE fluxacct_shipper NOLOGIN;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'fluxacct_report') THEN
            CREATE ROLE fluxacct_report NOLOGIN;
        END IF;
    END $$;

    CREATE TABLE clusters (
        name          text   PRIMARY KEY,
        role          name   NOT NULL,
        genesis_hash  bytea,
        shipped_seq   bigint NOT NULL DEFAULT 0,
        shipped_hash  bytea,
        projected_seq bigint NOT NULL DEFAULT 0
    );

    CREATE TABLE events (
        cluster     text    NOT NULL REFERENCES clusters(name),
        seq         bigint  NOT NULL,
        recorded_at bigint  NOT NULL,
        actor_uid   bigint  NOT NULL,
        actor_name  text    NOT NULL,
        argv        text    NOT NULL,
        kind        text    NOT NULL,
        version     integer NOT NULL,
        payload     bytea   NOT NULL,
        prev_hash   bytea   NOT NULL,
        hash        bytea   NOT NULL,
        PRIMARY KEY (cluster, seq)
    );

    CREATE FUNCTION fluxacct_write_once() RETURNS trigger LANGUAGE plpgsql AS $f$
    BEGIN
        RAISE EXCEPTION 'fluxacct: the centre''s events are write-once; % refused', TG_OP;
    END $f$;
    CREATE TRIGGER events_write_once BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION fluxacct_write_once();

    CREATE TABLE job_records (
        cluster            text    NOT NULL,
        seq                bigint  NOT NULL,
        id                 numeric(20) NOT NULL,
        userid             bigint  NOT NULL,
        username           text,
        bank               text    NOT NULL,
        project            text    NOT NULL,
        queue              text    NOT NULL,
        t_submit           double precision NOT NULL,
        t_run              double precision NOT NULL,
        t_inactive         double precision NOT NULL,
        nnodes             bigint  NOT NULL,
        ncores             bigint  NOT NULL,
        ngpus              bigint  NOT NULL,
        requested_duration double precision NOT NULL,
        PRIMARY KEY (cluster, seq)
    );
    CREATE INDEX job_records_t_inactive ON job_records (t_inactive);

    CREATE TABLE banks (
        cluster     text   NOT NULL REFERENCES clusters(name),
        bank        text   NOT NULL,
        parent_bank text   NOT NULL,
        shares      bigint NOT NULL,
        active      bigint NOT NULL,
        job_usage   double precision NOT NULL,
        row_json    jsonb  NOT NULL,
        PRIMARY KEY (cluster, bank)
    );

    CREATE TABLE associations (
        cluster   text   NOT NULL REFERENCES clusters(name),
        username  text   NOT NULL,
        bank      text   NOT NULL,
        userid    bigint NOT NULL,
        shares    bigint NOT NULL,
        active    bigint NOT NULL,
        job_usage double precision NOT NULL,
        fairshare double precision NOT NULL,
        row_json  jsonb  NOT NULL,
        PRIMARY KEY (cluster, username, bank)
    );

    -- Usage summed over every cluster.
    CREATE VIEW usage_by_association AS
        SELECT username, bank, sum(job_usage) AS job_usage, count(*) AS clusters
        FROM associations GROUP BY username, bank;
    CREATE VIEW usage_by_user AS
        SELECT username, sum(job_usage) AS job_usage FROM associations GROUP BY username;
    CREATE VIEW usage_by_bank AS
        SELECT bank, sum(job_usage) AS job_usage FROM banks GROUP BY bank;

    -- A cluster's role sees and writes its own cluster's rows only; the
    -- report role reads all. The owner (the centre's admin) bypasses both.
    ALTER TABLE clusters ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_cluster ON clusters USING (role = current_user);
    CREATE POLICY reports ON clusters FOR SELECT TO fluxacct_report USING (true);
    GRANT SELECT, UPDATE (shipped_seq, shipped_hash, projected_seq, genesis_hash) ON clusters TO fluxacct_shipper;

    ALTER TABLE events ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_cluster ON events USING (cluster IN (SELECT name FROM clusters WHERE role = current_user));
    CREATE POLICY reports ON events FOR SELECT TO fluxacct_report USING (true);
    GRANT SELECT, INSERT ON events TO fluxacct_shipper;

    ALTER TABLE job_records ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_cluster ON job_records USING (cluster IN (SELECT name FROM clusters WHERE role = current_user));
    CREATE POLICY reports ON job_records FOR SELECT TO fluxacct_report USING (true);
    GRANT SELECT, INSERT ON job_records TO fluxacct_shipper;

    ALTER TABLE banks ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_cluster ON banks USING (cluster IN (SELECT name FROM clusters WHERE role = current_user));
    CREATE POLICY reports ON banks FOR SELECT TO fluxacct_report USING (true);
    GRANT SELECT, INSERT, DELETE ON banks TO fluxacct_shipper;

    ALTER TABLE associations ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_cluster ON associations USING (cluster IN (SELECT name FROM clusters WHERE role = current_user));
    CREATE POLICY reports ON associations FOR SELECT TO fluxacct_report USING (true);
    GRANT SELECT, INSERT, DELETE ON associations TO fluxacct_shipper;

    GRANT SELECT ON clusters, events, job_records, banks, associations,
        usage_by_association, usage_by_user, usage_by_bank TO fluxacct_report;
    GRANT SELECT ON usage_by_association, usage_by_user, usage_by_bank TO fluxacct_shipper;
    GRANT SELECT ON centre_meta TO fluxacct_shipper, fluxacct_report;
    "#,
    // 1 -> 2: events lose their foreign key to clusters. The key was
    // checked row by row (a lookup in clusters per stored event, a third of
    // a batch's time); a shipping role can only insert rows of the clusters
    // its role owns (row-level security), and the shipper holds its
    // cluster's row locked for the whole batch.
    //
    // And the per-day usage the reports read: node-seconds of the job
    // records by cluster, day of `t_inactive`, day of `t_run` (UTC days,
    // `floor(t / 86400)`), uid, bank and node count, kept by the shipper in
    // the batch that stores the records (filled here from those stored).
    r#"
    ALTER TABLE events DROP CONSTRAINT IF EXISTS events_cluster_fkey;

    CREATE TABLE usage_days (
        cluster      text   NOT NULL,
        inactive_day bigint NOT NULL,
        run_day      bigint NOT NULL,
        userid       bigint NOT NULL,
        bank         text   NOT NULL,
        nnodes       bigint NOT NULL,
        username     text,
        usage        double precision NOT NULL,
        PRIMARY KEY (cluster, inactive_day, run_day, userid, bank, nnodes)
    );
    INSERT INTO usage_days (cluster, inactive_day, run_day, userid, bank, nnodes, username, usage)
        SELECT cluster, floor(t_inactive / 86400)::bigint, floor(t_run / 86400)::bigint, userid, bank, nnodes,
               max(username), sum(nnodes * (t_inactive - t_run))
        FROM job_records GROUP BY 1, 2, 3, 4, 5, 6;
    CREATE INDEX job_records_t_run ON job_records (t_run);

    ALTER TABLE usage_days ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_cluster ON usage_days USING (cluster IN (SELECT name FROM clusters WHERE role = current_user));
    CREATE POLICY reports ON usage_days FOR SELECT TO fluxacct_report USING (true);
    GRANT SELECT, INSERT, UPDATE ON usage_days TO fluxacct_shipper;
    GRANT SELECT ON usage_days TO fluxacct_report;
    "#,
];

/// The centre schema version this code writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The centre's schema version (0 when it has none yet).
pub fn version(client: &mut Client) -> Result<i64> {
    let has = client
        .query_opt("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'centre_meta'", &[])?
        .is_some();
    if !has {
        return Ok(0);
    }
    let row = client.query_opt("SELECT value FROM centre_meta WHERE key = 'schema_version'", &[])?;
    Ok(row.map(|r| r.get::<_, String>(0)).and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Brings the centre's schema to [`SCHEMA_VERSION`] (creating it in an
/// empty database). Refuses a newer schema. Concurrent callers serialise
/// on an advisory lock. Creating or migrating needs the database's owner
/// (a superuser, or a role with CREATEROLE for the group roles).
pub fn migrate(client: &mut Client) -> Result<i64> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(7215001)", &[])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS centre_meta (key text PRIMARY KEY, value text NOT NULL)")?;
    let current: i64 = tx
        .query_opt("SELECT value FROM centre_meta WHERE key = 'schema_version'", &[])?
        .map(|r| r.get::<_, String>(0))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(Error::Schema(format!(
            "the centre's schema is version {current}; this fluxacct knows up to {SCHEMA_VERSION}: upgrade fluxacct"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO centre_meta(key, value) VALUES ('schema_version', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&(i as i64 + 1).to_string()],
        )?;
    }
    tx.commit()?;
    Ok(SCHEMA_VERSION)
}

/// Makes sure the schema is current: migrates when it is not (which only
/// the centre's owner can), refuses a newer one.
pub fn ensure(client: &mut Client) -> Result<()> {
    let v = version(client)?;
    if v == SCHEMA_VERSION {
        return Ok(());
    }
    if v > SCHEMA_VERSION {
        return Err(Error::Schema(format!(
            "the centre's schema is version {v}; this fluxacct knows up to {SCHEMA_VERSION}: upgrade fluxacct"
        )));
    }
    migrate(client).map(|_| ()).map_err(|e| match e {
        Error::Postgres(m) => Error::Schema(format!(
            "the centre's schema is version {v} and this connection cannot bring it to {SCHEMA_VERSION} \
             (connect once as the centre database's owner): {m}"
        )),
        other => other,
    })
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Registers a cluster name for a login role (created when missing, a
/// member of [`SHIPPER_ROLE`]): only that role (and the owner) can ship
/// that cluster's events. The chain is bound to the name at the first ship.
pub fn register_cluster(client: &mut Client, cluster: &str, role: &str) -> Result<()> {
    ensure(client)?;
    let mut tx = client.transaction()?;
    let exists = tx.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])?.is_some();
    if !exists {
        tx.batch_execute(&format!("CREATE ROLE {} LOGIN", quote_ident(role)))?;
    }
    tx.batch_execute(&format!("GRANT {SHIPPER_ROLE} TO {}", quote_ident(role)))?;
    let taken: Option<String> =
        tx.query_opt("SELECT role::text FROM clusters WHERE name = $1", &[&cluster])?.map(|r| r.get(0));
    match taken {
        Some(r) if r != role => {
            return Err(Error::Other(format!("cluster {cluster}: already registered for role {r}")));
        }
        Some(_) => {}
        None => {
            tx.execute("INSERT INTO clusters(name, role) VALUES ($1, $2::text::name)", &[&cluster, &role])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Creates (when missing) a login role that reads every cluster's rows and
/// writes none.
pub fn add_reader(client: &mut Client, role: &str) -> Result<()> {
    ensure(client)?;
    let exists = client.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])?.is_some();
    if !exists {
        client.batch_execute(&format!("CREATE ROLE {} LOGIN", quote_ident(role)))?;
    }
    client.batch_execute(&format!("GRANT {REPORT_ROLE} TO {}", quote_ident(role)))?;
    Ok(())
}
