//! Merging the masks of overlapping tiles into one set for the whole raster, so an object
//! crossing seams comes back once (the rule is in README, "Tiled segmentation"):
//!
//! 1. a mask is **cut** when its box lies within [`EDGE_TOLERANCE`] px of an edge of its tile
//!    that is not an edge of the raster (segment-anything's crop rule), else **whole**;
//! 2. a cut mask is dropped when a whole mask of a neighbouring tile covers at least half of
//!    its pixels (that tile saw the object whole);
//! 3. the remaining cut masks of neighbouring tiles that share at least half of the smaller
//!    one's pixels in the two tiles' overlap are dissolved into one mask (transitively, so an
//!    object longer than a tile becomes one): the union of their pixels, scored with the
//!    area-weighted mean of their scores (and stability scores);
//! 4. a final NMS over everything, visiting masks by score (ties: earlier tile first): a mask
//!    is dropped when a kept one overlaps it with box IoU or mask IoU above `iou_thresh`.
//!
//! Everything stays run-length encoded in raster coordinates; no raster is painted.

use std::collections::HashMap;

use super::plan::Tile;
use super::rows::RowRuns;
use crate::masks::Mask;
use crate::pipeline::mask_generator::nms::{box_iou, score_order, XyxyBox};

/// Distance within which a mask's box counts as touching a tile edge (segment-anything's
/// crop-edge tolerance).
pub const EDGE_TOLERANCE: u32 = 20;

/// The masks one tile produced, in raster (working-grid) coordinates.
#[derive(Debug, Clone)]
pub struct TileMasks {
    pub tile: Tile,
    pub masks: Vec<Mask>,
}

/// One mask on its way through the merge.
struct Entry {
    /// Index of its tile in the input.
    tile: usize,
    mask: Mask,
    rows: RowRuns,
    cut: bool,
}

/// Merges the masks of all tiles of a `width`×`height` grid; the result is unnumbered (ids are
/// left as they came; callers renumber).
pub fn merge(tiles: Vec<TileMasks>, width: u32, height: u32, iou_thresh: f32) -> Vec<Mask> {
    let rects: Vec<Tile> = tiles.iter().map(|t| t.tile).collect();
    let by_position: HashMap<(u32, u32), usize> = rects
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.col, t.row), i))
        .collect();
    let mut entries: Vec<Entry> = Vec::new();
    let mut per_tile: Vec<Vec<usize>> = vec![Vec::new(); tiles.len()];
    for (ti, tm) in tiles.into_iter().enumerate() {
        for mask in tm.masks {
            per_tile[ti].push(entries.len());
            entries.push(Entry {
                tile: ti,
                cut: is_cut(&mask, &tm.tile, width, height),
                rows: RowRuns::of_mask(&mask),
                mask,
            });
        }
    }
    // The entries of the tiles around (and not including) tile `ti` whose boxes meet `e`'s.
    let neighbours = |ti: usize, e: &Entry| -> Vec<usize> {
        let t = rects[ti];
        let mut out = Vec::new();
        // The last tile of a row or column is pulled back to end at the edge, so it may
        // overlap the tile two before it too.
        for dr in -2i64..=2 {
            for dc in -2i64..=2 {
                if dr == 0 && dc == 0 {
                    continue;
                }
                let (c, r) = (t.col as i64 + dc, t.row as i64 + dr);
                if c < 0 || r < 0 {
                    continue;
                }
                let Some(&other) = by_position.get(&(c as u32, r as u32)) else {
                    continue;
                };
                let (x0, y0, x1, y1) = overlap_of(&t, &rects[other]);
                if x0 >= x1 || y0 >= y1 {
                    continue;
                }
                out.extend(
                    per_tile[other]
                        .iter()
                        .copied()
                        .filter(|&j| boxes_meet(&e.mask, &entries[j].mask)),
                );
            }
        }
        out
    };

    // 2. Cut masks another tile holds whole.
    let mut dropped = vec![false; entries.len()];
    for (i, e) in entries.iter().enumerate() {
        if !e.cut {
            continue;
        }
        let covered = neighbours(e.tile, e).into_iter().any(|j| {
            let w = &entries[j];
            !w.cut && w.rows.intersection(&e.rows) * 2 >= e.mask.area
        });
        dropped[i] = covered;
    }

    // 3. Dissolve the remaining cut masks that meet across a seam.
    let mut groups = UnionFind::new(entries.len());
    for (i, a) in entries.iter().enumerate() {
        if !a.cut || dropped[i] {
            continue;
        }
        for j in neighbours(a.tile, a) {
            let b = &entries[j];
            if j < i || !b.cut || dropped[j] {
                continue;
            }
            let shared = overlap_of(&rects[a.tile], &rects[b.tile]);
            let inter = a.rows.intersection(&b.rows);
            let smaller = a.rows.area_in(shared).min(b.rows.area_in(shared));
            if inter > 0 && inter * 2 >= smaller {
                groups.join(i, j);
            }
        }
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, _) in dropped.iter().enumerate().filter(|(_, &d)| !d) {
        members.entry(groups.root(i)).or_default().push(i);
    }
    let mut roots: Vec<usize> = members.keys().copied().collect();
    roots.sort_unstable();
    let mut merged: Vec<(Mask, RowRuns)> = Vec::with_capacity(roots.len());
    for root in roots {
        let group = &members[&root];
        if let [only] = group.as_slice() {
            let e = &entries[*only];
            merged.push((e.mask.clone(), e.rows.clone()));
            continue;
        }
        let rows = RowRuns::union(group.iter().map(|&i| &entries[i].rows));
        let weight: f64 = group.iter().map(|&i| entries[i].mask.area as f64).sum();
        let mean = |f: fn(&Mask) -> f32| -> f32 {
            (group
                .iter()
                .map(|&i| f(&entries[i].mask) as f64 * entries[i].mask.area as f64)
                .sum::<f64>()
                / weight.max(1.0)) as f32
        };
        let first = &entries[group[0]].mask;
        if let Some(mask) = rows.to_mask(first.id, mean(|m| m.score), mean(|m| m.stability)) {
            merged.push((mask, rows));
        }
    }
    drop(entries);
    final_nms(merged, iou_thresh)
}

/// Step 4: greedy NMS by score over box IoU and mask IoU, comparing only masks whose boxes
/// meet (found through a grid of buckets, so thousands of tiles stay cheap).
fn final_nms(masks: Vec<(Mask, RowRuns)>, iou_thresh: f32) -> Vec<Mask> {
    const CELL: u32 = 256;
    let scores: Vec<f32> = masks.iter().map(|(m, _)| m.score).collect();
    let boxes: Vec<XyxyBox> = masks
        .iter()
        .map(|(m, _)| XyxyBox::of_bbox(&m.bbox))
        .collect();
    let cells = |m: &Mask| {
        let b = m.bbox;
        let (cx0, cy0) = (b.x / CELL, b.y / CELL);
        let (cx1, cy1) = (
            (b.x + b.width.max(1) - 1) / CELL,
            (b.y + b.height.max(1) - 1) / CELL,
        );
        (cy0..=cy1).flat_map(move |y| (cx0..=cx1).map(move |x| (x, y)))
    };
    let mut buckets: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
    let mut kept: Vec<usize> = Vec::new();
    for i in score_order(&scores) {
        let (m, rows) = &masks[i];
        let mut seen: Vec<usize> = cells(m)
            .filter_map(|c| buckets.get(&c))
            .flatten()
            .copied()
            .collect();
        seen.sort_unstable();
        seen.dedup();
        let duplicate = seen.iter().any(|&k| {
            if box_iou(&boxes[k], &boxes[i]) > iou_thresh {
                return true;
            }
            let (km, krows) = &masks[k];
            if !boxes_meet(km, m) {
                return false;
            }
            let inter = krows.intersection(rows) as f64;
            let union = (km.area + m.area) as f64 - inter;
            union > 0.0 && (inter / union) as f32 > iou_thresh
        });
        if !duplicate {
            for c in cells(m) {
                buckets.entry(c).or_default().push(i);
            }
            kept.push(i);
        }
    }
    kept.sort_unstable();
    let mut slots: Vec<Option<Mask>> = masks.into_iter().map(|(m, _)| Some(m)).collect();
    kept.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Whether the mask's box lies within [`EDGE_TOLERANCE`] of an edge of `tile` that is not an
/// edge of the `width`×`height` grid.
fn is_cut(mask: &Mask, tile: &Tile, width: u32, height: u32) -> bool {
    let b = mask.bbox;
    let near = |a: u32, c: u32| a.abs_diff(c) <= EDGE_TOLERANCE;
    (tile.x0 > 0 && near(b.x, tile.x0))
        || (tile.y0 > 0 && near(b.y, tile.y0))
        || (tile.x1 < width && near(b.x + b.width, tile.x1))
        || (tile.y1 < height && near(b.y + b.height, tile.y1))
}

/// Whether two masks' bounding boxes share a pixel.
fn boxes_meet(a: &Mask, b: &Mask) -> bool {
    let (a, b) = (a.bbox, b.bbox);
    a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
}

/// The rectangle two tiles share.
fn overlap_of(a: &Tile, b: &Tile) -> (u32, u32, u32, u32) {
    (
        a.x0.max(b.x0),
        a.y0.max(b.y0),
        a.x1.min(b.x1),
        a.y1.min(b.y1),
    )
}

/// Disjoint sets over `0..n`.
struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{TilePlan, WorkingGrid};
    use super::*;
    use crate::raster::RasterInfo;

    /// A 2600×600 grid in 1024-px tiles overlapping by 128: three columns.
    fn plan() -> TilePlan {
        let info = RasterInfo {
            width: 2600,
            height: 600,
            band_count: 3,
            data_type: "Byte".into(),
            driver: "GTiff".into(),
            georef: Default::default(),
        };
        TilePlan::new(WorkingGrid::native(&info), 1024, 128)
    }

    /// What a tile sees of the rectangle x0..x1 × y0..y1: its part inside the tile, as a mask in
    /// raster coordinates (`None` when the tile does not see it).
    fn seen(tile: &Tile, (x0, y0, x1, y1): (u32, u32, u32, u32), score: f32) -> Option<Mask> {
        let (cx0, cy0) = (x0.max(tile.x0), y0.max(tile.y0));
        let (cx1, cy1) = (x1.min(tile.x1), y1.min(tile.y1));
        if cx0 >= cx1 || cy0 >= cy1 {
            return None;
        }
        let (w, h) = (cx1 - cx0, cy1 - cy0);
        let mut m = Mask::from_dense(1, score, 0.9, w, h, &vec![true; (w * h) as usize])?;
        m.bbox.x = cx0;
        m.bbox.y = cy0;
        Some(m)
    }

    /// Every tile's view of the given objects.
    /// A rectangle x0, y0, x1, y1.
    type Rect = (u32, u32, u32, u32);

    fn tiles_seeing(objects: &[(Rect, f32)]) -> Vec<TileMasks> {
        plan()
            .tiles()
            .map(|tile| TileMasks {
                tile,
                masks: objects
                    .iter()
                    .filter_map(|&(r, s)| seen(&tile, r, s))
                    .collect(),
            })
            .collect()
    }

    fn boxes(masks: &[Mask]) -> Vec<(u32, u32, u32, u32)> {
        let mut b: Vec<_> = masks
            .iter()
            .map(|m| {
                (
                    m.bbox.x,
                    m.bbox.y,
                    m.bbox.x + m.bbox.width,
                    m.bbox.y + m.bbox.height,
                )
            })
            .collect();
        b.sort_unstable();
        b
    }

    #[test]
    fn an_object_longer_than_a_tile_over_three_tiles_is_one_mask() {
        let long = (100, 200, 2500, 260);
        let tiles = tiles_seeing(&[(long, 0.9)]);
        assert_eq!(tiles.iter().filter(|t| !t.masks.is_empty()).count(), 3);
        let out = merge(tiles, 2600, 600, 0.7);
        assert_eq!(boxes(&out), vec![long]);
        assert_eq!(out[0].area, 2400 * 60);
        assert!((out[0].score - 0.9).abs() < 1e-6);
        // The pixels are exactly the object's.
        assert_eq!(RowRuns::of_mask(&out[0]).area_in(long), 2400 * 60);
    }

    #[test]
    fn two_objects_across_a_seam_stay_two_even_when_they_touch() {
        // Tile 0 is 0..1024, tile 1 is 896..1920: both objects cross the seams at 896 and 1024.
        let a = (850, 100, 1100, 150);
        let b = (850, 150, 1100, 200); // touches a along y = 150
        let c = (850, 400, 1100, 450);
        let out = merge(
            tiles_seeing(&[(a, 0.9), (b, 0.8), (c, 0.9)]),
            2600,
            600,
            0.7,
        );
        assert_eq!(boxes(&out), vec![a, b, c]);
    }

    #[test]
    fn an_object_whole_in_two_tiles_is_kept_once_and_its_cut_views_dropped() {
        // Inside the overlap of tiles 0 and 1 (896..1024), away from both tiles' edges: whole in
        // both. The second object crosses the seam at 1024 but is whole in tile 1.
        let dup = (930, 300, 990, 340);
        let crossing = (1000, 50, 1060, 90);
        let tiles = tiles_seeing(&[(dup, 0.9), (crossing, 0.9)]);
        let out = merge(tiles, 2600, 600, 0.7);
        assert_eq!(boxes(&out), vec![dup, crossing]);
    }

    #[test]
    fn cut_fragments_with_different_scores_get_the_area_weighted_score() {
        // Tile 0 sees 100..1024 of the object (924 columns), tile 1 sees 896..1300 (404).
        let object = (100, 10, 1300, 20);
        let plan = plan();
        let t0 = plan.tile(0, 0);
        let t1 = plan.tile(1, 0);
        let tiles = vec![
            TileMasks {
                tile: t0,
                masks: vec![seen(&t0, object, 0.9).unwrap()],
            },
            TileMasks {
                tile: t1,
                masks: vec![seen(&t1, object, 0.6).unwrap()],
            },
        ];
        let out = merge(tiles, 2600, 600, 0.7);
        assert_eq!(boxes(&out), vec![object]);
        let expected = (0.9 * 924.0 + 0.6 * 404.0) / (924.0 + 404.0);
        assert!(
            (out[0].score as f64 - expected).abs() < 1e-4,
            "{}",
            out[0].score
        );
    }
}
