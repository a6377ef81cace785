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
    let (bbox, runs, area) =
        rle::from_bitmap(x, y, w as u32, h as u32, &bits).unwrap_or_default();
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
