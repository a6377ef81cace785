//! Formatter plugin `geotiff`: the label raster as a single-band GeoTIFF.
//!
//! The masks are painted in list order (later wins) into the smallest unsigned type that holds
//! the largest label (Byte up to 255, UInt16 up to 65535, else UInt32), with nodata 0, Deflate
//! compression and the image's georeferencing (EPSG code, or WKT when there is none; see
//! [`samgeo_plugin_sdk::geotiff`]). No parameters.

use samgeo_plugin_sdk::geotiff::write_strips;
use samgeo_plugin_sdk::raster::{max_label, Label, StripPainter};
use samgeo_plugin_sdk::{Formatter, Host, Output, PluginInfo, Request};

/// The plugin.
pub struct GeoTiff;

impl Formatter for GeoTiff {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "geotiff",
            "GeoTIFF label raster (Byte/UInt16/UInt32, nodata 0, Deflate), georeferenced",
        )
    }

    fn format(req: Request, _host: &dyn Host) -> Result<Output, String> {
        Ok(Output {
            content_type: "image/tiff".into(),
            file_name: "mask.tif".into(),
            bytes: to_geotiff(&req)?,
        })
    }
}

/// The GeoTIFF bytes. The raster is painted and compressed one strip at a time, so memory
/// holds the masks, one strip and the compressed output, never the whole label raster.
pub fn to_geotiff(req: &Request) -> Result<Vec<u8>, String> {
    let max = max_label(&req.masks);
    if max <= u32::from(u8::MAX) {
        encode::<u8>(req)
    } else if max <= u32::from(u16::MAX) {
        encode::<u16>(req)
    } else {
        encode::<u32>(req)
    }
}

fn encode<T: Label>(req: &Request) -> Result<Vec<u8>, String> {
    let (w, h, g) = (req.masks.width, req.masks.height, &req.georef);
    let mut painter = StripPainter::<T>::new(&req.masks, |m| m.label)?;
    write_strips(w, h, g, Some(0), |buf: &mut [T]| painter.paint_next(buf))
}

samgeo_plugin_sdk::export_formatter!(GeoTiff);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::testutil::rect_mask;
    use samgeo_plugin_sdk::{Georef, Geotransform, MaskSet, NoHost, Params};

    fn req(labels: &[u32]) -> Request {
        Request {
            masks: MaskSet {
                width: 4,
                height: 3,
                masks: labels
                    .iter()
                    .enumerate()
                    .map(|(i, &l)| rect_mask(i as u32 + 1, l, i as u32 % 4, 0, 1, 3))
                    .collect(),
            },
            georef: Georef {
                geotransform: Some(Geotransform([0.0, 1.0, 0.0, 0.0, 0.0, -1.0])),
                crs_wkt: None,
                epsg: Some(3857),
            },
            params: Params::default(),
        }
    }

    /// BitsPerSample as written (tag 258, inline SHORT).
    fn bits(tif: &[u8]) -> u16 {
        let ifd = u32::from_le_bytes(tif[4..8].try_into().unwrap()) as usize;
        let n = u16::from_le_bytes([tif[ifd], tif[ifd + 1]]) as usize;
        (0..n)
            .map(|i| ifd + 2 + 12 * i)
            .find(|&e| u16::from_le_bytes([tif[e], tif[e + 1]]) == 258)
            .map(|e| u16::from_le_bytes([tif[e + 8], tif[e + 9]]))
            .unwrap()
    }

    #[test]
    fn smallest_type() {
        assert_eq!(bits(&to_geotiff(&req(&[1, 255])).unwrap()), 8);
        assert_eq!(bits(&to_geotiff(&req(&[1, 256])).unwrap()), 16);
        assert_eq!(bits(&to_geotiff(&req(&[65536])).unwrap()), 32);
        assert_eq!(bits(&to_geotiff(&req(&[])).unwrap()), 8);
    }

    #[test]
    fn output_labels() {
        let out = GeoTiff::format(req(&[1]), &NoHost).unwrap();
        assert_eq!(
            (out.content_type.as_str(), out.file_name.as_str()),
            ("image/tiff", "mask.tif")
        );
        assert_eq!(&out.bytes[..4], b"II*\0");
        assert_eq!(GeoTiff::info().name, "geotiff");
    }
}
