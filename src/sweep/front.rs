//! Non-dominated points over two or three objectives of any direction.
//!
//! Pairs go through [`super::pareto::front`] (PELUSO's two-objective
//! front, the one implementation of the 2-D case); triples use the direct
//! definition (O(n^2) dominance checks, fine for the thousands of points a
//! sweep has). Duplicates keep the lowest index, so the result depends on
//! the input order only, never on threads.

use super::pareto::{self, Objectives};

/// A point's objectives, each already oriented so that smaller is better
/// (negate a maximised metric).
pub type Oriented = Vec<f64>;

/// Indices into `points` (all of one length, 2 or 3) of the non-dominated
/// ones, ascending by the first objective (ties: by index). Points with a
/// NaN objective are never on the front.
pub fn front(points: &[Oriented]) -> Vec<usize> {
    let dims = points.first().map_or(0, Vec::len);
    let mut out = if dims == 2 {
        let objectives: Vec<Objectives> = points
            .iter()
            .map(|p| Objectives {
                energy: p[0],
                accuracy_drop: p[1],
            })
            .collect();
        pareto::front(&objectives)
    } else {
        let ok = |p: &Oriented| p.iter().all(|x| !x.is_nan());
        let dominates = |a: &Oriented, b: &Oriented| {
            a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
        };
        (0..points.len())
            .filter(|&i| ok(&points[i]))
            .filter(|&i| {
                !points
                    .iter()
                    .enumerate()
                    .any(|(j, q)| ok(q) && (dominates(q, &points[i]) || (j < i && *q == points[i])))
            })
            .collect()
    };
    out.sort_by(|&a, &b| points[a][0].total_cmp(&points[b][0]).then(a.cmp(&b)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_triples() {
        let pairs = vec![
            vec![1.0, 5.0],
            vec![2.0, 2.0],
            vec![3.0, 3.0],
            vec![4.0, 1.0],
            vec![2.0, 2.0],
        ];
        assert_eq!(front(&pairs), vec![0, 1, 3]);
        let triples = vec![
            vec![1.0, 1.0, 9.0],
            vec![2.0, 2.0, 2.0],
            vec![3.0, 3.0, 3.0], // dominated by 1
            vec![9.0, 0.0, 9.0],
            vec![2.0, 2.0, 2.0], // duplicate of 1
        ];
        assert_eq!(front(&triples), vec![0, 1, 3]);
    }
}
