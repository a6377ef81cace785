//! Raster input over the real files in `SAMGEO_REAL_DATA` (the rasterio test rasters), checked
//! against what `gdalinfo -json` says. Skipped with a notice when the variable is unset.

use std::path::{Path, PathBuf};
use std::process::Command;

use gdal::spatial_ref::SpatialRef;
use samgeo_host::raster::{to_pixel_coords, BandSelection, OpenRaster, RasterError, RasterLimits};

const LIMITS: RasterLimits = RasterLimits {
    max_pixels: 100_000_000,
};

fn real_data() -> Option<PathBuf> {
    match std::env::var_os("SAMGEO_REAL_DATA") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            samgeo_host::test_skip::skip("real-raster tests", "SAMGEO_REAL_DATA is not set");
            None
        }
    }
}

fn gdalinfo(path: &Path) -> serde_json::Value {
    let out = Command::new("gdalinfo")
        .arg("-json")
        .arg(path)
        .output()
        .expect("gdalinfo runs (gdal-bin is installed by scripts/setup)");
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("SAMGEO_REAL_DATA is a directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.to_string_lossy().ends_with(".aux.xml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    files
}

#[test]
fn header_matches_gdalinfo_for_every_file() {
    let Some(dir) = real_data() else { return };
    let mut checked = 0;
    for path in files(&dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap();
        let opened = OpenRaster::open(bytes, LIMITS);
        if name == "corrupt.tif" {
            // The header is readable; the pixels are not. Reading must fail with a clear message.
            let raster = opened.expect("corrupt.tif has a readable header");
            let err = raster
                .read_rgb(&BandSelection::default(), 1024)
                .unwrap_err();
            let RasterError::Invalid(msg) = err else {
                panic!("expected Invalid, got {err:?}")
            };
            assert!(msg.contains("Cannot read the pixels"), "{msg}");
            assert!(!msg.contains("/vsimem/"), "{msg}");
            continue;
        }
        let raster = opened.unwrap_or_else(|e| panic!("{name}: {e}"));
        let info = raster.info();
        let expected = gdalinfo(&path);
        let size = &expected["size"];
        assert_eq!(info.width as u64, size[0].as_u64().unwrap(), "{name} width");
        assert_eq!(
            info.height as u64,
            size[1].as_u64().unwrap(),
            "{name} height"
        );
        assert_eq!(
            info.band_count,
            expected["bands"].as_array().unwrap().len(),
            "{name} band count"
        );
        match expected["geoTransform"].as_array() {
            Some(gt) => {
                let ours = info
                    .georef
                    .geotransform
                    .unwrap_or_else(|| panic!("{name}: no geotransform"));
                for (a, b) in ours.iter().zip(gt) {
                    // gdalinfo prints 16 significant digits.
                    let b = b.as_f64().unwrap();
                    assert!(
                        (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                        "{name} geotransform {ours:?} vs {gt:?}"
                    );
                }
            }
            None => assert_eq!(info.georef.geotransform, None, "{name} geotransform"),
        }
        match expected["coordinateSystem"]["wkt"]
            .as_str()
            .filter(|w| !w.is_empty())
        {
            Some(wkt) => {
                let theirs = SpatialRef::from_wkt(wkt).unwrap();
                let ours = SpatialRef::from_wkt(
                    info.georef
                        .crs_wkt
                        .as_deref()
                        .unwrap_or_else(|| panic!("{name}: CRS missing")),
                )
                .unwrap();
                assert!(ours == theirs, "{name}: CRS differs from gdalinfo's");
            }
            None => assert_eq!(info.georef.crs_wkt, None, "{name} CRS"),
        }
        let rgb = raster
            .read_rgb(&BandSelection::default(), 1024)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            rgb.pixels.len(),
            rgb.width as usize * rgb.height as usize * 3
        );
        assert_eq!(
            rgb.width.max(rgb.height),
            info.width.max(info.height).min(1024),
            "{name}: read at most 1024 on the longest side, never upsampled"
        );
        let (min, max) = rgb
            .pixels
            .iter()
            .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if name == "all-nodata.tif" {
            assert_eq!(
                max, 0,
                "{name}: every pixel is nodata, so the image is black"
            );
        } else if info.data_type != "Byte" {
            // The stretch spreads real data over (nearly) the whole 8-bit range.
            // A band of one constant value stays flat (mid-grey where valid, black where masked).
            let flat = rgb.pixels.iter().all(|&v| v == 0 || v == 128);
            assert!(
                max >= 200 && min <= 55 || flat,
                "{name}: stretched range {min}..{max}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} files checked");
}

#[test]
fn known_crs_codes() {
    let Some(dir) = real_data() else { return };
    for (file, epsg) in [("RGB.byte.tif", 32618), ("world.byte.tif", 4326)] {
        let raster = OpenRaster::open(std::fs::read(dir.join(file)).unwrap(), LIMITS).unwrap();
        assert_eq!(raster.info().georef.epsg, Some(epsg), "{file}");
    }
    let esri = OpenRaster::open(
        std::fs::read(dir.join("test_esri_wkt.tif")).unwrap(),
        LIMITS,
    )
    .unwrap();
    assert!(
        esri.info().georef.crs_wkt.is_some(),
        "ESRI WKT is read as a CRS"
    );
}

#[test]
fn float_nan_stretch_has_no_garbage() {
    let Some(dir) = real_data() else { return };
    let raster =
        OpenRaster::open(std::fs::read(dir.join("float_nan.tif")).unwrap(), LIMITS).unwrap();
    let rgb = raster.read_rgb(&BandSelection::default(), 1024).unwrap();
    // 3×2 with NaN cells: those are black, the others spread over 0..=255.
    assert_eq!((rgb.width, rgb.height), (3, 2));
    assert!(rgb.pixels.contains(&255));
}

#[test]
fn bgr_file_is_read_in_rgb_order_and_bands_are_selectable() {
    let Some(dir) = real_data() else { return };
    let bytes = std::fs::read(dir.join("RGBA.uint16.tif")).unwrap();
    let raster = OpenRaster::open(bytes, LIMITS).unwrap();
    let default = raster.read_rgb(&BandSelection::default(), 256).unwrap();
    let explicit = raster
        .read_rgb(&BandSelection::parse(Some("3,2,1")).unwrap(), 256)
        .unwrap();
    assert_eq!(
        default, explicit,
        "bands labelled R,G,B (3,2,1 here) are the default"
    );
    let err = raster
        .read_rgb(&BandSelection::parse(Some("5")).unwrap(), 256)
        .unwrap_err();
    assert!(err.to_string().contains("band 5 does not exist"), "{err}");
}

#[test]
fn lon_lat_point_lands_on_gdals_pixel() {
    let Some(dir) = real_data() else { return };
    let path = dir.join("RGB.byte.tif");
    let raster = OpenRaster::open(std::fs::read(&path).unwrap(), LIMITS).unwrap();
    let (lon, lat) = (-77.8, 24.8);
    let ours = to_pixel_coords(
        raster.dataset(),
        &raster.info().georef,
        &[[lon, lat]],
        Some("EPSG:4326"),
    )
    .unwrap()[0];
    // GDAL's own answer: gdallocationinfo -wgs84 reports the pixel and line.
    let out = Command::new("gdallocationinfo")
        .args(["-xml", "-wgs84"])
        .arg(&path)
        .args([lon.to_string(), lat.to_string()])
        .output()
        .unwrap();
    let xml = String::from_utf8_lossy(&out.stdout);
    let attr = |name: &str| -> f64 {
        let start = xml
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("{xml}"))
            + name.len()
            + 2;
        xml[start..].split('"').next().unwrap().parse().unwrap()
    };
    let (pixel, line) = (attr("pixel"), attr("line"));
    assert!(
        (ours[0].floor() - pixel).abs() <= 1.0,
        "x {} vs {pixel}",
        ours[0]
    );
    assert!(
        (ours[1].floor() - line).abs() <= 1.0,
        "y {} vs {line}",
        ours[1]
    );
}

#[test]
fn point_crs_needs_a_georeferenced_image() {
    let Some(dir) = real_data() else { return };
    let raster = OpenRaster::open(
        std::fs::read(dir.join("389225main_sw_1965_1024.jpg")).unwrap(),
        LIMITS,
    )
    .unwrap();
    let err = to_pixel_coords(
        raster.dataset(),
        &raster.info().georef,
        &[[1.0, 2.0]],
        Some("EPSG:4326"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no georeferencing"), "{err}");
}

#[test]
fn pixel_limit_is_checked_on_the_header() {
    let Some(dir) = real_data() else { return };
    let bytes = std::fs::read(dir.join("RGB.byte.tif")).unwrap();
    let err = OpenRaster::open(bytes, RasterLimits { max_pixels: 1000 })
        .err()
        .unwrap();
    assert!(matches!(err, RasterError::TooLarge(_)), "{err:?}");
}
