//! Reprojecting an 8-bit RGB picture of a raster to web mercator (EPSG:3857) with GDAL's warper,
//! for the web page's map: the picture is what the model sees (the same bands and stretch, from
//! [`OpenRaster::read_rgb_window`](super::OpenRaster::read_rgb_window)), held in a MEM dataset
//! with its georeferencing, and warped with an alpha band (transparent outside the raster).

use std::ffi::{CStr, CString};
use std::ptr;

use gdal::raster::Buffer;
use gdal::spatial_ref::SpatialRef;
use gdal::{Dataset, DriverManager};

use super::{RasterError, RgbImage};

/// A picture as PNG bytes with its bounds [xmin, ymin, xmax, ymax] in EPSG:3857.
#[derive(Debug, Clone)]
pub struct WebPicture {
    pub png: Vec<u8>,
    pub bounds_3857: [f64; 4],
}

/// Where the warped picture goes: its size chosen by GDAL (about as many pixels as the source),
/// or a fixed extent in EPSG:3857 and size (a map tile).
pub enum Target {
    Fit,
    Extent { bounds: [f64; 4], size: u32 },
}

/// Warps `rgb`, whose pixel grid is `geotransform` in `crs_wkt`, to EPSG:3857 as RGBA PNG.
pub fn warp_to_web_mercator(
    rgb: &RgbImage,
    geotransform: [f64; 6],
    crs_wkt: &str,
    target: Target,
) -> Result<WebPicture, RasterError> {
    let failed = |what: &str, e: String| RasterError::Invalid(format!("{what}: {e}"));
    let driver =
        DriverManager::get_driver_by_name("MEM").map_err(|e| failed("GDAL MEM", e.to_string()))?;
    let (w, h) = (rgb.width as usize, rgb.height as usize);
    let mut source = driver
        .create_with_band_type::<u8, _>("", w, h, 3)
        .map_err(|e| failed("GDAL MEM", e.to_string()))?;
    source
        .set_geo_transform(&geotransform)
        .map_err(|e| failed("georeferencing the picture", e.to_string()))?;
    let srs =
        SpatialRef::from_wkt(crs_wkt).map_err(|e| failed("the image's CRS", e.to_string()))?;
    source
        .set_spatial_ref(&srs)
        .map_err(|e| failed("the image's CRS", e.to_string()))?;
    for band in 0..3 {
        let plane: Vec<u8> = rgb.pixels.iter().skip(band).step_by(3).copied().collect();
        let mut buffer = Buffer::new((w, h), plane);
        source
            .rasterband(band + 1)
            .and_then(|mut b| b.write((0, 0), (w, h), &mut buffer))
            .map_err(|e| failed("GDAL MEM", e.to_string()))?;
    }
    let mut args: Vec<String> = ["-of", "MEM", "-t_srs", "EPSG:3857", "-dstalpha"]
        .map(String::from)
        .to_vec();
    match target {
        Target::Fit => args.extend(["-r", "bilinear"].map(String::from)),
        Target::Extent { bounds, size } => {
            args.push("-te".into());
            args.extend(bounds.iter().map(|v| format!("{v:.6}")));
            args.extend(["-ts".into(), size.to_string(), size.to_string()]);
            // Upsampled at high zooms: nearest keeps the pixels visible as pixels.
            args.extend(["-r", "near"].map(String::from));
        }
    }
    let warped = gdal_warp(&source, &args)?;
    let (ow, oh) = warped.raster_size();
    let gt = warped
        .geo_transform()
        .map_err(|e| failed("the warped picture", e.to_string()))?;
    let bounds_3857 = [
        gt[0],
        gt[3] + gt[5] * oh as f64,
        gt[0] + gt[1] * ow as f64,
        gt[3],
    ];
    let mut rgba = vec![0u8; ow * oh * 4];
    for band in 0..4 {
        let plane = warped
            .rasterband(band + 1)
            .and_then(|b| b.read_as::<u8>((0, 0), (ow, oh), (ow, oh), None))
            .map_err(|e| failed("the warped picture", e.to_string()))?;
        for (i, v) in plane.data().iter().enumerate() {
            rgba[i * 4 + band] = *v;
        }
    }
    Ok(WebPicture {
        png: encode_png(&rgba, ow as u32, oh as u32, true)?,
        bounds_3857,
    })
}

/// `gdalwarp` (GDAL's library form) on one source dataset, into a MEM dataset.
fn gdal_warp(source: &Dataset, args: &[String]) -> Result<Dataset, RasterError> {
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()).expect("no NUL in warp arguments"))
        .collect();
    let mut argv: Vec<*mut std::ffi::c_char> = c_args
        .iter()
        .map(|a| a.as_ptr() as *mut std::ffi::c_char)
        .chain(std::iter::once(ptr::null_mut()))
        .collect();
    // SAFETY: argv is a NULL-terminated array of C strings that outlive the calls; the options
    // are freed once, after GDALWarp; the source handle stays valid for the call; the returned
    // handle, when not NULL, is a new dataset that `Dataset` owns (and closes) from here.
    unsafe {
        let options = gdal_sys::GDALWarpAppOptionsNew(argv.as_mut_ptr(), ptr::null_mut());
        if options.is_null() {
            return Err(RasterError::Invalid(format!(
                "warping the picture: bad options: {}",
                last_gdal_error()
            )));
        }
        let mut sources = [source.c_dataset()];
        let mut usage_error = 0;
        let out = gdal_sys::GDALWarp(
            c"".as_ptr(),
            ptr::null_mut(),
            1,
            sources.as_mut_ptr(),
            options,
            &mut usage_error,
        );
        gdal_sys::GDALWarpAppOptionsFree(options);
        if out.is_null() {
            return Err(RasterError::Invalid(format!(
                "warping the picture to EPSG:3857 failed: {}",
                last_gdal_error()
            )));
        }
        Ok(Dataset::from_c_dataset(out))
    }
}

fn last_gdal_error() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a valid (possibly empty) C string owned by GDAL.
    unsafe { CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }
        .to_string_lossy()
        .into_owned()
}

/// Encodes 8-bit RGB (`alpha` false) or RGBA pixels as PNG.
pub fn encode_png(
    pixels: &[u8],
    width: u32,
    height: u32,
    alpha: bool,
) -> Result<Vec<u8>, RasterError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(if alpha {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let encoded = encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(pixels));
    encoded.map_err(|e| RasterError::Invalid(format!("encoding the picture as PNG: {e}")))?;
    Ok(out)
}
