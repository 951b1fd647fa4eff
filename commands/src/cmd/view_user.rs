//! `view-user`: show a user's associations.

use projections::model::State;

use crate::admin::{assoc_rows, render, DefaultFormat};
use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Show every association of a user: JSON by default, a table with
/// `--parsable`, one bank per line with `--list-banks`, or a format string.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// User name.
    pub username: String,
    /// A table instead of JSON.
    #[arg(long)]
    pub parsable: bool,
    /// Only the user's banks, one per line.
    #[arg(long = "list-banks")]
    pub list_banks: bool,
    /// Python-style format string.
    #[arg(short = 'o', long)]
    pub format: Option<String>,
    /// Only these columns (comma list).
    #[arg(long)]
    pub fields: Option<String>,
    /// Show the user's per-period job usage.
    #[arg(short = 'J', long = "job-usage", conflicts_with = "fields")]
    pub job_usage: bool,
}

/// Read-only: renders the view.
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let rows = state.associations_of_user(&args.username)?;
    let not_found = format!("user {} not found in association_table", args.username);
    if rows.is_empty() {
        return Err(Error::invalid(not_found));
    }
    if args.job_usage {
        let usage = crate::usage_view::usage_rows(state, &args.username)?;
        let text = match (&args.format, args.parsable) {
            (Some(fmt), _) => crate::format::as_format(&usage, fmt)?,
            (None, true) => crate::format::as_table(&usage),
            (None, false) => crate::format::as_json(&usage),
        };
        return Ok(Output::line(text));
    }
    if args.format.is_none() && args.list_banks {
        let mut s = String::new();
        for a in &rows {
            s.push_str(&a.bank);
            s.push('\n');
        }
        return Ok(Output::line(s));
    }
    let text = render(
        assoc_rows(&rows),
        args.fields.as_deref(),
        args.format.as_deref(),
        false,
        args.parsable,
        DefaultFormat::Json,
        &not_found,
    )?;
    Ok(Output::line(text))
}

/// Runs `view-user`.
pub fn cmd_view_user(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{given, Given};

    fn a(u: &str) -> Args {
        Args { username: u.into(), parsable: false, list_banks: false, format: None, fields: None, job_usage: false }
    }

    #[test]
    fn json_parsable_list_banks() {
        let g = given(&[Given::Bank("root", ""), Given::Bank("A", "root"), Given::User("u", "A")]);
        let out = view(&g.state(), &a("u")).unwrap().stdout;
        assert!(out.starts_with("[\n  {\n"), "{out}");
        assert!(out.contains("\"max_active_jobs\": 7"), "{out}");
        assert!(out.contains("\"max_nodes\": \"unlimited\""), "{out}");
        let out = view(&g.state(), &Args { list_banks: true, ..a("u") }).unwrap().stdout;
        assert_eq!(out, "A\n\n");
        let out =
            view(&g.state(), &Args { parsable: true, fields: Some("username,bank".into()), ..a("u") }).unwrap().stdout;
        assert_eq!(out, "username | bank\n---------+-----\nu        | A   \n");
        let out = view(&g.state(), &Args { format: Some("{username}:{shares}".into()), ..a("u") }).unwrap().stdout;
        assert_eq!(out, "username:shares\nu:1\n");
        assert_eq!(view(&g.state(), &a("x")).unwrap_err().to_string(), "user x not found in association_table");
    }
}
