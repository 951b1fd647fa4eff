//! Allocations: the arithmetic of budgets and charges, shared by the
//! projections (which charge recorded jobs) and the plugin (which takes
//! liens and enforces exhausted allocations). See docs/allocations.md.
//!
//! Every amount is an integer number of thousandths of the allocation's
//! unit (`_milli`), so sums and statements are exact. A job's charge is
//! computed once, in f64, and rounded to the nearest milli-unit: the same
//! inputs give the same integer on every replay.

use serde::{Deserialize, Serialize};

/// What an allocation is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// Nodes × hours.
    NodeHours,
    /// Cores × hours.
    CoreHours,
    /// GPUs × hours.
    GpuHours,
    /// flux-accounting's weighted resources (`node_weight`·nodes +
    /// `core_weight`·cores + `gpu_weight`·GPUs) × hours.
    Charge,
}

impl Unit {
    /// Every unit, in code order.
    pub const ALL: [Unit; 4] = [Unit::NodeHours, Unit::CoreHours, Unit::GpuHours, Unit::Charge];

    /// The name the CLI and the events use.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::NodeHours => "node-hours",
            Unit::CoreHours => "core-hours",
            Unit::GpuHours => "gpu-hours",
            Unit::Charge => "charge",
        }
    }

    /// The unit named `s`.
    pub fn parse(s: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.as_str() == s)
    }

    /// The code the snapshot stores.
    pub fn code(self) -> u8 {
        match self {
            Unit::NodeHours => 0,
            Unit::CoreHours => 1,
            Unit::GpuHours => 2,
            Unit::Charge => 3,
        }
    }

    /// The unit of a snapshot code (unknown codes are [`Unit::Charge`]).
    pub fn from_code(c: u8) -> Unit {
        match c {
            0 => Unit::NodeHours,
            1 => Unit::CoreHours,
            2 => Unit::GpuHours,
            _ => Unit::Charge,
        }
    }
}

/// What the plugin does with new jobs of an exhausted allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Exhausted {
    /// Hold them (a job-manager dependency) until a deposit arrives.
    #[default]
    Hold,
    /// Reject them at submission.
    Deny,
    /// Let them run at priority 0.
    LowPriority,
}

impl Exhausted {
    /// Every policy.
    pub const ALL: [Exhausted; 3] = [Exhausted::Hold, Exhausted::Deny, Exhausted::LowPriority];

    /// The name the CLI, the config key and the events use.
    pub fn as_str(self) -> &'static str {
        match self {
            Exhausted::Hold => "hold",
            Exhausted::Deny => "deny",
            Exhausted::LowPriority => "lowpriority",
        }
    }

    /// The policy named `s`.
    pub fn parse(s: &str) -> Option<Exhausted> {
        Exhausted::ALL.into_iter().find(|p| p.as_str() == s.trim())
    }

    /// The code the snapshot stores.
    pub fn code(self) -> u8 {
        match self {
            Exhausted::Hold => 0,
            Exhausted::Deny => 1,
            Exhausted::LowPriority => 2,
        }
    }

    /// The policy of a snapshot code (unknown codes hold).
    pub fn from_code(c: u8) -> Exhausted {
        match c {
            1 => Exhausted::Deny,
            2 => Exhausted::LowPriority,
            _ => Exhausted::Hold,
        }
    }
}

/// The config key of the site's default [`Exhausted`] policy.
pub const CONFIG_EXHAUSTED: &str = "allocation_exhausted";
/// The config key that turns liens on (`true`/`false`).
pub const CONFIG_LIENS: &str = "allocation_liens";
/// The config key of the duration (seconds) a lien assumes for a job whose
/// jobspec names none.
pub const CONFIG_LIEN_DEFAULT_DURATION: &str = "allocation_lien_default_duration";
/// The lien duration when [`CONFIG_LIEN_DEFAULT_DURATION`] is not set: one hour.
pub const DEFAULT_LIEN_DURATION_S: i64 = 3600;

/// The resource weights of the `charge` unit (flux-accounting's
/// `node_weight`, `core_weight`, `gpu_weight`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResourceWeights {
    /// Per node.
    pub node: f64,
    /// Per core.
    pub core: f64,
    /// Per GPU.
    pub gpu: f64,
}

impl Default for ResourceWeights {
    /// flux-accounting's defaults: usage in nodes.
    fn default() -> Self {
        ResourceWeights { node: 1.0, core: 0.0, gpu: 0.0 }
    }
}

/// The resources of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobResources {
    /// Nodes.
    pub nnodes: i64,
    /// Cores.
    pub ncores: i64,
    /// GPUs.
    pub ngpus: i64,
}

/// A job's elapsed run time in seconds: `t_inactive − t_run` for a job that
/// ran, else 0 (as the `jobs` view's `actual_duration`).
pub fn elapsed_s(t_run: f64, t_inactive: f64) -> f64 {
    if t_run > 0.0 && t_inactive >= t_run {
        t_inactive - t_run
    } else {
        0.0
    }
}

/// The charge in milli-units of `unit` for `res` used for `seconds` at
/// `factor` (the queue's charge factor): resources × hours × factor,
/// rounded half away from zero to a whole milli-unit; never negative (a
/// non-finite or negative result is 0; a huge one saturates).
pub fn charge_milli(unit: Unit, w: ResourceWeights, factor: f64, res: JobResources, seconds: f64) -> i64 {
    let amount = match unit {
        Unit::NodeHours => res.nnodes as f64,
        Unit::CoreHours => res.ncores as f64,
        Unit::GpuHours => res.ngpus as f64,
        Unit::Charge => w.node * res.nnodes as f64 + w.core * res.ncores as f64 + w.gpu * res.ngpus as f64,
    };
    // 1 unit-hour = 3600 unit-seconds = 1000 milli-units.
    let milli = (amount * seconds * factor / 3.6).round();
    if milli.is_finite() && milli > 0.0 {
        // `as` saturates at i64::MAX.
        milli as i64
    } else {
        0
    }
}

/// Formats milli-units as a decimal: `1234` → `1.234`, `5000` → `5`,
/// `-1500` → `-1.5`.
pub fn format_milli(m: i64) -> String {
    let sign = if m < 0 { "-" } else { "" };
    let a = m.unsigned_abs();
    let (whole, frac) = (a / 1000, a % 1000);
    if frac == 0 {
        format!("{sign}{whole}")
    } else {
        let f = format!("{frac:03}");
        format!("{sign}{whole}.{}", f.trim_end_matches('0'))
    }
}

/// Parses a non-negative decimal amount with at most three decimals
/// (`100`, `2.5`, `0.125`) into milli-units, exactly (no float).
pub fn parse_milli(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 3 {
        return None;
    }
    let w: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let f: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<3}").parse().ok()? };
    w.checked_mul(1000)?.checked_add(f)
}

/// The message of a job stopped by an exhausted allocation:
/// `allocation NAME exhausted: 0 of 500000 node-hours left`.
pub fn exhausted_message(name: &str, remaining_milli: i64, allocated_milli: i64, unit: Unit) -> String {
    format!(
        "allocation {name} exhausted: {} of {} {} left",
        format_milli(remaining_milli.max(0)),
        format_milli(allocated_milli),
        unit.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_hour_is_a_thousand_milli_units() {
        let res = JobResources { nnodes: 2, ncores: 8, ngpus: 0 };
        let w = ResourceWeights::default();
        assert_eq!(charge_milli(Unit::NodeHours, w, 1.0, res, 3600.0), 2000);
        assert_eq!(charge_milli(Unit::CoreHours, w, 1.0, res, 1800.0), 4000);
        assert_eq!(charge_milli(Unit::GpuHours, w, 1.0, res, 1800.0), 0);
        assert_eq!(charge_milli(Unit::NodeHours, w, 1.5, res, 60.0), 50);
        let w = ResourceWeights { node: 1.0, core: 0.25, gpu: 4.0 };
        assert_eq!(charge_milli(Unit::Charge, w, 1.0, res, 3600.0), 4000);
        assert_eq!(charge_milli(Unit::NodeHours, w, f64::NAN, res, 3600.0), 0);
        assert_eq!(charge_milli(Unit::NodeHours, w, -1.0, res, 3600.0), 0);
    }

    #[test]
    fn amounts_parse_and_format_exactly() {
        assert_eq!(parse_milli("100"), Some(100_000));
        assert_eq!(parse_milli("2.5"), Some(2500));
        assert_eq!(parse_milli(".125"), Some(125));
        assert_eq!(parse_milli("1.2345"), None);
        assert_eq!(parse_milli("-1"), None);
        assert_eq!(parse_milli(""), None);
        assert_eq!(parse_milli("1e3"), None);
        assert_eq!(format_milli(100_000), "100");
        assert_eq!(format_milli(2500), "2.5");
        assert_eq!(format_milli(-1500), "-1.5");
        assert_eq!(format_milli(7), "0.007");
    }

    #[test]
    fn the_exhausted_message_names_the_allocation_and_what_is_left() {
        assert_eq!(
            exhausted_message("q1", -20, 500_000_000, Unit::NodeHours),
            "allocation q1 exhausted: 0 of 500000 node-hours left"
        );
    }

    #[test]
    fn units_and_policies_round_trip_through_names_and_codes() {
        for u in Unit::ALL {
            assert_eq!(Unit::parse(u.as_str()), Some(u));
            assert_eq!(Unit::from_code(u.code()), u);
        }
        for p in Exhausted::ALL {
            assert_eq!(Exhausted::parse(p.as_str()), Some(p));
            assert_eq!(Exhausted::from_code(p.code()), p);
        }
    }
}
