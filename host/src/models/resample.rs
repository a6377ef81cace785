//! Separable convolution resizing as the reference implementations do it, so that the encoder
//! sees the pixels it sees there:
//! - [`resize_u8_pillow`]: Pillow's `Image.resize` on 8-bit images (segment-anything's
//!   `ResizeLongestSide` goes through torchvision's `resize` of a PIL image, i.e. Pillow's
//!   bilinear): the same coefficients, 22-bit fixed point, horizontal pass into an 8-bit image,
//!   then the vertical pass.
//! - [`resize_f32`]: the same kernel support rule on floats without rounding, which is what
//!   torchvision's antialiased `Resize` on a float tensor computes (SAM2's transforms).

use crate::raster::RgbImage;

/// Interpolation kernels, with Pillow's definitions and supports (the kernel widens by the
/// scale when shrinking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Triangle, support 1 (Pillow's BILINEAR, torch's antialiased bilinear). The reference
    /// predictors use no other (Pillow's bicubic, its `resize` default, is not what
    /// segment-anything ends up calling).
    Bilinear,
}

impl Kernel {
    fn support(self) -> f64 {
        match self {
            Kernel::Bilinear => 1.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Kernel::Bilinear if x < 1.0 => 1.0 - x,
            Kernel::Bilinear => 0.0,
        }
    }
}

/// The source samples one output coordinate blends: first index and normalised weights.
#[derive(Debug, Clone)]
struct Taps {
    start: usize,
    weights: Vec<f64>,
}

/// Pillow's `precompute_coeffs` for resizing `in_size` samples to `out_size`: the kernel
/// widens by the scale when shrinking (antialiasing), weights are normalised to sum 1.
fn coefficients(in_size: usize, out_size: usize, kernel: Kernel) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = kernel.support() * filter_scale;
    let inv = 1.0 / filter_scale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // `as` truncates toward zero, as C's (int) cast does.
            let min = ((center - support + 0.5) as i64).max(0) as usize;
            let max = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut weights: Vec<f64> = (min..max.max(min))
                .map(|x| kernel.weight((x as f64 - center + 0.5) * inv))
                .collect();
            let total: f64 = weights.iter().sum();
            if total != 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            }
            Taps {
                start: min,
                weights,
            }
        })
        .collect()
}

/// Pillow's fixed-point precision for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Weights as Pillow's `normalize_coeffs_8bpc` rounds them.
fn fixed_point(taps: &[Taps]) -> Vec<(usize, Vec<i32>)> {
    let one = (1u32 << PRECISION_BITS) as f64;
    taps.iter()
        .map(|t| {
            let k = t
                .weights
                .iter()
                .map(|&w| {
                    if w < 0.0 {
                        (-0.5 + w * one) as i32
                    } else {
                        (0.5 + w * one) as i32
                    }
                })
                .collect();
            (t.start, k)
        })
        .collect()
}

/// Pillow's `clip8`: rounds (the accumulator starts at one half) and clamps to 0..=255.
fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an RGB image to `width`×`height` exactly as Pillow's `Image.resize(size, kernel)`
/// does on an 8-bit RGB image.
pub fn resize_u8_pillow(image: &RgbImage, width: u32, height: u32, kernel: Kernel) -> RgbImage {
    let (iw, ih) = (image.width as usize, image.height as usize);
    let (ow, oh) = (width.max(1) as usize, height.max(1) as usize);
    if (iw, ih) == (ow, oh) || iw == 0 || ih == 0 {
        return image.clone();
    }
    let half = 1i32 << (PRECISION_BITS - 1);
    let vertical = fixed_point(&coefficients(ih, oh, kernel));
    // Horizontal pass, only over the source rows the vertical pass reads.
    let (row0, row1) = if ow != iw || oh != ih {
        let first = vertical.first().map_or(0, |v| v.0);
        let last = vertical.last().map_or(ih, |v| v.0 + v.1.len());
        (first, last.max(first))
    } else {
        (0, ih)
    };
    let temp: Vec<u8> = if ow != iw {
        let horizontal = fixed_point(&coefficients(iw, ow, kernel));
        let mut temp = vec![0u8; (row1 - row0) * ow * 3];
        for (y, out_row) in temp.chunks_exact_mut(ow * 3).enumerate() {
            let src = &image.pixels[(row0 + y) * iw * 3..(row0 + y + 1) * iw * 3];
            for (x, (start, k)) in horizontal.iter().enumerate() {
                let mut acc = [half; 3];
                for (j, &w) in k.iter().enumerate() {
                    let p = &src[(start + j) * 3..(start + j) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += p[c] as i32 * w;
                    }
                }
                for c in 0..3 {
                    out_row[x * 3 + c] = clip8(acc[c]);
                }
            }
        }
        temp
    } else {
        image.pixels[row0 * iw * 3..row1 * iw * 3].to_vec()
    };
    if oh == ih {
        return RgbImage {
            width: ow as u32,
            height: oh as u32,
            pixels: temp,
        };
    }
    let stride = ow * 3;
    let mut pixels = vec![0u8; oh * stride];
    for (y, (start, k)) in vertical.iter().enumerate() {
        let out_row = &mut pixels[y * stride..(y + 1) * stride];
        let mut acc = vec![half; stride];
        for (j, &w) in k.iter().enumerate() {
            let src = &temp[(start - row0 + j) * stride..(start - row0 + j + 1) * stride];
            for (a, &v) in acc.iter_mut().zip(src) {
                *a += v as i32 * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    RgbImage {
        width: ow as u32,
        height: oh as u32,
        pixels,
    }
}

/// An RGB image of floats, interleaved row-major (`width * height * 3` values).
#[derive(Debug, Clone, PartialEq)]
pub struct RgbF32 {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<f32>,
}

/// Resizes an RGB image to `width`×`height` on floats, with the kernel widened when
/// shrinking (torchvision's `Resize(antialias=True)` on a float tensor): no rounding.
pub fn resize_f32(image: &RgbImage, width: u32, height: u32, kernel: Kernel) -> RgbF32 {
    let (iw, ih) = (image.width as usize, image.height as usize);
    let (ow, oh) = (width.max(1) as usize, height.max(1) as usize);
    let source: Vec<f32> = image.pixels.iter().map(|&v| v as f32).collect();
    if iw == 0 || ih == 0 {
        return RgbF32 {
            width: image.width,
            height: image.height,
            pixels: source,
        };
    }
    let horizontal = coefficients(iw, ow, kernel);
    let vertical = coefficients(ih, oh, kernel);
    let mut temp = vec![0f32; ih * ow * 3];
    for (y, out_row) in temp.chunks_exact_mut(ow * 3).enumerate() {
        let src = &source[y * iw * 3..(y + 1) * iw * 3];
        for (x, t) in horizontal.iter().enumerate() {
            let mut acc = [0f64; 3];
            for (j, &w) in t.weights.iter().enumerate() {
                let p = &src[(t.start + j) * 3..(t.start + j) * 3 + 3];
                for c in 0..3 {
                    acc[c] += p[c] as f64 * w;
                }
            }
            for c in 0..3 {
                out_row[x * 3 + c] = acc[c] as f32;
            }
        }
    }
    let stride = ow * 3;
    let mut pixels = vec![0f32; oh * stride];
    let mut acc = vec![0f64; stride];
    for (y, t) in vertical.iter().enumerate() {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (j, &w) in t.weights.iter().enumerate() {
            let src = &temp[(t.start + j) * stride..(t.start + j + 1) * stride];
            for (a, &v) in acc.iter_mut().zip(src) {
                *a += v as f64 * w;
            }
        }
        for (o, &a) in pixels[y * stride..(y + 1) * stride].iter_mut().zip(&acc) {
            *o = a as f32;
        }
    }
    RgbF32 {
        width: ow as u32,
        height: oh as u32,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: u32, h: u32) -> RgbImage {
        RgbImage {
            width: w,
            height: h,
            pixels: [10u8, 200, 30].repeat((w * h) as usize),
        }
    }

    #[test]
    fn weights_sum_to_one_and_widen_when_shrinking() {
        for (i, o) in [(10, 25), (25, 10), (791, 1024), (1024, 300)] {
            for t in coefficients(i, o, Kernel::Bilinear) {
                let s: f64 = t.weights.iter().sum();
                assert!((s - 1.0).abs() < 1e-9);
                assert!(t.start + t.weights.len() <= i);
            }
        }
        assert!(coefficients(100, 10, Kernel::Bilinear)[5].weights.len() >= 19);
        assert!(coefficients(10, 100, Kernel::Bilinear)[50].weights.len() <= 3);
    }

    #[test]
    fn flat_colours_stay_flat() {
        let out = resize_u8_pillow(&flat(7, 5), 16, 9, Kernel::Bilinear);
        assert_eq!((out.width, out.height), (16, 9));
        assert!(out.pixels.chunks(3).all(|p| p == [10, 200, 30]));
        let out = resize_u8_pillow(&flat(40, 30), 9, 7, Kernel::Bilinear);
        assert!(out.pixels.chunks(3).all(|p| p == [10, 200, 30]));
        let f = resize_f32(&flat(7, 5), 11, 3, Kernel::Bilinear);
        assert!(f
            .pixels
            .chunks(3)
            .all(|p| (p[0] - 10.0).abs() < 1e-4 && (p[1] - 200.0).abs() < 1e-4));
    }
}
