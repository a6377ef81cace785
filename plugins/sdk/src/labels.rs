//! Per-label summaries of a mask set: the scores carried by each label, and the painted
//! extent of each label (what the label raster shows after overlaps are resolved).

use std::collections::{BTreeMap, HashMap};

use crate::model::{BBox, MaskSet};
use crate::raster::{max_label, rows_per_strip, union_bbox, Label, StripPainter};
#[cfg(test)]
use crate::raster::{paint_smallest, LabelRaster};

/// Scores of a label: the highest `score` and `stability` among the masks carrying it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelScores {
    /// Highest predicted IoU.
    pub score: f32,
    /// Highest stability score.
    pub stability: f32,
}

/// The scores of every non-zero label of the set.
pub fn label_scores(set: &MaskSet) -> HashMap<u32, LabelScores> {
    let mut map: HashMap<u32, LabelScores> = HashMap::new();
    for m in set.masks.iter().filter(|m| m.label != 0) {
        map.entry(m.label)
            .and_modify(|s| {
                s.score = s.score.max(m.score);
                s.stability = s.stability.max(m.stability);
            })
            .or_insert(LabelScores {
                score: m.score,
                stability: m.stability,
            });
    }
    map
}

/// Where a label shows in the painted raster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelExtent {
    /// The label.
    pub label: u32,
    /// Tight box of its painted pixels (exclusive ends).
    pub bbox: BBox,
    /// Number of painted pixels.
    pub area: u64,
}

/// Extents of every non-zero value inside `window` of a row-major raster, by ascending value.
/// One pass over the window; one hash lookup per horizontal run of equal values.
pub fn extents<T: Label>(data: &[T], stride: usize, window: &BBox) -> Vec<LabelExtent> {
    // label -> [x0, y0, x1, y1 (inclusive), count]
    let mut acc: HashMap<u32, [u64; 5]> = HashMap::new();
    for y in window.y..window.y_end() {
        let row = &data[y as usize * stride..][window.x as usize..window.x_end() as usize];
        let mut x = 0usize;
        while x < row.len() {
            let v = row[x];
            let start = x;
            while x < row.len() && row[x] == v {
                x += 1;
            }
            if v == T::default() {
                continue;
            }
            let (x0, x1) = (
                u64::from(window.x) + start as u64,
                u64::from(window.x) + x as u64 - 1,
            );
            let y = u64::from(y);
            let e = acc.entry(v.to_u32()).or_insert([x0, y, x1, y, 0]);
            e[0] = e[0].min(x0);
            e[2] = e[2].max(x1);
            e[3] = y;
            e[4] += (x - start) as u64;
        }
    }
    let mut out: Vec<LabelExtent> = acc
        .into_iter()
        .map(|(label, e)| LabelExtent {
            label,
            bbox: BBox {
                x: e[0] as u32,
                y: e[1] as u32,
                width: (e[2] - e[0] + 1) as u32,
                height: (e[3] - e[1] + 1) as u32,
            },
            area: e[4],
        })
        .collect();
    out.sort_by_key(|e| e.label);
    out
}

/// Paints the set and returns the extent of every label that remains visible. Paints one
/// strip of rows at a time (see [`StripPainter`]), so an image of any size takes a few MiB.
pub fn painted_extents(set: &MaskSet) -> Result<Vec<LabelExtent>, String> {
    let max = max_label(set);
    if max <= u32::from(u8::MAX) {
        strip_extents::<u8>(set, STRIP_BYTES)
    } else if max <= u32::from(u16::MAX) {
        strip_extents::<u16>(set, STRIP_BYTES)
    } else {
        strip_extents::<u32>(set, STRIP_BYTES)
    }
}

/// Bytes of one strip in [`painted_extents`].
const STRIP_BYTES: usize = 8 << 20;

fn strip_extents<T: Label>(set: &MaskSet, strip_bytes: usize) -> Result<Vec<LabelExtent>, String> {
    let mut painter = StripPainter::<T>::new(set, |m| m.label)?;
    let window = union_bbox(set);
    if window.is_empty() {
        return Ok(Vec::new());
    }
    let rows = rows_per_strip::<T>(set.width, set.height, strip_bytes) as usize;
    let mut buf = vec![T::default(); rows * set.width as usize];
    let mut acc: BTreeMap<u32, LabelExtent> = BTreeMap::new();
    loop {
        let y0 = painter.next_row();
        let n = painter.paint_next(&mut buf);
        if n == 0 {
            break;
        }
        let strip = BBox {
            x: window.x,
            y: 0,
            width: window.width,
            height: n as u32,
        };
        for mut e in extents(&buf, set.width as usize, &strip) {
            e.bbox.y += y0;
            acc.entry(e.label)
                .and_modify(|a| {
                    a.bbox = a.bbox.union(&e.bbox);
                    a.area += e.area;
                })
                .or_insert(e);
        }
    }
    Ok(acc.into_values().collect())
}

/// The extents the whole painted label raster gives; the reference [`painted_extents`] is
/// tested against.
#[cfg(test)]
fn whole_raster_extents(set: &MaskSet) -> Result<Vec<LabelExtent>, String> {
    let window = union_bbox(set);
    let w = set.width as usize;
    Ok(match paint_smallest(set)? {
        LabelRaster::U8(d) => extents(&d, w, &window),
        LabelRaster::U16(d) => extents(&d, w, &window),
        LabelRaster::U32(d) => extents(&d, w, &window),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{mask_from_rows, rect_mask};

    #[test]
    fn occluded_pixels_do_not_count() {
        let mut a = rect_mask(1, 5, 0, 0, 4, 4);
        a.score = 0.5;
        let b = rect_mask(2, 2, 2, 0, 2, 4); // covers the right half of `a`
        let c = mask_from_rows(3, 7, 6, 1, &["1.", ".1"]);
        let set = MaskSet {
            width: 8,
            height: 4,
            masks: vec![a, b, c],
        };
        let e = painted_extents(&set).unwrap();
        let bb = |x, y, width, height| BBox {
            x,
            y,
            width,
            height,
        };
        assert_eq!(
            e,
            vec![
                LabelExtent {
                    label: 2,
                    bbox: bb(2, 0, 2, 4),
                    area: 8
                },
                LabelExtent {
                    label: 5,
                    bbox: bb(0, 0, 2, 4),
                    area: 8
                },
                LabelExtent {
                    label: 7,
                    bbox: bb(6, 1, 2, 2),
                    area: 2
                },
            ]
        );
        let s = label_scores(&set);
        assert_eq!(s[&5].score, 0.5);
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn shared_label_takes_the_best_scores() {
        let mut a = rect_mask(1, 9, 0, 0, 1, 1);
        a.score = 0.7;
        a.stability = 0.99;
        let mut b = rect_mask(2, 9, 1, 0, 1, 1);
        b.score = 0.8;
        b.stability = 0.9;
        let set = MaskSet {
            width: 2,
            height: 1,
            masks: vec![a, b],
        };
        let s = label_scores(&set)[&9];
        assert_eq!((s.score, s.stability), (0.8, 0.99));
        let e = painted_extents(&set).unwrap();
        assert_eq!((e.len(), e[0].area, e[0].bbox.width), (1, 2, 2));
    }
    #[test]
    fn strips_give_the_whole_raster_extents() {
        let set = crate::testutil::overlapping_set();
        let whole = whole_raster_extents(&set).unwrap();
        assert!(whole.len() > 3);
        for strip_bytes in [1, 7, 20, 1 << 20] {
            assert_eq!(strip_extents::<u16>(&set, strip_bytes).unwrap(), whole);
        }
        assert_eq!(painted_extents(&set).unwrap(), whole);
        let scene = crate::testutil::synthetic_scene(240, 180, 300, 7);
        let whole = whole_raster_extents(&scene).unwrap();
        assert!(whole.len() > 100);
        assert_eq!(strip_extents::<u16>(&scene, 4000).unwrap(), whole);
    }
}
