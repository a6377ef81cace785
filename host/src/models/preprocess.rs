//! Image → encoder tensor: resizing (SAM keeps the aspect ratio and pads, SAM2 squashes) and
//! per-channel normalisation, computed as the reference predictors compute them
//! (segment-anything: Pillow's bilinear on 8-bit pixels; SAM2: antialiased bilinear on floats).

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use ndarray::{Array4, ArrayD};

use super::resample::{resize_f32, resize_u8_pillow, Kernel, RgbF32};
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

/// Resizes `image` to exactly `width`×`height` with a bilinear filter (antialiased when
/// shrinking), with SIMD.
pub fn resize_rgb(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if image.width == width && image.height == height {
        return image.clone();
    }
    let source = ImageRef::new(image.width, image.height, &image.pixels, PixelType::U8x3)
        .expect("RgbImage holds width*height*3 bytes");
    let mut target = Image::new(width.max(1), height.max(1), PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize(&source, &mut target, &options)
        .expect("same pixel type on both sides");
    RgbImage {
        width: target.width(),
        height: target.height(),
        pixels: target.into_vec(),
    }
}

/// SAM's resize: segment-anything's `ResizeLongestSide.apply_image`, i.e. torchvision's
/// `resize` of a PIL image with its default bilinear interpolation, which is Pillow's
/// `Image.resize(size, BILINEAR)` on the 8-bit image; bit for bit.
pub fn resize_for_sam(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize_u8_pillow(image, width, height, Kernel::Bilinear)
}

/// SAM2's resize: `SAM2Transforms` turns the 8-bit image into floats and resizes them with
/// torchvision's antialiased bilinear `Resize`; values stay on the 0..255 scale here.
pub fn resize_for_sam2(image: &RgbImage, width: u32, height: u32) -> RgbF32 {
    resize_f32(image, width, height, Kernel::Bilinear)
}

/// Writes a float image (0..255 scale) normalised into the top-left corner of a zeroed
/// `[1, 3, side, side]` tensor.
pub fn to_chw_tensor_f32(image: &RgbF32, side: usize, norm: Normalisation) -> ArrayD<f32> {
    let mut tensor = Array4::<f32>::zeros((1, 3, side, side));
    let (w, h) = (image.width as usize, image.height as usize);
    for c in 0..3 {
        let mut plane = tensor.slice_mut(ndarray::s![0, c, .., ..]);
        // SAM2Transforms: ToTensor (÷255), then Normalize(mean, std) on the 0..1 scale.
        let (mean, std) = (norm.mean[c] / 255.0, norm.std[c] / 255.0);
        for y in 0..h.min(side) {
            let row = &image.pixels[y * w * 3..(y + 1) * w * 3];
            for x in 0..w.min(side) {
                plane[[y, x]] = (row[x * 3 + c] / 255.0 - mean) / std;
            }
        }
    }
    tensor.into_dyn()
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
    fn resize_keeps_flat_colours_and_size() {
        let img = RgbImage {
            width: 7,
            height: 5,
            pixels: [10u8, 200, 30].repeat(35),
        };
        let out = resize_rgb(&img, 16, 9);
        assert_eq!(
            (out.width, out.height, out.pixels.len()),
            (16, 9, 16 * 9 * 3)
        );
        assert!(out.pixels.chunks(3).all(|p| p == [10, 200, 30]));
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
