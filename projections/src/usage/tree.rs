//! The fair-share tree loaded from the projection tables, the values
//! `update-fshare` computes over it, and their digest.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};

use crate::error::Error;
use fluxacct_core::events::CentreUsage;
use fluxacct_core::fairshare::{self, FsBank, FsUser, FsValue};

/// The config key (`config_table`) choosing whose usage the fair-share
/// counts: `centre` adds each association's usage on the centre's other
/// clusters (the last `CentreUsageFetched`); anything else, or no key,
/// counts this cluster's usage alone.
pub const FAIRSHARE_SCOPE_KEY: &str = "fairshare_scope";

/// The `usage_state` key holding the last fetched centre figures (a JSON
/// list of `CentreUsage`).
pub const CENTRE_USAGE_KEY: &str = "centre_usage";

/// Whether `fairshare_scope = centre` (never on tables without a
/// `config_table`, such as a flux-accounting database's).
pub fn scope_is_centre(conn: &Connection) -> Result<bool, Error> {
    let has_config = conn
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'config_table'")?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some();
    if !has_config {
        return Ok(false);
    }
    let v: Option<String> = conn
        .prepare_cached("SELECT value FROM config_table WHERE key = ?1")?
        .query_row([FAIRSHARE_SCOPE_KEY], |r| r.get(0))
        .optional()?;
    Ok(v.as_deref().map(str::trim) == Some("centre"))
}

/// Stores the figures of a `CentreUsageFetched` (they replace the last).
pub fn store_centre_usage(conn: &Connection, figures: &[CentreUsage]) -> Result<(), Error> {
    let json =
        serde_json::to_string(figures).map_err(|e| Error::Event(fluxacct_core::EventError::Encode(e.to_string())))?;
    conn.prepare_cached("INSERT OR REPLACE INTO usage_state(key, value) VALUES (?1, ?2)")?
        .execute(rusqlite::params![CENTRE_USAGE_KEY, json])?;
    Ok(())
}

/// The last fetched centre figures, by (username, bank); empty when none.
pub fn centre_usage(conn: &Connection) -> Result<BTreeMap<(String, String), f64>, Error> {
    let v: Option<String> = conn
        .prepare_cached("SELECT value FROM usage_state WHERE key = ?1")?
        .query_row([CENTRE_USAGE_KEY], |r| r.get(0))
        .optional()?;
    let figures: Vec<CentreUsage> = match v {
        Some(text) => serde_json::from_str(&text).map_err(|e| {
            Error::Event(fluxacct_core::EventError::Encode(format!("usage_state {CENTRE_USAGE_KEY}: {e}")))
        })?,
        None => Vec::new(),
    };
    Ok(figures.into_iter().map(|f| ((f.username, f.bank), f.usage)).collect())
}

/// The fair-share tree of the current projections (usage-and-fairshare.md):
/// active banks and associations only; a bank with any sub-bank row has its
/// associations ignored; children in name order; association usage is
/// `job_usage`. `None` when there is no root bank.
pub fn fairshare_tree(conn: &Connection) -> Result<Option<FsBank>, Error> {
    struct B {
        name: String,
        active: bool,
        shares: i64,
    }
    let mut banks: Vec<(String, B)> = Vec::new();
    let mut root: Option<String> = None;
    {
        let mut stmt =
            conn.prepare_cached("SELECT bank, parent_bank, active, shares FROM bank_table ORDER BY bank_id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })?;
        for row in rows {
            let (name, parent, active, shares) = row?;
            if parent.is_empty() && root.is_none() {
                root = Some(name.clone());
            }
            banks.push((parent, B { name, active: active != 0, shares }));
        }
    }
    let Some(root) = root else {
        return Ok(None);
    };
    let mut children: BTreeMap<&str, Vec<&B>> = BTreeMap::new();
    for (parent, b) in &banks {
        if !parent.is_empty() {
            children.entry(parent.as_str()).or_default().push(b);
        }
    }
    for v in children.values_mut() {
        v.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut users: BTreeMap<String, Vec<FsUser>> = BTreeMap::new();
    // With `fairshare_scope = centre`, usage on the other clusters counts too.
    let elsewhere = if scope_is_centre(conn)? { centre_usage(conn)? } else { BTreeMap::new() };
    {
        let mut stmt = conn.prepare_cached(
            "SELECT bank, username, shares, job_usage FROM association_table WHERE active != 0 ORDER BY bank, username",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, f64>(3)?))
        })?;
        for row in rows {
            let (bank, username, shares, usage) = row?;
            let usage = usage + elsewhere.get(&(username.clone(), bank.clone())).copied().unwrap_or(0.0);
            users.entry(bank).or_default().push(FsUser { username, shares, usage });
        }
    }
    fn build(
        name: &str,
        shares: i64,
        children: &BTreeMap<&str, Vec<&B>>,
        users: &mut BTreeMap<String, Vec<FsUser>>,
        depth: usize,
    ) -> FsBank {
        let subs = children.get(name).map(|v| v.as_slice()).unwrap_or(&[]);
        let mut bank = FsBank { name: name.to_string(), shares, banks: Vec::new(), users: Vec::new() };
        if subs.is_empty() {
            bank.users = users.remove(name).unwrap_or_default();
        } else if depth < 10_000 {
            for s in subs.iter().filter(|s| s.active) {
                bank.banks.push(build(&s.name, s.shares, children, users, depth + 1));
            }
        }
        bank
    }
    let root_shares = banks.iter().find(|(_, b)| b.name == root).map(|(_, b)| b.shares).unwrap_or(1);
    Ok(Some(build(&root, root_shares, &children, &mut users, 0)))
}

/// The fair-share values `update-fshare` computes from the current
/// projections (empty without a root bank).
pub fn fairshare_values(conn: &Connection) -> Result<Vec<FsValue>, Error> {
    Ok(match fairshare_tree(conn)? {
        Some(t) => fairshare::compute(&t),
        None => Vec::new(),
    })
}

/// blake3 (hex) over the `(bank, username, round6(fairshare))` list, in
/// walk order: one line `bank \0 username \0 {:.6} \n` per association.
pub fn fairshare_digest(values: &[FsValue]) -> String {
    let mut h = blake3::Hasher::new();
    for v in values {
        h.update(v.bank.as_bytes());
        h.update(b"\0");
        h.update(v.username.as_bytes());
        h.update(b"\0");
        h.update(format!("{:.6}\n", fairshare::round6(v.fairshare)).as_bytes());
    }
    h.finalize().to_hex().to_string()
}
