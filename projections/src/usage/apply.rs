//! The usage side of applying an event: which events bin jobs, recompute
//! usage, re-bin a bank or mark associations for the next update.

use rusqlite::{params, Connection};

use super::{
    bank_filter_changed, exact_ignore_key, fairshare_digest, fairshare_values, forget_exact_ignore, forget_rollup,
    last_as_of, mark_dirty, rebin, set_state, usage_updated, PendingJob, USAGE_CONFIG_KEYS,
};
use crate::ctx::ApplyCtx;
use crate::error::Error;
use fluxacct_core::events::Event;
use fluxacct_core::fairshare;

/// Applies the usage side of an event (called for every event, after the
/// admin tables are updated). `buffered` holds `usage_pending` rows not
/// written yet: a `JobRecorded` adds its row to it, a `UsageUpdated` bins
/// from it as from the table, and a re-binning (the only other reader of
/// `usage_pending`) writes it out first. The caller writes what is left
/// with [`super::store_pending`] before the tables are read.
pub fn apply(conn: &Connection, ctx: &ApplyCtx, ev: &Event, buffered: &mut Vec<PendingJob>) -> Result<(), Error> {
    if !keeps_rollup(ev) {
        forget_rollup(conn)?;
    }
    match ev {
        Event::DbCreated(e) => set_state(conn, "t0", e.t0)?,
        Event::JobRecorded(j) => {
            if let Some(job) = PendingJob::of(ctx.seq, j) {
                buffered.push(job);
            }
        }
        Event::UsageUpdated(u) => usage_updated(conn, ctx.seq, u.as_of, buffered)?,
        Event::UsageCleared(c) => {
            conn.prepare_cached("UPDATE bank_table SET ignore_older_than = ?2 WHERE bank = ?1")?
                .execute(params![c.bank, c.ignore_older_than])?;
            match c.at {
                Some(t) => set_state(conn, &exact_ignore_key(&c.bank), t)?,
                None => forget_exact_ignore(conn, &c.bank)?,
            }
            bank_filter_changed(conn, ctx, &c.bank, buffered)?;
            conn.prepare_cached("UPDATE association_table SET fairshare = 0.5 WHERE bank = ?1")?.execute([&c.bank])?;
        }
        Event::BankEdited(e) => {
            if e.ignore_older_than.is_some() {
                forget_exact_ignore(conn, &e.bank)?;
                bank_filter_changed(conn, ctx, &e.bank, buffered)?
            }
        }
        Event::BankAdded(e) => {
            forget_exact_ignore(conn, &e.bank)?;
            if e.ignore_older_than != 0 {
                bank_filter_changed(conn, ctx, &e.bank, buffered)?
            }
        }
        Event::AssociationAdded(e) => mark_dirty(conn, &e.username, &e.bank)?,
        Event::AssociationReactivated(e) => mark_dirty(conn, &e.username, &e.bank)?,
        Event::AssociationEdited(e) => {
            if e.userid.is_some() || e.new_bank.is_some() {
                mark_dirty(conn, &e.username, e.new_bank.as_deref().unwrap_or(&e.bank))?
            }
        }
        Event::ConfigAdded(c) | Event::ConfigEdited(c) => config_changed(conn, ctx, &c.key, buffered)?,
        Event::ConfigDeleted(c) => config_changed(conn, ctx, &c.key, buffered)?,
        Event::UsageImported(u) => super::usage_imported(conn, ctx, u, buffered)?,
        Event::CentreUsageFetched(f) => super::store_centre_usage(conn, &f.associations)?,
        Event::FairshareUpdated(f) => {
            // The values written are the recomputed ones (a function of the
            // log alone); the digest only checks them. A mismatch is
            // returned after writing, so that a replay can carry on with
            // the state the log implies (`Applier::replaying`).
            let values = fairshare_values(conn)?;
            let digest = fairshare_digest(&values);
            // Rows already holding their value are not written (most of
            // them, when a batch moved the usage of a few associations).
            let mut stmt = conn.prepare_cached(
                "UPDATE association_table SET fairshare = ?3 WHERE username = ?1 AND bank = ?2 AND fairshare IS NOT ?3",
            )?;
            for v in &values {
                stmt.execute(params![v.username, v.bank, fairshare::round6(v.fairshare)])?;
            }
            if values.len() as u64 != f.associations || digest != f.digest {
                return Err(Error::DigestMismatch {
                    seq: ctx.seq,
                    what: format!(
                        "fair-share recomputation ({} associations, digest {digest}) does not match the event \
                         ({} associations, digest {})",
                        values.len(),
                        f.associations,
                        f.digest
                    ),
                });
            }
        }
        // No usage side: the admin tables are all they change.
        Event::BankReactivated(_)
        | Event::BankDisabled(_)
        | Event::BankDeleted(_)
        | Event::AssociationDisabled(_)
        | Event::AssociationDeleted(_)
        | Event::DefaultBankChanged(_)
        | Event::QueueAdded(_)
        | Event::QueueEdited(_)
        | Event::QueueDeleted(_)
        | Event::ProjectAdded(_)
        | Event::ProjectDeleted(_)
        | Event::FactorWeightSet(_)
        | Event::JobsScrubbed(_)
        | Event::BreakAccepted(_)
        | Event::SiteImported(_)
        | Event::JobRejected(_)
        | Event::AllocationAdded(_)
        | Event::AllocationDeposited(_)
        | Event::AllocationWithdrawn(_)
        | Event::AllocationPeriodChanged(_)
        | Event::AllocationPolicySet(_)
        | Event::AllocationDeleted(_) => {}
    }
    Ok(())
}

/// A usage config key changed: from now on the new parameters hold. The
/// bins are rebuilt from the job records (periods and weights may differ),
/// and the next usage update recomputes every association.
fn config_changed(conn: &Connection, ctx: &ApplyCtx, key: &str, buffered: &mut Vec<PendingJob>) -> Result<(), Error> {
    if !USAGE_CONFIG_KEYS.contains(&key) {
        return Ok(());
    }
    if let Some(as_of) = last_as_of(conn)? {
        let p = super::params(conn)?;
        rebin(conn, ctx.seq, &p, as_of, None, buffered)?;
    }
    set_state(conn, "recompute_all", 1.0)
}

/// Whether the banks' `job_usage` stay what a roll-up gives across `ev`
/// (see `usage::ROLLUP_EXACT_KEY`): events that change no association's
/// `job_usage` or bank and no bank's parent or `job_usage` outside a
/// roll-up. Every other event makes the next usage update roll up every
/// bank; a new event must be classified here (the match is exhaustive).
fn keeps_rollup(ev: &Event) -> bool {
    match ev {
        Event::JobRecorded(_)
        | Event::UsageUpdated(_)
        | Event::FairshareUpdated(_)
        | Event::JobRejected(_)
        | Event::CentreUsageFetched(_)
        | Event::QueueAdded(_)
        | Event::QueueEdited(_)
        | Event::QueueDeleted(_)
        | Event::ProjectAdded(_)
        | Event::ProjectDeleted(_)
        | Event::FactorWeightSet(_)
        | Event::AllocationAdded(_)
        | Event::AllocationDeposited(_)
        | Event::AllocationWithdrawn(_)
        | Event::AllocationPeriodChanged(_)
        | Event::AllocationPolicySet(_)
        | Event::AllocationDeleted(_) => true,
        Event::DbCreated(_)
        | Event::BankAdded(_)
        | Event::BankReactivated(_)
        | Event::BankEdited(_)
        | Event::BankDisabled(_)
        | Event::BankDeleted(_)
        | Event::AssociationAdded(_)
        | Event::AssociationReactivated(_)
        | Event::AssociationEdited(_)
        | Event::AssociationDisabled(_)
        | Event::AssociationDeleted(_)
        | Event::DefaultBankChanged(_)
        | Event::ConfigAdded(_)
        | Event::ConfigEdited(_)
        | Event::ConfigDeleted(_)
        | Event::UsageCleared(_)
        | Event::JobsScrubbed(_)
        | Event::BreakAccepted(_)
        | Event::SiteImported(_)
        | Event::UsageImported(_) => false,
    }
}
