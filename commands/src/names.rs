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

/// Every uid a `--user NAME` filter matches: the uids of NAME's
/// associations, and NAME's passwd uid (or NAME itself as a uid). Empty
/// when nothing is known of NAME.
pub fn user_uids(ctx: &Context, state: &State<'_>, user: &str) -> Result<Vec<i64>> {
    let mut out: Vec<i64> = state.associations_of_user(user)?.iter().map(|a| a.userid).collect();
    if let Some(uid) = ctx.users.uid_of(user) {
        out.push(i64::from(uid));
    } else if let Ok(uid) = user.parse::<i64>() {
        out.push(uid);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The display names of job users, looked up once per distinct uid: the
/// user name of the uid's association (association_table holds both),
/// else its passwd name, else the name recorded with the job, else the
/// uid.
pub struct UserNames<'c> {
    ctx: &'c Context,
    assoc: std::collections::HashMap<i64, String>,
    passwd: std::collections::HashMap<i64, Option<String>>,
}

impl<'c> UserNames<'c> {
    /// Reads the associations' names (the first association of each uid).
    pub fn new(ctx: &'c Context, state: &State<'_>) -> Result<UserNames<'c>> {
        let mut assoc = std::collections::HashMap::new();
        for a in state.associations()? {
            assoc.entry(a.userid).or_insert(a.username);
        }
        Ok(UserNames { ctx, assoc, passwd: std::collections::HashMap::new() })
    }

    /// The display name of `userid` for a job that recorded `recorded`.
    pub fn name(&mut self, userid: i64, recorded: Option<String>) -> String {
        if let Some(n) = self.assoc.get(&userid) {
            return n.clone();
        }
        let ctx = self.ctx;
        let passwd =
            self.passwd.entry(userid).or_insert_with(|| u32::try_from(userid).ok().and_then(|u| ctx.users.name_of(u)));
        passwd.clone().or(recorded).unwrap_or_else(|| userid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Users;
    use crate::testing::{given, Given};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A passwd database that knows uid 7 as `seven` and counts lookups.
    struct Counting(Arc<AtomicUsize>);
    impl Users for Counting {
        fn name_of(&self, uid: u32) -> Option<String> {
            self.0.fetch_add(1, Ordering::Relaxed);
            (uid == 7).then(|| "seven".to_string())
        }
    }

    #[test]
    fn given_many_records_when_naming_their_users_then_passwd_is_read_once_per_uid_without_an_association() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u1", "A")]);
        let state = g.state();
        let assoc_uid = state.associations().unwrap()[0].userid;
        let lookups = Arc::new(AtomicUsize::new(0));
        let mut ctx = Context::for_tests("unused.db", 0);
        ctx.users = Box::new(Counting(lookups.clone()));
        let mut names = UserNames::new(&ctx, &state).unwrap();
        for _ in 0..1000 {
            assert_eq!(names.name(assoc_uid, Some("recorded".into())), "u1");
            assert_eq!(names.name(7, None), "seven");
            assert_eq!(names.name(9999, Some("ghost".into())), "ghost");
            assert_eq!(names.name(9998, None), "9998");
        }
        // uids 7, 9999 and 9998, once each; the association's uid never.
        assert_eq!(lookups.load(Ordering::Relaxed), 3);
    }
}
