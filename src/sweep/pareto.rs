//! Non-dominated front extraction for two minimised objectives (energy and
//! accuracy drop, PELUSO's energy-accuracy Pareto analysis, SPEC section 2).
//!
//! Point `a` dominates `b` when it is no worse in both objectives and better
//! in at least one. The front is every point no other point dominates, with
//! exact duplicates (same energy, same drop) kept once: the first in input
//! order, so the result depends only on the input, never on hashing or
//! threads. Ordering: by accuracy drop ascending (hence energy descending),
//! which is how a front is plotted and tabulated.

use serde::Serialize;

/// Two objectives, both minimised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Objectives {
    /// Energy of one inference (any consistent unit: pJ, normalised).
    pub energy: f64,
    /// Accuracy drop, a fraction (0.03 = 3 %).
    pub accuracy_drop: f64,
}

impl Objectives {
    /// True when `self` dominates `other`.
    pub fn dominates(&self, other: &Objectives) -> bool {
        self.energy <= other.energy
            && self.accuracy_drop <= other.accuracy_drop
            && (self.energy < other.energy || self.accuracy_drop < other.accuracy_drop)
    }
}

/// Indices of the non-dominated points of `points`, ordered by accuracy drop
/// ascending (energy descending along the front), duplicates kept once (the
/// lowest index). Points with a NaN objective are never on the front.
pub fn front(points: &[Objectives]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len())
        .filter(|&i| !points[i].energy.is_nan() && !points[i].accuracy_drop.is_nan())
        .collect();
    // Sort by (drop, energy, index): a sweep then keeps each point whose
    // energy is below every energy seen so far (all of which have a drop no
    // larger than its own).
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&points[a], &points[b]);
        pa.accuracy_drop
            .total_cmp(&pb.accuracy_drop)
            .then(pa.energy.total_cmp(&pb.energy))
            .then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let mut best_energy = f64::INFINITY;
    for i in order {
        if points[i].energy < best_energy {
            best_energy = points[i].energy;
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(energy: f64, accuracy_drop: f64) -> Objectives {
        Objectives {
            energy,
            accuracy_drop,
        }
    }

    #[test]
    fn hand_case() {
        let pts = [
            p(10.0, 0.00), // 0: front (lowest drop)
            p(8.0, 0.02),  // 1: front
            p(9.0, 0.03),  // 2: dominated by 1
            p(5.0, 0.05),  // 3: front
            p(5.0, 0.07),  // 4: dominated by 3 (same energy, worse drop)
            p(4.0, 0.07),  // 5: front
            p(12.0, 0.0),  // 6: dominated by 0 (same drop, more energy)
        ];
        assert_eq!(front(&pts), vec![0, 1, 3, 5]);
    }

    #[test]
    fn duplicates_kept_once_and_nan_dropped() {
        let pts = [p(3.0, 0.1), p(1.0, 0.2), p(3.0, 0.1), p(f64::NAN, 0.0)];
        assert_eq!(front(&pts), vec![0, 1]);
        assert!(front(&[]).is_empty());
        assert_eq!(front(&[p(1.0, 1.0)]), vec![0]);
    }

    #[test]
    fn front_is_exactly_the_non_dominated_set() {
        // A deterministic scatter: compare against the quadratic definition.
        let pts: Vec<Objectives> = (0..200u64)
            .map(|i| {
                let a = (i * 7919 % 97) as f64;
                let b = (i * 104_729 % 89) as f64 / 100.0;
                p(a, b)
            })
            .collect();
        let f = front(&pts);
        for (i, x) in pts.iter().enumerate() {
            let dominated = pts.iter().any(|y| y.dominates(x));
            let first_copy = pts[..i].iter().all(|y| y != x);
            assert_eq!(f.contains(&i), !dominated && first_copy, "point {i}");
        }
        assert!(
            f.windows(2)
                .all(|w| pts[w[0]].accuracy_drop < pts[w[1]].accuracy_drop)
        );
        assert!(f.windows(2).all(|w| pts[w[0]].energy > pts[w[1]].energy));
    }
}
