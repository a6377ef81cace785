#![allow(dead_code)]
//! THE VECTORISER BEFORE THE SPEED WORK (a copy of plugins/sdk/src/vectorize.rs at 73df749, tests
//! removed), kept as the A side of the ragged-mask benchmark. Raster to polygons along exact pixel edges (the job of GDAL's polygonize /
//! `rasterio.features.shapes` with its default connectivity 4).
//!
//! Every 4-connected region of equal non-zero value becomes one polygon with holes. Pixels that
//! touch only at a corner belong to different regions, consistently everywhere. Vertices are
//! pixel corners in image coordinates (column, row; y grows downwards) and only corners where
//! the boundary turns are kept, so a square region is a ring of 5 points.
//!
//! Rings are closed (last point = first). In pixel coordinates an exterior has a positive
//! [`samgeo_plugin_sdk::geometry::signed_area2`] (clockwise on screen) and a hole a negative one; callers
//! re-orient after mapping to world coordinates (see [`samgeo_plugin_sdk::geometry::orient`]).
//!
//! Where a ring would touch itself at a corner (a hole meeting the outside diagonally), it is
//! split there, so every ring is simple; the pieces touch at one point, which OGC Simple
//! Features allows. Work and memory are linear in the pixels of the window.

use std::collections::{BTreeMap, HashMap};

use samgeo_plugin_sdk::model::{BBox, Mask, MaskSet};
use samgeo_plugin_sdk::raster::Label;
use samgeo_plugin_sdk::rle;

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
    // Exterior area (twice) of each polygon, to pick the innermost candidate for a hole.
    let mut ext_area2: Vec<i64> = Vec::new();
    // Bounds `[min_x, min_y, max_x, max_y]` of each exterior, to skip most containment tests.
    let mut ext_bounds: Vec<[u32; 4]> = Vec::new();
    let mut by_value: HashMap<u32, Vec<usize>> = HashMap::new();
    let mut pending_holes: Vec<(u32, i64, i64, Vec<Corner>)> = Vec::new();

    let (x0, w) = (window.x as usize, window.width as usize);
    for y in 0..grid.h {
        let at = (window.y as usize + y as usize) * stride + x0;
        let row = &data[at..at + w];
        let above = if y > 0 {
            Some(&data[at - stride..at - stride + w])
        } else {
            None
        };
        for (xi, &v) in row.iter().enumerate() {
            // Start a ring at each top side on a boundary that no ring has walked yet.
            if v == T::default() || above.is_some_and(|a| a[xi] == v) {
                continue;
            }
            let x = xi as i64;
            if visited.get(x, y) {
                continue;
            }
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
                    ext_area2.push(a2);
                    ext_bounds.push(corner_bounds(&polygons[idx].exterior));
                    by_value.entry(value).or_default().push(idx);
                    owner.get_or_insert(idx);
                } else {
                    holes.push(lp);
                }
            }
            for hole in holes {
                match owner {
                    Some(i) => add_hole(&mut polygons[i], hole),
                    None => pending_holes.push((value, x + offset.0, y + offset.1, hole)),
                }
            }
        }
    }

    for (value, px, py, hole) in pending_holes {
        // The hole was found from a pixel of its owner region: the innermost exterior of the
        // same value that contains that pixel's centre.
        let centre = (px as f64 + 0.5, py as f64 + 0.5);
        let owner = by_value.get(&value).and_then(|cands| {
            cands
                .iter()
                .copied()
                .filter(|&i| {
                    let [x0, y0, x1, y1] = ext_bounds[i];
                    (x0..x1).contains(&(px as u32))
                        && (y0..y1).contains(&(py as u32))
                        && corner_ring_contains(&polygons[i].exterior, centre)
                })
                .min_by_key(|&i| ext_area2[i])
        });
        if let Some(i) = owner {
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

fn corner_bounds(ring: &[Corner]) -> [u32; 4] {
    ring.iter().fold([u32::MAX, u32::MAX, 0, 0], |b, &(x, y)| {
        [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)]
    })
}
