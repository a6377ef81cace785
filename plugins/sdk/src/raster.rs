//! Painting a mask set into one label raster (the image-sized buffer every raster output and
//! the vectoriser work from). Masks are painted in list order, so a later mask wins where two
//! overlap; 0 is nodata, and a mask labelled 0 paints nothing.

use crate::model::{BBox, Mask, MaskSet};
use crate::rle;

/// An unsigned pixel type a label raster can use.
pub trait Label: Copy + Eq + Default + core::fmt::Debug + 'static {
    /// Largest label the type holds.
    const MAX: u32;
    /// Bits per sample.
    const BITS: u16;
    /// Converts a label that is at most [`Label::MAX`] (larger values are truncated).
    fn from_u32(v: u32) -> Self;
    /// Widens to `u32`.
    fn to_u32(self) -> u32;
    /// Appends the little-endian bytes of `self`.
    fn push_le(self, out: &mut Vec<u8>);
}

macro_rules! impl_label {
    ($t:ty) => {
        impl Label for $t {
            const MAX: u32 = <$t>::MAX as u32;
            const BITS: u16 = <$t>::BITS as u16;
            fn from_u32(v: u32) -> Self {
                v as $t
            }
            fn to_u32(self) -> u32 {
                self as u32
            }
            fn push_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}
impl_label!(u8);
impl_label!(u16);
impl_label!(u32);

/// A painted raster in the smallest type that holds its largest label.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelRaster {
    /// Labels up to 255.
    U8(Vec<u8>),
    /// Labels up to 65535.
    U16(Vec<u16>),
    /// Anything larger.
    U32(Vec<u32>),
}

/// The largest label of a non-empty mask (0 when there is none).
pub fn max_label(set: &MaskSet) -> u32 {
    set.masks
        .iter()
        .filter(|m| m.area > 0)
        .map(|m| m.label)
        .max()
        .unwrap_or(0)
}

/// The smallest rectangle holding every painted pixel (empty when nothing paints).
pub fn union_bbox(set: &MaskSet) -> BBox {
    set.masks
        .iter()
        .filter(|m| m.label != 0 && m.area > 0)
        .fold(BBox::default(), |acc, m| acc.union(&m.bbox))
}

/// Paints the masks' labels into a `width * height` row-major buffer of `T`. Fails on a mask
/// that does not fit the image or whose runs are inconsistent, on a label above `T::MAX`, and
/// when the buffer cannot be allocated.
pub fn paint<T: Label>(set: &MaskSet) -> Result<Vec<T>, String> {
    paint_map(set, |m| m.label)
}

/// Like [`paint`], with the value of each mask chosen by `value` instead of its label (a
/// value of 0 paints nothing).
pub fn paint_map<T: Label>(set: &MaskSet, value: impl Fn(&Mask) -> u32) -> Result<Vec<T>, String> {
    let w = set.width as usize;
    let n = w
        .checked_mul(set.height as usize)
        .ok_or("image too large")?;
    let mut out: Vec<T> = Vec::new();
    out.try_reserve_exact(n).map_err(|_| {
        format!(
            "cannot allocate a {}x{} label raster",
            set.width, set.height
        )
    })?;
    out.resize(n, T::default());
    for m in &set.masks {
        rle::validate_pixels(m, set.width, set.height)?;
        let label = value(m);
        if label == 0 {
            continue;
        }
        if label > T::MAX {
            return Err(format!(
                "mask {}: label {label} does not fit {} bits",
                m.id,
                T::BITS
            ));
        }
        let v = T::from_u32(label);
        let (bx, by) = (m.bbox.x as usize, m.bbox.y as usize);
        rle::for_each_span(&m.bbox, &m.runs, |row, x0, x1| {
            let base = (by + row as usize) * w + bx;
            out[base + x0 as usize..base + x1 as usize].fill(v);
        })?;
    }
    Ok(out)
}

/// Paints into the smallest unsigned type that holds [`max_label`].
pub fn paint_smallest(set: &MaskSet) -> Result<LabelRaster, String> {
    let max = max_label(set);
    Ok(if max <= u8::MAX as u32 {
        LabelRaster::U8(paint(set)?)
    } else if max <= u16::MAX as u32 {
        LabelRaster::U16(paint(set)?)
    } else {
        LabelRaster::U32(paint(set)?)
    })
}

/// Where painting one mask has got to: the run being read and the bbox-local pixel reached.
#[derive(Clone, Copy, Debug, Default)]
struct Cursor {
    /// Index of the current run.
    run: usize,
    /// Bbox-local pixel index where the current run starts.
    run_start: u64,
    /// Bbox-local pixel index painted up to (inside the current run).
    pos: u64,
}

/// Paints a mask set one horizontal strip at a time, so that only a strip of the label raster
/// is ever in memory: an image of `max_pixels` with hundreds of masks fits a plugin's memory
/// limit however large its full label raster would be. Every mask keeps a cursor into its runs,
/// so painting all strips reads each run once. Masks are painted in list order (later wins); a
/// mask whose value is 0 paints nothing.
pub struct StripPainter<'a, T: Label> {
    set: &'a MaskSet,
    /// The value each mask paints (checked to fit `T`).
    values: Vec<T>,
    cursors: Vec<Cursor>,
    /// First row of the next strip.
    next_row: u32,
}

impl<'a, T: Label> StripPainter<'a, T> {
    /// Checks every mask (inside the image, runs adding up to its bbox) and its value (fits
    /// `T`), then starts at row 0.
    pub fn new(set: &'a MaskSet, value: impl Fn(&Mask) -> u32) -> Result<Self, String> {
        let mut values = Vec::with_capacity(set.masks.len());
        for m in &set.masks {
            rle::validate_pixels(m, set.width, set.height)?;
            let v = value(m);
            if v > T::MAX {
                return Err(format!(
                    "mask {}: label {v} does not fit {} bits",
                    m.id,
                    T::BITS
                ));
            }
            values.push(T::from_u32(v));
        }
        Ok(StripPainter {
            set,
            values,
            cursors: vec![Cursor::default(); set.masks.len()],
            next_row: 0,
        })
    }

    /// First row of the next strip (the image height once every row is painted).
    pub fn next_row(&self) -> u32 {
        self.next_row
    }

    /// Paints the next `buf.len() / width` rows (fewer at the bottom of the image) into `buf`,
    /// which is cleared first, and returns how many rows it painted (0 when done). `buf.len()`
    /// must be a multiple of the image width.
    pub fn paint_next(&mut self, buf: &mut [T]) -> usize {
        let w = self.set.width as usize;
        if w == 0 || self.next_row >= self.set.height {
            return 0;
        }
        let rows = (buf.len() / w).min((self.set.height - self.next_row) as usize);
        let y0 = self.next_row;
        let y1 = y0 + rows as u32;
        let buf = &mut buf[..rows * w];
        buf.fill(T::default());
        for ((m, cursor), &v) in self
            .set
            .masks
            .iter()
            .zip(self.cursors.iter_mut())
            .zip(&self.values)
        {
            let b = &m.bbox;
            if b.is_empty() || b.y >= y1 || b.y_end() <= y0 {
                continue;
            }
            let bw = u64::from(b.width);
            // Bbox-local pixel index where this strip's part of the mask ends.
            let limit = u64::from(y1.min(b.y_end()) - b.y) * bw;
            while cursor.run < m.runs.len() {
                let run_end = cursor.run_start + u64::from(m.runs[cursor.run]);
                let end = run_end.min(limit);
                if cursor.run % 2 == 1 && v != T::default() {
                    let mut p = cursor.pos;
                    while p < end {
                        let (row, col) = (p / bw, p % bw);
                        let take = (end - p).min(bw - col);
                        let y = (u64::from(b.y) + row - u64::from(y0)) as usize;
                        let x = b.x as usize + col as usize;
                        buf[y * w + x..y * w + x + take as usize].fill(v);
                        p += take;
                    }
                }
                cursor.pos = end;
                if end < run_end {
                    break;
                }
                cursor.run += 1;
                cursor.run_start = run_end;
            }
        }
        self.next_row = y1;
        rows
    }
}

/// Rows per strip so that one strip of `T` over `width` columns is about `bytes` bytes.
pub fn rows_per_strip<T: Label>(width: u32, height: u32, bytes: usize) -> u32 {
    let row_bytes = (width as usize * usize::from(T::BITS / 8)).max(1);
    ((bytes / row_bytes).max(1) as u32).min(height.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::mask_from_rows;

    #[test]
    fn later_wins_and_zero_paints_nothing() {
        let a = mask_from_rows(1, 1, 0, 0, &["11", "11"]);
        let b = mask_from_rows(2, 2, 1, 1, &["11", "11"]);
        let z = mask_from_rows(3, 0, 0, 0, &["111", "111", "111"]);
        let set = MaskSet {
            width: 3,
            height: 3,
            masks: vec![a, b, z],
        };
        let r: Vec<u8> = paint(&set).unwrap();
        assert_eq!(r, vec![1, 1, 0, 1, 2, 2, 0, 2, 2]);
        assert_eq!(
            union_bbox(&set),
            BBox {
                x: 0,
                y: 0,
                width: 3,
                height: 3
            }
        );
    }

    #[test]
    fn smallest_type() {
        let mut m = mask_from_rows(1, 300, 0, 0, &["1"]);
        let set = |m: &Mask| MaskSet {
            width: 1,
            height: 1,
            masks: vec![m.clone()],
        };
        assert!(matches!(paint_smallest(&set(&m)), Ok(LabelRaster::U16(v)) if v == [300]));
        m.label = 70000;
        assert!(matches!(paint_smallest(&set(&m)), Ok(LabelRaster::U32(_))));
        m.label = 255;
        assert!(matches!(paint_smallest(&set(&m)), Ok(LabelRaster::U8(_))));
        m.label = 256;
        assert!(paint::<u8>(&set(&m)).unwrap_err().contains("8 bits"));
    }

    /// Strips of any height paint exactly what the whole-raster painter paints, including
    /// masks whose runs wrap rows and cross strip boundaries.
    #[test]
    fn strips_match_whole_raster() {
        let a = mask_from_rows(1, 1, 0, 0, &["0111", "1111", "1100", "0011"]);
        let b = mask_from_rows(2, 2, 1, 1, &["11", "01", "11", "10"]);
        let c = mask_from_rows(3, 0, 0, 2, &["111"]);
        let d = mask_from_rows(4, 300, 3, 4, &["1", "1"]);
        let set = MaskSet {
            width: 5,
            height: 6,
            masks: vec![a, b, c, d],
        };
        let whole: Vec<u16> = paint(&set).unwrap();
        for rows in 1..=7usize {
            let mut painter = StripPainter::<u16>::new(&set, |m| m.label).unwrap();
            let mut buf = vec![0u16; rows * 5];
            let mut got = Vec::new();
            loop {
                let n = painter.paint_next(&mut buf);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n * 5]);
            }
            assert_eq!(got, whole, "strips of {rows} rows");
        }
        assert!(StripPainter::<u8>::new(&set, |m| m.label)
            .err()
            .unwrap()
            .contains("8 bits"));
    }

    #[test]
    fn mask_outside_image_is_an_error() {
        let m = mask_from_rows(1, 1, 2, 0, &["11"]);
        let set = MaskSet {
            width: 3,
            height: 1,
            masks: vec![m],
        };
        assert!(paint::<u8>(&set).is_err());
    }
}
