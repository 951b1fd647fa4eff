//! `sync-userids`: give every association of a user the same, right uid.

use std::collections::BTreeMap;

use fluxacct_core::events::{is_placeholder_uid, AssociationEdited, Event, USERID_UNKNOWN};
use projections::model::{Association, State};

use crate::context::{Context, Output};
use crate::error::Result;

/// Make every association of each user carry one uid: the uid the password
/// database gives the user's name, or, when it does not know the name, the
/// first known uid among the user's associations (in creation order). Job
/// usage is counted by uid, so an association added before its user
/// existed (uid 65534, or 4294967295 in ledgers written before fluxacct
/// followed flux-accounting) or edited to a wrong uid gets its usage once
/// its uid is right. Each change is recorded as an edit of that
/// association; when every uid is already right nothing is recorded.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// List every association whose uid changed.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// Pure decision: one `AssociationEdited { userid }` per association whose
/// uid differs from its user's (`uid_of` is the password database).
pub fn decide(state: &State<'_>, uid_of: &dyn Fn(&str) -> Option<i64>) -> Result<Vec<Event>> {
    let mut by_user: BTreeMap<String, Vec<Association>> = BTreeMap::new();
    for a in state.associations()? {
        by_user.entry(a.username.clone()).or_default().push(a);
    }
    let mut events = Vec::new();
    for (username, mut rows) in by_user {
        rows.sort_by_key(|a| a.creation_time);
        let target = uid_of(&username).or_else(|| rows.iter().map(|a| a.userid).find(|&u| !is_placeholder_uid(u)));
        let Some(target) = target else { continue };
        for a in rows.iter().filter(|a| a.userid != target) {
            events.push(Event::AssociationEdited(AssociationEdited {
                username: a.username.clone(),
                bank: a.bank.clone(),
                userid: Some(target),
                ..AssociationEdited::default()
            }));
        }
    }
    Ok(events)
}

/// Runs `sync-userids`.
pub fn cmd_sync_userids(ctx: &Context, args: &Args) -> Result<Output> {
    let uid_of = |name: &str| ctx.users.uid_of(name).map(i64::from);
    let mut changed = Vec::new();
    crate::db::write(ctx, |s| {
        let evs = decide(s, &uid_of)?;
        for e in &evs {
            if let Event::AssociationEdited(a) = e {
                let old = s.association(&a.username, &a.bank)?.map(|r| r.userid).unwrap_or(USERID_UNKNOWN);
                changed.push(format!("{},{}: userid {} -> {}", a.username, a.bank, old, a.userid.unwrap_or(old)));
            }
        }
        Ok(evs)
    })?;
    if !args.verbose {
        return Ok(Output::none());
    }
    let mut out = format!("{} association(s) changed\n", changed.len());
    for c in changed {
        out.push_str(&c);
        out.push('\n');
    }
    Ok(Output::text(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    fn edit(u: &str, b: &str, uid: i64) -> Event {
        Event::AssociationEdited(AssociationEdited {
            username: u.into(),
            bank: b.into(),
            userid: Some(uid),
            ..AssociationEdited::default()
        })
    }

    fn world() -> crate::testing::World {
        given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u1", "A"),
            Given::User("u1", "B"),
            Given::User("u2", "A"),
            Given::Event(edit("u1", "B", 4242)),
        ])
    }

    #[test]
    fn given_drifted_uids_when_passwd_knows_the_user_then_every_row_takes_its_uid() {
        let g = world();
        let u1 = g.state().association("u1", "A").unwrap().unwrap().userid;
        let passwd = |n: &str| (n == "u1").then_some(7000);
        let evs = decide(&g.state(), &passwd).unwrap();
        assert_eq!(evs, vec![edit("u1", "A", 7000), edit("u1", "B", 7000)], "u1 had {u1}");
    }

    #[test]
    fn given_drifted_uids_when_passwd_does_not_know_the_user_then_the_earliest_row_wins() {
        let g = world();
        let first = g.state().association("u1", "A").unwrap().unwrap().userid;
        let evs = decide(&g.state(), &|_| None).unwrap();
        assert_eq!(evs, vec![edit("u1", "B", first)]);
    }

    #[test]
    fn given_placeholder_uids_old_and_new_when_passwd_does_not_know_the_user_then_the_known_uid_wins() {
        // 4294967295: stored by fluxacct before it gave 65534, as
        // flux-accounting does; both are placeholders, never a target.
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::Bank("C", "root"),
            Given::User("u", "A"),
            Given::User("u", "B"),
            Given::User("u", "C"),
            Given::Event(edit("u", "A", USERID_UNKNOWN)),
            Given::Event(edit("u", "B", fluxacct_core::events::USERID_NOBODY)),
            Given::Event(edit("u", "C", 5001)),
        ]);
        let evs = decide(&g.state(), &|_| None).unwrap();
        assert_eq!(evs, vec![edit("u", "A", 5001), edit("u", "B", 5001)]);
    }

    #[test]
    fn given_consistent_uids_when_syncing_then_nothing_is_recorded() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u1", "A")]);
        assert!(decide(&g.state(), &|_| None).unwrap().is_empty());
    }
}
