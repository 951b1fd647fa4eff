//! The bank hierarchy below a bank, loaded once for the commands that print
//! it (`shares`, `view-bank --tree`): a bank with sub-banks holds banks, a
//! leaf bank holds its associations.

use projections::model::{Association, Bank, State};

use crate::error::Result;

/// How deep the walk goes: deeper banks are left out (a guard against a
/// damaged, cyclic `parent_bank` chain).
const MAX_DEPTH: usize = 1000;

/// The order of banks and associations within a bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Sub-banks by name, associations by user name (`shares`).
    ByName,
    /// Sub-banks by `bank_id`, associations by `creation_time`, ties by
    /// user name (`view-bank --tree`).
    ByCreation,
}

/// A bank and what lies below it.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The bank.
    pub bank: Bank,
    /// Its sub-banks (empty for a leaf bank).
    pub banks: Vec<Tree>,
    /// Its associations (only for a leaf bank).
    pub users: Vec<Association>,
}

/// Loads the tree below `bank`.
pub fn load(state: &State<'_>, bank: Bank, order: Order) -> Result<Tree> {
    load_at(state, bank, order, 0)
}

fn load_at(state: &State<'_>, bank: Bank, order: Order, depth: usize) -> Result<Tree> {
    let mut subs = state.sub_banks(&bank.bank)?;
    let mut t = Tree { bank, banks: Vec::new(), users: Vec::new() };
    if subs.is_empty() {
        t.users = state.associations_in_bank(&t.bank.bank)?;
        if order == Order::ByCreation {
            t.users.sort_by_key(|a| a.creation_time);
        }
    } else if depth < MAX_DEPTH {
        if order == Order::ByCreation {
            subs.sort_by_key(|b| b.bank_id);
        }
        for s in subs {
            t.banks.push(load_at(state, s, order, depth + 1)?);
        }
    }
    Ok(t)
}
