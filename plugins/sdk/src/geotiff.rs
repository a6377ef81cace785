//! A GeoTIFF writer for single-band unsigned label rasters: classic TIFF, Deflate-compressed
//! strips written one at a time, GDAL_NODATA, and GeoTIFF georeferencing.
//!
//! The file structure (header, IFD, tag values) is the `tiff` crate's `DirectoryEncoder`. The
//! strips are compressed here and handed to it as raw data: `tiff` 0.11's `ImageEncoder`
//! compresses only inside `write_data`, which takes the whole image at once, while its
//! `write_strip` writes strips uncompressed whatever compression was chosen, and painting the
//! whole raster first is exactly what a 20000 x 20000 result inside the plugin memory limit
//! cannot afford.
//!
//! Georeferencing written:
//! * north-up rasters: ModelPixelScale + ModelTiepoint; any other geotransform (rotated,
//!   sheared, south-up): ModelTransformation;
//! * GeoKeyDirectory with GTModelType, GTRasterType = PixelIsArea and ProjectedCSType or
//!   GeographicType = the EPSG code;
//! * a CRS known only as WKT: the type key is 32767 (user-defined) and GTCitation holds
//!   `ESRI PE String = <wkt>`, which GDAL parses back into the CRS.

use std::io::Cursor;

use miniz_oxide::deflate::compress_to_vec_zlib;
use tiff::encoder::{DirectoryEncoder, TiffEncoder, TiffKindStandard};
use tiff::tags::Tag;

use crate::model::Georef;
use crate::raster::Label;

/// Deflate level: 1 is fast and still small for label rasters, which are mostly long runs.
const LEVEL: u8 = 1;
/// Uncompressed bytes per strip (about).
const STRIP_BYTES: usize = 256 * 1024;

/// Whether a CRS is projected or geographic, as GeoTIFF's GTModelTypeGeoKey needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrsKind {
    /// A projected CRS (ProjectedCSTypeGeoKey).
    Projected,
    /// A geographic CRS (GeographicTypeGeoKey).
    Geographic,
}

/// Decides the CRS kind from the WKT when there is one (any PROJCS/PROJCRS inside means
/// projected), else from the EPSG code (4000–4999 are geographic, the rest projected).
pub fn crs_kind(georef: &Georef) -> Option<CrsKind> {
    if let Some(wkt) = georef.crs_wkt.as_deref().filter(|w| !w.trim().is_empty()) {
        let up = wkt.to_ascii_uppercase();
        if ["PROJCS[", "PROJCRS[", "PROJECTEDCRS["]
            .iter()
            .any(|k| up.contains(k))
        {
            return Some(CrsKind::Projected);
        }
        if [
            "GEOGCS[",
            "GEOGCRS[",
            "GEODCRS[",
            "GEOGRAPHICCRS[",
            "GEODETICCRS[",
        ]
        .iter()
        .any(|k| up.contains(k))
        {
            return Some(CrsKind::Geographic);
        }
    }
    georef.epsg.map(|c| {
        if (4000..5000).contains(&c) {
            CrsKind::Geographic
        } else {
            CrsKind::Projected
        }
    })
}

/// Encodes `data` (`width * height` samples, row-major) as a GeoTIFF. `nodata` is written as
/// the GDAL_NODATA tag when given.
pub fn write<T: Label>(
    width: u32,
    height: u32,
    data: &[T],
    georef: &Georef,
    nodata: Option<u32>,
) -> Result<Vec<u8>, String> {
    let n = width as usize * height as usize;
    if data.len() != n {
        return Err(format!(
            "raster has {} samples, {width}x{height} needs {n}",
            data.len()
        ));
    }
    let mut rest = data;
    write_strips(width, height, georef, nodata, |buf: &mut [T]| {
        let take = buf.len().min(rest.len());
        buf[..take].copy_from_slice(&rest[..take]);
        rest = &rest[take..];
        take / width.max(1) as usize
    })
}

/// Encodes a `width` x `height` raster whose rows come from `fill`, one strip at a time: `fill`
/// writes the next rows into the buffer it is given (a whole number of rows) and returns how
/// many. Only one uncompressed strip exists at a time, so the raster itself never needs to be
/// in memory (see [`crate::raster::StripPainter`]). `nodata` is written as the GDAL_NODATA tag
/// when given.
pub fn write_strips<T: Label>(
    width: u32,
    height: u32,
    georef: &Georef,
    nodata: Option<u32>,
    mut fill: impl FnMut(&mut [T]) -> usize,
) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 {
        return Err("cannot write an empty raster".into());
    }
    let sample_bytes = usize::from(T::BITS / 8);
    let rows_per_strip = crate::raster::rows_per_strip::<T>(width, height, STRIP_BYTES) as usize;

    let tiff_err = |e: tiff::TiffError| format!("GeoTIFF: {e}");
    let mut file = Cursor::new(Vec::new());
    let mut encoder = TiffEncoder::new(&mut file).map_err(tiff_err)?;
    let mut dir = encoder.image_directory().map_err(tiff_err)?;

    // The strips first (each compressed as soon as it is painted), then the tags.
    let mut offsets = Vec::new();
    let mut counts = Vec::new();
    let mut strip: Vec<T> = vec![T::default(); rows_per_strip * width as usize];
    let mut raw: Vec<u8> = Vec::with_capacity(strip.len() * sample_bytes);
    let mut row = 0usize;
    while row < height as usize {
        let want = rows_per_strip.min(height as usize - row);
        let got = fill(&mut strip[..want * width as usize]);
        if got != want {
            return Err(format!(
                "raster rows {row}..{}: {got} rows supplied, {want} needed",
                row + want
            ));
        }
        raw.clear();
        let rows = &strip[..want * width as usize];
        // `tiff` writes the file in the machine's byte order; the samples follow it.
        match sample_bytes {
            1 => raw.extend(rows.iter().map(|v| v.to_u32() as u8)),
            2 => raw.extend(rows.iter().flat_map(|v| (v.to_u32() as u16).to_ne_bytes())),
            _ => raw.extend(rows.iter().flat_map(|v| v.to_u32().to_ne_bytes())),
        }
        let z = compress_to_vec_zlib(&raw, LEVEL);
        let at = dir.write_data(z.as_slice()).map_err(tiff_err)?;
        offsets.push(u32::try_from(at).map_err(|_| "GeoTIFF over 4 GiB")?);
        counts.push(z.len() as u32);
        row += want;
    }
    drop(strip);
    drop(raw);

    dir.write_tag(Tag::ImageWidth, width).map_err(tiff_err)?;
    dir.write_tag(Tag::ImageLength, height).map_err(tiff_err)?;
    dir.write_tag(Tag::BitsPerSample, T::BITS)
        .map_err(tiff_err)?;
    dir.write_tag(Tag::Compression, 8u16).map_err(tiff_err)?; // Adobe Deflate
    dir.write_tag(Tag::PhotometricInterpretation, 1u16) // BlackIsZero
        .map_err(tiff_err)?;
    dir.write_tag(Tag::StripOffsets, offsets.as_slice())
        .map_err(tiff_err)?;
    dir.write_tag(Tag::SamplesPerPixel, 1u16)
        .map_err(tiff_err)?;
    dir.write_tag(Tag::RowsPerStrip, rows_per_strip as u32)
        .map_err(tiff_err)?;
    dir.write_tag(Tag::StripByteCounts, counts.as_slice())
        .map_err(tiff_err)?;
    dir.write_tag(Tag::PlanarConfiguration, 1u16) // chunky
        .map_err(tiff_err)?;
    dir.write_tag(Tag::SampleFormat, 1u16) // unsigned integer
        .map_err(tiff_err)?;
    write_geo_tags(&mut dir, georef).map_err(tiff_err)?;
    if let Some(nd) = nodata {
        dir.write_tag(Tag::GdalNodata, nd.to_string().as_str())
            .map_err(tiff_err)?;
    }
    dir.finish().map_err(tiff_err)?;
    Ok(file.into_inner())
}

/// Removes whitespace outside quoted strings and turns `|` (GeoAsciiParams' separator) into a
/// space, so a pretty-printed WKT fits GDAL's citation buffer.
pub fn compact_wkt(wkt: &str) -> String {
    let mut out = String::with_capacity(wkt.len());
    let mut quoted = false;
    for c in wkt.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == '|' {
            out.push(' ');
        } else if quoted || !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Writes the georeferencing tags for `georef` (none without a geotransform or CRS).
fn write_geo_tags(
    dir: &mut DirectoryEncoder<'_, &mut Cursor<Vec<u8>>, TiffKindStandard>,
    georef: &Georef,
) -> tiff::TiffResult<()> {
    if let Some(gt) = &georef.geotransform {
        let c = gt.0;
        if gt.is_north_up() {
            dir.write_tag(Tag::ModelPixelScaleTag, &[c[1], -c[5], 0.0][..])?;
            dir.write_tag(Tag::ModelTiepointTag, &[0.0, 0.0, 0.0, c[0], c[3], 0.0][..])?;
        } else {
            #[rustfmt::skip]
            let m = [
                c[1], c[2], 0.0, c[0],
                c[4], c[5], 0.0, c[3],
                0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 1.0,
            ];
            dir.write_tag(Tag::ModelTransformationTag, &m[..])?;
        }
    }
    // (key id, tag location, count, value or offset); sorted before writing.
    let mut keys: Vec<[u16; 4]> = Vec::new();
    let mut ascii_params = String::new();
    let kind = crs_kind(georef);
    let epsg = georef.epsg.filter(|&c| (1024..32767).contains(&c));
    let wkt = georef
        .crs_wkt
        .as_deref()
        .map(compact_wkt)
        .filter(|w| !w.is_empty());
    if georef.geotransform.is_some() || kind.is_some() || wkt.is_some() {
        keys.push([1025, 0, 1, 1]); // GTRasterType = RasterPixelIsArea
    }
    match (epsg, kind, wkt) {
        (Some(code), Some(kind), _) => {
            let (model, key) = match kind {
                CrsKind::Projected => (1, 3072),
                CrsKind::Geographic => (2, 2048),
            };
            keys.push([1024, 0, 1, model]);
            keys.push([key, 0, 1, code as u16]);
        }
        (_, _, Some(wkt)) => {
            // GDAL reads a user-defined model's CRS from PCSCitationGeoKey when it holds
            // "ESRI PE String = <wkt>" (any WKT its importFromWkt takes, WKT1 or WKT2).
            let s = format!("ESRI PE String = {wkt}|");
            keys.push([1024, 0, 1, 32767]);
            keys.push([3073, 34737, s.len() as u16, ascii_params.len() as u16]);
            ascii_params.push_str(&s);
        }
        _ => {}
    }
    if !keys.is_empty() {
        keys.sort_by_key(|k| k[0]);
        let mut keys_dir = vec![1u16, 1, 0, keys.len() as u16];
        keys_dir.extend(keys.iter().flatten());
        dir.write_tag(Tag::GeoKeyDirectoryTag, keys_dir.as_slice())?;
    }
    if !ascii_params.is_empty() {
        dir.write_tag(Tag::GeoAsciiParamsTag, ascii_params.as_str())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Geotransform;

    /// Reads back tag `tag`'s raw value bytes from a file this module wrote.
    fn tag_bytes(tif: &[u8], tag: u16) -> Option<Vec<u8>> {
        let u16_at = |o: usize| u16::from_le_bytes([tif[o], tif[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(tif[o..o + 4].try_into().unwrap());
        let ifd = u32_at(4) as usize;
        for i in 0..u16_at(ifd) as usize {
            let e = ifd + 2 + 12 * i;
            if u16_at(e) == tag {
                let size = match u16_at(e + 2) {
                    2 => 1,
                    3 => 2,
                    4 => 4,
                    _ => 8,
                } * u32_at(e + 4) as usize;
                let at = if size <= 4 {
                    e + 8
                } else {
                    u32_at(e + 8) as usize
                };
                return Some(tif[at..at + size].to_vec());
            }
        }
        None
    }

    fn decompress_all(tif: &[u8]) -> Vec<u8> {
        let offs = tag_bytes(tif, 273).unwrap();
        let cnts = tag_bytes(tif, 279).unwrap();
        let mut out = Vec::new();
        for (o, c) in offs.chunks(4).zip(cnts.chunks(4)) {
            let o = u32::from_le_bytes(o.try_into().unwrap()) as usize;
            let c = u32::from_le_bytes(c.try_into().unwrap()) as usize;
            out.extend(miniz_oxide::inflate::decompress_to_vec_zlib(&tif[o..o + c]).unwrap());
        }
        out
    }

    #[test]
    fn structure_and_pixels_roundtrip() {
        let data: Vec<u16> = (0..300u32 * 1000).map(|i| (i % 7) as u16 * 1000).collect();
        let georef = Georef {
            geotransform: Some(Geotransform([500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0])),
            epsg: Some(32618),
            crs_wkt: None,
        };
        let tif = write(300, 1000, &data, &georef, Some(0)).unwrap();
        assert_eq!(&tif[..4], b"II*\0");
        assert_eq!(tag_bytes(&tif, 258).unwrap(), 16u16.to_le_bytes());
        assert_eq!(tag_bytes(&tif, 42113).unwrap(), b"0\0");
        assert!(tag_bytes(&tif, 34264).is_none());
        let raw = decompress_all(&tif);
        let back: Vec<u16> = raw
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(back, data);
        assert_eq!(compact_wkt("A[\"x y\",\n  B[1]]"), "A[\"x y\",B[1]]");
        let keys = tag_bytes(&tif, 34735).unwrap();
        let keys: Vec<u16> = keys
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(
            keys,
            vec![1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32618]
        );
    }

    #[test]
    fn kinds() {
        let g = |epsg: Option<u32>, wkt: Option<&str>| Georef {
            geotransform: None,
            epsg,
            crs_wkt: wkt.map(str::to_owned),
        };
        assert_eq!(crs_kind(&g(Some(4326), None)), Some(CrsKind::Geographic));
        assert_eq!(crs_kind(&g(Some(32618), None)), Some(CrsKind::Projected));
        assert_eq!(
            crs_kind(&g(None, Some("PROJCRS[\"x\",BASEGEOGCRS[..]]"))),
            Some(CrsKind::Projected)
        );
        assert_eq!(
            crs_kind(&g(None, Some("GEOGCS[\"WGS 84\"]"))),
            Some(CrsKind::Geographic)
        );
        assert_eq!(crs_kind(&g(None, None)), None);
    }

    #[test]
    fn size_mismatch_is_an_error() {
        assert!(write::<u8>(2, 2, &[0, 1, 2], &Georef::default(), None).is_err());
    }
}
