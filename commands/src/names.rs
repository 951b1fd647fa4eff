//! A job's user by name and by uid: the passwd database first, then what
//! the ledger recorded (`view-job-records`, `view-usage-report`).

use projections::model::State;

use crate::context::Context;
use crate::error::Result;

/// The uid to filter on for `--user` (passwd, else association_table;
/// 4294967295, which matches nothing, if unknown).
pub fn user_uid(ctx: &Context, state: &State<'_>, user: &str) -> Result<i64> {
    if let Some(uid) = ctx.users.uid_of(user) {
        return Ok(uid as i64);
    }
    if let Some(a) = state.associations_of_user(user)?.first() {
        return Ok(a.userid);
    }
    Ok(user.parse::<i64>().unwrap_or(fluxacct_core::events::USERID_UNKNOWN))
}

/// Display name of a job's user: passwd name, else the recorded name, else
/// the uid.
pub fn display_user(ctx: &Context, userid: i64, recorded: Option<String>) -> String {
    u32::try_from(userid).ok().and_then(|u| ctx.users.name_of(u)).or(recorded).unwrap_or_else(|| userid.to_string())
}
