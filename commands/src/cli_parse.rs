//! Parsing the command line as admins type it: flux-accounting's
//! multi-character short options ([`cli::expand_multi_char_shorts`]), then
//! clap, whose usage errors are made more helpful where argparse habits
//! meet them:
//!
//! * a long-option prefix that matches several options (`--user` for
//!   `--username` and `--userid`) says it is ambiguous and lists them all
//!   (clap's `infer_long_args` would suggest just one);
//! * a mistyped subcommand lists the similar ones nearest first.
//!
//! Both stay clap usage errors: the usage line, the pointer to `--help`,
//! exit 2.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::FromArgMatches;

use crate::cli::{self, Cli};

/// Parses `argv` (with the program name first).
pub fn parse(argv: Vec<String>) -> Result<Cli, clap::Error> {
    let argv = cli::expand_multi_char_shorts(argv);
    let mut cmd = cli::clap_command();
    let matches = match cmd.try_get_matches_from_mut(&argv) {
        Ok(m) => m,
        Err(e) => return Err(refine(e, &argv)),
    };
    let mut parsed = Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))?;
    // `--as-of` given after a read command's name.
    if parsed.as_of.is_none() {
        if let Some((_, sub)) = matches.subcommand() {
            if let Ok(Some(v)) = sub.try_get_one::<String>(cli::AS_OF) {
                parsed.as_of = Some(v.clone());
            }
        }
    }
    Ok(parsed)
}

/// A clap error, reworded where argparse habits meet it.
fn refine(mut e: clap::Error, argv: &[String]) -> clap::Error {
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            // clap lists the similar subcommands least similar first.
            if let Some(ContextValue::Strings(similar)) = e.get(ContextKind::SuggestedSubcommand) {
                let nearest_first: Vec<String> = similar.iter().rev().cloned().collect();
                e.insert(ContextKind::SuggestedSubcommand, ContextValue::Strings(nearest_first));
            }
            e
        }
        ErrorKind::UnknownArgument => {
            let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidArg) else { return e };
            let Some(prefix) = word.strip_prefix("--") else { return e };
            let prefix = prefix.split('=').next().unwrap_or(prefix).to_string();
            ambiguous_prefix(&prefix, argv).unwrap_or(e)
        }
        // clap leaves the usage line out of a bad value's message: it goes
        // in, as in every other usage error.
        ErrorKind::ValueValidation | ErrorKind::InvalidValue if e.get(ContextKind::Usage).is_none() => {
            let mut root = built(argv);
            let usage = match subcommand_of(&root, argv) {
                Some(name) => root.find_subcommand_mut(name).map(clap::Command::render_usage),
                None => Some(root.render_usage()),
            };
            if let Some(u) = usage {
                e.insert(ContextKind::Usage, ContextValue::StyledStr(u));
            }
            e
        }
        _ => e,
    }
}

/// The whole clap definition, built, named as the program was called.
fn built(argv: &[String]) -> clap::Command {
    let mut root = cli::clap_command();
    if let Some(bin) = argv.first().and_then(|a| std::path::Path::new(a).file_name()).and_then(|f| f.to_str()) {
        root = root.bin_name(bin);
    }
    root.build();
    root
}

/// The usage error for a long-option prefix that several options of the
/// command being parsed start with, or `None` when fewer do.
fn ambiguous_prefix(prefix: &str, argv: &[String]) -> Option<clap::Error> {
    if prefix.is_empty() {
        return None;
    }
    let mut root = built(argv);
    let sub = subcommand_of(&root, argv);
    let cmd = match &sub {
        Some(name) => root.find_subcommand_mut(name)?,
        None => &mut root,
    };
    let mut longs: Vec<String> = Vec::new();
    for a in cmd.get_arguments() {
        let names = a.get_long().into_iter().chain(a.get_all_aliases().into_iter().flatten());
        if let Some(hit) = names.into_iter().find(|l| l.starts_with(prefix)) {
            longs.push(format!("'--{}'", a.get_long().unwrap_or(hit)));
        }
    }
    if longs.len() < 2 {
        return None;
    }
    let last = longs.pop().unwrap_or_default();
    let message = format!("ambiguous option '--{prefix}' could match {} or {last}", longs.join(", "));
    Some(clap::Error::raw(ErrorKind::UnknownArgument, message).format(cmd))
}

/// The subcommand named on the command line `argv`: the first word that is
/// neither a top-level option nor its value.
fn subcommand_of(root: &clap::Command, argv: &[String]) -> Option<String> {
    let takes_value = |word: &str| -> bool {
        let arg = if let Some(long) = word.strip_prefix("--") {
            if long.contains('=') {
                return false;
            }
            let mut hits = root.get_arguments().filter(|a| a.get_long().is_some_and(|l| l.starts_with(long)));
            let exact = root.get_arguments().find(|a| a.get_long() == Some(long));
            exact.or_else(|| hits.next().filter(|_| hits.next().is_none()))
        } else {
            let mut chars = word.chars().skip(1);
            let (Some(c), None) = (chars.next(), chars.next()) else { return false };
            root.get_arguments().find(|a| a.get_short() == Some(c))
        };
        arg.is_some_and(|a| a.get_action().takes_values())
    };
    let mut words = argv.iter().skip(1);
    while let Some(w) = words.next() {
        if w == "--" {
            return None;
        }
        if w.starts_with('-') && w.len() > 1 {
            if takes_value(w) {
                words.next();
            }
            continue;
        }
        return root.find_subcommand(w).map(|s| s.get_name().to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn error(s: &str) -> String {
        parse(words(s)).expect_err(s).render().to_string()
    }

    #[test]
    fn an_ambiguous_prefix_lists_every_option_it_could_be() {
        let e = error("flux-account -p x.db add-user --user bob --bank b");
        assert!(e.starts_with("error: ambiguous option '--user' could match '--username' or '--userid'"), "{e}");
        assert!(e.contains("\nUsage: flux-account add-user "), "{e}");
        assert!(e.trim_end().ends_with("For more information, try '--help'."), "{e}");
        let e = error("flux-account edit-user alice --max=3");
        assert!(
            e.contains("'--max-running-jobs'") && e.contains("'--max-nodes'") && e.contains("'--max-cores'"),
            "{e}"
        );
        // A unique prefix still works; an unknown option keeps clap's message.
        parse(words("flux-account add-user --usern bob --bank b")).expect("unique prefix");
        assert!(error("flux-account add-user --bogus").contains("unexpected argument '--bogus'"));
    }

    #[test]
    fn a_mistyped_subcommand_lists_the_nearest_first() {
        let e = error("flux-account veiw-user x");
        assert!(e.contains("similar subcommands exist: 'view-user'"), "{e}");
        assert!(e.contains("\nUsage: flux-account "), "{e}");
    }

    #[test]
    fn as_of_parses_before_a_read_command_and_after_it() {
        // The documented form, before the command, and after a read
        // command's name.
        let cli = parse(["flux-account", "--as-of", "3", "view-user", "x"].map(String::from).into()).expect("parses");
        assert_eq!(cli.as_of.as_deref(), Some("3"));
        let cli = parse(["flux-account", "view-user", "--as-of", "-1h", "x"].map(String::from).into()).expect("parses");
        assert_eq!(cli.as_of.as_deref(), Some("-1h"));
    }

    #[test]
    fn a_bad_value_shows_the_usage_line() {
        let e = error("flux-account add-bank x abc");
        assert!(
            e.contains("invalid value 'abc' for '[SHARES]'") && e.contains("\nUsage: flux-account add-bank "),
            "{e}"
        );
        let e = error("flux-account log --since --json");
        assert!(
            e.contains("a value is required for '--since <TIME>'") && e.contains("\nUsage: flux-account log "),
            "{e}"
        );
    }

    #[test]
    fn the_subcommand_is_found_after_top_level_options() {
        let root = cli::clap_command();
        let find = |s: &str| subcommand_of(&root, &words(s));
        assert_eq!(find("fa -p list-users add-user").as_deref(), Some("add-user"));
        assert_eq!(find("fa --path=x list-users").as_deref(), Some("list-users"));
        assert_eq!(find("fa --as-of 3 --pa x view-user").as_deref(), Some("view-user"));
        assert_eq!(find("fa -- view-user"), None);
    }
}
