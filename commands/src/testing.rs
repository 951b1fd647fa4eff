//! Given/when/then helpers for `decide` tests: build projections from a
//! list of given events in an in-memory ledger.

use fluxacct_core::events::*;
use fluxacct_core::{Actor, EventMeta};
use ledger::Ledger;
use projections::model::State;

/// A given fact, turned into the event that establishes it.
#[allow(clippy::large_enum_variant)]
pub enum Given<'a> {
    /// A bank with this parent ("" for root).
    Bank(&'a str, &'a str),
    /// An active association (user, bank) with default limits; the default
    /// bank is the user's first bank.
    User(&'a str, &'a str),
    /// A disabled bank.
    DisableBank(&'a str),
    /// A disabled association.
    DisableUser(&'a str, &'a str),
    /// A queue with default limits.
    Queue(&'a str),
    /// A project.
    Project(&'a str),
    /// Any event.
    Event(Event),
}

/// An in-memory ledger holding the given events.
pub struct World {
    /// The ledger.
    pub ledger: Ledger,
}

impl World {
    /// The read model.
    pub fn state(&self) -> State<'_> {
        State::new(self.ledger.conn())
    }
}

/// Default association fields for `username` in `bank`.
pub fn association(username: &str, bank: &str, default_bank: &str) -> AssociationAdded {
    AssociationAdded { default_bank: default_bank.into(), ..AssociationAdded::with_defaults(username, 1000, bank) }
}

/// Default queue limits.
pub fn queue(name: &str) -> QueueAdded {
    QueueAdded::with_defaults(name)
}

/// Builds a world from a genesis event followed by the given facts.
pub fn given(facts: &[Given<'_>]) -> World {
    let mut ledger = Ledger::in_memory().expect("in-memory ledger");
    projections::schema::create(ledger.conn()).expect("schema");
    let meta = EventMeta { recorded_at_us: 1_000_000, actor: Actor { uid: 0, name: "root".into() }, argv: vec![] };
    let mut events = vec![Event::DbCreated(DbCreated::with_defaults(1.0))];
    let mut first_bank: Vec<(String, String)> = Vec::new();
    for f in facts {
        events.push(match f {
            Given::Bank(b, p) => Event::BankAdded(BankAdded {
                bank: b.to_string(),
                parent_bank: p.to_string(),
                shares: 1,
                priority: 0.0,
                ignore_older_than: 0,
            }),
            Given::User(u, b) => {
                let def = match first_bank.iter().find(|(x, _)| x == u) {
                    Some((_, d)) => d.clone(),
                    None => {
                        first_bank.push((u.to_string(), b.to_string()));
                        b.to_string()
                    }
                };
                Event::AssociationAdded(association(u, b, &def))
            }
            Given::DisableBank(b) => Event::BankDisabled(BankRef { bank: b.to_string() }),
            Given::DisableUser(u, b) => {
                Event::AssociationDisabled(AssocRef { username: u.to_string(), bank: b.to_string() })
            }
            Given::Queue(q) => Event::QueueAdded(queue(q)),
            Given::Project(p) => Event::ProjectAdded(ProjectRef { project: p.to_string() }),
            Given::Event(e) => e.clone(),
        });
    }
    let mut tx = ledger.transaction().expect("tx");
    projections::append_and_apply(&mut tx, &meta, &events).expect("given events apply");
    tx.commit().expect("commit");
    World { ledger }
}

/// A command's `Args` parsed from the command-line words `argv` (after the
/// command name), as clap parses them for the real command.
pub fn parse_args<A: clap::Args + clap::FromArgMatches>(argv: &[&str]) -> A {
    let cmd = A::augment_args(clap::Command::new("x"));
    let matches = cmd.try_get_matches_from(std::iter::once("x").chain(argv.iter().copied())).expect("arguments parse");
    A::from_arg_matches(&matches).expect("arguments match")
}

/// The usage error clap gives for the command-line words `argv` of a
/// command's `Args` (a malformed or out-of-range value), rendered.
pub fn usage_error<A: clap::Args + clap::FromArgMatches>(argv: &[&str]) -> String {
    let cmd = A::augment_args(clap::Command::new("x"));
    match cmd.try_get_matches_from(std::iter::once("x").chain(argv.iter().copied())) {
        Ok(_) => panic!("{argv:?} parsed"),
        Err(e) => e.render().to_string(),
    }
}
