//! Helpers for tests (here and in the plugin crates): masks and rasters drawn as text.

use crate::model::Mask;
use crate::rle;

/// A `u8` raster from rows of characters: `.` is 0, a digit is its value, any other
/// character is 1. Returns the data, width and height.
pub fn grid_from_rows(rows: &[&str]) -> (Vec<u8>, usize, usize) {
    let w = rows.first().map_or(0, |r| r.len());
    let data = rows
        .iter()
        .flat_map(|r| {
            assert_eq!(r.len(), w, "ragged rows");
            r.chars().map(|c| match c {
                '.' => 0,
                d if d.is_ascii_digit() => d as u8 - b'0',
                _ => 1,
            })
        })
        .collect();
    (data, w, rows.len())
}

/// A mask whose pixels are drawn in `rows` (`.` unset, anything else set) with the top-left
/// character at image pixel (`x`, `y`); the bbox is tightened to the set pixels. Score 0.9,
/// stability 0.95.
pub fn mask_from_rows(id: u32, label: u32, x: u32, y: u32, rows: &[&str]) -> Mask {
    let (data, w, h) = grid_from_rows(rows);
    let bits: Vec<u8> = data.iter().map(|&v| u8::from(v != 0)).collect();
    let (bbox, runs, area) = rle::from_bitmap(x, y, w as u32, h as u32, &bits).unwrap_or_default();
    Mask {
        id,
        label,
        score: 0.9,
        stability: 0.95,
        area,
        bbox,
        runs,
    }
}

/// A filled rectangle mask.
pub fn rect_mask(id: u32, label: u32, x: u32, y: u32, w: u32, h: u32) -> Mask {
    Mask {
        id,
        label,
        score: 0.9,
        stability: 0.95,
        area: u64::from(w) * u64::from(h),
        bbox: crate::model::BBox {
            x,
            y,
            width: w,
            height: h,
        },
        runs: vec![0, w * h],
    }
}

/// A reproducible synthetic scene of `count` masks on a `width` x `height` image, for
/// benchmarks: one background mask covering most of the image (with holes where objects
/// are), then discs and rings of radii from 3 to about a tenth of the image side, some
/// overlapping, labels = ids. Built in bbox-local space only.
pub fn synthetic_scene(width: u32, height: u32, count: u32, seed: u64) -> crate::MaskSet {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut discs: Vec<(i64, i64, i64, bool)> = Vec::new();
    for _ in 1..count {
        let max_r = (i64::from(width.min(height)) / 10).max(4);
        let r = 3 + (next() % (max_r as u64 - 2)) as i64;
        let cx = (next() % u64::from(width)) as i64;
        let cy = (next() % u64::from(height)) as i64;
        discs.push((cx, cy, r, next() % 4 == 0));
    }
    let mut masks = Vec::with_capacity(count as usize);
    if count > 0 {
        // Background: everything outside the first few discs' boxes.
        let (w, h) = (width as usize, height as usize);
        let mut runs = Vec::new();
        let mut prev_set = false;
        let mut len: u32 = 0;
        let holes: Vec<_> = discs.iter().take(20).collect();
        let mut area = 0u64;
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let set = !holes
                    .iter()
                    .any(|&&(cx, cy, r, _)| (x - cx).abs() < r && (y - cy).abs() < r);
                area += u64::from(set);
                if set != prev_set {
                    runs.push(len);
                    prev_set = set;
                    len = 0;
                }
                len += 1;
            }
        }
        runs.push(len);
        masks.push(Mask {
            id: 1,
            label: 1,
            score: 0.8,
            stability: 0.9,
            area,
            bbox: crate::BBox {
                x: 0,
                y: 0,
                width,
                height,
            },
            runs,
        });
    }
    for (i, &(cx, cy, r, ring)) in discs.iter().enumerate() {
        let x0 = (cx - r).max(0);
        let y0 = (cy - r).max(0);
        let x1 = (cx + r + 1).min(i64::from(width));
        let y1 = (cy + r + 1).min(i64::from(height));
        let (bw, bh) = ((x1 - x0) as u32, (y1 - y0) as u32);
        let mut bits = vec![0u8; bw as usize * bh as usize];
        for y in y0..y1 {
            for x in x0..x1 {
                let d2 = (x - cx).pow(2) + (y - cy).pow(2);
                let inside = d2 <= r * r && !(ring && d2 * 4 < r * r);
                bits[((y - y0) * i64::from(bw) + (x - x0)) as usize] = u8::from(inside);
            }
        }
        if let Some((bbox, runs, area)) = rle::from_bitmap(x0 as u32, y0 as u32, bw, bh, &bits) {
            let id = i as u32 + 2;
            masks.push(Mask {
                id,
                label: id,
                score: 0.5 + (id % 50) as f32 / 100.0,
                stability: 0.95,
                area,
                bbox,
                runs,
            });
        }
    }
    crate::MaskSet {
        width,
        height,
        masks,
    }
}

/// A 12 x 9 set whose painted raster has everything the painting rules decide: overlaps (later
/// wins), two masks sharing a label (one region where they touch, two where they do not), a
/// ring whose hole holds another label, a label-0 mask (paints nothing), a label occluded
/// entirely, a region split by a later mask, and a label above 255.
pub fn overlapping_set() -> crate::MaskSet {
    let masks = vec![
        rect_mask(1, 4, 0, 0, 12, 9),
        mask_from_rows(2, 7, 1, 1, &["11111", "1...1", "1...1", "11111"]),
        rect_mask(3, 300, 2, 2, 2, 2),
        rect_mask(4, 9, 7, 0, 3, 3),
        rect_mask(5, 9, 9, 2, 2, 4),
        rect_mask(6, 9, 0, 7, 2, 2),
        rect_mask(7, 0, 5, 5, 4, 3),
        rect_mask(8, 11, 6, 6, 1, 1),
        rect_mask(9, 5, 0, 4, 12, 1),
        rect_mask(10, 12, 2, 6, 3, 2),
        rect_mask(11, 12, 2, 6, 3, 2),
        mask_from_rows(12, 13, 8, 6, &["1.1", ".1."]),
    ];
    crate::MaskSet {
        width: 12,
        height: 9,
        masks,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn synthetic_scene_is_valid() {
        let set = super::synthetic_scene(200, 150, 40, 7);
        assert_eq!(set.masks.len(), 40);
        for m in &set.masks {
            crate::rle::validate(m, 200, 150).unwrap();
        }
    }
}
