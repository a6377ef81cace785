//! Point grids: the prompts of automatic generation, evenly spaced cell centres in `[0, 1]²`,
//! one grid per crop layer (segment-anything's `build_all_layer_point_grids`).

/// Points per side in crop layer `layer`: `points_per_side / factor^layer`, rounded down.
pub fn points_per_side_at(points_per_side: u32, factor: u32, layer: u32) -> u32 {
    let divisor = (factor.max(1) as u64).saturating_pow(layer);
    (points_per_side as u64 / divisor) as u32
}

/// An `n`×`n` grid of normalised (x, y) points, row by row (x varies fastest), at the cell
/// centres `1/(2n), 3/(2n), ..., 1 − 1/(2n)` (computed as numpy's `linspace` does).
pub fn point_grid(n: u32) -> Vec<[f64; 2]> {
    if n == 0 {
        return Vec::new();
    }
    let offset = 1.0 / (2.0 * n as f64);
    let (start, stop) = (offset, 1.0 - offset);
    let side: Vec<f64> = if n == 1 {
        vec![start]
    } else {
        let step = (stop - start) / (n - 1) as f64;
        let mut v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        v[n as usize - 1] = stop;
        v
    };
    side.iter()
        .flat_map(|&y| side.iter().map(move |&x| [x, y]))
        .collect()
}

/// The grid of every layer `0..=n_layers`.
pub fn layer_grids(points_per_side: u32, n_layers: u32, factor: u32) -> Vec<Vec<[f64; 2]>> {
    (0..=n_layers)
        .map(|layer| point_grid(points_per_side_at(points_per_side, factor, layer)))
        .collect()
}

/// Scales normalised points to a `width`×`height` crop's pixel frame.
pub fn scale_points(points: &[[f64; 2]], width: u32, height: u32) -> Vec<[f64; 2]> {
    points
        .iter()
        .map(|p| [p[0] * width as f64, p[1] * height as f64])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_centred_points_row_major() {
        let g = point_grid(4);
        assert_eq!(g.len(), 16);
        assert!((g[0][0] - 0.125).abs() < 1e-12 && (g[0][1] - 0.125).abs() < 1e-12);
        assert!((g[1][0] - 0.375).abs() < 1e-12 && (g[1][1] - 0.125).abs() < 1e-12);
        assert!((g[4][0] - 0.125).abs() < 1e-12 && (g[4][1] - 0.375).abs() < 1e-12);
        assert_eq!(g[15], [0.875, 0.875]);
        assert_eq!(point_grid(1), vec![[0.5, 0.5]]);
    }

    #[test]
    fn layers_downscale() {
        let grids = layer_grids(32, 2, 2);
        assert_eq!(
            grids.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1024, 256, 64]
        );
        assert_eq!(points_per_side_at(5, 2, 1), 2);
        assert_eq!(points_per_side_at(5, 256, 4), 0);
        assert_eq!(scale_points(&[[0.5, 0.25]], 100, 40), vec![[50.0, 10.0]]);
    }
}
