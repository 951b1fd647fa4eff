//! `bank-info`: an `sshare`-like report of shares and usage.

use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Show normalized shares, usage and fair-share along the bank tree, like
/// Slurm's `sshare`. Without a target, shows the path to the invoking
/// user's associations.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("target").args(["tree", "tree_no_users", "to_root", "user"])))]
pub struct Args {
    /// The subtree below BANK, with users.
    #[arg(short = 't', long = "tree", value_name = "BANK")]
    pub tree: Option<String>,
    /// The subtree below BANK, banks only.
    #[arg(short = 'T', long = "tree-no-users", value_name = "BANK")]
    pub tree_no_users: Option<String>,
    /// The path from the root to BANK.
    #[arg(short = 'r', long = "to-root", value_name = "BANK")]
    pub to_root: Option<String>,
    /// The paths from the root to USER's associations.
    #[arg(short = 'u', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Also show raw usage and node type.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// `|`-separated output.
    #[arg(short = 'P', long)]
    pub parsable: bool,
    /// No header line.
    #[arg(short = 'n', long)]
    pub noheader: bool,
    /// Leave out this bank or user (and what is below it).
    #[arg(short = 'x', long)]
    pub exclude: Option<String>,
}

#[derive(Debug, Clone)]
struct Node {
    name: String,
    user: bool,
    depth: usize,
    shares: i64,
    nshares: f64,
    usage: f64,
    nusage: f64,
    fs: f64,
    parent: Option<usize>,
    children: Vec<usize>,
}

fn build(state: &State<'_>) -> Result<Vec<Node>> {
    let Some(root) = state.root_bank()? else {
        return Err(Error::invalid("No root bank found in bank_table"));
    };
    let total = root.job_usage;
    let norm = |u: f64| if total > 0.0 { u / total } else { 0.0 };
    let mut nodes = vec![Node {
        name: root.bank.clone(),
        user: false,
        depth: 0,
        shares: root.shares,
        nshares: 1.0,
        usage: root.job_usage,
        nusage: norm(root.job_usage),
        fs: f64::INFINITY,
        parent: None,
        children: Vec::new(),
    }];
    let mut i = 0;
    while i < nodes.len() {
        if !nodes[i].user {
            let (name, depth, ns) = (nodes[i].name.clone(), nodes[i].depth, nodes[i].nshares);
            let subs = state.sub_banks(&name)?;
            let bank_sum: i64 = subs.iter().map(|b| b.shares).sum();
            // Already in username order (ORDER BY username, BINARY collation: byte order).
            let users = state.associations_in_bank(&name)?;
            let user_sum: i64 = users.iter().map(|a| a.shares).sum();
            let frac = |s: i64, sum: i64| if sum > 0 { s as f64 / sum as f64 * ns } else { 0.0 };
            for b in subs {
                nodes.push(Node {
                    name: b.bank.clone(),
                    user: false,
                    depth: depth + 1,
                    shares: b.shares,
                    nshares: frac(b.shares, bank_sum),
                    usage: b.job_usage,
                    nusage: norm(b.job_usage),
                    fs: f64::NAN,
                    parent: Some(i),
                    children: Vec::new(),
                });
                let n = nodes.len() - 1;
                nodes[i].children.push(n);
            }
            for a in users {
                nodes.push(Node {
                    name: a.username.clone(),
                    user: true,
                    depth: depth + 1,
                    shares: a.shares,
                    nshares: frac(a.shares, user_sum),
                    usage: a.job_usage,
                    nusage: norm(a.job_usage),
                    fs: a.fairshare,
                    parent: Some(i),
                    children: Vec::new(),
                });
                let n = nodes.len() - 1;
                nodes[i].children.push(n);
            }
        }
        i += 1;
    }
    Ok(nodes)
}

struct Fmt<'a> {
    verbose: bool,
    parsable: bool,
    star: Option<&'a str>,
}

fn header(f: &Fmt<'_>) -> String {
    match (f.parsable, f.verbose) {
        (true, false) => "Name|Shares|Norm_Shares|Norm_Usage|Norm_FS".into(),
        (true, true) => "Name|Shares|Norm_Shares|Usage|Norm_Usage|Norm_FS|Type".into(),
        (false, false) => {
            format!("{:<20} {:>10} {:>12} {:>12} {:>10}", "Name", "Shares", "Norm Shares", "Norm Usage", "Level FS")
        }
        (false, true) => format!(
            "{:<20} {:>10} {:>12} {:>13} {:>12} {:>10} {:<5}",
            "Name", "Shares", "Norm Shares", "Usage", "Norm Usage", "Level FS", "Type"
        ),
    }
}

fn line(n: &Node, f: &Fmt<'_>) -> String {
    let mut name = format!("{}{}{}", " ".repeat(n.depth), if n.user { " " } else { "" }, n.name);
    if !n.user && f.star == Some(n.name.as_str()) {
        name.push('*');
    }
    let fs = if n.fs.is_nan() {
        if f.parsable && f.verbose {
            "nan".to_string()
        } else {
            "--".to_string()
        }
    } else if n.fs.is_infinite() {
        "inf".to_string()
    } else if f.parsable && f.verbose {
        format!("{:.6}", n.fs)
    } else {
        format!("{:.3}", n.fs)
    };
    let ty = if n.user { "User" } else { "Bank" };
    match (f.parsable, f.verbose) {
        (true, false) => format!("{name}|{}|{:.6}|{:.6}|{fs}", n.shares, n.nshares, n.nusage),
        (true, true) => format!("{name}|{}|{:.6}|{:.1}|{:.6}|{fs}|{ty}", n.shares, n.nshares, n.usage, n.nusage),
        (false, false) => format!("{name:<20} {:>10} {:>12.6} {:>12.6} {fs:>10}", n.shares, n.nshares, n.nusage),
        (false, true) => format!(
            "{name:<20} {:>10} {:>12.6} {:>13.1} {:>12.6} {fs:>10} {ty:<5}",
            n.shares, n.nshares, n.usage, n.nusage
        ),
    }
}

fn subtree(nodes: &[Node], i: usize, users: bool, exclude: Option<&str>, f: &Fmt<'_>, out: &mut Vec<String>) {
    out.push(line(&nodes[i], f));
    let mut kids: Vec<usize> = nodes[i].children.clone();
    kids.sort_by(|a, b| nodes[*a].name.cmp(&nodes[*b].name));
    for k in kids {
        if exclude == Some(nodes[k].name.as_str()) || (nodes[k].user && !users) {
            continue;
        }
        subtree(nodes, k, users, exclude, f, out);
    }
}

/// Read-only: the report. `me` is the invoking user's name.
pub fn view(state: &State<'_>, args: &Args, me: &str) -> Result<Output> {
    let nodes = build(state)?;
    let exclude = args.exclude.as_deref();
    let (target, tree_mode, users, user_mode) = if let Some(b) = &args.tree {
        (b.clone(), true, true, false)
    } else if let Some(b) = &args.tree_no_users {
        (b.clone(), true, false, false)
    } else if let Some(b) = &args.to_root {
        (b.clone(), false, false, false)
    } else {
        (args.user.clone().unwrap_or_else(|| me.to_string()), false, true, true)
    };
    let star =
        if user_mode { state.associations_of_user(&target)?.first().map(|a| a.default_bank.clone()) } else { None };
    let f = Fmt { verbose: args.verbose, parsable: args.parsable, star: star.as_deref() };
    let matches: Vec<usize> =
        (0..nodes.len()).filter(|&i| nodes[i].name == target && nodes[i].user == (user_mode && users)).collect();
    if matches.is_empty() {
        return Err(Error::invalid(format!("Could not find \"{target}\"")));
    }
    let mut out = Vec::new();
    if !args.noheader {
        out.push(header(&f));
    }
    for m in matches {
        if tree_mode {
            subtree(&nodes, m, users, exclude, &f, &mut out);
        } else {
            let mut path = vec![m];
            while let Some(p) = nodes[*path.last().unwrap_or(&0)].parent {
                path.push(p);
            }
            if path.iter().any(|&i| exclude == Some(nodes[i].name.as_str())) {
                continue;
            }
            for &i in path.iter().rev() {
                out.push(line(&nodes[i], &f));
            }
        }
    }
    Ok(Output::line(out.join("\n")))
}

/// Runs `bank-info`.
pub fn cmd_bank_info(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args, &ctx.actor.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    fn a() -> Args {
        Args {
            tree: None,
            tree_no_users: None,
            to_root: None,
            user: None,
            verbose: false,
            parsable: true,
            noheader: false,
            exclude: None,
        }
    }

    #[test]
    fn tree_and_user_paths() {
        let g = given(&[
            Given::Bank("root", ""),
            Given::Bank("A", "root"),
            Given::Bank("B", "root"),
            Given::User("u", "A"),
            Given::User("v", "A"),
        ]);
        let out = view(&g.state(), &Args { tree: Some("root".into()), ..a() }, "me").unwrap().stdout;
        assert_eq!(
            out,
            "Name|Shares|Norm_Shares|Norm_Usage|Norm_FS\nroot|1|1.000000|0.000000|inf\n A|1|0.500000|0.000000|--\n   \
             u|1|0.250000|0.000000|0.500\n   v|1|0.250000|0.000000|0.500\n B|1|0.500000|0.000000|--\n"
        );
        let out = view(&g.state(), &a(), "u").unwrap().stdout;
        assert_eq!(
            out,
            "Name|Shares|Norm_Shares|Norm_Usage|Norm_FS\nroot|1|1.000000|0.000000|inf\n A*|1|0.500000|0.000000|--\n   \
             u|1|0.250000|0.000000|0.500\n"
        );
        assert_eq!(view(&g.state(), &a(), "zed").unwrap_err().to_string(), "Could not find \"zed\"");
    }
}
