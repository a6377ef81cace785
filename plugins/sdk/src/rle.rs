//! The WIT mask encoding: row-major run lengths inside the mask's bbox, alternating
//! unset, set, unset, ... The first run counts unset pixels and may be 0; the runs add up to
//! `bbox.width * bbox.height`.

use crate::model::{BBox, Mask};

/// Calls `f(row, x0, x1)` for every horizontal span of set pixels, in bbox-local coordinates
/// (`x0 .. x1` exclusive), row by row. A set run that wraps over rows is split per row.
/// Fails when the runs cover more or fewer pixels than the bbox.
pub fn for_each_span(
    bbox: &BBox,
    runs: &[u32],
    mut f: impl FnMut(u32, u32, u32),
) -> Result<(), String> {
    let w = u64::from(bbox.width);
    let total = bbox.pixels();
    let mut pos: u64 = 0;
    for (i, &len) in runs.iter().enumerate() {
        let end = pos + u64::from(len);
        if end > total {
            return Err(format!(
                "mask runs cover more than its {}x{} bbox",
                bbox.width, bbox.height
            ));
        }
        if i % 2 == 1 {
            let mut start = pos;
            while start < end {
                let row = start / w;
                let col = start % w;
                let take = (end - start).min(w - col);
                f(row as u32, col as u32, (col + take) as u32);
                start += take;
            }
        }
        pos = end;
    }
    if pos != total {
        return Err(format!(
            "mask runs cover {pos} pixels, its {}x{} bbox has {total}",
            bbox.width, bbox.height
        ));
    }
    Ok(())
}

/// Number of set pixels the runs describe (the sum of the odd runs).
pub fn count_set(runs: &[u32]) -> u64 {
    runs.iter().skip(1).step_by(2).map(|&r| u64::from(r)).sum()
}

/// Checks a mask against an image of `width` x `height`: bbox inside the image, runs
/// adding up to the bbox, `area` equal to the set pixels.
pub fn validate(mask: &Mask, width: u32, height: u32) -> Result<(), String> {
    validate_pixels(mask, width, height)?;
    let set = count_set(&mask.runs);
    if set != mask.area {
        return Err(format!(
            "mask {}: area says {} pixels, runs set {set}",
            mask.id, mask.area
        ));
    }
    Ok(())
}

/// The part of [`validate`] that painting needs: bbox inside the image and runs adding up to
/// the bbox (`area` is not looked at).
pub fn validate_pixels(mask: &Mask, width: u32, height: u32) -> Result<(), String> {
    let b = &mask.bbox;
    if u64::from(b.x) + u64::from(b.width) > u64::from(width)
        || u64::from(b.y) + u64::from(b.height) > u64::from(height)
    {
        return Err(format!(
            "mask {}: bbox {}x{}+{}+{} lies outside the {width}x{height} image",
            mask.id, b.width, b.height, b.x, b.y
        ));
    }
    let sum: u64 = mask.runs.iter().map(|&r| u64::from(r)).sum();
    if sum != b.pixels() {
        return Err(format!(
            "mask {}: runs cover {sum} pixels, bbox has {}",
            mask.id,
            b.pixels()
        ));
    }
    Ok(())
}

/// The bbox-local bitmap of a mask (1 = set), `width * height` bytes, row-major.
pub fn decode(bbox: &BBox, runs: &[u32]) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; bbox.pixels() as usize];
    let w = bbox.width as usize;
    for_each_span(bbox, runs, |row, x0, x1| {
        let base = row as usize * w;
        out[base + x0 as usize..base + x1 as usize].fill(1);
    })?;
    Ok(out)
}

/// Run-length encodes a row-major bitmap (non-zero = set), first run unset.
pub fn encode(bitmap: &[u8]) -> Vec<u32> {
    let mut runs = Vec::new();
    let mut current = false;
    let mut len: u32 = 0;
    for &b in bitmap {
        let set = b != 0;
        if set != current {
            runs.push(len);
            current = set;
            len = 0;
        }
        len += 1;
    }
    runs.push(len);
    runs
}

/// Builds the tight bbox, runs and area of the set pixels of a `width` x `height` bitmap
/// whose top-left pixel is image pixel (`x`, `y`). Returns `None` when nothing is set.
pub fn from_bitmap(
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    bitmap: &[u8],
) -> Option<(BBox, Vec<u32>, u64)> {
    let w = width as usize;
    let (mut c0, mut c1, mut r0, mut r1) = (usize::MAX, 0usize, usize::MAX, 0usize);
    for (r, row) in bitmap
        .chunks_exact(w.max(1))
        .take(height as usize)
        .enumerate()
    {
        if let Some(first) = row.iter().position(|&b| b != 0) {
            let last = row.iter().rposition(|&b| b != 0).unwrap_or(first);
            c0 = c0.min(first);
            c1 = c1.max(last + 1);
            r0 = r0.min(r);
            r1 = r + 1;
        }
    }
    if r0 == usize::MAX {
        return None;
    }
    let bw = c1 - c0;
    let mut sub = Vec::with_capacity(bw * (r1 - r0));
    for r in r0..r1 {
        sub.extend_from_slice(&bitmap[r * w + c0..r * w + c1]);
    }
    let area = sub.iter().filter(|&&b| b != 0).count() as u64;
    let bbox = BBox {
        x: x + c0 as u32,
        y: y + r0 as u32,
        width: bw as u32,
        height: (r1 - r0) as u32,
    };
    Some((bbox, encode(&sub), area))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bb(x: u32, y: u32, w: u32, h: u32) -> BBox {
        BBox {
            x,
            y,
            width: w,
            height: h,
        }
    }

    #[test]
    fn roundtrip() {
        let bits = [0, 1, 1, 0, 1, 1, 1, 1, 0];
        let runs = encode(&bits);
        assert_eq!(runs, vec![1, 2, 1, 4, 1]);
        assert_eq!(decode(&bb(0, 0, 3, 3), &runs).unwrap(), bits);
        assert_eq!(count_set(&runs), 6);
    }

    #[test]
    fn first_run_may_be_zero() {
        let runs = encode(&[1, 1, 0]);
        assert_eq!(runs, vec![0, 2, 1]);
        assert_eq!(decode(&bb(0, 0, 3, 1), &runs).unwrap(), vec![1, 1, 0]);
    }

    #[test]
    fn spans_split_per_row() {
        let mut spans = vec![];
        for_each_span(&bb(5, 5, 3, 3), &[2, 5, 2], |r, a, b| spans.push((r, a, b))).unwrap();
        assert_eq!(spans, vec![(0, 2, 3), (1, 0, 3), (2, 0, 1)]);
    }

    #[test]
    fn bad_runs_are_errors() {
        assert!(decode(&bb(0, 0, 2, 2), &[1, 1]).is_err());
        assert!(decode(&bb(0, 0, 2, 2), &[1, 4]).is_err());
        let m = Mask {
            id: 3,
            area: 1,
            bbox: bb(1, 1, 2, 1),
            runs: vec![0, 2],
            ..Default::default()
        };
        assert!(validate(&m, 4, 4).unwrap_err().contains("area"));
        assert!(validate_pixels(&m, 4, 4).is_ok());
        let m = Mask { area: 2, ..m };
        assert!(validate(&m, 4, 4).is_ok());
        assert!(validate(&m, 2, 4).unwrap_err().contains("outside"));
    }

    #[test]
    fn tight_bbox() {
        #[rustfmt::skip]
        let bits = [
            0, 0, 0, 0,
            0, 0, 1, 0,
            0, 1, 1, 0,
        ];
        let (b, runs, area) = from_bitmap(10, 20, 4, 3, &bits).unwrap();
        assert_eq!(b, bb(11, 21, 2, 2));
        assert_eq!(runs, vec![1, 3]);
        assert_eq!(area, 3);
        assert!(from_bitmap(0, 0, 2, 1, &[0, 0]).is_none());
    }
}
