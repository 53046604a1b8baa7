//! The node's clock: where lease deadlines and TTLs get "now" from.
//!
//! `core` never reads a clock; the node passes `Millis` in. Each node has its
//! own `Clock`, so the simulator can skew one node's time (an offset) and let
//! it run fast or slow (drift) without touching the others. In a normal build
//! `tokio::time::Instant` is the real monotonic clock; under madsim it is the
//! simulated one.

use detcd_core::Millis;
use std::sync::Mutex;

/// Milliseconds since the clock was created, as this node sees them.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Millis;
}

/// A monotonic clock, optionally skewed: `now = offset + elapsed * rate`.
#[derive(Debug)]
pub struct NodeClock {
    start: tokio::time::Instant,
    skew: Mutex<Skew>,
}

#[derive(Debug, Clone, Copy)]
struct Skew {
    offset_ms: u64,
    /// Parts per million faster (positive) or slower (negative) than real.
    drift_ppm: i64,
}

impl NodeClock {
    pub fn new() -> NodeClock {
        NodeClock { start: tokio::time::Instant::now(), skew: Mutex::new(Skew { offset_ms: 0, drift_ppm: 0 }) }
    }

    /// Jumps this node's clock forward by `ms` (clocks never go backwards:
    /// leases rely on monotonic time).
    pub fn jump(&self, ms: u64) {
        let mut s = self.skew.lock().expect("clock lock");
        s.offset_ms = s.offset_ms.saturating_add(ms);
    }

    /// Makes this node's clock run `ppm` parts per million fast (or slow when
    /// negative, down to a stopped clock at -1,000,000). Past readings stay
    /// valid because the rate only applies to time from now on.
    pub fn set_drift(&self, ppm: i64) {
        let now = self.now().0;
        let elapsed = self.elapsed_ms();
        let mut s = self.skew.lock().expect("clock lock");
        s.drift_ppm = ppm.max(-1_000_000);
        // Re-anchor so `now` is continuous across the rate change.
        let at_new_rate = scale(elapsed, s.drift_ppm);
        s.offset_ms = now.saturating_sub(at_new_rate);
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl Default for NodeClock {
    fn default() -> Self {
        NodeClock::new()
    }
}

fn scale(elapsed_ms: u64, drift_ppm: i64) -> u64 {
    let rate = 1_000_000i128 + i128::from(drift_ppm);
    u64::try_from(i128::from(elapsed_ms) * rate / 1_000_000).unwrap_or(u64::MAX)
}

impl Clock for NodeClock {
    fn now(&self) -> Millis {
        let s = *self.skew.lock().expect("clock lock");
        Millis(s.offset_ms.saturating_add(scale(self.elapsed_ms(), s.drift_ppm)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_scales_elapsed_time() {
        assert_eq!(scale(1000, 0), 1000);
        assert_eq!(scale(1000, 500_000), 1500);
        assert_eq!(scale(1000, -250_000), 750);
        assert_eq!(scale(1000, -1_000_000), 0);
    }

    #[test]
    fn jumps_move_forward_and_drift_stays_continuous() {
        let c = NodeClock::new();
        let before = c.now();
        c.jump(5_000);
        assert!(c.now().0 >= before.0 + 5_000);
        let at_change = c.now();
        c.set_drift(100_000);
        assert!(c.now() >= at_change, "a rate change never moves time backwards");
    }
}
