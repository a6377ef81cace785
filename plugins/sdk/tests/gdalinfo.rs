//! Writes GeoTIFFs with [`samgeo_plugin_sdk::geotiff`] into a temporary directory and reads them back
//! with GDAL's `gdalinfo -json` (skipped, with a note, where gdalinfo is not installed).

use std::path::PathBuf;
use std::process::Command;

use samgeo_plugin_sdk::geotiff::write;
use samgeo_plugin_sdk::raster::Label;
use samgeo_plugin_sdk::{Georef, Geotransform};
use serde_json::Value;

/// A LAEA CRS with no EPSG code, as WKT1 and as WKT2.
const LAEA_WKT1: &str = "PROJCS[\"unknown\", GEOGCS[\"unknown\", DATUM[\"Unknown based on GRS80 ellipsoid\", SPHEROID[\"GRS 1980\",6378137,298.257222101, AUTHORITY[\"EPSG\",\"7019\"]]], PRIMEM[\"Greenwich\",0, AUTHORITY[\"EPSG\",\"8901\"]], UNIT[\"degree\",0.0174532925199433, AUTHORITY[\"EPSG\",\"9122\"]]], PROJECTION[\"Lambert_Azimuthal_Equal_Area\"], PARAMETER[\"latitude_of_center\",52], PARAMETER[\"longitude_of_center\",10], PARAMETER[\"false_easting\",4321000], PARAMETER[\"false_northing\",3210000], UNIT[\"metre\",1, AUTHORITY[\"EPSG\",\"9001\"]], AXIS[\"Easting\",EAST], AXIS[\"Northing\",NORTH]]";
const LAEA_WKT2: &str = "PROJCRS[\"unknown\", BASEGEOGCRS[\"unknown\", DATUM[\"Unknown based on GRS80 ellipsoid\", ELLIPSOID[\"GRS 1980\",6378137,298.257222101, LENGTHUNIT[\"metre\",1], ID[\"EPSG\",7019]]], PRIMEM[\"Greenwich\",0, ANGLEUNIT[\"degree\",0.0174532925199433], ID[\"EPSG\",8901]]], CONVERSION[\"unknown\", METHOD[\"Lambert Azimuthal Equal Area\", ID[\"EPSG\",9820]], PARAMETER[\"Latitude of natural origin\",52, ANGLEUNIT[\"degree\",0.0174532925199433], ID[\"EPSG\",8801]], PARAMETER[\"Longitude of natural origin\",10, ANGLEUNIT[\"degree\",0.0174532925199433], ID[\"EPSG\",8802]], PARAMETER[\"False easting\",4321000, LENGTHUNIT[\"metre\",1], ID[\"EPSG\",8806]], PARAMETER[\"False northing\",3210000, LENGTHUNIT[\"metre\",1], ID[\"EPSG\",8807]]], CS[Cartesian,2], AXIS[\"(E)\",east, ORDER[1], LENGTHUNIT[\"metre\",1, ID[\"EPSG\",9001]]], AXIS[\"(N)\",north, ORDER[2], LENGTHUNIT[\"metre\",1, ID[\"EPSG\",9001]]]]";

fn gdal_available() -> bool {
    Command::new("gdalinfo").arg("--version").output().is_ok()
}

fn tmp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mask-kit-gdal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Writes the raster and returns `gdalinfo -json` of it.
fn roundtrip<T: Label>(name: &str, w: u32, h: u32, data: &[T], georef: &Georef) -> Value {
    let path = tmp_path(name);
    std::fs::write(&path, write(w, h, data, georef, Some(0)).unwrap()).unwrap();
    let out = Command::new("gdalinfo")
        .args(["-json", "-stats"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(format!("{}.aux.xml", path.display()));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn geotransform(info: &Value) -> Vec<f64> {
    info["geoTransform"]
        .as_array()
        .expect("no geoTransform")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

fn wkt(info: &Value) -> String {
    info["coordinateSystem"]["wkt"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// A test that cannot run because `tool` is missing: a notice and a line in `SAMGEO_SKIP_LOG`
/// (counted by `scripts/test`), or, under CI (`CI=true`), a failure, since `scripts/setup`
/// installs it.
fn skip_without(tool: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} not found (under CI a failure: scripts/setup installs gdal-bin)");
    }
    eprintln!("SKIPPED: {tool} not found");
    if let Some(path) = std::env::var_os("SAMGEO_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{tool} not found");
        }
    }
}

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-9 * (1.0 + y.abs()), "{a:?} != {b:?}");
    }
}

#[test]
fn north_up_epsg_byte() {
    if !gdal_available() {
        skip_without("gdalinfo");
        return;
    }
    let gt = [500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0];
    let georef = Georef {
        geotransform: Some(Geotransform(gt)),
        epsg: Some(32618),
        crs_wkt: None,
    };
    let data: Vec<u8> = (0..64 * 48).map(|i| (i % 5) as u8).collect();
    let info = roundtrip("north.tif", 64, 48, &data, &georef);
    assert_eq!(info["size"], serde_json::json!([64, 48]));
    assert_close(&geotransform(&info), &gt);
    assert!(wkt(&info).contains("ID[\"EPSG\",32618]"), "{}", wkt(&info));
    let band = &info["bands"][0];
    assert_eq!(band["type"], "Byte");
    assert_eq!(band["noDataValue"], 0.0);
    assert_eq!(
        info["metadata"]["IMAGE_STRUCTURE"]["COMPRESSION"],
        "DEFLATE"
    );
    assert_eq!(band["maximum"], 4.0);
    assert_eq!(info["metadata"][""]["AREA_OR_POINT"], "Area");
}

#[test]
fn rotated_geographic_uint16() {
    if !gdal_available() {
        skip_without("gdalinfo");
        return;
    }
    let gt = [10.0, 0.001, 0.0005, 50.0, 0.0005, -0.001];
    let georef = Georef {
        geotransform: Some(Geotransform(gt)),
        epsg: Some(4326),
        crs_wkt: None,
    };
    let data: Vec<u16> = (0..40 * 30).map(|i| (i % 3) as u16 * 1000).collect();
    let info = roundtrip("rotated.tif", 40, 30, &data, &georef);
    assert_close(&geotransform(&info), &gt);
    assert!(wkt(&info).contains("ID[\"EPSG\",4326]"), "{}", wkt(&info));
    assert_eq!(info["bands"][0]["type"], "UInt16");
    assert_eq!(info["bands"][0]["maximum"], 2000.0);
}

#[test]
fn wkt_only_crs_survives() {
    if !gdal_available() {
        skip_without("gdalinfo");
        return;
    }
    let gt = [4321000.0, 20.0, 0.0, 3210000.0, 0.0, -20.0];
    for (name, w) in [("wkt1.tif", LAEA_WKT1), ("wkt2.tif", LAEA_WKT2)] {
        let georef = Georef {
            geotransform: Some(Geotransform(gt)),
            epsg: None,
            crs_wkt: Some(w.to_owned()),
        };
        let data: Vec<u32> = (0..16 * 16).map(|i| i * 70000).collect();
        let info = roundtrip(name, 16, 16, &data, &georef);
        let got = wkt(&info);
        assert!(
            got.contains("Lambert Azimuthal Equal Area"),
            "{name}: {got}"
        );
        assert!(
            got.contains("4321000") && got.contains("3210000"),
            "{name}: {got}"
        );
        assert!(
            got.contains("GRS 1980") || got.contains("GRS_1980"),
            "{name}: {got}"
        );
        assert_close(&geotransform(&info), &gt);
        assert_eq!(info["bands"][0]["type"], "UInt32");
    }
}

#[test]
fn no_georeferencing() {
    if !gdal_available() {
        skip_without("gdalinfo");
        return;
    }
    let info = roundtrip("plain.tif", 3, 2, &[0u8, 1, 2, 3, 4, 5], &Georef::default());
    assert!(info.get("geoTransform").is_none());
    assert_eq!(wkt(&info), "");
    assert_eq!(info["bands"][0]["maximum"], 5.0);
}
