//! Showing allocations (`list-allocations`, `view-allocation`,
//! `allocation-statement`): amounts as exact decimals of their unit.

use fluxacct_core::allocation::format_milli;
use projections::allocation::{AllocationRow, ChargeRow};
use serde_json::{json, Value};

use crate::time::{table_time, Zone};

/// A time in epoch seconds, as tables show times.
pub fn time_s(s: i64, zone: Zone) -> String {
    table_time(s.saturating_mul(1_000_000), zone)
}

/// An allocation as JSON: amounts both as exact decimals and in milli-units.
pub fn allocation_json(a: &AllocationRow) -> Value {
    json!({
        "name": a.name,
        "bank": a.bank,
        "project": a.project,
        "unit": a.unit,
        "allocated": format_milli(a.allocated_milli),
        "charged": format_milli(a.charged_milli),
        "reserved": format_milli(a.reserved_milli),
        "remaining": format_milli(a.remaining_milli),
        "allocated_milli": a.allocated_milli,
        "charged_milli": a.charged_milli,
        "reserved_milli": a.reserved_milli,
        "remaining_milli": a.remaining_milli,
        "start": a.start_s,
        "end": a.end_s,
        "active": a.active,
        "exhausted": a.exhausted,
    })
}

/// An allocation as `view-allocation` prints it (Gold's balance view).
pub fn allocation_text(a: &AllocationRow, zone: Zone) -> String {
    let mut out = String::new();
    out.push_str(&format!("allocation {}{}\n", a.name, if a.active { "" } else { " (deleted)" }));
    out.push_str(&format!(
        "  covers     bank {}{}\n",
        a.bank,
        a.project.as_deref().map(|p| format!(", project {p}")).unwrap_or_default()
    ));
    out.push_str(&format!("  period     {} to {}\n", time_s(a.start_s, zone), time_s(a.end_s, zone)));
    out.push_str(&format!("  unit       {}\n", a.unit));
    out.push_str(&format!("  allocated  {}\n", format_milli(a.allocated_milli)));
    out.push_str(&format!("  charged    {}\n", format_milli(a.charged_milli)));
    out.push_str(&format!("  reserved   {}\n", format_milli(a.reserved_milli)));
    out.push_str(&format!("  remaining  {}\n", format_milli(a.remaining_milli)));
    out.push_str(&format!("  exhausted  {}\n", a.exhausted.as_deref().unwrap_or("site default")));
    out
}

/// One charged job as JSON.
pub fn charge_json(c: &ChargeRow, jobid: String) -> Value {
    json!({
        "jobid": jobid,
        "seq": c.seq,
        "userid": c.userid,
        "t_inactive": c.t_inactive,
        "amount": format_milli(c.amount_milli),
        "amount_milli": c.amount_milli,
    })
}

/// One charged job as a table line.
pub fn charge_line(c: &ChargeRow, jobid: &str) -> String {
    format!("  {jobid:<20} uid {:<8} ended {:<17} {:>14}", c.userid, c.t_inactive, format_milli(c.amount_milli))
}
