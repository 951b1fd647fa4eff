//! The command context: clock, actor, command line and output settings.
//! The library reads no environment variables and does no terminal I/O;
//! the binary fills this in.

use std::path::PathBuf;

use fluxacct_core::{Actor, EventMeta};

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// A fixed time, in microseconds since the epoch (tests, replays).
    Fixed(i64),
}

impl Clock {
    /// Now, in microseconds since the epoch.
    pub fn now_us(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0),
            Clock::Fixed(t) => *t,
        }
    }

    /// Now, in fractional seconds since the epoch.
    pub fn now_secs(&self) -> f64 {
        self.now_us() as f64 / 1e6
    }
}

/// A sink for progress reports of long commands (ingest, rebuild). The
/// binary draws a progress bar when stderr is a terminal.
pub trait Progress {
    /// Starts a phase with an optional known total.
    fn start(&self, _what: &str, _total: Option<u64>) {}
    /// Advances by `n`.
    fn inc(&self, _n: u64) {}
    /// Ends the phase.
    fn finish(&self) {}
    /// A one-line notice for the person waiting (e.g. that the command is
    /// waiting for the write lock). The binary prints it on stderr.
    fn notice(&self, _line: &str) {}
}

/// What the operating system can tell about other processes.
pub trait Processes {
    /// The process holding the write lock of the ledger at `db` (e.g.
    /// `pid 4242 (flux-account update-usage)`), if it can be told.
    fn lock_holder(&self, _db: &std::path::Path) -> Option<String> {
        None
    }
}

/// A process table that knows nothing.
pub struct NoProcesses;
impl Processes for NoProcesses {}

/// The passwd database, as far as commands need it.
pub trait Users {
    /// The uid of a user name.
    fn uid_of(&self, _name: &str) -> Option<u32> {
        None
    }
    /// The user name of a uid.
    fn name_of(&self, _uid: u32) -> Option<String> {
        None
    }
}

/// A passwd database that knows nobody.
pub struct NoUsers;
impl Users for NoUsers {}

/// A progress sink that does nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Everything a command needs from outside the library.
pub struct Context {
    /// The clock.
    pub clock: Clock,
    /// Who runs the command.
    pub actor: Actor,
    /// The full command line, recorded in every event.
    pub argv: Vec<String>,
    /// The ledger path (`-p/--path`).
    pub db_path: PathBuf,
    /// `--as-of SEQ|TIME`, for read-only commands.
    pub as_of: Option<String>,
    /// Progress reporting.
    pub progress: Box<dyn Progress>,
    /// User name / uid lookups.
    pub users: Box<dyn Users>,
    /// Where to look for libflux-core (commands that talk to Flux).
    pub flux_env: fluxacct_flux::FluxEnv,
    /// Who holds the ledger's lock.
    pub processes: Box<dyn Processes>,
    /// The time zone dates are read and shown in (the local one for the
    /// binary).
    pub zone: crate::time::Zone,
    /// Whether the locale's character set is UTF-8 (f58 job ids print
    /// with `ƒ` then, with `f` otherwise, as flux does).
    pub utf8: bool,
}

impl Context {
    /// A job id as flux prints it in this locale (f58: `ƒ` under UTF-8,
    /// `f` otherwise). Every listing and message shows ids through this.
    pub fn jobid(&self, id: u64) -> String {
        self.jobid_as(id, fluxacct_ingest::record::IdForm::F58 { utf8: self.utf8 })
    }

    /// A job id in `form` (see [`fluxacct_ingest::record::show_id`]).
    pub fn jobid_as(&self, id: u64, form: fluxacct_ingest::record::IdForm) -> String {
        fluxacct_ingest::record::show_id(id, form)
    }

    /// An INFO line as flux-accounting's scripts log it with `-v`
    /// (`2026-01-01 00:00:00: INFO: MESSAGE`), stamped now.
    pub fn info(&self, message: &str) -> String {
        format!("{}: INFO: {message}", crate::time::format_log_stamp(self.clock.now_us(), self.zone))
    }

    /// A context for tests: fixed clock, actor uid 0 `root`.
    pub fn for_tests(db_path: impl Into<PathBuf>, now_us: i64) -> Context {
        Context {
            clock: Clock::Fixed(now_us),
            actor: Actor { uid: 0, name: "root".into() },
            argv: vec!["flux-account".into()],
            db_path: db_path.into(),
            as_of: None,
            progress: Box::new(NoProgress),
            users: Box::new(NoUsers),
            flux_env: fluxacct_flux::FluxEnv::default(),
            processes: Box::new(NoProcesses),
            zone: crate::time::Zone::Utc,
            utf8: true,
        }
    }

    /// Parses a time typed on the command line (see
    /// [`crate::time::parse_time_in`]) in the context's zone, relative to
    /// its clock; microseconds since the epoch.
    pub fn parse_time_us(&self, s: &str) -> crate::Result<i64> {
        crate::time::parse_time_in(s, self.clock.now_us(), self.zone)
    }

    /// [`Context::parse_time_us`] in fractional seconds.
    pub fn parse_time_secs(&self, s: &str) -> crate::Result<f64> {
        Ok(self.parse_time_us(s)? as f64 / 1e6)
    }

    /// Shows a time (microseconds since the epoch) in the context's zone.
    pub fn format_time(&self, us: i64) -> String {
        crate::time::table_time(us, self.zone)
    }

    /// The metadata recorded with events appended now.
    pub fn meta(&self) -> EventMeta {
        EventMeta { recorded_at_us: self.clock.now_us(), actor: self.actor.clone(), argv: self.argv.clone() }
    }
}

/// What a command produced: text and warnings for stdout, notes for
/// stderr.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// Printed to stdout as is.
    pub stdout: String,
    /// flux-accounting's warnings (e.g. `delete-queue`'s): each printed on
    /// its own line to stdout after the text, where flux-accounting prints
    /// them.
    pub warnings: Vec<String>,
    /// fluxacct's own diagnostics: each printed on its own line to stderr.
    pub notes: Vec<String>,
    /// The process exit status of a command that did its work but has
    /// something to flag (0 otherwise; `fetch-job-records`: 3 when records
    /// were rejected).
    pub exit_code: i32,
}

impl Output {
    /// Output with only stdout text.
    pub fn text(s: impl Into<String>) -> Output {
        Output { stdout: s.into(), ..Output::default() }
    }

    /// Output with a trailing newline added (like Python's print).
    pub fn line(s: impl Into<String>) -> Output {
        let mut s = s.into();
        s.push('\n');
        Output::text(s)
    }

    /// No output.
    pub fn none() -> Output {
        Output::default()
    }
}
