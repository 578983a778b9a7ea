//! What the crate's benches share: timing the best of several rounds.

use std::time::Instant;

/// Nanoseconds per call of `f`: the best of five runs of `rounds` calls each.
pub fn best_of<F: FnMut()>(rounds: u32, mut f: F) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..rounds {
            f();
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(rounds));
    }
    best
}
