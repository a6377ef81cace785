//! Formatter plugin `png`: the label raster as a greyscale PNG.
//!
//! The masks are painted in list order (later wins). Parameter `unique`: `false` paints every
//! mask as 255 on 0 so the mask is visible (as do labels that are all 255, which is what the
//! `unique` filter leaves for `unique=false`); otherwise (absent or `true`) the labels are the
//! pixel values: 8-bit when the largest label is at most 255, else 16-bit. Labels above 65535
//! do not fit a PNG and are an error (use `geotiff`).
//!
//! Images above [`MAX_PIXELS`] (16384 x 16384, the server's default single-look `max_pixels`)
//! are refused with an error naming `geotiff`: results that large come from tiled runs, few
//! PNG readers open them, and GeoTIFF keeps their georeferencing.

use std::io::Write;

use samgeo_plugin_sdk::raster::{max_label, rows_per_strip, Label, StripPainter};
use samgeo_plugin_sdk::{Formatter, Host, Output, ParamType, PluginInfo, Request};

/// The plugin.
pub struct Png;

impl Formatter for Png {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "png",
            "Greyscale PNG label raster (8 or 16 bit; unique=false gives a 0/255 mask)",
        )
        .param(
            "unique",
            ParamType::Boolean,
            Some("true"),
            "false: a 0/255 mask instead of label values",
        )
    }

    fn format(req: Request, _host: &dyn Host) -> Result<Output, String> {
        Ok(Output {
            content_type: "image/png".into(),
            file_name: "mask.png".into(),
            bytes: to_png(&req)?,
        })
    }
}

/// The largest image, in pixels, this formatter encodes (16384 x 16384).
pub const MAX_PIXELS: u64 = 1 << 28;

/// Uncompressed bytes per painted strip (about).
const STRIP_BYTES: usize = 1 << 20;

/// The PNG bytes. The raster is painted and encoded one strip at a time, so memory holds the
/// masks, one strip and the compressed output, never the whole label raster.
pub fn to_png(req: &Request) -> Result<Vec<u8>, String> {
    let set = &req.masks;
    let pixels = u64::from(set.width) * u64::from(set.height);
    if pixels > MAX_PIXELS {
        return Err(format!(
            "a {}x{} image ({pixels} pixels) is above the png formatter's limit of {MAX_PIXELS} \
             pixels; ask for output_format=geotiff",
            set.width, set.height
        ));
    }
    let binary = req.params.get_bool("unique")? == Some(false);
    let max = max_label(set);
    if binary {
        encode::<u8>(req, |m| if m.label == 0 { 0 } else { 255 })
    } else if max <= 255 {
        encode::<u8>(req, |m| m.label)
    } else if max <= 65535 {
        encode::<u16>(req, |m| m.label)
    } else {
        Err(format!(
            "label {max} does not fit a 16-bit PNG; ask for output_format=geotiff"
        ))
    }
}

fn encode<T: Label>(
    req: &Request,
    value: impl Fn(&samgeo_plugin_sdk::Mask) -> u32,
) -> Result<Vec<u8>, String> {
    let (w, h) = (req.masks.width, req.masks.height);
    let mut painter = StripPainter::<T>::new(&req.masks, value)?;
    let depth = if T::BITS == 8 {
        png::BitDepth::Eight
    } else {
        png::BitDepth::Sixteen
    };
    let png_err = |e: png::EncodingError| format!("PNG: {e}");
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(depth);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().map_err(png_err)?;
    {
        let mut stream = writer.stream_writer().map_err(png_err)?;
        let rows = rows_per_strip::<T>(w, h, STRIP_BYTES) as usize;
        let mut strip = vec![T::default(); rows * w as usize];
        let mut bytes: Vec<u8> = Vec::with_capacity(strip.len() * usize::from(T::BITS / 8));
        loop {
            let n = painter.paint_next(&mut strip);
            if n == 0 {
                break;
            }
            bytes.clear();
            for &v in &strip[..n * w as usize] {
                // PNG samples are big-endian.
                match T::BITS {
                    8 => bytes.push(v.to_u32() as u8),
                    _ => bytes.extend_from_slice(&(v.to_u32() as u16).to_be_bytes()),
                }
            }
            stream.write_all(&bytes).map_err(|e| format!("PNG: {e}"))?;
        }
        stream.finish().map_err(png_err)?;
    }
    writer.finish().map_err(png_err)?;
    Ok(out)
}

samgeo_plugin_sdk::export_formatter!(Png);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::testutil::rect_mask;
    use samgeo_plugin_sdk::{Georef, MaskSet, NoHost, Params};

    fn req(labels: &[u32], p: &[(&str, &str)]) -> Request {
        Request {
            masks: MaskSet {
                width: 4,
                height: 2,
                masks: labels
                    .iter()
                    .enumerate()
                    .map(|(i, &l)| rect_mask(i as u32 + 1, l, i as u32, 0, 1, 2))
                    .collect(),
            },
            georef: Georef::default(),
            params: Params::from_pairs(p),
        }
    }

    fn decode(bytes: &[u8]) -> (png::BitDepth, Vec<u8>) {
        let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Grayscale);
        buf.truncate(info.buffer_size());
        (info.bit_depth, buf)
    }

    #[test]
    fn labels_as_values() {
        let (d, px) = decode(&to_png(&req(&[1, 2, 3], &[])).unwrap());
        assert_eq!(d, png::BitDepth::Eight);
        assert_eq!(px, vec![1, 2, 3, 0, 1, 2, 3, 0]);
        let (d, px) = decode(&to_png(&req(&[1, 300], &[("unique", "true")])).unwrap());
        assert_eq!(d, png::BitDepth::Sixteen);
        assert_eq!(&px[..4], &[0, 1, 1, 44]);
    }

    #[test]
    fn unique_false_is_binary() {
        let (d, px) = decode(&to_png(&req(&[1, 300], &[("unique", "False")])).unwrap());
        assert_eq!(d, png::BitDepth::Eight);
        assert_eq!(px, vec![255, 255, 0, 0, 255, 255, 0, 0]);
    }

    #[test]
    fn too_large_images_name_geotiff() {
        let mut r = req(&[1], &[]);
        r.masks.width = 20_000;
        r.masks.height = 20_000;
        let err = to_png(&r).unwrap_err();
        assert!(
            err.contains("geotiff") && err.contains("268435456"),
            "{err}"
        );
    }

    #[test]
    fn too_large_labels_and_bad_params() {
        assert!(to_png(&req(&[70000], &[])).unwrap_err().contains("geotiff"));
        assert!(to_png(&req(&[1], &[("unique", "perhaps")]))
            .unwrap_err()
            .contains("unique"));
        let out = Png::format(req(&[1], &[]), &NoHost).unwrap();
        assert_eq!(out.content_type, "image/png");
        assert_eq!(out.file_name, "mask.png");
    }
}
