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
