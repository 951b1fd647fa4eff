//! The usage arithmetic of `shared/specs/usage-and-fairshare.md`: usage
//! periods anchored at `T0`, half-life decay, the usage of one job, and the
//! config durations (`2w`, `3600s`, …). The SQLite side that keeps the bins
//! is `projections::usage`.

/// The usage parameters in force (from `usage_state` and `config_table`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// `T0`, the anchor of periods (epoch seconds).
    pub t0: f64,
    /// `H`, the half-life: length of one period in seconds.
    pub half_life: f64,
    /// `R`, the usage reset period in seconds.
    pub reset: f64,
    /// `D`, the decay factor.
    pub decay: f64,
    /// Node weight.
    pub node_weight: f64,
    /// Core weight.
    pub core_weight: f64,
    /// GPU weight.
    pub gpu_weight: f64,
}

impl Params {
    /// `N = max(1, floor(R / H))`: the number of past periods that count.
    pub fn n(&self) -> i64 {
        ((self.reset / self.half_life).floor() as i64).max(1)
    }

    /// `p(t) = floor((t − T0) / H)`.
    pub fn period(&self, t: f64) -> i64 {
        ((t - self.t0) / self.half_life).floor() as i64
    }

    /// The start time of absolute period `p`.
    pub fn period_start(&self, p: i64) -> f64 {
        self.t0 + p as f64 * self.half_life
    }

    /// Usage of one job: weighted resources × elapsed time (0 if it never
    /// ran).
    pub fn job_usage(&self, t_run: f64, t_inactive: f64, nnodes: i64, ncores: i64, ngpus: i64) -> f64 {
        if t_run <= 0.0 || t_inactive < t_run {
            return 0.0;
        }
        (nnodes as f64 * self.node_weight + ncores as f64 * self.core_weight + ngpus as f64 * self.gpu_weight)
            * (t_inactive - t_run)
    }

    /// `Σ_{k=0..N} D^k · U_k` for raw usages `u[k]` (k = 0 is the current
    /// period), summed from k = 0 up.
    pub fn decayed(&self, u: &[f64]) -> f64 {
        let mut total = 0.0;
        let mut f = 1.0;
        for x in u {
            total += f * x;
            f *= self.decay;
        }
        total
    }
}

/// Parses a Flux Standard Duration with a unit (`500ms`, `3600s`, `90m`,
/// `1.5h`, `30d`, `2w`) into seconds. Only positive, finite values.
pub fn parse_fsd(s: &str) -> Option<f64> {
    let t = s.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, 86400.0)
    } else if let Some(n) = t.strip_suffix('w') {
        (n, 604800.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).map(|v| v * mult)
}

/// Parses a config duration: seconds as a number, or a Flux Standard
/// Duration (`2w`, `30d`, `3600s`).
pub fn parse_config_duration(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Ok(v) = t.parse::<f64>() {
        return (v.is_finite() && v > 0.0).then_some(v);
    }
    parse_fsd(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Params {
        Params {
            t0: 0.0,
            half_life: 100.0,
            reset: 400.0,
            decay: 0.5,
            node_weight: 1.0,
            core_weight: 0.0,
            gpu_weight: 0.0,
        }
    }

    #[test]
    fn periods_and_decay() {
        let p = p();
        assert_eq!(p.n(), 4);
        assert_eq!(p.period(-1.0), -1);
        assert_eq!(p.period(0.0), 0);
        assert_eq!(p.period(99.9), 0);
        assert_eq!(p.period(100.0), 1);
        assert_eq!(p.decayed(&[16000.0, 128.0, 64.0, 64.0, 16.0]), 16089.0);
        assert_eq!(p.job_usage(0.0, 10.0, 2, 0, 0), 0.0);
        assert_eq!(p.job_usage(10.0, 5.0, 2, 0, 0), 0.0);
        assert_eq!(p.job_usage(10.0, 20.0, 2, 0, 0), 20.0);
        assert_eq!(Params { reset: 50.0, ..p }.n(), 1);
    }

    #[test]
    fn config_durations() {
        assert_eq!(parse_config_duration("604800"), Some(604800.0));
        assert_eq!(parse_config_duration("2w"), Some(1209600.0));
        assert_eq!(parse_config_duration("1h"), Some(3600.0));
        assert_eq!(parse_config_duration("x"), None);
        assert_eq!(parse_config_duration("-1"), None);
    }
}
