//! `log`: list the events of the ledger.

use fluxacct_core::{Seq, StoredEvent};
use serde_json::{json, Value};

use crate::context::{Context, Output};
use crate::error::{Error, Result};
use crate::time;

/// List the ledger's events: seq, time, actor, command line, kind and
/// payload. Filters combine with AND.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only events recorded at or after this time (epoch seconds, or a date
    /// such as 2026-03-01 or 2026-03-01T08:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only events recorded at or before this time.
    #[arg(long, value_name = "TIME", value_parser = crate::time::TimeArg::time(), allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Only events appended by this user name.
    #[arg(long)]
    pub actor: Option<String>,
    /// Only events of this kind (e.g. BankAdded; any case). An unknown kind
    /// is a usage error that lists the kinds.
    #[arg(long, value_name = "KIND", ignore_case = true, hide_possible_values = true, value_parser = event_kinds())]
    pub kind: Option<String>,
}

/// The event kinds `--kind` takes: every kind fluxacct writes.
fn event_kinds() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(fluxacct_core::Event::catalogue().iter().map(|(k, _)| *k))
}

/// One event as a JSON object.
pub fn event_json(ev: &StoredEvent) -> Value {
    let payload: Value = serde_json::from_slice(&ev.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&ev.payload).into_owned()));
    json!({
        "seq": ev.seq.0,
        "time": time::json_time(ev.recorded_at_us),
        "actor": ev.actor.name,
        "uid": ev.actor.uid,
        "argv": ev.argv,
        "kind": ev.kind,
        "version": ev.version,
        "payload": payload,
        "hash": ev.hash.to_hex(),
    })
}

/// The seq range caused by the `SiteImported` event of an imported ledger
/// (always seq 2, the first event after genesis): `(import seq, last seq)`.
pub fn import_range(db: &ledger::Ledger) -> Result<Option<(u64, u64)>> {
    let Some(ev) = db.event(Seq(2))? else { return Ok(None) };
    if ev.kind != "SiteImported" {
        return Ok(None);
    }
    let n = serde_json::from_slice::<Value>(&ev.payload).ok().and_then(|v| v.get("events").and_then(Value::as_u64));
    Ok(n.map(|n| (ev.seq.0, ev.seq.0 + n)))
}

/// Runs `log`.
pub fn cmd_log(ctx: &Context, args: &Args) -> Result<Output> {
    let db = ledger::Ledger::open(&ctx.db_path, ledger::OpenMode::ReadOnly)?;
    let since = args.since.as_deref().map(|s| ctx.parse_time_us(s)).transpose()?;
    let until = args.until.as_deref().map(|s| ctx.parse_time_us(s)).transpose()?;
    let from = match since {
        Some(t) => match db.seq_at_time(t - 1)? {
            Some(s) => s.next(),
            None => Seq(1),
        },
        None => Seq(1),
    };
    // --as-of: the log as it stood then ends at that seq.
    let upto = crate::db::as_of_seq(ctx, &db)?;
    let imported = import_range(&db)?;
    let cause = |seq: u64| imported.filter(|(i, last)| seq > *i && seq <= *last).map(|(i, _)| i);
    let mut out = String::new();
    for ev in db.stream(from) {
        let ev = ev?;
        if upto.is_some_and(|u| ev.seq > u) {
            break;
        }
        if let Some(u) = until {
            if ev.recorded_at_us > u {
                break;
            }
        }
        if args.actor.as_deref().is_some_and(|a| a != ev.actor.name) {
            continue;
        }
        if args.kind.as_deref().is_some_and(|k| !k.eq_ignore_ascii_case(&ev.kind)) {
            continue;
        }
        if args.json {
            let mut j = event_json(&ev);
            if let Some(c) = cause(ev.seq.0) {
                j["cause"] = json!(c);
            }
            out.push_str(&serde_json::to_string(&j).map_err(|e| Error::io_msg(e.to_string()))?);
        } else {
            out.push_str(&format!(
                "{:>6}  {}  {}({})  {}  {}  {}",
                ev.seq.0,
                ctx.format_time(ev.recorded_at_us),
                ev.actor.name,
                ev.actor.uid,
                ev.kind,
                String::from_utf8_lossy(&ev.payload),
                shell_words(&ev.argv)
            ));
            if let Some(c) = cause(ev.seq.0) {
                out.push_str(&format!("  (cause: seq {c})"));
            }
        }
        out.push('\n');
    }
    Ok(Output::text(out))
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
