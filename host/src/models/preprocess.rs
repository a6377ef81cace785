//! Image → encoder tensor: resizing (SAM keeps the aspect ratio and pads, SAM2 squashes) and
//! per-channel normalisation.

use image::imageops::{resize, FilterType};
use image::{ImageBuffer, Rgb};
use ndarray::{Array4, ArrayD};

use crate::raster::RgbImage;

/// Per-channel mean and standard deviation, on the 0..255 scale.
#[derive(Debug, Clone, Copy)]
pub struct Normalisation {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalisation {
    /// SAM's pixel statistics.
    pub const SAM: Normalisation = Normalisation {
        mean: [123.675, 116.28, 103.53],
        std: [58.395, 57.12, 57.375],
    };
    /// ImageNet statistics, as SAM2 uses them.
    pub const IMAGENET: Normalisation = Normalisation {
        mean: [0.485 * 255.0, 0.456 * 255.0, 0.406 * 255.0],
        std: [0.229 * 255.0, 0.224 * 255.0, 0.225 * 255.0],
    };
}

/// Resizes `image` to exactly `width`×`height` with a bilinear (triangle) filter.
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if image.width == width && image.height == height {
        return image.clone();
    }
    let buffer: ImageBuffer<Rgb<u8>, &[u8]> =
        ImageBuffer::from_raw(image.width, image.height, image.pixels.as_slice())
            .expect("RgbImage holds width*height*3 bytes");
    let out = resize(&buffer, width, height, FilterType::Triangle);
    RgbImage {
        width,
        height,
        pixels: out.into_raw(),
    }
}

/// Writes `image` normalised into the top-left corner of a zeroed `[1, 3, side, side]` tensor.
pub fn to_chw_tensor(image: &RgbImage, side: usize, norm: Normalisation) -> ArrayD<f32> {
    let mut tensor = Array4::<f32>::zeros((1, 3, side, side));
    let (w, h) = (image.width as usize, image.height as usize);
    for c in 0..3 {
        let mut plane = tensor.slice_mut(ndarray::s![0, c, .., ..]);
        let (mean, std) = (norm.mean[c], norm.std[c]);
        for y in 0..h.min(side) {
            let row = &image.pixels[y * w * 3..(y + 1) * w * 3];
            for x in 0..w.min(side) {
                plane[[y, x]] = (row[x * 3 + c] as f32 - mean) / std;
            }
        }
    }
    tensor.into_dyn()
}

/// Size of the image inside a `side`×`side` frame when its longest side fills it.
pub fn longest_side_size(width: u32, height: u32, side: u32) -> (u32, u32) {
    let scale = side as f64 / width.max(height) as f64;
    (
        ((width as f64 * scale).round() as u32).clamp(1, side),
        ((height as f64 * scale).round() as u32).clamp(1, side),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_side_keeps_aspect() {
        assert_eq!(longest_side_size(791, 718, 1024), (1024, 929));
        assert_eq!(longest_side_size(100, 400, 1024), (256, 1024));
    }

    #[test]
    fn tensor_is_normalised_and_padded() {
        let img = RgbImage {
            width: 2,
            height: 1,
            pixels: vec![255, 0, 0, 0, 255, 0],
        };
        let t = to_chw_tensor(&img, 4, Normalisation::SAM);
        assert_eq!(t.shape(), &[1, 3, 4, 4]);
        let r = (255.0 - 123.675) / 58.395;
        assert!((t[[0, 0, 0, 0]] - r).abs() < 1e-5);
        assert_eq!(t[[0, 0, 3, 3]], 0.0);
    }
}
