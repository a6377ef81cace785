//! Small planar helpers on rings of `(x, y)` points: signed area, orientation, containment.
//! A ring is closed: its last point repeats its first.

/// Twice the signed area of a closed ring (shoelace). Positive means counter-clockwise in a
/// y-up frame (which is clockwise on screen, where y grows downwards).
pub fn signed_area2(ring: &[(f64, f64)]) -> f64 {
    ring.windows(2)
        .map(|w| w[0].0 * w[1].1 - w[1].0 * w[0].1)
        .sum()
}

/// Reverses `ring` in place unless its orientation already matches: `ccw = true` asks for
/// counter-clockwise in a y-up frame (RFC 7946 exteriors), `false` for clockwise (holes).
pub fn orient(ring: &mut [(f64, f64)], ccw: bool) {
    let a = signed_area2(ring);
    if a != 0.0 && (a > 0.0) != ccw {
        ring.reverse();
    }
}

/// Even-odd test of a point against a closed ring (points on an edge may go either way).
pub fn ring_contains(ring: &[(f64, f64)], p: (f64, f64)) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if (y0 > p.1) != (y1 > p.1) {
            let x = x0 + (p.1 - y0) * (x1 - x0) / (y1 - y0);
            if p.0 < x {
                inside = !inside;
            }
        }
    }
    inside
}

/// `[min_x, min_y, max_x, max_y]` of a set of points (infinite bounds when empty).
pub fn bounds(points: &[(f64, f64)]) -> [f64; 4] {
    points.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, &(x, y)| [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQ: [(f64, f64); 5] = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)];

    #[test]
    fn area_and_orientation() {
        assert_eq!(signed_area2(&SQ), 2.0);
        let mut r = SQ;
        orient(&mut r, false);
        assert_eq!(signed_area2(&r), -2.0);
        orient(&mut r, true);
        assert_eq!(r, SQ);
    }

    #[test]
    fn contains() {
        assert!(ring_contains(&SQ, (0.5, 0.5)));
        assert!(!ring_contains(&SQ, (1.5, 0.5)));
        assert_eq!(bounds(&SQ), [0.0, 0.0, 1.0, 1.0]);
    }
}
