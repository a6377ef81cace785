//! Douglas–Peucker simplification of closed rings (own implementation: a few dozen lines,
//! cheaper than pulling in the `geo` crate).

/// Simplifies a closed ring with tolerance `tol` (in the ring's units). The ring is cut at its
/// first point and the point farthest from it, both halves are simplified, and the result is
/// closed again. A ring that would fall below 4 points (3 distinct) is returned unchanged, so
/// simplification never deletes a ring. `tol <= 0` returns the ring as is.
pub fn simplify_ring(ring: &[(f64, f64)], tol: f64) -> Vec<(f64, f64)> {
    simplified_indices(ring, tol)
        .into_iter()
        .map(|i| ring[i])
        .collect()
}

/// The indices of the points [`simplify_ring`] keeps, in ring order (all of them when nothing
/// is removed), so that callers can write the kept vertices from their own copies.
pub fn simplified_indices(ring: &[(f64, f64)], tol: f64) -> Vec<usize> {
    if tol.is_nan() || tol <= 0.0 || ring.len() <= 4 {
        return (0..ring.len()).collect();
    }
    let n = ring.len() - 1; // distinct points; ring[n] == ring[0]
    let a = ring[0];
    let far = (1..n)
        .max_by(|&i, &j| dist2(ring[i], a).total_cmp(&dist2(ring[j], a)))
        .unwrap_or(1);
    let mut keep = vec![false; ring.len()];
    keep[0] = true;
    keep[far] = true;
    keep[n] = true;
    mark(ring, 0, far, tol * tol, &mut keep);
    mark(ring, far, n, tol * tol, &mut keep);
    let out: Vec<usize> = (0..ring.len()).filter(|&i| keep[i]).collect();
    if out.len() < 4 {
        (0..ring.len()).collect()
    } else {
        out
    }
}

/// Keeps the points of `pts[first..=last]` that lie farther than `sqrt(tol2)` from the
/// simplified chord (iterative, so long rings cannot overflow the stack).
fn mark(pts: &[(f64, f64)], first: usize, last: usize, tol2: f64, keep: &mut [bool]) {
    let mut stack = vec![(first, last)];
    while let Some((i, j)) = stack.pop() {
        if j <= i + 1 {
            continue;
        }
        let (mut best, mut best_d) = (i, -1.0);
        for k in i + 1..j {
            let d = seg_dist2(pts[k], pts[i], pts[j]);
            if d > best_d {
                best = k;
                best_d = d;
            }
        }
        if best_d > tol2 {
            keep[best] = true;
            stack.push((i, best));
            stack.push((best, j));
        }
    }
}

fn dist2(p: (f64, f64), q: (f64, f64)) -> f64 {
    (p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)
}

/// Squared distance from `p` to segment `a`-`b`.
fn seg_dist2(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return dist2(p, a);
    }
    let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0);
    dist2(p, (a.0 + t * dx, a.1 + t * dy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staircase_becomes_a_triangle() {
        // A right triangle drawn as a pixel staircase.
        let ring = vec![
            (0.0, 0.0),
            (1.0, 0.0),
            (1.0, 1.0),
            (2.0, 1.0),
            (2.0, 2.0),
            (3.0, 2.0),
            (3.0, 3.0),
            (0.0, 3.0),
            (0.0, 0.0),
        ];
        let s = simplify_ring(&ring, 1.0);
        assert_eq!(s, vec![(0.0, 0.0), (3.0, 3.0), (0.0, 3.0), (0.0, 0.0)]);
        assert_eq!(simplify_ring(&ring, 0.1), ring);
        assert_eq!(simplify_ring(&ring, 0.0), ring);
    }

    #[test]
    fn never_collapses_a_ring() {
        let sq = vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)];
        assert_eq!(simplify_ring(&sq, 100.0), sq);
    }
}
