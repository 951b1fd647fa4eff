//! `shares`: the bank/association hierarchy with shares, usage and
//! fair-share (flux-accounting's `flux account-shares` table).

use projections::model::State;
use serde_json::{json, Value};

use crate::bank_tree::{self, Order, Tree};
use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Show the whole hierarchy from the root bank with each node's raw shares,
/// raw usage (job usage of the last `update-usage`) and, for associations,
/// fair-share rounded to 6 decimals.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `|`-separated output.
    #[arg(short = 'P', long, conflicts_with = "json")]
    pub parsable: bool,
    /// JSON output (nested banks).
    #[arg(long)]
    pub json: bool,
    /// The accounting centre instead of the ledger (several clusters: one
    /// tree, usage summed over them, fair-share over the summed usage).
    #[command(flatten)]
    pub centre: crate::centre_view::CentreArgs,
}

/// A number the way the shares table prints it: integers without a
/// fraction, others in shortest form.
pub fn num_text(x: f64) -> String {
    format!("{x}")
}

fn fs_text(x: f64) -> String {
    format!("{}", fluxacct_core::fairshare::round6(x))
}

fn text(t: &Tree, depth: usize, parsable: bool, out: &mut String) {
    let indent = " ".repeat(depth);
    let b = &t.bank;
    if parsable {
        out.push_str(&format!("{indent}{}||{}|{}|\n", b.bank, b.shares, num_text(b.job_usage)));
    } else {
        out.push_str(&format!(
            "{indent}{:<20}{:>w$}{:>20}{:>20}\n",
            b.bank,
            "",
            b.shares,
            num_text(b.job_usage),
            w = 20usize.saturating_sub(depth)
        ));
    }
    let ui = " ".repeat(depth + 1);
    for a in &t.users {
        if parsable {
            out.push_str(&format!(
                "{ui}{}|{}|{}|{}|{}\n",
                a.bank,
                a.username,
                a.shares,
                num_text(a.job_usage),
                fs_text(a.fairshare)
            ));
        } else {
            out.push_str(&format!(
                "{ui}{:<20}{:>w$}{:>20}{:>20}{:>20}\n",
                a.bank,
                a.username,
                a.shares,
                num_text(a.job_usage),
                fs_text(a.fairshare),
                w = 20usize.saturating_sub(depth + 1)
            ));
        }
    }
    for s in &t.banks {
        text(s, depth + 1, parsable, out);
    }
}

fn to_json(t: &Tree) -> Value {
    json!({
        "bank": t.bank.bank,
        "active": t.bank.active != 0,
        "shares": t.bank.shares,
        "usage": t.bank.job_usage,
        "banks": t.banks.iter().map(to_json).collect::<Vec<_>>(),
        "users": t.users.iter().map(|a| json!({
            "username": a.username,
            "active": a.active != 0,
            "shares": a.shares,
            "usage": a.job_usage,
            "fairshare": fluxacct_core::fairshare::round6(a.fairshare),
        })).collect::<Vec<_>>(),
    })
}

/// Read-only: renders the table.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let Some(root) = state.root_bank()? else {
        return Err(Error::invalid("root bank not found"));
    };
    let tree = bank_tree::load(state, root, Order::ByName)?;
    if args.json {
        return Ok(Output::line(crate::format::to_pretty_json(&to_json(&tree))));
    }
    let mut out = String::new();
    if args.parsable {
        out.push_str("Account|Username|RawShares|RawUsage|Fairshare\n");
    } else {
        out.push_str(&format!(
            "{:<20}{:>20}{:>20}{:>20}{:>20}\n",
            "Account", "Username", "RawShares", "RawUsage", "Fairshare"
        ));
    }
    text(&tree, 0, args.parsable, &mut out);
    Ok(Output::text(out))
}

/// Runs `shares`.
pub fn cmd_shares(ctx: &Context, args: &Args) -> Result<Output> {
    if let Some((mut client, names)) = crate::centre_view::open(&args.centre)? {
        return view(&crate::centre_view::merged(&mut client, &names)?.state(), args);
    }
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    /// The seed's `flux account-shares` example, byte for byte.
    #[test]
    fn seed_001_layout() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("bank_A", "root"),
            Given::Bank("bank_B", "root"),
            Given::Bank("bank_C", "root"),
            Given::Bank("bank_C_a", "bank_C"),
            Given::Bank("bank_C_b", "bank_C"),
            Given::User("user_1", "bank_A"),
            Given::User("user_2", "bank_B"),
            Given::User("user_3", "bank_B"),
            Given::User("user_4", "bank_C_a"),
            Given::User("user_5", "bank_C_b"),
            Given::User("user_6", "bank_C_b"),
        ]);
        let out = view(&g.state(), &Args { parsable: false, json: false, centre: Default::default() }).unwrap().stdout;
        let expected = "\
Account                         Username           RawShares            RawUsage           Fairshare
root                                                       1                   0
 bank_A                                                    1                   0
  bank_A                          user_1                   1                   0                 0.5
 bank_B                                                    1                   0
  bank_B                          user_2                   1                   0                 0.5
  bank_B                          user_3                   1                   0                 0.5
 bank_C                                                    1                   0
  bank_C_a                                                 1                   0
   bank_C_a                       user_4                   1                   0                 0.5
  bank_C_b                                                 1                   0
   bank_C_b                       user_5                   1                   0                 0.5
   bank_C_b                       user_6                   1                   0                 0.5
";
        assert_eq!(out, expected);
        let p = view(&g.state(), &Args { parsable: true, json: false, centre: Default::default() }).unwrap().stdout;
        assert!(p.contains("\n  bank_A|user_1|1|0|0.5\n"), "{p}");
        let j = view(&g.state(), &Args { parsable: false, json: true, centre: Default::default() }).unwrap().stdout;
        let v: Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["banks"][0]["users"][0]["fairshare"], json!(0.5));
    }
}
