//! What an apply may know about an event besides its payload: its envelope
//! (seq and append time). Shared by `apply` and the usage bins.

/// The envelope data an apply may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyCtx {
    /// The event's seq.
    pub seq: u64,
    /// When the event was appended, in microseconds since the epoch.
    pub recorded_at_us: i64,
}

impl ApplyCtx {
    /// `recorded_at_us` in whole seconds (creation_time / mod_time columns).
    pub fn secs(&self) -> i64 {
        self.recorded_at_us.div_euclid(1_000_000)
    }

    /// `recorded_at_us` in fractional seconds.
    pub fn secs_f64(&self) -> f64 {
        self.recorded_at_us as f64 / 1e6
    }
}
