//! `view-bank`: show a bank, its users, or its subtree.

use fluxacct_core::fairshare::round6;
use projections::model::{Association, Bank, State};
use serde_json::json;

use crate::admin::bank_rows;
use crate::bank_tree::{self, Order, Tree};
use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::format::{self, py_float, Rows};

/// Show a bank: its row as JSON (default), its users (`--users`), or the
/// whole hierarchy below it (`--tree`).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Bank name.
    pub bank: String,
    /// Show the hierarchy below the bank.
    #[arg(short = 't', long)]
    pub tree: bool,
    /// Show the bank's users.
    #[arg(short = 'u', long)]
    pub users: bool,
    /// With --tree: `|`-separated output.
    #[arg(short = 'P', long)]
    pub parsable: bool,
    /// Only these columns (comma list).
    #[arg(long)]
    pub fields: Option<String>,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
    /// With --tree: only users with job_usage > 0.
    #[arg(short = 'c', long)]
    pub concise: bool,
    /// With --tree: only active users.
    #[arg(short = 'A', long)]
    pub active: bool,
    /// The accounting centre instead of the ledger (several clusters: one
    /// tree, usage summed over them).
    #[command(flatten)]
    pub centre: crate::centre_view::CentreArgs,
}

fn status(active: i64) -> &'static str {
    if active != 0 {
        "true"
    } else {
        "false"
    }
}

fn rj(s: &str, w: usize) -> String {
    format!("{s:>w$}")
}

fn lj(s: &str, w: usize) -> String {
    format!("{s:<w$}")
}

/// Fair-share as shown: rounded to 6 decimals, Python `str()`.
pub fn fairshare_text(x: f64) -> String {
    py_float(round6(x))
}

struct TreeOpts {
    parsable: bool,
    concise: bool,
    active_only: bool,
}

fn user_visible(a: &Association, o: &TreeOpts) -> bool {
    (!o.concise || a.job_usage > 0.0) && (!o.active_only || a.active != 0)
}

fn walk(t: &Tree, depth: usize, o: &TreeOpts, out: &mut String) {
    let prefix = " ".repeat(depth + 1);
    for sub in &t.banks {
        let sb = &sub.bank;
        if o.parsable {
            out.push_str(&format!(
                "{prefix}{}||{}|{}|{}\n",
                sb.bank,
                status(sb.active),
                sb.shares,
                py_float(sb.job_usage)
            ));
        } else {
            out.push_str(&format!(
                "{prefix}{}{}{}{}{}\n",
                lj(&sb.bank, 20),
                rj("", 20usize.saturating_sub(prefix.len())),
                rj(status(sb.active), 20),
                rj(&sb.shares.to_string(), 20),
                rj(&py_float(sb.job_usage), 20)
            ));
        }
        walk(sub, depth + 1, o, out);
    }
    let bank = &t.bank;
    for a in t.users.iter().filter(|a| user_visible(a, o)) {
        if o.parsable {
            out.push_str(&format!(
                "{prefix}{}|{}|{}|{}|{}|{}\n",
                bank.bank,
                a.username,
                status(a.active),
                a.shares,
                py_float(a.job_usage),
                fairshare_text(a.fairshare)
            ));
        } else {
            out.push_str(&format!(
                "{prefix}{}{}{}{}{}{}\n",
                lj(&bank.bank, 20),
                rj(&a.username, 20usize.saturating_sub(prefix.len())),
                rj(status(a.active), 20),
                rj(&a.shares.to_string(), 20),
                rj(&py_float(a.job_usage), 20),
                rj(&fairshare_text(a.fairshare), 20)
            ));
        }
    }
}

/// The `--tree` text for `bank` (ends with a newline).
pub fn tree(state: &State<'_>, bank: &Bank, parsable: bool, concise: bool, active_only: bool) -> Result<String> {
    let o = TreeOpts { parsable, concise, active_only };
    let mut out = String::new();
    let usage = py_float((bank.job_usage * 100.0).round() / 100.0);
    if parsable {
        out.push_str("Bank|Username|Active|RawShares|RawUsage|Fairshare\n");
        out.push_str(&format!("{}||{}|{}|{}\n", bank.bank, status(bank.active), bank.shares, usage));
    } else {
        out.push_str(&format!(
            "{}{}{}{}{}{}\n",
            lj("Bank", 20),
            rj("Username", 20),
            rj("Active", 20),
            rj("RawShares", 20),
            rj("RawUsage", 20),
            rj("Fairshare", 20)
        ));
        out.push_str(&format!(
            "{}{}{}{}{}\n",
            lj(&bank.bank, 20),
            rj("", 20),
            rj(status(bank.active), 20),
            rj(&bank.shares.to_string(), 20),
            rj(&usage, 20)
        ));
    }
    walk(&bank_tree::load(state, bank.clone(), Order::ByCreation)?, 0, &o, &mut out);
    Ok(out)
}

/// Read-only: renders the requested view.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let Some(bank) = state.bank(&args.bank)? else {
        return Err(Error::invalid(format!("bank {} not found in bank_table", args.bank)));
    };
    if args.parsable && !args.tree {
        return Err(Error::invalid("-P/--parsable can only be passed with -t/--tree"));
    }
    if args.tree && args.fields.is_some() {
        return Err(Error::invalid("--tree option does not support custom formatting"));
    }
    let rows = bank_rows(std::slice::from_ref(&bank));
    if let Some(fmt) = &args.format {
        return Ok(Output::line(format::as_format(&rows, fmt)?));
    }
    if args.tree {
        return Ok(Output::line(tree(state, &bank, args.parsable, args.concise, args.active)?));
    }
    let rows = match &args.fields {
        Some(f) => rows.select(f)?,
        None => rows,
    };
    if args.users {
        let mut text = format::as_table(&rows);
        let users = state.associations_in_bank(&bank.bank)?;
        if users.is_empty() {
            text.push_str(&format!("\n\nno users under {}", bank.bank));
        } else {
            let mut ur = Rows::new(&["username", "active", "default_bank", "shares", "job_usage", "fairshare"]);
            for a in &users {
                ur.push(vec![
                    json!(a.username),
                    json!(a.active),
                    json!(a.default_bank),
                    json!(a.shares),
                    json!(a.job_usage),
                    json!(round6(a.fairshare)),
                ]);
            }
            text.push_str("\n\n");
            text.push_str(&format::as_table(&ur));
        }
        return Ok(Output::line(text));
    }
    Ok(Output::line(format::as_json(&rows)))
}

/// Runs `view-bank`.
pub fn cmd_view_bank(ctx: &Context, args: &Args) -> Result<Output> {
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

    #[test]
    fn tree_layout() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("giants", "root"), Given::User("crawford", "giants")]);
        let s = g.state();
        let root = s.bank("root").unwrap().unwrap();
        let t = tree(&s, &root, false, false, false).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "{:<20}{:>20}{:>20}{:>20}{:>20}{:>20}",
                "Bank", "Username", "Active", "RawShares", "RawUsage", "Fairshare"
            )
        );
        assert_eq!(lines[1], format!("{:<20}{:>20}{:>20}{:>20}{:>20}", "root", "", "true", "1", "0.0"));
        assert_eq!(lines[2], format!(" {:<20}{:>19}{:>20}{:>20}{:>20}", "giants", "", "true", "1", "0.0"));
        assert_eq!(
            lines[3],
            format!("  {:<20}{:>18}{:>20}{:>20}{:>20}{:>20}", "giants", "crawford", "true", "1", "0.0", "0.5")
        );
        let p = tree(&s, &root, true, false, false).unwrap();
        assert_eq!(p, "Bank|Username|Active|RawShares|RawUsage|Fairshare\nroot||true|1|0.0\n giants||true|1|0.0\n  giants|crawford|true|1|0.0|0.5\n");
    }

    #[test]
    fn errors() {
        let g = given(&[Given::Bank("root", "")]);
        let a = |b: &str| Args {
            bank: b.into(),
            tree: false,
            users: false,
            parsable: false,
            fields: None,
            format: None,
            concise: false,
            active: false,
            centre: Default::default(),
        };
        assert_eq!(view(&g.state(), &a("x")).unwrap_err().to_string(), "bank x not found in bank_table");
        assert_eq!(
            view(&g.state(), &Args { parsable: true, ..a("root") }).unwrap_err().to_string(),
            "-P/--parsable can only be passed with -t/--tree"
        );
        let out = view(&g.state(), &Args { users: true, ..a("root") }).unwrap().stdout;
        assert!(out.ends_with("\n\nno users under root\n"), "{out}");
    }
}
