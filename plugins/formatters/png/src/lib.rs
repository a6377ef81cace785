//! Formatter plugin `png`: the label raster as a greyscale PNG.
//!
//! The masks are painted in list order (later wins). Parameter `unique`: `false` paints every
//! mask as 255 on 0 so the mask is visible (as do labels that are all 255, which is what the
//! `unique` filter leaves for `unique=false`); otherwise (absent or `true`) the labels are the
//! pixel values: 8-bit when the largest label is at most 255, else 16-bit. Labels above 65535
//! do not fit a PNG and are an error (use `geotiff`).

use mask_kit::raster::{max_label, paint, paint_map};
use mask_kit::{Formatter, Host, Output, PluginInfo, Request};

/// The plugin.
pub struct Png;

impl Formatter for Png {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "png",
            "Greyscale PNG label raster (8 or 16 bit; unique=false gives a 0/255 mask)",
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

/// The PNG bytes.
pub fn to_png(req: &Request) -> Result<Vec<u8>, String> {
    let set = &req.masks;
    let binary = req.params.get_bool("unique")? == Some(false);
    let max = max_label(set);
    if binary || max <= 255 {
        let data: Vec<u8> = if binary {
            paint_map(set, |m| if m.label == 0 { 0 } else { 255 })?
        } else {
            paint(set)?
        };
        encode(set.width, set.height, png::BitDepth::Eight, &data)
    } else if max <= 65535 {
        let data: Vec<u16> = paint(set)?;
        let be: Vec<u8> = data.iter().flat_map(|v| v.to_be_bytes()).collect();
        encode(set.width, set.height, png::BitDepth::Sixteen, &be)
    } else {
        Err(format!(
            "label {max} does not fit a 16-bit PNG; ask for output_format=geotiff"
        ))
    }
}

fn encode(w: u32, h: u32, depth: png::BitDepth, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(depth);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
    writer
        .write_image_data(data)
        .map_err(|e| format!("PNG: {e}"))?;
    writer.finish().map_err(|e| format!("PNG: {e}"))?;
    Ok(out)
}

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "formatter-plugin", path: "../../../wit" });
    mask_kit::export_formatter!(super::Png);
}

#[cfg(test)]
mod tests {
    use super::*;
    use mask_kit::testutil::rect_mask;
    use mask_kit::{Georef, MaskSet, NoHost, Params};

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
