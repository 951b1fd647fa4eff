// The binary side of flux-account: environment, terminal, exit codes.
// Shared by `flux-account` and its `flux-account-*` alias executables.

use std::io::{IsTerminal, Write};

use fluxacct_commands::cli;
use fluxacct_commands::{Clock, Context, Error, Progress, Users};
use fluxacct_flux::FluxEnv;

struct Passwd;

impl Users for Passwd {
    fn uid_of(&self, name: &str) -> Option<u32> {
        nix::unistd::User::from_name(name).ok().flatten().map(|u| u.uid.as_raw())
    }
    fn name_of(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten().map(|u| u.name)
    }
}

/// Reads `/proc/locks` for the process holding the WAL write lock of a
/// ledger (SQLite's POSIX write lock on byte 120 of its `-shm` file), and
/// names it with its command line.
struct Proc;

impl fluxacct_commands::Processes for Proc {
    fn lock_holder(&self, db: &std::path::Path) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let mut shm = db.as_os_str().to_owned();
        shm.push("-shm");
        let inode = std::fs::metadata(&shm).ok()?.ino();
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        let me = std::process::id();
        let pid = locks.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // "1: POSIX  ADVISORY  WRITE 4242 08:01:1234 120 120"
            let (kind, mode, pid, file, start, end) =
                (f.get(1)?, f.get(3)?, f.get(4)?, f.get(5)?, f.get(6)?, f.get(7)?);
            let ino: u64 = file.rsplit(':').next()?.parse().ok()?;
            let start: u64 = start.parse().ok()?;
            let covers = start <= 120 && (*end == "EOF" || end.parse::<u64>().is_ok_and(|e| e >= 120));
            let pid: u32 = pid.parse().ok()?;
            (*kind == "POSIX" && *mode == "WRITE" && ino == inode && covers && pid != me).then_some(pid)
        })?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd: Vec<String> =
            cmd.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        Some(if cmd.is_empty() { format!("pid {pid}") } else { format!("pid {pid} ({})", cmd.join(" ")) })
    }
}

/// `text` with every control character but newline and tab shown as a
/// `\xNN` (`\u{NNNN}` above 0xff) escape, as `flux` and `git` quote names:
/// a user, bank or queue name carrying ESC or OSC sequences must not drive
/// the admin's terminal. Applied to everything printed (stdout, notes,
/// errors); JSON output has no raw control characters (serde escapes
/// them), so it passes unchanged.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !bad(c) {
            out.push(c);
        } else if (c as u32) <= 0xff {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Progress and notices on stderr: a bar when stderr is a terminal,
/// notices always.
struct Sink(Option<Bar>);

impl Progress for Sink {
    fn start(&self, what: &str, total: Option<u64>) {
        if let Some(b) = &self.0 {
            b.start(what, total);
        }
    }
    fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish();
        }
    }
    fn notice(&self, line: &str) {
        let line = shown(line);
        match &self.0 {
            Some(b) => b.0.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
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

/// Whether the locale's character set is UTF-8, from the first set of
/// `LC_ALL`, `LC_CTYPE`, `LANG` (as setlocale(3) chooses; unset or `C`/
/// `POSIX` is ASCII).
fn locale_is_utf8() -> bool {
    let v = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase();
    v.contains("utf-8") || v.contains("utf8")
}

fn clock_from_env() -> Result<Clock, String> {
    // Testing hook: FLUXACCT_NOW fixes "now" (epoch seconds or a date).
    match std::env::var("FLUXACCT_NOW") {
        Ok(v) => fluxacct_commands::time::parse_time_in(&v, 0, fluxacct_commands::time::Zone::Local)
            .map(Clock::Fixed)
            .map_err(|e| format!("FLUXACCT_NOW: {e}")),
        Err(_) => Ok(Clock::System),
    }
}

/// Where libflux-core is looked for: `FLUXACCT_LIBFLUX`, then the `flux`
/// driver's paths, then `PATH` (see `flux::libflux_candidates`).
fn flux_env() -> FluxEnv {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    FluxEnv {
        libflux: std::env::var_os("FLUXACCT_LIBFLUX").filter(|v| !v.is_empty()).map(Into::into),
        connector_path: var("FLUX_CONNECTOR_PATH"),
        module_path: var("FLUX_MODULE_PATH"),
        exec_path: var("FLUX_EXEC_PATH"),
        path: var("PATH"),
        uri: var("FLUX_URI"),
    }
}

/// Runs the command line and returns the exit code.
pub fn main_with(alias: Option<&str>) -> i32 {
    let mut argv: Vec<String> = std::env::args().collect();
    let alias = alias.map(str::to_string).or_else(|| argv.first().and_then(|a| cli::alias_subcommand(a)));
    // Help and usage of an alias (`flux-account-update-usage`) name that
    // program alone, so that its usage line works as typed.
    let mut rename: Option<(String, String)> = None;
    if let Some(sub) = &alias {
        let program = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a).to_string());
        if let Some(p) = program.filter(|p| p.starts_with("flux-account-")) {
            rename = Some((format!("{p} {sub}"), p));
        }
        argv.insert(1, sub.clone());
    }
    // The log records the command line as typed; clap parses the rewritten one.
    let parsed = match fluxacct_commands::cli_parse::parse(argv.clone()) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                0
            } else {
                // A usage error: clap's whole message (what is wrong, the
                // valid values or the nearest subcommand, the usage line),
                // exit 2 as clap and flux-accounting's argparse do.
                2
            };
            // clap echoes the offending value: when it carries control
            // characters (or the program is renamed), a plain rendering is
            // printed, escaped (clap's colours are lost then).
            let plain = e.render().to_string();
            let text = match &rename {
                Some((from, to)) => plain.replace(from.as_str(), to),
                None => plain,
            };
            let text = shown(&text);
            if rename.is_none() && matches!(text, std::borrow::Cow::Borrowed(_)) {
                let _ = e.print();
            } else if e.use_stderr() {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            return code;
        }
    };
    let clock = match clock_from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("flux-account: error: {e}");
            return 1;
        }
    };
    if let cli::Command::Service(a) = &parsed.command {
        return run_service(clock, &parsed.path, a);
    }
    let uid = nix::unistd::getuid().as_raw();
    let name = Passwd.name_of(uid).unwrap_or_else(|| uid.to_string());
    let progress: Box<dyn Progress> = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Box::new(Sink(Some(Bar(bar))))
    } else {
        Box::new(Sink(None))
    };
    let ctx = Context {
        clock,
        actor: fluxacct_core::Actor { uid, name },
        argv: argv.clone(),
        db_path: parsed.path.clone(),
        as_of: parsed.as_of.clone(),
        progress,
        users: Box::new(Passwd),
        flux_env: flux_env(),
        processes: Box::new(Proc),
        zone: fluxacct_commands::time::Zone::Local,
        utf8: locale_is_utf8(),
    };
    let expanded = cli::expand_multi_char_shorts(argv.clone());
    let result = match through_service(&parsed, &expanded) {
        Some(r) => r,
        None => cli::run(&ctx, &parsed.command),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match result {
        Ok(o) => {
            let _ = out.write_all(shown(&o.stdout).as_bytes());
            for w in o.warnings {
                let _ = writeln!(out, "{}", shown(&w));
            }
            let _ = out.flush();
            for n in o.notes {
                eprintln!("{}", shown(&n));
            }
            o.exit_code
        }
        Err(Error::CheckFailed { message, report }) => {
            let _ = out.write_all(shown(&report).as_bytes());
            eprintln!("flux-account: error: {}", shown(&message));
            1
        }
        Err(e) => {
            let code = e.exit_code();
            let msg = e.to_string().replace('\n', " ");
            eprintln!("flux-account: error: {}", shown(&msg));
            code
        }
    }
}

/// The environment variable that sets how long the CLI waits for the
/// `accounting` service's answer, in seconds.
const SERVICE_TIMEOUT_VAR: &str = "FLUXACCT_SERVICE_TIMEOUT_S";

/// How long the CLI waits for the service: [`SERVICE_TIMEOUT_VAR`], else 30 s.
fn service_timeout() -> Result<std::time::Duration, Error> {
    match std::env::var(SERVICE_TIMEOUT_VAR) {
        Err(_) => Ok(std::time::Duration::from_secs(30)),
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| Error::invalid(format!("{SERVICE_TIMEOUT_VAR}={v}: not a positive number of seconds"))),
    }
}

/// Whether the command goes to the instance's `accounting` service instead
/// of the ledger file, and its result if so: with `--service`, or when
/// `-p` is not given, the default ledger cannot be read here, `FLUX_URI`
/// names an instance and the command has an endpoint (`--local` never).
fn through_service(parsed: &cli::Cli, argv: &[String]) -> Option<Result<fluxacct_commands::Output, Error>> {
    use fluxacct_commands::service;
    // `--centre` reads the accounting centre, never the instance's ledger.
    if parsed.local || argv.iter().any(|a| a == "--centre" || a.starts_with("--centre=")) {
        return None;
    }
    let command = cli::clap_command();
    if !parsed.service
        && (service::path_given(&command, argv)
            || std::fs::File::open(&parsed.path).is_ok()
            || std::env::var_os("FLUX_URI").is_none_or(|u| u.is_empty()))
    {
        return None;
    }
    let (endpoint, payload) = match service::argv_to_payload(&command, argv) {
        Ok(Some(p)) => p,
        Ok(None) if parsed.service => {
            let sub = argv.iter().skip(1).find(|a| !a.starts_with('-')).cloned().unwrap_or_default();
            return Some(Err(Error::invalid(format!(
                "`{sub}` has no accounting.* endpoint: run it without --service where the ledger is"
            ))));
        }
        Ok(None) => return None,
        Err(e) => return Some(Err(e)),
    };
    let flux = match fluxacct_flux::Flux::open(&flux_env()) {
        Ok(f) => f,
        Err(e) if parsed.service => return Some(Err(Error::invalid(e.to_string()))),
        // No instance to ask: the local command says what is wrong with the file.
        Err(_) => return None,
    };
    let timeout = match service_timeout() {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let topic = format!("{}.{endpoint}", service::SERVICE);
    Some(match flux.rpc_timeout(&topic, Some(&payload.to_string()), timeout) {
        Ok(answer) => service::output_of_answer(&endpoint, answer.as_deref()),
        // No service registered there: the local command says what is
        // wrong with the file (unless --service asked for the service).
        Err(e) if e.errno() == 38 && !parsed.service => return None,
        Err(e) if e.is_timeout() => Err(Error::invalid(format!(
            "the accounting service did not answer within {} s: it may have died or hung; check `flux \
             account-service` (set {SERVICE_TIMEOUT_VAR} to wait longer)",
            timeout.as_secs_f64()
        ))),
        Err(e) => {
            let text = e.to_string();
            let msg = text.strip_prefix(&format!("{topic}: ")).unwrap_or(&text).to_string();
            Err(Error::invalid(msg))
        }
    })
}

/// The passwd, contexts and command runner of `flux account-service`.
struct ServiceHost {
    clock: Clock,
    db_path: std::path::PathBuf,
    utf8: bool,
}

impl fluxacct_commands::service::Host for ServiceHost {
    fn context(&self, actor: fluxacct_core::Actor, argv: Vec<String>) -> Context {
        Context {
            clock: self.clock,
            actor,
            argv,
            db_path: self.db_path.clone(),
            as_of: None,
            progress: Box::new(Sink(None)),
            users: Box::new(Passwd),
            flux_env: flux_env(),
            processes: Box::new(Proc),
            zone: fluxacct_commands::time::Zone::Local,
            utf8: self.utf8,
        }
    }
    fn name_of(&self, uid: u32) -> Option<String> {
        Passwd.name_of(uid)
    }
    fn run(&self, ctx: &Context, argv: &[String]) -> Result<fluxacct_commands::Output, Error> {
        let parsed = fluxacct_commands::cli_parse::parse(argv.to_vec()).map_err(|e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            Error::invalid(first.strip_prefix("error: ").unwrap_or(first).to_string())
        })?;
        if matches!(parsed.command, cli::Command::Service(_)) {
            return Err(Error::invalid("`service` is not an endpoint"));
        }
        cli::run(ctx, &parsed.command)
    }
    fn log(&self, line: &str) {
        eprintln!("{}", shown(line));
    }
}

/// `flux account-service`: serves the ledger until
/// `accounting.shutdown_service`. With `-t`, a child serves and this
/// process exits once the child has registered the service.
fn run_service(clock: Clock, path: &std::path::Path, args: &fluxacct_commands::service::Args) -> i32 {
    const CHILD: &str = "FLUXACCT_SERVICE_BACKGROUND_CHILD";
    let child = std::env::var_os(CHILD).is_some();
    if args.test_background && !child {
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("flux-account-service: error: {e}");
                return 1;
            }
        };
        let spawned = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(CHILD, "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let mut c = match spawned {
            Ok(c) => c,
            Err(e) => {
                eprintln!("flux-account-service: error: cannot start the service: {e}");
                return 1;
            }
        };
        let mut line = String::new();
        if let Some(out) = c.stdout.take() {
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line);
        }
        if line.trim() == "ready" {
            return 0;
        }
        return c.wait().ok().and_then(|s| s.code()).unwrap_or(1).max(1);
    }
    let flux = match fluxacct_flux::Flux::open(&flux_env()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("flux-account-service: error: {}", shown(&e.to_string()));
            return 1;
        }
    };
    let host = ServiceHost { clock, db_path: path.to_path_buf(), utf8: locale_is_utf8() };
    let mut ready = || {
        if child {
            println!("ready");
            let _ = std::io::stdout().flush();
        }
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = if args.follow {
        // A ledger that needs an upgrade is refused before the follower
        // could open it for writing (which would rebuild its projections).
        if let Err(e) = fluxacct_commands::service::check_ledger(path) {
            eprintln!("flux-account-service: error: {}", shown(&e.to_string().replace('\n', " ")));
            return 1;
        }
        let (stop, path) = (stop.clone(), path.to_path_buf());
        Some(std::thread::spawn(move || run_follower(clock, &path, &stop)))
    } else {
        None
    };
    let served = fluxacct_commands::service::serve(&flux, &cli::clap_command(), &host, path, &mut ready);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = follower {
        let _ = t.join();
    }
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("flux-account-service: error: {}", shown(&e.to_string().replace('\n', " ")));
            1
        }
    }
}

/// `flux account-service --follow`: the journal follower on a thread of the
/// service, as the service's uid, until `stop`; a follower that fails is
/// said on stderr and started again 10 s later.
fn run_follower(clock: Clock, path: &std::path::Path, stop: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    let uid = nix::unistd::getuid().as_raw();
    let name = Passwd.name_of(uid).unwrap_or_else(|| uid.to_string());
    let ctx = Context {
        clock,
        actor: fluxacct_core::Actor { uid, name },
        argv: vec!["flux-account-service".into(), "--follow".into()],
        db_path: path.to_path_buf(),
        as_of: None,
        progress: Box::new(Sink(None)),
        users: Box::new(Passwd),
        flux_env: flux_env(),
        processes: Box::new(Proc),
        zone: fluxacct_commands::time::Zone::Local,
        utf8: locale_is_utf8(),
    };
    let opts = fluxacct_commands::follow::Options::new(path);
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = fluxacct_commands::follow::follow(&ctx, &opts, stop) {
            eprintln!(
                "flux-account-service: follower: {}; starting again in 10 s",
                shown(&e.to_string().replace('\n', " "))
            );
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}
