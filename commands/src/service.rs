//! `flux account-service`: the ledger served over the broker, as
//! flux-accounting's service serves its database.
//!
//! The service registers the name `accounting` and answers every
//! `accounting.<func>` endpoint flux-accounting 0.60 registers. A request's
//! payload is flux-accounting's argparse dict (`vars(args)`: every option,
//! unset ones as `null`; unknown keys and `path` are ignored); it is turned
//! back into the command line of the same subcommand
//! ([`payload_to_argv`]), which runs through the same clap parse and
//! `cmd_*` as a local command, so the text is the local text. The answer
//! is `{"<func>": <text>}` (`0` when the command prints nothing), errors
//! the RPC error string.
//!
//! Every libflux call stays on the thread that runs [`serve`] (the handle
//! is not thread-safe); each request runs on its own worker thread with its
//! own ledger connection, and the finished answer comes back through a
//! channel. A slow report does not hold up other requests; writes are
//! ordered by the ledger's write lock, with cron's processes alike.
//!
//! This module prints nothing and reads no environment: the binary
//! (`app.rs`) supplies a [`Host`] (contexts, passwd, the command runner).

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use clap::ArgAction;
use serde_json::{Map, Value};

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// `flux account service` (also the `flux-account-service` program).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Fork into the background once the service is registered (for tests,
    /// as flux-accounting's `-t`).
    #[arg(short = 't', long = "test-background")]
    pub test_background: bool,
    /// Also run the journal follower in this process (`flux account
    /// follow`): one accounting daemon records jobs as they end and
    /// answers the `accounting.*` requests.
    #[arg(long)]
    pub follow: bool,
}

/// The service name.
pub const SERVICE: &str = "accounting";

/// The endpoints any user of the instance may call (flux-accounting's
/// `general_endpoints`).
pub const READ_ENDPOINTS: &[&str] = &[
    "view_user",
    "view_bank",
    "list_banks",
    "view_job_records",
    "view_queue",
    "view_project",
    "list_projects",
    "list_queues",
    "list_users",
    "view_factor",
    "list_factors",
    "jobs",
    "show_usage",
    "view_usage_report",
    "view_config",
    "list_configs",
    "bank_info",
];

/// The endpoints only the instance owner may call (flux-accounting's
/// `privileged_endpoints`).
pub const OWNER_ENDPOINTS: &[&str] = &[
    "add_user",
    "delete_user",
    "edit_user",
    "add_bank",
    "delete_bank",
    "edit_bank",
    "add_queue",
    "delete_queue",
    "edit_queue",
    "add_project",
    "delete_project",
    "scrub_old_jobs",
    "export_db",
    "pop_db",
    "shutdown_service",
    "edit_factor",
    "reset_factors",
    "edit_all_users",
    "sync_userids",
    "export_json",
    "clear_usage",
    "add_config",
    "edit_config",
    "delete_config",
];

/// The error a caller without the owner role gets from an owner endpoint
/// (flux-core's own wording for a handler's rolemask check).
pub const OWNER_ONLY: &str = "Request requires owner credentials";

/// flux-accounting's message for a database that must be upgraded first.
pub const OUT_OF_DATE: &str =
    "flux-accounting database out of date; please update DB with 'flux account-update-db' before running commands";

/// Payload keys whose argparse `dest` differs from fluxacct's clap id:
/// `(subcommand, payload key, clap id)`.
pub const RENAMES: &[(&str, &str, &str)] = &[
    ("scrub-old-jobs", "num_weeks", "weeks"),
    ("add-config", "key_value_string", "pair"),
    ("edit-config", "key_value_strings", "pairs"),
];

/// argparse defaults that mean "not given" (flux-accounting's service
/// treats them so): `userid` `FLUX_USERID_UNKNOWN` (look the name up) and
/// an empty `format`.
const UNSET: &[(&str, &str)] = &[("userid", "4294967295"), ("format", "")];

/// Global options of the command line, never taken from a payload.
const GLOBAL_IDS: &[&str] = &["path", "as_of", "service", "local", "help", "version"];

/// Whether `endpoint` is one the service answers.
pub fn is_endpoint(endpoint: &str) -> bool {
    READ_ENDPOINTS.contains(&endpoint) || OWNER_ENDPOINTS.contains(&endpoint)
}

/// The endpoint of a subcommand (`view-user` → `view_user`), if the
/// service has one (`shutdown_service` is not a subcommand).
pub fn endpoint_of(subcommand: &str) -> Option<String> {
    let e = subcommand.replace('-', "_");
    (is_endpoint(&e) && e != "shutdown_service").then_some(e)
}

fn payload_key<'a>(sub: &str, id: &'a str) -> &'a str {
    RENAMES.iter().find(|(s, _, i)| *s == sub && *i == id).map_or(id, |r| r.1)
}

/// A payload value as command-line words (`None` for null and false).
fn words_of(v: &Value) -> Vec<String> {
    match v {
        Value::Null | Value::Bool(false) => vec![],
        Value::Bool(true) => vec!["true".into()],
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(a) => a.iter().flat_map(words_of).collect(),
        Value::Object(_) => vec![v.to_string()],
    }
}

/// The command line (`flux-account <subcommand> ...`) that a request's
/// payload stands for. Options come first, then `--` and the positional
/// arguments in order. A missing required positional is flux-accounting's
/// `<subcommand>: missing key in payload: '<key>'`.
pub fn payload_to_argv(cli: &clap::Command, endpoint: &str, payload: &Value) -> Result<Vec<String>> {
    let sub_name = endpoint.replace('_', "-");
    let sub = cli.find_subcommand(&sub_name).ok_or_else(|| Error::invalid(format!("{endpoint}: no such endpoint")))?;
    let empty = Map::new();
    let obj = match payload {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err(Error::invalid(format!("{sub_name}: the payload is not a JSON object"))),
    };
    let mut options = Vec::new();
    let mut positionals: Vec<(usize, Vec<String>)> = Vec::new();
    for arg in sub.get_arguments() {
        let id = arg.get_id().as_str();
        if GLOBAL_IDS.contains(&id) {
            continue;
        }
        let key = payload_key(&sub_name, id);
        let mut value = obj.get(key).unwrap_or(&Value::Null);
        if UNSET.iter().any(|(k, v)| *k == key && words_of(value) == [v.to_string()]) {
            value = &Value::Null;
        }
        if arg.is_positional() {
            let words = words_of(value);
            if words.is_empty() {
                if arg.is_required_set() {
                    return Err(Error::invalid(format!("{sub_name}: missing key in payload: '{key}'")));
                }
                continue;
            }
            positionals.push((arg.get_index().unwrap_or(usize::MAX), words));
            continue;
        }
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(s)) => format!("-{s}"),
            (None, None) => continue,
        };
        match arg.get_action() {
            ArgAction::SetTrue => {
                if truthy(value) {
                    options.push(flag);
                }
            }
            ArgAction::SetFalse => {
                if value == &Value::Bool(false) {
                    options.push(flag);
                }
            }
            ArgAction::Count => {
                let n = match value {
                    Value::Number(n) => n.as_u64().unwrap_or(0).min(16),
                    v => u64::from(truthy(v)),
                };
                for _ in 0..n {
                    options.push(flag.clone());
                }
            }
            _ => {
                let words = words_of(value);
                let multi = arg.get_num_args().is_some_and(|r| r.max_values() > 1);
                if multi && !words.is_empty() {
                    options.push(flag);
                    options.extend(words);
                } else {
                    for w in words {
                        options.push(format!("{flag}={w}"));
                    }
                }
            }
        }
    }
    positionals.sort_by_key(|p| p.0);
    // The program name recorded in the events written through the service.
    let mut argv = vec!["flux-account-service".to_string(), sub_name];
    argv.extend(options);
    if !positionals.is_empty() {
        argv.push("--".into());
        argv.extend(positionals.into_iter().flat_map(|p| p.1));
    }
    Ok(argv)
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The request a command line stands for: the endpoint and the payload
/// (argparse's dict: every option of the subcommand, unset ones `null`),
/// or `None` when the subcommand has no endpoint. `argv` is the whole
/// command line, as clap parses it.
pub fn argv_to_payload(cli: &clap::Command, argv: &[String]) -> Result<Option<(String, Value)>> {
    let matches = cli.clone().try_get_matches_from(argv).map_err(|e| Error::invalid(e.to_string()))?;
    let Some((sub_name, m)) = matches.subcommand() else { return Ok(None) };
    let Some(endpoint) = endpoint_of(sub_name) else { return Ok(None) };
    let Some(sub) = cli.find_subcommand(sub_name) else { return Ok(None) };
    let mut out = Map::new();
    for arg in sub.get_arguments() {
        let id = arg.get_id().as_str();
        if GLOBAL_IDS.contains(&id) {
            continue;
        }
        let key = payload_key(sub_name, id).to_string();
        let value = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => Value::Bool(m.get_flag(id)),
            ArgAction::Count => Value::from(m.get_count(id)),
            _ => {
                let given = m.value_source(id).is_some_and(|s| s == clap::parser::ValueSource::CommandLine);
                match m.get_raw(id) {
                    Some(raw) if given => {
                        let words: Vec<Value> = raw.map(|w| Value::String(w.to_string_lossy().into_owned())).collect();
                        let multi = arg.get_num_args().is_some_and(|r| r.max_values() > 1)
                            || matches!(arg.get_action(), ArgAction::Append);
                        if multi {
                            Value::Array(words)
                        } else {
                            words.into_iter().next().unwrap_or(Value::Null)
                        }
                    }
                    _ => Value::Null,
                }
            }
        };
        out.insert(key, value);
    }
    out.insert("path".into(), Value::Null);
    out.insert("func".into(), Value::String(endpoint.clone()));
    out.insert("subcommand".into(), Value::String(sub_name.to_string()));
    Ok(Some((endpoint, Value::Object(out))))
}

/// Whether `-p/--path` was given on the command line (rather than taking
/// the default ledger path).
pub fn path_given(cli: &clap::Command, argv: &[String]) -> bool {
    cli.clone()
        .try_get_matches_from(argv)
        .ok()
        .and_then(|m| m.value_source("path"))
        .is_some_and(|s| s == clap::parser::ValueSource::CommandLine)
}

/// The answer payload of a command's output: `{"<func>": <text>, ...}`
/// with the text as flux-accounting returns it (printed with one newline
/// added; `0` when nothing is printed), then the exact output under
/// `fluxacct` so that fluxacct's client prints what the local command
/// prints. The endpoint's key comes first, as flux-accounting's clients
/// print the first value.
pub fn answer(endpoint: &str, out: &Output) -> String {
    let mut text = out.stdout.clone();
    for w in &out.warnings {
        text.push_str(w);
        text.push('\n');
    }
    let value = match text.strip_suffix('\n') {
        None if text.is_empty() => Value::from(0),
        Some(t) => Value::String(t.to_string()),
        None => Value::String(text.clone()),
    };
    let exact = serde_json::json!({"stdout": text, "notes": out.notes, "exit_code": out.exit_code});
    format!("{{{}:{},\"fluxacct\":{}}}", Value::String(endpoint.into()), value, exact)
}

/// What an answer payload prints: the exact output when fluxacct's
/// service sent it, else flux-accounting's value printed as its client
/// prints it (nothing for `0`).
pub fn output_of_answer(endpoint: &str, answer: Option<&str>) -> Result<Output> {
    let v: Value = match answer {
        Some(a) => serde_json::from_str(a)
            .map_err(|e| Error::io_msg(format!("accounting.{endpoint}: answer is not JSON: {e}")))?,
        None => Value::Null,
    };
    if let Some(exact) = v.get("fluxacct") {
        let text = |k: &str| exact.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let notes = exact
            .get("notes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default();
        let exit_code = exact.get("exit_code").and_then(Value::as_i64).unwrap_or(0) as i32;
        return Ok(Output { stdout: text("stdout"), warnings: vec![], notes, exit_code });
    }
    let stdout = match v.get(endpoint) {
        None | Some(Value::Null) => String::new(),
        Some(Value::Number(n)) if n.as_f64() == Some(0.0) => String::new(),
        Some(Value::String(s)) => format!("{s}\n"),
        Some(other) => format!("{other}\n"),
    };
    Ok(Output { stdout, ..Output::default() })
}

/// What the service needs from the program that runs it.
pub trait Host: Sync {
    /// A context for one request, run by `actor`, recording `argv`.
    fn context(&self, actor: fluxacct_core::Actor, argv: Vec<String>) -> Context;
    /// The user name of a uid (the actor of a request).
    fn name_of(&self, uid: u32) -> Option<String>;
    /// Parses `argv` (a whole `flux-account` command line) and runs it, as
    /// the local command does.
    fn run(&self, ctx: &Context, argv: &[String]) -> Result<Output>;
    /// A line for the service's log (stderr).
    fn log(&self, _line: &str) {}
}

/// Refuses to serve a ledger that is missing or needs an upgrade: its
/// projections are not the current schema (flux-accounting's message,
/// with fluxacct's command that brings the ledger up to date).
pub fn check_ledger(path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(Error::invalid(format!("Database file does not exist: {}", path.display())));
    }
    let ledger = ledger::Ledger::open(path, ledger::OpenMode::ReadOnly)?;
    match projections::schema::stored_version(ledger.conn())? {
        Some(v) if v == projections::schema::PROJECTION_SCHEMA_VERSION => Ok(()),
        _ => Err(Error::invalid(format!(
            "{OUT_OF_DATE} (fluxacct: run `flux account -p {} rebuild` as the ledger's owner)",
            path.display()
        ))),
    }
}

/// One request's reply, from a worker thread.
enum Reply {
    Ok(String),
    Err(i32, String),
}

/// Linux `EPERM`, `EINVAL`, `ENOSYS`.
const EPERM: i32 = 1;
const EINVAL: i32 = 22;
const ENOSYS: i32 = 38;

/// Runs one request (on a worker thread).
fn handle(host: &dyn Host, cli: &clap::Command, endpoint: &str, payload: Option<&str>, userid: u32) -> Reply {
    let payload: Value = match payload.map(serde_json::from_str).transpose() {
        Ok(p) => p.unwrap_or(Value::Null),
        Err(e) => return Reply::Err(EINVAL, format!("{}: the payload is not JSON: {e}", endpoint.replace('_', "-"))),
    };
    let argv = match payload_to_argv(cli, endpoint, &payload) {
        Ok(a) => a,
        Err(e) => return Reply::Err(EINVAL, e.to_string()),
    };
    let name = host.name_of(userid).unwrap_or_else(|| userid.to_string());
    let ctx = host.context(fluxacct_core::Actor { uid: userid, name }, argv.clone());
    match host.run(&ctx, &argv) {
        Ok(out) => Reply::Ok(answer(endpoint, &out)),
        Err(Error::CheckFailed { message, .. }) => Reply::Err(EINVAL, message.replace('\n', " ")),
        Err(e) => Reply::Err(EINVAL, e.to_string().replace('\n', " ")),
    }
}

/// Serves the ledger at `path` as the `accounting` service of the instance
/// `flux` is connected to, until `accounting.shutdown_service`. `ready` is
/// called once the name is registered.
pub fn serve(
    flux: &fluxacct_flux::Flux,
    cli: &clap::Command,
    host: &dyn Host,
    path: &Path,
    ready: &mut dyn FnMut(),
) -> Result<()> {
    check_ledger(path)?;
    let service = flux.register_service(SERVICE).map_err(|e| {
        if e.errno() == 17 {
            Error::invalid("flux-accounting service is already registered")
        } else {
            Error::from(e)
        }
    })?;
    host.log("registered accounting service");
    ready();
    let (tx, rx) = mpsc::channel::<(u64, Reply)>();
    let mut pending: HashMap<u64, fluxacct_flux::Request<'_>> = HashMap::new();
    let mut next = 0u64;
    let mut stopping = false;
    std::thread::scope(|scope| -> Result<()> {
        loop {
            // Poll often while workers are busy (their answers come back
            // through the channel), rarely when idle.
            let wait = if pending.is_empty() { Duration::from_millis(200) } else { Duration::from_micros(500) };
            if !stopping {
                if let Some(req) = service.recv_timeout(wait)? {
                    let endpoint = req.topic().strip_prefix("accounting.").unwrap_or_default().to_string();
                    let owner = req.rolemask() & fluxacct_flux::ROLE_OWNER != 0;
                    if !is_endpoint(&endpoint) {
                        req.respond_error(ENOSYS, &format!("unknown endpoint {}", req.topic()))?;
                    } else if !owner && !READ_ENDPOINTS.contains(&endpoint.as_str()) {
                        req.respond_error(EPERM, OWNER_ONLY)?;
                    } else if endpoint == "shutdown_service" {
                        host.log("Shutting down...");
                        stopping = true;
                        req.respond(None)?;
                    } else {
                        let id = next;
                        next += 1;
                        let payload = req.payload().map(str::to_string);
                        let userid = req.userid();
                        pending.insert(id, req);
                        let tx = tx.clone();
                        scope.spawn(move || {
                            let reply = handle(host, cli, &endpoint, payload.as_deref(), userid);
                            let _ = tx.send((id, reply));
                        });
                    }
                }
            } else if !pending.is_empty() {
                std::thread::sleep(Duration::from_micros(500));
            }
            while let Ok((id, reply)) = rx.try_recv() {
                if let Some(req) = pending.remove(&id) {
                    let sent = match reply {
                        Reply::Ok(a) => req.respond(Some(&a)),
                        Reply::Err(errno, m) => req.respond_error(errno, &m),
                    };
                    if let Err(e) = sent {
                        host.log(&format!("flux-account-service: {e}"));
                    }
                }
            }
            if stopping && pending.is_empty() {
                return Ok(());
            }
        }
    })
}
