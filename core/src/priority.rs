//! The multi-factor priority formula of `mf_priority`.

use crate::snapshot::Weights;

/// `FLUX_JOB_PRIORITY_MAX`.
pub const PRIORITY_MAX: i64 = 4_294_967_295;

/// `P = round(W_fs·fairshare + W_q·queue_priority + W_b·bank_priority + W_u·(urgency − 16))`,
/// with urgency 0 → 0, urgency 31 → [`PRIORITY_MAX`], and the result
/// clamped to `0..=PRIORITY_MAX` (NaN → 0).
#[inline]
pub fn priority_formula(w: &Weights, fairshare: f64, queue_priority: i64, bank_priority: f64, urgency: i64) -> i64 {
    match urgency {
        0 => return 0,
        31 => return PRIORITY_MAX,
        _ => {}
    }
    let p = w.fairshare as f64 * fairshare
        + w.queue as f64 * queue_priority as f64
        + w.bank as f64 * bank_priority
        + w.urgency as f64 * (urgency as f64 - 16.0);
    let p = p.round();
    if p.is_nan() || p <= 0.0 {
        0
    } else if p >= PRIORITY_MAX as f64 {
        PRIORITY_MAX
    } else {
        p as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_formula_and_clamps() {
        let w = Weights::default();
        assert_eq!(priority_formula(&w, 0.5, 0, 0.0, 16), 50_000);
        assert_eq!(priority_formula(&w, 0.5, 0, 0.0, 20), 54_000);
        assert_eq!(priority_formula(&w, 0.5, 100, 0.0, 16), 1_050_000);
        assert_eq!(priority_formula(&w, 0.5, 0, 0.0, 0), 0);
        assert_eq!(priority_formula(&w, 0.5, 0, 0.0, 31), PRIORITY_MAX);
        assert_eq!(priority_formula(&w, 0.0, 0, 0.0, 1), 0);
        assert_eq!(priority_formula(&w, 1e12, 0, 0.0, 16), PRIORITY_MAX);
        assert_eq!(priority_formula(&w, f64::NAN, 0, 0.0, 16), 0);
        assert_eq!(priority_formula(&w, 0.45321, 0, 0.0, 16), 45_321);
        let w2 = Weights { bank: 1000, ..w };
        assert_eq!(priority_formula(&w2, 0.99, 1, 100.0, 16), 209_000);
    }
}
