//! Prompts anywhere on a large raster (`/segment/predict` with `tiling`): instead of one
//! downsampled look at the whole raster, the model looks at a window at native resolution
//! around the prompts, chosen as Geo-SAM chooses a chip: `side` px (1024 by default, `[tiling]
//! tile_size`), every prompt at least `side / 8` px (128) from the window's edge where the
//! raster allows. Prompts too far apart for one window are grouped, each group getting its own
//! window (and embedding); a box (with its points) larger than a window gets a larger window,
//! read downsampled to the model's input size.

use crate::models::DecoderPrompt;

/// The `tiling` form field: the same three modes as the tiled endpoints.
pub use super::tiled::TilingMode as Tiling;

impl Tiling {
    /// Whether a `width`×`height` raster is looked at in windows: `auto` when its longest side
    /// exceeds `[tiling] auto_above_px` or it has more than `server.max_pixels` pixels.
    pub fn windowed(self, width: u32, height: u32, auto_above_px: u32, max_pixels: u64) -> bool {
        match self {
            Tiling::On => true,
            Tiling::Off => false,
            Tiling::Auto => {
                width.max(height) > auto_above_px || width as u64 * height as u64 > max_pixels
            }
        }
    }
}

/// A pixel window: columns `x0..x1`, rows `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Window {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
    /// The window as (x0, y0, x1, y1).
    pub fn bounds(&self) -> (u32, u32, u32, u32) {
        (self.x0, self.y0, self.x1, self.y1)
    }
}

/// One window and the prompt rows decoded against it, in the window's pixel coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowGroup {
    pub window: Window,
    pub rows: Vec<DecoderPrompt>,
}

/// A pixel extent [x0, y0, x1, y1] (fractional).
type Extent = [f64; 4];

fn extent_of(row: &DecoderPrompt) -> Extent {
    let mut e = [
        f64::INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut add = |x: f64, y: f64| {
        e = [e[0].min(x), e[1].min(y), e[2].max(x), e[3].max(y)];
    };
    for p in &row.points {
        add(p[0], p[1]);
    }
    if let Some(b) = row.bbox {
        add(b[0], b[1]);
        add(b[2], b[3]);
    }
    e
}

fn union(a: Extent, b: Extent) -> Extent {
    [
        a[0].min(b[0]),
        a[1].min(b[1]),
        a[2].max(b[2]),
        a[3].max(b[3]),
    ]
}

fn fits(e: Extent, inner: f64) -> bool {
    e[2] - e[0] <= inner && e[3] - e[1] <= inner
}

/// Splits a row without a box whose points spread wider than `inner` into rows whose points
/// fit (greedily, in order of x); a group of background points alone is dropped unless the row
/// has no foreground point at all.
fn split_points(row: DecoderPrompt, inner: f64) -> Vec<DecoderPrompt> {
    if row.bbox.is_some() || fits(extent_of(&row), inner) {
        return vec![row];
    }
    let mut order: Vec<usize> = (0..row.points.len()).collect();
    order.sort_by(|&a, &b| row.points[a][0].total_cmp(&row.points[b][0]));
    let mut parts: Vec<(Extent, DecoderPrompt)> = Vec::new();
    for i in order {
        let (p, label) = (row.points[i], row.labels[i]);
        let e = [p[0], p[1], p[0], p[1]];
        match parts.iter_mut().find(|(pe, _)| fits(union(*pe, e), inner)) {
            Some((pe, part)) => {
                *pe = union(*pe, e);
                part.points.push(p);
                part.labels.push(label);
            }
            None => parts.push((
                e,
                DecoderPrompt {
                    points: vec![p],
                    labels: vec![label],
                    bbox: None,
                },
            )),
        }
    }
    let any_foreground = row.labels.contains(&1);
    parts
        .into_iter()
        .map(|(_, part)| part)
        .filter(|part| !any_foreground || part.labels.contains(&1))
        .collect()
}

/// Groups the prompt `rows` (pixel coordinates of a `width`×`height` raster) into windows of
/// `side` px with the prompts at least `side / 8` px from a window's edge (where the raster
/// allows), and moves each row into its window's coordinates.
pub fn plan(rows: Vec<DecoderPrompt>, width: u32, height: u32, side: u32) -> Vec<WindowGroup> {
    let margin = (side / 8) as f64;
    let inner = side as f64 - 2.0 * margin;
    let mut groups: Vec<(Extent, Vec<DecoderPrompt>)> = Vec::new();
    for row in rows.into_iter().flat_map(|r| split_points(r, inner)) {
        let e = extent_of(&row);
        match groups.iter_mut().find(|(ge, _)| fits(union(*ge, e), inner)) {
            Some((ge, members)) => {
                *ge = union(*ge, e);
                members.push(row);
            }
            None => groups.push((e, vec![row])),
        }
    }
    groups
        .into_iter()
        .map(|(e, members)| {
            let window = window_around(e, width, height, side, margin);
            let (dx, dy) = (window.x0 as f64, window.y0 as f64);
            let rows = members
                .into_iter()
                .map(|r| DecoderPrompt {
                    points: r.points.iter().map(|p| [p[0] - dx, p[1] - dy]).collect(),
                    labels: r.labels,
                    bbox: r.bbox.map(|b| [b[0] - dx, b[1] - dy, b[2] - dx, b[3] - dy]),
                })
                .collect();
            WindowGroup { window, rows }
        })
        .collect()
}

/// The square window of at least `side` px (more when the extent needs it) around the extent
/// `e`, moved inside the raster and cut to its size. Its origin snaps to a grid of `side / 4`
/// px where the margins allow, so that clicks close to each other share a window (and its
/// cached embedding).
fn window_around(e: Extent, width: u32, height: u32, side: u32, margin: f64) -> Window {
    let need = ((e[2] - e[0]).max(e[3] - e[1]) + 2.0 * margin).ceil();
    let s = (side as f64).max(need);
    let step = (side / 4).max(1) as f64;
    let place = |lo: f64, hi: f64, size: u32| -> (u32, u32) {
        let len = s.min(size as f64);
        let centred = (lo + hi) / 2.0 - len / 2.0;
        // Origins that keep the margin on both sides, and the grid points among them.
        let (first, last) = (hi + margin - len, lo - margin);
        let (k_min, k_max) = ((first / step).ceil(), (last / step).floor());
        let start = if k_min <= k_max {
            (centred / step).round().clamp(k_min, k_max) * step
        } else {
            centred.round()
        };
        let start = start.clamp(0.0, size as f64 - len);
        (start as u32, (start + len) as u32)
    };
    let (x0, x1) = place(e[0], e[2], width);
    let (y0, y1) = place(e[1], e[3], height);
    Window { x0, y0, x1, y1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(ps: &[[f64; 2]]) -> DecoderPrompt {
        DecoderPrompt {
            points: ps.to_vec(),
            labels: vec![1; ps.len()],
            bbox: None,
        }
    }

    #[test]
    fn a_click_gets_a_window_around_it_shared_with_clicks_nearby() {
        let groups = plan(vec![points(&[[10_000.0, 5_000.0]])], 20_000, 20_000, 1024);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        // On the 256 px grid, nearest to centred, the click at least 128 px inside.
        assert_eq!(
            g.window,
            Window {
                x0: 9_472,
                y0: 4_608,
                x1: 10_496,
                y1: 5_632
            }
        );
        assert_eq!(g.rows[0].points, vec![[528.0, 392.0]]);
        let near = plan(vec![points(&[[10_030.0, 5_010.0]])], 20_000, 20_000, 1024);
        assert_eq!(near[0].window, g.window);
    }

    #[test]
    fn near_the_corner_the_window_stays_inside() {
        let groups = plan(vec![points(&[[19_990.0, 3.0]])], 20_000, 20_000, 1024);
        assert_eq!(
            groups[0].window,
            Window {
                x0: 18_976,
                y0: 0,
                x1: 20_000,
                y1: 1024
            }
        );
        assert_eq!(groups[0].rows[0].points, vec![[1014.0, 3.0]]);
        // A raster smaller than a window: the whole raster.
        let small = plan(vec![points(&[[5.0, 5.0]])], 300, 200, 1024);
        assert_eq!(
            small[0].window,
            Window {
                x0: 0,
                y0: 0,
                x1: 300,
                y1: 200
            }
        );
    }

    #[test]
    fn spread_prompts_get_a_window_each_and_close_ones_share() {
        let boxes = |b: [f64; 4]| DecoderPrompt {
            points: vec![],
            labels: vec![],
            bbox: Some(b),
        };
        let rows = vec![
            boxes([100.0, 100.0, 140.0, 140.0]),
            boxes([500.0, 500.0, 540.0, 540.0]),
            boxes([9_000.0, 9_000.0, 9_040.0, 9_040.0]),
        ];
        let groups = plan(rows, 20_000, 20_000, 1024);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].rows.len(), 2);
        for g in &groups {
            for r in &g.rows {
                let b = r.bbox.unwrap();
                assert!(b[0] >= 128.0 || g.window.x0 == 0, "{b:?} in {:?}", g.window);
                assert!(b[2] <= g.window.width() as f64 - 128.0 || g.window.x1 == 20_000);
            }
        }
        // Points of one row far apart: split, one window per cluster.
        let far = plan(
            vec![points(&[
                [100.0, 100.0],
                [150.0, 120.0],
                [5_000.0, 5_000.0],
            ])],
            20_000,
            20_000,
            1024,
        );
        assert_eq!(far.len(), 2);
        assert_eq!(far[0].rows[0].points.len(), 2);
        // A box larger than a window gets a larger window.
        let big = plan(
            vec![boxes([0.0, 0.0, 3_000.0, 1_000.0])],
            20_000,
            20_000,
            1024,
        );
        assert_eq!(big[0].window.width(), 3_256);
    }

    #[test]
    fn tiling_modes() {
        assert!(Tiling::parse("ON").unwrap() == Tiling::On);
        assert_eq!(Tiling::parse("maybe").unwrap_err().status, 400);
        assert!(Tiling::Auto.windowed(5_000, 100, 4_096, 1 << 28));
        assert!(!Tiling::Auto.windowed(4_096, 4_096, 4_096, 1 << 28));
        assert!(Tiling::Auto.windowed(4_000, 4_000, 4_096, 1_000_000));
        assert!(!Tiling::Off.windowed(50_000, 50_000, 4_096, 1));
        assert!(Tiling::On.windowed(10, 10, 4_096, 1 << 28));
    }
}
