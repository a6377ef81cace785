//! Raster to polygons along exact pixel edges (the job of GDAL's polygonize /
//! `rasterio.features.shapes` with its default connectivity 4).
//!
//! Every 4-connected region of equal non-zero value becomes one polygon with holes. Pixels that
//! touch only at a corner belong to different regions, consistently everywhere. Vertices are
//! pixel corners in image coordinates (column, row; y grows downwards) and only corners where
//! the boundary turns are kept, so a square region is a ring of 5 points.
//!
//! Rings are closed (last point = first). In pixel coordinates an exterior has a positive
//! [`crate::geometry::signed_area2`] (clockwise on screen) and a hole a negative one; callers
//! re-orient after mapping to world coordinates (see [`crate::geometry::orient`]).
//!
//! Where a ring would touch itself at a corner (a hole meeting the outside diagonally), it is
//! split there, so every ring is simple; the pieces touch at one point, which OGC Simple
//! Features allows. Work and memory are linear in the pixels of the window.

use std::collections::{BTreeMap, HashMap};

use crate::model::{BBox, Mask, MaskSet};
use crate::raster::Label;
use crate::rle;

/// A pixel point: a pixel corner `(column, row)` in image coordinates.
pub type Corner = (u32, u32);

/// One region as a polygon in pixel-corner coordinates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PixelPolygon {
    /// The raster value of the region.
    pub value: u32,
    /// Outer boundary, closed, positive signed area in pixel space.
    pub exterior: Vec<Corner>,
    /// Holes, closed, negative signed area in pixel space.
    pub holes: Vec<Vec<Corner>>,
    /// Number of pixels in the region.
    pub area: u64,
}

/// Sides of a pixel in clockwise order on screen.
const TOP: u8 = 0;
/// Outward normal of each side.
const NORMAL: [(i64, i64); 4] = [(0, -1), (1, 0), (0, 1), (-1, 0)];
/// Direction of travel along each side (clockwise around the pixel on screen).
const HEADING: [(i64, i64); 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)];
/// Start corner of each side, relative to the pixel's top-left corner.
const START: [(i64, i64); 4] = [(0, 0), (1, 0), (1, 1), (0, 1)];

/// A window on a row-major raster; reads outside the window return 0.
struct Grid<'a, T> {
    data: &'a [T],
    stride: usize,
    x0: usize,
    y0: usize,
    w: i64,
    h: i64,
}

impl<T: Label> Grid<'_, T> {
    #[inline]
    fn get(&self, x: i64, y: i64) -> T {
        if x < 0 || y < 0 || x >= self.w || y >= self.h {
            T::default()
        } else {
            self.data[(self.y0 + y as usize) * self.stride + self.x0 + x as usize]
        }
    }
}

/// One bit per pixel: has its top side been walked already?
struct Visited {
    bits: Vec<u64>,
    w: usize,
}

impl Visited {
    fn new(w: usize, h: usize) -> Self {
        Visited {
            bits: vec![0; (w * h).div_ceil(64)],
            w,
        }
    }
    fn set(&mut self, x: i64, y: i64) {
        let i = y as usize * self.w + x as usize;
        self.bits[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, x: i64, y: i64) -> bool {
        let i = y as usize * self.w + x as usize;
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }
}

/// Polygons of every region of non-zero value inside `window` of a row-major raster with
/// `stride` pixels per row. Pixels outside the window count as 0. Polygons come in the order
/// of their first pixel in a row-major scan. Coordinates are image coordinates.
pub fn polygonize<T: Label>(data: &[T], stride: usize, window: &BBox) -> Vec<PixelPolygon> {
    let grid = Grid {
        data,
        stride,
        x0: window.x as usize,
        y0: window.y as usize,
        w: i64::from(window.width),
        h: i64::from(window.height),
    };
    let offset = (i64::from(window.x), i64::from(window.y));
    let mut visited = Visited::new(window.width as usize, window.height as usize);
    let mut polygons: Vec<PixelPolygon> = Vec::new();
    // Holes traced before their owner's ring is known, with the region (`regions` id) of the
    // pixel they were found from.
    let mut pending_holes: Vec<(usize, Vec<Corner>)> = Vec::new();
    // The 4-connected regions, as runs of equal value joined across rows: each run gets an
    // id; ids of runs that touch vertically are merged. A hole's owner is the polygon traced
    // from the first pixel of its region, found in O(1) instead of by point-in-ring tests
    // (which cost holes × vertices on ragged masks).
    let mut regions = Regions::default();
    // The exterior traced from each region's first pixel: (region id, polygon index).
    let mut region_exterior: Vec<(usize, usize)> = Vec::new();
    let (mut runs_above, mut runs_here): (Vec<Run>, Vec<Run>) = (Vec::new(), Vec::new());

    let (x0, w) = (window.x as usize, window.width as usize);
    for y in 0..grid.h {
        let at = (window.y as usize + y as usize) * stride + x0;
        let row = &data[at..at + w];
        regions.label_row(row, &runs_above, &mut runs_here);
        let above = if y > 0 {
            Some(&data[at - stride..at - stride + w])
        } else {
            None
        };
        let mut run_idx = 0;
        for (xi, &v) in row.iter().enumerate() {
            // Start a ring at each top side on a boundary that no ring has walked yet.
            if v == T::default() || above.is_some_and(|a| a[xi] == v) {
                continue;
            }
            let x = xi as i64;
            if visited.get(x, y) {
                continue;
            }
            while runs_here[run_idx].end <= xi {
                run_idx += 1;
            }
            let region = runs_here[run_idx].id;
            let (ring, pinched) = trace(&grid, &mut visited, x, y, offset);
            let loops = if pinched {
                split_pinches(ring)
            } else {
                vec![ring]
            };
            let value = v.to_u32();
            let mut owner: Option<usize> = None;
            let mut holes = Vec::new();
            for lp in loops {
                let a2 = shoelace2(&lp);
                if a2 > 0 {
                    let idx = polygons.len();
                    polygons.push(PixelPolygon {
                        value,
                        exterior: lp,
                        holes: Vec::new(),
                        area: (a2 / 2) as u64,
                    });
                    if owner.is_none() {
                        region_exterior.push((region, idx));
                    }
                    owner.get_or_insert(idx);
                } else {
                    holes.push(lp);
                }
            }
            for hole in holes {
                match owner {
                    Some(i) => add_hole(&mut polygons[i], hole),
                    None => pending_holes.push((region, hole)),
                }
            }
        }
        std::mem::swap(&mut runs_above, &mut runs_here);
    }

    let mut exterior_of_root: HashMap<usize, usize> = HashMap::with_capacity(region_exterior.len());
    for (region, idx) in region_exterior {
        exterior_of_root.entry(regions.root(region)).or_insert(idx);
    }
    for (region, hole) in pending_holes {
        // The hole was found from a pixel of its owner region: the polygon traced from that
        // region's first pixel.
        if let Some(&i) = exterior_of_root.get(&regions.root(region)) {
            add_hole(&mut polygons[i], hole);
        }
    }
    polygons
}

/// Polygons of one mask's set pixels (value = the mask's label), in image coordinates.
/// Works in the mask's bbox only.
pub fn polygonize_mask(mask: &Mask) -> Result<Vec<PixelPolygon>, String> {
    let bits = rle::decode(&mask.bbox, &mask.runs)?;
    let local = BBox {
        x: 0,
        y: 0,
        ..mask.bbox
    };
    let mut polys = polygonize(&bits, mask.bbox.width as usize, &local);
    let (dx, dy) = (mask.bbox.x, mask.bbox.y);
    for p in &mut polys {
        p.value = mask.label;
        for ring in std::iter::once(&mut p.exterior).chain(p.holes.iter_mut()) {
            for c in ring.iter_mut() {
                *c = (c.0 + dx, c.1 + dy);
            }
        }
    }
    Ok(polys)
}

/// Polygons of the regions of the label raster that painting `set` gives (later masks win,
/// label 0 paints nothing), exactly as [`polygonize`] over that raster returns them, in the
/// same order, without ever holding an image-sized raster: each label is vectorised in the
/// union bbox of its masks, from a one-byte "this label is visible here" raster painted from
/// the masks that reach that box. Memory is one byte per pixel of the largest label's box
/// (at most the image, however many labels), where the whole label raster takes 2 or 4 bytes
/// per pixel of the image once labels pass 255.
pub fn polygonize_labels(set: &MaskSet) -> Result<Vec<PixelPolygon>, String> {
    let mut windows: BTreeMap<u32, BBox> = BTreeMap::new();
    for m in &set.masks {
        rle::validate_pixels(m, set.width, set.height)?;
        if m.label != 0 && !m.bbox.is_empty() {
            let w = windows.entry(m.label).or_default();
            *w = w.union(&m.bbox);
        }
    }
    let mut out: Vec<PixelPolygon> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for (&label, win) in &windows {
        let n = win.pixels() as usize;
        buf.clear();
        buf.try_reserve_exact(n)
            .map_err(|_| format!("cannot allocate a {}x{} raster", win.width, win.height))?;
        buf.resize(n, 0);
        let ww = win.width as usize;
        for m in &set.masks {
            let b = &m.bbox;
            if m.label == 0
                || b.is_empty()
                || b.x >= win.x_end()
                || b.x_end() <= win.x
                || b.y >= win.y_end()
                || b.y_end() <= win.y
            {
                continue;
            }
            let v = u8::from(m.label == label);
            rle::for_each_span(b, &m.runs, |row, x0, x1| {
                let y = b.y + row;
                let (x0, x1) = ((b.x + x0).max(win.x), (b.x + x1).min(win.x_end()));
                if y < win.y || y >= win.y_end() || x0 >= x1 {
                    return;
                }
                let base = (y - win.y) as usize * ww;
                buf[base + (x0 - win.x) as usize..base + (x1 - win.x) as usize].fill(v);
            })?;
        }
        let local = BBox { x: 0, y: 0, ..*win };
        for mut p in polygonize(&buf, ww, &local) {
            p.value = label;
            for ring in std::iter::once(&mut p.exterior).chain(p.holes.iter_mut()) {
                for c in ring.iter_mut() {
                    *c = (c.0 + win.x, c.1 + win.y);
                }
            }
            out.push(p);
        }
    }
    // `polygonize` over the whole raster meets each region first at its top-left pixel, whose
    // top-left corner is the exterior's smallest vertex in (row, column) order.
    out.sort_by_key(|p| p.exterior.iter().map(|&(x, y)| (y, x)).min());
    Ok(out)
}

/// A run of one non-zero `value` in one row: columns `start..end`, region id `id`.
#[derive(Clone, Copy, Debug)]
struct Run {
    start: usize,
    end: usize,
    value: u32,
    id: usize,
}

/// Region ids of runs, merged with union-find as runs of equal value touch across rows
/// (4-connectivity: they share at least one column).
#[derive(Default)]
struct Regions {
    parent: Vec<usize>,
}

impl Regions {
    /// The representative id of `id`'s region (path halving).
    fn root(&mut self, mut id: usize) -> usize {
        while self.parent[id] != id {
            self.parent[id] = self.parent[self.parent[id]];
            id = self.parent[id];
        }
        id
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }

    /// Splits `row` into runs of non-zero values in `out`, each joined with the runs of the
    /// same value in the row above (`above`).
    fn label_row<T: Label>(&mut self, row: &[T], above: &[Run], out: &mut Vec<Run>) {
        out.clear();
        let mut xi = 0;
        let mut k = 0; // first run above that may overlap the current one
        while xi < row.len() {
            let v = row[xi];
            let start = xi;
            while xi < row.len() && row[xi] == v {
                xi += 1;
            }
            if v == T::default() {
                continue;
            }
            let id = self.parent.len();
            self.parent.push(id);
            while k < above.len() && above[k].end <= start {
                k += 1;
            }
            let value = v.to_u32();
            let mut j = k;
            while j < above.len() && above[j].start < xi {
                if above[j].value == value {
                    self.join(id, above[j].id);
                }
                j += 1;
            }
            out.push(Run {
                start,
                end: xi,
                value,
                id,
            });
        }
    }
}

fn add_hole(p: &mut PixelPolygon, hole: Vec<Corner>) {
    p.area -= (-shoelace2(&hole) / 2) as u64;
    p.holes.push(hole);
}

/// Walks one ring starting at the top side of pixel (`sx`, `sy`), keeping the region on the
/// right-hand side (clockwise around it on screen). At a corner where the region only touches
/// diagonally the walk turns around the pixel it is on, which keeps diagonal neighbours apart
/// (4-connectivity). Returns the closed ring and whether it passed such a corner (and so may
/// touch itself).
fn trace<T: Label>(
    grid: &Grid<'_, T>,
    visited: &mut Visited,
    sx: i64,
    sy: i64,
    offset: (i64, i64),
) -> (Vec<Corner>, bool) {
    let v = grid.get(sx, sy);
    let corner = |x: i64, y: i64, side: usize| -> Corner {
        let (dx, dy) = START[side];
        ((x + dx + offset.0) as u32, (y + dy + offset.1) as u32)
    };
    let mut ring = vec![corner(sx, sy, TOP as usize)];
    let mut pinched = false;
    let (mut x, mut y, mut s) = (sx, sy, TOP as usize);
    loop {
        if s == TOP as usize {
            visited.set(x, y);
        }
        let next = (s + 1) % 4;
        let (hx, hy) = HEADING[s];
        let (qx, qy) = (x + hx, y + hy);
        let (nx, ny) = NORMAL[s];
        if grid.get(qx, qy) != v {
            // The side after this one is a boundary too: turn around this pixel.
            if grid.get(qx + nx, qy + ny) == v {
                pinched = true;
            }
            ring.push(corner(x, y, next));
            s = next;
        } else if grid.get(qx + nx, qy + ny) != v {
            // Same side of the next pixel: straight on, no vertex.
            x = qx;
            y = qy;
        } else {
            // Turn the other way onto the diagonal pixel's preceding side.
            ring.push(corner(x, y, next));
            x = qx + nx;
            y = qy + ny;
            s = (s + 3) % 4;
        }
        if x == sx && y == sy && s == TOP as usize {
            break;
        }
    }
    if ring.last() != ring.first() {
        let first = ring[0];
        ring.push(first);
    }
    (ring, pinched)
}

/// Splits a closed ring at repeated vertices into simple closed loops.
fn split_pinches(ring: Vec<Corner>) -> Vec<Vec<Corner>> {
    let open = &ring[..ring.len() - 1];
    let mut stack: Vec<Corner> = Vec::with_capacity(open.len());
    let mut pos: HashMap<Corner, usize> = HashMap::new();
    let mut loops = Vec::new();
    for &p in open {
        if let Some(&i) = pos.get(&p) {
            let mut lp: Vec<Corner> = stack[i..].to_vec();
            lp.push(p);
            for q in &stack[i + 1..] {
                pos.remove(q);
            }
            stack.truncate(i + 1);
            loops.push(lp);
        } else {
            pos.insert(p, stack.len());
            stack.push(p);
        }
    }
    if stack.len() >= 3 {
        let first = stack[0];
        stack.push(first);
        loops.push(stack);
    }
    loops
}

/// Twice the signed area of a closed corner ring, exactly.
fn shoelace2(ring: &[Corner]) -> i64 {
    ring.windows(2)
        .map(|w| {
            let (x0, y0) = (i64::from(w[0].0), i64::from(w[0].1));
            let (x1, y1) = (i64::from(w[1].0), i64::from(w[1].1));
            x0 * y1 - x1 * y0
        })
        .sum()
}

/// Even-odd containment of a point (a pixel centre, so never on an edge) in a corner ring.
#[cfg(test)]
fn corner_ring_contains(ring: &[Corner], p: (f64, f64)) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        // Rings are rectilinear: only vertical edges can cross a horizontal ray.
        if x0 == x1 && (f64::from(y0) > p.1) != (f64::from(y1) > p.1) && p.0 < f64::from(x0) {
            inside = !inside;
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::grid_from_rows;

    fn run(rows: &[&str]) -> Vec<PixelPolygon> {
        let (data, w, h) = grid_from_rows(rows);
        let polys = polygonize(
            &data,
            w,
            &BBox {
                x: 0,
                y: 0,
                width: w as u32,
                height: h as u32,
            },
        );
        for p in &polys {
            check_valid(p, &data);
        }
        polys
    }

    /// Closure, orientation, simplicity, holes inside the exterior, and area = pixel count.
    fn check_valid(p: &PixelPolygon, data: &[u8]) {
        let rings = std::iter::once(&p.exterior).chain(p.holes.iter());
        for (i, r) in rings.enumerate() {
            assert!(r.len() >= 5, "ring too short: {r:?}");
            assert_eq!(r.first(), r.last(), "ring not closed");
            let a = shoelace2(r);
            assert!(if i == 0 { a > 0 } else { a < 0 }, "orientation of {r:?}");
            let mut seen = std::collections::HashSet::new();
            for c in &r[..r.len() - 1] {
                assert!(seen.insert(*c), "ring touches itself at {c:?}: {r:?}");
            }
            if i > 0 {
                // A hole lies within the exterior's bounds.
                let b = |r: &[Corner]| {
                    r.iter().fold((u32::MAX, u32::MAX, 0, 0), |b, c| {
                        (b.0.min(c.0), b.1.min(c.1), b.2.max(c.0), b.3.max(c.1))
                    })
                };
                let (e, h) = (b(&p.exterior), b(r));
                assert!(h.0 >= e.0 && h.1 >= e.1 && h.2 <= e.2 && h.3 <= e.3);
            }
        }
        let count = data.iter().filter(|&&v| u32::from(v) == p.value).count() as u64;
        assert!(p.area <= count);
    }

    #[test]
    fn square_is_one_ring_of_five_points() {
        let p = run(&["....", ".11.", ".11.", "...."]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].exterior, vec![(1, 1), (3, 1), (3, 3), (1, 3), (1, 1)]);
        assert!(p[0].holes.is_empty());
        assert_eq!(p[0].area, 4);
        assert_eq!(p[0].value, 1);
    }

    #[test]
    fn square_with_hole() {
        let p = run(&["111", "1.1", "111"]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].holes.len(), 1);
        assert_eq!(p[0].holes[0].len(), 5);
        assert_eq!(p[0].area, 8);
        assert_eq!(shoelace2(&p[0].exterior), 18);
    }

    #[test]
    fn two_blobs_two_polygons() {
        let p = run(&["11..2", "11..2", "....."]);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].value, p[0].area), (1, 4));
        assert_eq!((p[1].value, p[1].area), (2, 2));
    }

    #[test]
    fn diagonal_pixels_are_separate_regions() {
        let p = run(&["1.", ".1"]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].exterior, vec![(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)]);
        assert_eq!(p[1].exterior, vec![(1, 1), (2, 1), (2, 2), (1, 2), (1, 1)]);
        let p = run(&[".1", "1."]);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|q| q.area == 1 && q.exterior.len() == 5));
    }

    #[test]
    fn hole_touching_outside_diagonally_is_split() {
        // The gap at (1,1) reaches the outside through the corner it shares with (2,2).
        let p = run(&["111", "1.1", "11."]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].area, 7);
        assert_eq!(p[0].holes.len(), 1);
        assert_eq!(shoelace2(&p[0].holes[0]), -2);
    }

    #[test]
    fn two_holes_touching_at_a_corner() {
        let p = run(&["1111", "1.11", "11.1", "1111"]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].holes.len(), 2);
        assert_eq!(p[0].area, 14);
    }

    #[test]
    fn island_in_a_hole_of_the_same_value() {
        let p = run(&["11111", "1...1", "1.1.1", "1...1", "11111"]);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].area, p[0].holes.len()), (16, 1));
        assert_eq!((p[1].area, p[1].holes.len()), (1, 0));
    }

    #[test]
    fn nested_rings_assign_holes_to_innermost() {
        #[rustfmt::skip]
        let p = run(&[
            "1111111",
            "1.....1",
            "1.111.1",
            "1.1.1.1",
            "1.111.1",
            "1.....1",
            "1111111",
        ]);
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].area, p[0].holes.len()), (24, 1));
        assert_eq!((p[1].area, p[1].holes.len()), (8, 1));
    }

    #[test]
    fn different_values_share_edges() {
        let p = run(&["1122", "1122"]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].exterior, vec![(0, 0), (2, 0), (2, 2), (0, 2), (0, 0)]);
        assert_eq!(p[1].exterior, vec![(2, 0), (4, 0), (4, 2), (2, 2), (2, 0)]);
        // A value surrounded by another makes a hole in it.
        let p = run(&["111", "121", "111"]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].holes.len(), 1);
        assert_eq!(p[1].area, 1);
    }

    #[test]
    fn window_limits_work_and_offsets_coordinates() {
        let (data, w, _) = grid_from_rows(&["1111", "1111", "1111"]);
        let win = BBox {
            x: 1,
            y: 1,
            width: 2,
            height: 2,
        };
        let p = polygonize(&data, w, &win);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].exterior, vec![(1, 1), (3, 1), (3, 3), (1, 3), (1, 1)]);
    }

    #[test]
    fn area_equals_pixel_count_on_noise() {
        // A pseudo-random 40x40 raster with three values: per value, the polygon areas add up
        // to the pixel count and every ring is simple and correctly oriented.
        let mut s: u32 = 12345;
        let rows: Vec<String> = (0..40)
            .map(|_| {
                (0..40)
                    .map(|_| {
                        s = s.wrapping_mul(1103515245).wrapping_add(12345);
                        match (s >> 16) % 5 {
                            0 | 1 => '.',
                            2 | 3 => '1',
                            _ => '2',
                        }
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<&str> = rows.iter().map(|r| r.as_str()).collect();
        let (data, _, _) = grid_from_rows(&refs);
        let polys = run(&refs);
        for v in [1u32, 2] {
            let count = data.iter().filter(|&&d| u32::from(d) == v).count() as u64;
            let sum: u64 = polys.iter().filter(|p| p.value == v).map(|p| p.area).sum();
            assert_eq!(sum, count, "value {v}");
        }
    }

    #[test]
    fn each_polygon_holds_its_own_region_and_holes() {
        // Ragged noise (the random-weight SAM case): every polygon's area equals the pixel
        // count of the 4-connected region of its first pixel, so each hole went to the region
        // around it, and every hole lies inside its polygon's exterior.
        for (seed, density) in [(1u32, 3u32), (2, 2), (3, 4)] {
            let (w, h) = (90usize, 70usize);
            let mut s = seed;
            let data: Vec<u8> = (0..w * h)
                .map(|_| {
                    s = s.wrapping_mul(1103515245).wrapping_add(12345);
                    u8::from((s >> 16) % density != 0) + u8::from((s >> 20) % 7 == 0)
                })
                .collect();
            let win = BBox {
                x: 0,
                y: 0,
                width: w as u32,
                height: h as u32,
            };
            let polys = polygonize(&data, w, &win);
            assert!(polys.iter().map(|p| p.holes.len()).sum::<usize>() > 20);
            for p in &polys {
                check_valid(p, &data);
                let (x, y) = p.exterior[0];
                assert_eq!(p.area, region_size(&data, w, h, x as usize, y as usize));
                for hole in &p.holes {
                    let inside = (hole[0].0 as f64 + 0.5, hole[0].1 as f64 - 0.5);
                    let below = (hole[0].0 as f64 + 0.5, hole[0].1 as f64 + 0.5);
                    assert!(
                        corner_ring_contains(&p.exterior, inside)
                            || corner_ring_contains(&p.exterior, below)
                    );
                }
            }
        }
    }

    /// Pixels of the 4-connected region of equal value around (`x`, `y`) (flood fill).
    fn region_size(data: &[u8], w: usize, h: usize, x: usize, y: usize) -> u64 {
        let v = data[y * w + x];
        let mut seen = vec![false; w * h];
        let mut stack = vec![(x, y)];
        seen[y * w + x] = true;
        let mut n = 0;
        while let Some((x, y)) = stack.pop() {
            n += 1;
            let mut visit = |nx: usize, ny: usize| {
                if data[ny * w + nx] == v && !seen[ny * w + nx] {
                    seen[ny * w + nx] = true;
                    stack.push((nx, ny));
                }
            };
            if x > 0 {
                visit(x - 1, y);
            }
            if x + 1 < w {
                visit(x + 1, y);
            }
            if y > 0 {
                visit(x, y - 1);
            }
            if y + 1 < h {
                visit(x, y + 1);
            }
        }
        n
    }

    #[test]
    fn mask_polygons_are_in_image_coordinates() {
        let m = crate::testutil::mask_from_rows(7, 9, 10, 20, &["11", "1."]);
        let p = polygonize_mask(&m).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].value, 9);
        assert_eq!(
            p[0].exterior,
            vec![
                (10, 20),
                (12, 20),
                (12, 21),
                (11, 21),
                (11, 22),
                (10, 22),
                (10, 20)
            ]
        );
    }
    #[test]
    fn per_label_vectorising_equals_the_painted_raster() {
        use crate::raster::{paint_smallest, union_bbox, LabelRaster};
        let whole = |set: &MaskSet| {
            let window = union_bbox(set);
            match paint_smallest(set).unwrap() {
                LabelRaster::U8(d) => polygonize(&d, set.width as usize, &window),
                LabelRaster::U16(d) => polygonize(&d, set.width as usize, &window),
                LabelRaster::U32(d) => polygonize(&d, set.width as usize, &window),
            }
        };
        let set = crate::testutil::overlapping_set();
        let expected = whole(&set);
        assert!(expected.len() > 4 && expected.iter().any(|p| !p.holes.is_empty()));
        assert_eq!(polygonize_labels(&set).unwrap(), expected);
        // Hundreds of overlapping discs and rings over a background with holes.
        let mut scene = crate::testutil::synthetic_scene(240, 180, 300, 7);
        for (i, m) in scene.masks.iter_mut().enumerate() {
            m.label = [m.label, 1 + m.label % 40][i % 2];
        }
        let expected = whole(&scene);
        assert!(expected.len() > 100);
        assert_eq!(polygonize_labels(&scene).unwrap(), expected);
    }
}
