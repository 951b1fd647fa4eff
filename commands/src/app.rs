// The binary side of flux-account: environment, terminal, exit codes.
// Shared by `flux-account` and its `flux-account-*` alias executables.

use std::io::{IsTerminal, Write};

use clap::Parser;
use fluxacct_commands::cli::{self, Cli};
use fluxacct_commands::{Clock, Context, Error, Progress, Users};

struct Passwd;

impl Users for Passwd {
    fn uid_of(&self, name: &str) -> Option<u32> {
        nix::unistd::User::from_name(name).ok().flatten().map(|u| u.uid.as_raw())
    }
    fn name_of(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten().map(|u| u.name)
    }
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn start(&self, what: &str, total: Option<u64>) {
        self.0.set_message(what.to_string());
        // Without a known total (a stream), a counter with the rate instead
        // of a bar and an ETA.
        let template = match total {
            Some(_) => "{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
            None => "{spinner} {msg}: {pos} ({per_sec}, {elapsed})",
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            self.0.set_style(style);
        }
        if let Some(t) = total {
            self.0.set_length(t);
        }
        self.0.set_position(0);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn clock_from_env() -> Result<Clock, String> {
    // Testing hook: FLUXACCT_NOW fixes "now" (epoch seconds or a date).
    match std::env::var("FLUXACCT_NOW") {
        Ok(v) => {
            fluxacct_commands::time::parse_time_us(&v, 0).map(Clock::Fixed).map_err(|e| format!("FLUXACCT_NOW: {e}"))
        }
        Err(_) => Ok(Clock::System),
    }
}

/// Runs the command line and returns the exit code.
pub fn main_with(alias: Option<&str>) -> i32 {
    let mut argv: Vec<String> = std::env::args().collect();
    let alias = alias.map(str::to_string).or_else(|| argv.first().and_then(|a| cli::alias_subcommand(a)));
    if let Some(sub) = &alias {
        argv.insert(1, sub.clone());
    }
    let parsed = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            eprintln!("flux-account: error: {first}");
            return 1;
        }
    };
    let clock = match clock_from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flux-account: error: {e}");
            return 1;
        }
    };
    let uid = nix::unistd::getuid().as_raw();
    let name = Passwd.name_of(uid).unwrap_or_else(|| uid.to_string());
    let progress: Box<dyn Progress> = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Box::new(Bar(bar))
    } else {
        Box::new(fluxacct_commands::NoProgress)
    };
    let ctx = Context {
        clock,
        actor: ledger::Actor { uid, name },
        argv: argv.clone(),
        db_path: parsed.path.clone(),
        as_of: parsed.as_of.clone(),
        progress,
        users: Box::new(Passwd),
    };
    let result = cli::run(&ctx, &parsed.command);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match result {
        Ok(o) => {
            let _ = out.write_all(o.stdout.as_bytes());
            for w in o.warnings {
                eprintln!("{w}");
            }
            o.exit_code
        }
        Err(Error::CheckFailed { message, report }) => {
            let _ = out.write_all(report.as_bytes());
            eprintln!("flux-account: error: {message}");
            1
        }
        Err(e) => {
            let code = e.exit_code();
            let msg = e.to_string().replace('\n', " ");
            eprintln!("flux-account: error: {msg}");
            code
        }
    }
}
