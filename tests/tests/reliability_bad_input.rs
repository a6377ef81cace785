//! Reliability: a table-driven corpus of valid, odd and hostile inputs sent over HTTP to one
//! spawned server. Every row names the status it must get (200 where the input is valid, else
//! the 4xx) and a substring the `{"detail"}` must contain, and runs as a test of its own, named
//! by the row (a `harness = false` test with libtest-mimic: filter and list as usual, e.g.
//! `cargo test -p samgeo-blackbox-tests --test reliability_bad_input -- truncated`). Nothing may
//! answer 5xx, and the server must still answer `/health` after the whole table.
//!
//! `-- --nocapture` prints each row as it runs (case, status, detail).

mod common;

use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use common::rasters::Scene;
use common::{Form, Part, Server};
use gdal::raster::{Buffer, GdalType, RasterCreationOptions};
use gdal::DriverManager;

const PREDICT: &str = "/segment/predict";
const AUTOMATIC: &str = "/segment/automatic";
const TEXT: &str = "/segment/text";

/// What a row sends.
enum Body {
    /// A multipart form: optional file and text fields.
    Form {
        file: Option<(String, Vec<u8>)>,
        fields: Vec<(String, String)>,
    },
    /// A raw body with a content type.
    Raw {
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// A GET without a body.
    Get,
}

struct Case {
    name: String,
    path: &'static str,
    body: Body,
    /// Expected status.
    status: u16,
    /// A substring the detail must contain (errors only).
    want: &'static str,
}

fn case(
    name: impl Into<String>,
    path: &'static str,
    file: Option<(&str, Vec<u8>)>,
    fields: &[(&str, &str)],
    status: u16,
    want: &'static str,
) -> Case {
    Case {
        name: name.into(),
        path,
        body: Body::Form {
            file: file.map(|(n, b)| (n.to_string(), b)),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        status,
        want,
    }
}

/// Bytes of a GeoTIFF (or another format via `format`) made by GDAL in memory: `bands` bands of
/// `T`, every pixel `fill`, optional nodata, creation options.
fn raster_bytes<T: GdalType + Copy>(
    format: &str,
    size: (usize, usize),
    bands: usize,
    fill: T,
    nodata: Option<f64>,
    options: &[&str],
) -> Vec<u8> {
    let mem = DriverManager::get_driver_by_name("MEM").unwrap();
    let ds = mem
        .create_with_band_type::<T, _>("", size.0, size.1, bands)
        .unwrap();
    for i in 1..=bands {
        let mut band = ds.rasterband(i).unwrap();
        band.set_no_data_value(nodata).unwrap();
        let mut buffer = Buffer::new(size, vec![fill; size.0 * size.1]);
        band.write((0, 0), size, &mut buffer).unwrap();
    }
    let name = format!(
        "/vsimem/reliability-{}-{format}-{}x{}x{bands}",
        std::process::id(),
        size.0,
        size.1
    );
    let driver = DriverManager::get_driver_by_name(format).unwrap();
    let opts: RasterCreationOptions = options.iter().copied().collect();
    drop(ds.create_copy(&driver, &name, &opts).unwrap());
    let bytes = gdal::vsi::get_vsi_mem_file_bytes_owned(&name).unwrap();
    let _ = gdal::vsi::unlink_mem_file(format!("{name}.aux.xml"));
    bytes
}

/// A tiny tiled GeoTIFF whose header claims 100000×100000 pixels (10^10): no tile is written
/// (SPARSE_OK), so the file is a few KiB; decoding it would need 10 GB.
fn decompression_bomb() -> Vec<u8> {
    let name = format!("/vsimem/reliability-bomb-{}.tif", std::process::id());
    let gtiff = DriverManager::get_driver_by_name("GTiff").unwrap();
    let opts: RasterCreationOptions = [
        "TILED=YES",
        "BLOCKXSIZE=4096",
        "BLOCKYSIZE=4096",
        "SPARSE_OK=TRUE",
        "BIGTIFF=YES",
        "COMPRESS=DEFLATE",
    ]
    .into_iter()
    .collect();
    let ds = gtiff
        .create_with_band_type_with_options::<u8, _>(&name, 100_000, 100_000, 1, &opts)
        .unwrap();
    drop(ds);
    let bytes = gdal::vsi::get_vsi_mem_file_bytes_owned(&name).unwrap();
    assert!(
        bytes.len() < 64 * 1024,
        "the bomb should be small: {} bytes",
        bytes.len()
    );
    bytes
}

/// Peak resident memory of a process, KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn send(server: &Server, c: &Case) -> reqwest::blocking::Response {
    let url = server.url(c.path);
    match &c.body {
        Body::Form { file, fields } => {
            let mut form = Form::new();
            if let Some((name, bytes)) = file {
                form = form.part("file", Part::bytes(bytes.clone()).file_name(name.clone()));
            }
            for (k, v) in fields {
                form = form.text(k.clone(), v.clone());
            }
            server.client.post(url).multipart(form).send().unwrap()
        }
        Body::Raw { content_type, body } => server
            .client
            .post(url)
            .header("content-type", *content_type)
            .body(body.clone())
            .send()
            .unwrap(),
        Body::Get => server.client.get(url).send().unwrap(),
    }
}

/// The real rasters of `SAMGEO_REAL_DATA`, each with a click at its centre.
fn real_data_cases() -> Vec<Case> {
    let Some(dir) = common::real_data() else {
        return Vec::new();
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert!(!names.is_empty(), "{} is empty", dir.display());
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let (w, h) = gdal::Dataset::open(&path)
                .map(|d| d.raster_size())
                .unwrap_or((2, 2));
            let point = format!("[[{}, {}]]", w / 2, h / 2);
            let bytes = std::fs::read(&path).unwrap();
            let (status, want) = if name == "corrupt.tif" {
                (400, "Cannot read the pixels")
            } else {
                (200, "")
            };
            let mut c = case(
                format!("real: {name} ({w}x{h})"),
                PREDICT,
                Some((&name, bytes)),
                &[],
                status,
                want,
            );
            if let Body::Form { fields, .. } = &mut c.body {
                fields.push(("point_coords".into(), point));
            }
            c
        })
        .collect()
}

#[rustfmt::skip]
fn generated_file_cases() -> Vec<Case> {
    let scene = Scene::red_square().geotiff();
    let click = [("point_coords", "[[0, 0]]")];
    let mut cases = vec![
        case(
            "truncated TIFF (first 300 bytes)",
            PREDICT,
            Some(("t.tif", scene[..300].to_vec())),
            &click,
            400,
            "Cannot read",
        ),
        case(
            "TIFF cut in the pixel data",
            PREDICT,
            Some(("t.tif", scene[..scene.len() / 2].to_vec())),
            &click,
            400,
            "Cannot read",
        ),
        case(
            "zero-byte file",
            PREDICT,
            Some(("empty.tif", Vec::new())),
            &click,
            400,
            "empty",
        ),
        case(
            "text file named .tif",
            PREDICT,
            Some(("notes.tif", b"just some words\n".repeat(20))),
            &click,
            400,
            "not recognised",
        ),
        case(
            "TIFF magic then garbage",
            PREDICT,
            Some(("magic.tif", [b"II*\0".as_slice(), &[0xff; 60]].concat())),
            &click,
            400,
            "Cannot read",
        ),
        case(
            "HTML named .png",
            PREDICT,
            Some(("page.png", b"<html><body>hi</body></html>".to_vec())),
            &click,
            400,
            "Cannot read",
        ),
        case(
            "decompression bomb: header says 100000x100000",
            PREDICT,
            Some(("bomb.tif", decompression_bomb())),
            &click,
            413,
            "100000×100000",
        ),
        case(
            "9x4 image in 65340x65295 tiles (fuzzer find)",
            PREDICT,
            Some((
                "tiles.tif",
                include_bytes!("../../fuzz/regressions/raster_decode/huge-tiles-9x4-oom").to_vec(),
            )),
            &click,
            413,
            "blocks",
        ),
        case(
            "PNG 16-bit grey",
            PREDICT,
            Some((
                "grey16.png",
                raster_bytes::<u16>("PNG", (64, 48), 1, 40000, None, &[]),
            )),
            &click,
            200,
            "",
        ),
        case(
            "JPEG CMYK (4 bands)",
            PREDICT,
            Some((
                "cmyk.jpg",
                raster_bytes::<u8>("JPEG", (64, 48), 4, 90, None, &[]),
            )),
            &click,
            200,
            "",
        ),
        case(
            "JPEG content named .tif",
            PREDICT,
            Some((
                "photo.tif",
                raster_bytes::<u8>("JPEG", (64, 48), 3, 120, None, &[]),
            )),
            &click,
            200,
            "",
        ),
        case(
            "float32, every pixel NaN",
            PREDICT,
            Some((
                "nan.tif",
                raster_bytes::<f32>("GTiff", (64, 48), 1, f32::NAN, None, &[]),
            )),
            &click,
            200,
            "",
        ),
        case(
            "float64, every pixel +inf",
            PREDICT,
            Some((
                "inf.tif",
                raster_bytes::<f64>("GTiff", (64, 48), 3, f64::INFINITY, None, &[]),
            )),
            &click,
            200,
            "",
        ),
        case(
            "byte, every pixel nodata",
            PREDICT,
            Some((
                "nodata.tif",
                raster_bytes::<u8>("GTiff", (64, 48), 3, 0, Some(0.0), &[]),
            )),
            &click,
            200,
            "",
        ),
        case(
            "int16, every pixel nodata",
            PREDICT,
            Some((
                "nodata16.tif",
                raster_bytes::<i16>("GTiff", (64, 48), 1, -9999, Some(-9999.0), &[]),
            )),
            &click,
            200,
            "",
        ),
        case(
            "1x1 image",
            PREDICT,
            Some((
                "one.tif",
                raster_bytes::<u8>("GTiff", (1, 1), 3, 200, None, &[]),
            )),
            &[("point_coords", "[[0.5, 0.5]]")],
            200,
            "",
        ),
        case(
            "1x4000 strip",
            PREDICT,
            Some((
                "strip.tif",
                raster_bytes::<u8>("GTiff", (1, 4000), 1, 50, None, &[]),
            )),
            &[("point_coords", "[[0.5, 2000]]")],
            200,
            "",
        ),
        case(
            "5 bands, bands=5,4,3",
            PREDICT,
            Some((
                "five.tif",
                raster_bytes::<u8>("GTiff", (32, 32), 5, 10, None, &[]),
            )),
            &[("point_coords", "[[16, 16]]"), ("bands", "5,4,3")],
            200,
            "",
        ),
        case(
            "200 bands uint16 (defaults to 1,2,3)",
            PREDICT,
            Some((
                "many.tif",
                raster_bytes::<u16>("GTiff", (16, 16), 200, 7, None, &[]),
            )),
            &[("point_coords", "[[8, 8]]")],
            200,
            "",
        ),
    ];
    // The same tiled DEFLATE GeoTIFF: a real (non-sparse) compressed file.
    cases.push(case(
        "tiled DEFLATE byte",
        PREDICT,
        Some((
            "tiled.tif",
            raster_bytes::<u8>(
                "GTiff",
                (300, 200),
                3,
                77,
                None,
                &["TILED=YES", "COMPRESS=DEFLATE"],
            ),
        )),
        &click,
        200,
        "",
    ));
    cases
}

#[rustfmt::skip]
fn field_cases() -> Vec<Case> {
    let tif = || Some(("scene.tif", Scene::red_square().geotiff()));
    let ten_thousand: String =
        serde_json::to_string(&(0..10_000).map(|i| [i % 400, i % 300]).collect::<Vec<_>>())
            .unwrap();
    let ten_thousand: &'static str = Box::leak(ten_thousand.into_boxed_str());
    let many_boxes: String =
        serde_json::to_string(&(0..1000).map(|_| [1, 1, 5, 5]).collect::<Vec<_>>()).unwrap();
    let many_boxes: &'static str = Box::leak(many_boxes.into_boxed_str());
    let deep: &'static str =
        Box::leak(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_boxed_str());
    let huge_field: &'static str = Box::leak("x".repeat(1024 * 1024 + 10).into_boxed_str());
    let long_prompt: &'static str = Box::leak("red roof ".repeat(5000).into_boxed_str());
    let p = |v: &'static str| ("point_coords", v);
    vec![
        // Prompt JSON of the wrong type or shape.
        case(
            "point_coords is a string",
            PREDICT,
            tif(),
            &[p("\"abc\"")],
            400,
            "Invalid point_coords",
        ),
        case(
            "point_coords is a bool",
            PREDICT,
            tif(),
            &[p("true")],
            400,
            "Invalid point_coords",
        ),
        case(
            "point_coords is an object",
            PREDICT,
            tif(),
            &[p("{\"x\": 1, \"y\": 2}")],
            400,
            "Invalid point_coords",
        ),
        case(
            "point_coords of strings",
            PREDICT,
            tif(),
            &[p("[[\"a\", \"b\"]]")],
            400,
            "not a finite number",
        ),
        case(
            "point_coords with null",
            PREDICT,
            tif(),
            &[p("[[1, null]]")],
            400,
            "not a finite number",
        ),
        case(
            "point_coords row of 1",
            PREDICT,
            tif(),
            &[p("[[1]]")],
            400,
            "expected 2 numbers",
        ),
        case(
            "point_coords row of 3",
            PREDICT,
            tif(),
            &[p("[[1, 2, 3]]")],
            400,
            "expected 2 numbers",
        ),
        case(
            "point_coords literal NaN",
            PREDICT,
            tif(),
            &[p("[[NaN, 1]]")],
            400,
            "Invalid JSON in prompt fields",
        ),
        case(
            "point_coords 1e999",
            PREDICT,
            tif(),
            &[p("[[1e999, 1]]")],
            400,
            "Invalid JSON in prompt fields",
        ),
        case(
            "point_coords Infinity",
            PREDICT,
            tif(),
            &[p("[[Infinity, 1]]")],
            400,
            "Invalid JSON in prompt fields",
        ),
        case(
            "point_coords -1e308",
            PREDICT,
            tif(),
            &[p("[[-1e308, 1]]")],
            400,
            "lies outside the image",
        ),
        case(
            "point_coords nested 100000 deep",
            PREDICT,
            tif(),
            &[p(deep)],
            400,
            "Invalid JSON in prompt fields",
        ),
        case(
            "10000 points",
            PREDICT,
            tif(),
            &[p(ten_thousand)],
            400,
            "at most 1024",
        ),
        case(
            "point_labels of strings",
            PREDICT,
            tif(),
            &[p("[[1, 2]]"), ("point_labels", "[\"x\"]")],
            400,
            "Invalid point_labels",
        ),
        case(
            "point_labels an object",
            PREDICT,
            tif(),
            &[p("[[1, 2]]"), ("point_labels", "{\"a\": 1}")],
            400,
            "Invalid point_labels",
        ),
        case(
            "point_labels value 2",
            PREDICT,
            tif(),
            &[p("[[1, 2]]"), ("point_labels", "[2]")],
            400,
            "Invalid point_labels",
        ),
        case(
            "2 points, 1 label",
            PREDICT,
            tif(),
            &[p("[[1, 2], [3, 4]]"), ("point_labels", "[1]")],
            400,
            "1 labels but point_coords has 2",
        ),
        case(
            "1 point, 3 labels",
            PREDICT,
            tif(),
            &[p("[[1, 2]]"), ("point_labels", "[1, 0, 1]")],
            400,
            "3 labels but point_coords has 1",
        ),
        case(
            "boxes an object",
            PREDICT,
            tif(),
            &[("boxes", "{\"a\": 1}")],
            400,
            "Invalid boxes",
        ),
        case(
            "boxes row of 3",
            PREDICT,
            tif(),
            &[("boxes", "[[1, 2, 3]]")],
            400,
            "expected 4 numbers",
        ),
        case(
            "box xmin > xmax",
            PREDICT,
            tif(),
            &[("boxes", "[[300, 10, 100, 50]]")],
            400,
            "xmin must not exceed xmax",
        ),
        case(
            "box ymin > ymax",
            PREDICT,
            tif(),
            &[("boxes", "[[10, 200, 100, 50]]")],
            400,
            "xmin must not exceed xmax",
        ),
        case(
            "box outside the image",
            PREDICT,
            tif(),
            &[("boxes", "[[1000, 1000, 2000, 2000]]")],
            400,
            "does not overlap the image",
        ),
        case(
            "1000 boxes",
            PREDICT,
            tif(),
            &[("boxes", many_boxes)],
            400,
            "at most 256",
        ),
        case(
            "empty prompt arrays",
            PREDICT,
            tif(),
            &[p("[]"), ("boxes", "[]")],
            400,
            "At least one of point_coords or boxes",
        ),
        // CRS, sizes, bands, formats.
        case(
            "unknown point_crs name",
            PREDICT,
            tif(),
            &[p("[[1, 2]]"), ("point_crs", "NOT_A_CRS")],
            400,
            "Invalid point_crs",
        ),
        case(
            "point_crs bad PROJ string",
            PREDICT,
            tif(),
            &[p("[[1, 2]]"), ("point_crs", "+proj=nonsense +x=1")],
            400,
            "Invalid point_crs",
        ),
        case(
            "point_crs EPSG:0",
            PREDICT,
            tif(),
            &[p("[[1, 2]]"), ("point_crs", "EPSG:0")],
            400,
            "Invalid point_crs",
        ),
        case(
            "lon/lat far from the image",
            PREDICT,
            tif(),
            &[p("[[100, -80]]"), ("point_crs", "EPSG:4326")],
            400,
            "lies outside the image",
        ),
        case(
            "min_size negative",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("min_size", "-1")],
            400,
            "min_size",
        ),
        case(
            "min_size 1e30",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("min_size", "1e30")],
            422,
            "not a valid integer",
        ),
        case(
            "max_size negative (= no limit)",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("max_size", "-100")],
            200,
            "",
        ),
        case(
            "max_size words",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("max_size", "big")],
            422,
            "max_size",
        ),
        case(
            "bands index 4 of 3",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("bands", "4,3,2")],
            400,
            "band 4 does not exist",
        ),
        case(
            "bands index 0",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("bands", "0")],
            400,
            "start at 1",
        ),
        case(
            "bands index overflow",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("bands", "99999999999999999999999")],
            400,
            "Invalid bands",
        ),
        case(
            "bands four of them",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("bands", "1,2,3,1")],
            400,
            "one to three",
        ),
        case(
            "output_format path",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("output_format", "../../etc/passwd")],
            400,
            "Invalid output_format",
        ),
        case(
            "model_version wrong",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("model_version", "sam9")],
            400,
            "Invalid model_version",
        ),
        case(
            "form field over 1 MiB",
            PREDICT,
            tif(),
            &[p("[[200, 150]]"), ("junk", huge_field)],
            413,
            "larger than",
        ),
        case(
            "no file part",
            PREDICT,
            None,
            &[p("[[200, 150]]")],
            422,
            "Field required: file",
        ),
        // Automatic generator fields.
        case(
            "automatic points_per_side -1",
            AUTOMATIC,
            tif(),
            &[("points_per_side", "-1")],
            400,
            "points_per_side",
        ),
        case(
            "automatic points_per_side 0",
            AUTOMATIC,
            tif(),
            &[("points_per_side", "0")],
            400,
            "points_per_side",
        ),
        case(
            "automatic points_per_side 100000",
            AUTOMATIC,
            tif(),
            &[("points_per_side", "100000")],
            400,
            "points_per_side",
        ),
        case(
            "automatic points_per_side 1e10",
            AUTOMATIC,
            tif(),
            &[("points_per_side", "1e10")],
            400,
            "points_per_side",
        ),
        case(
            "automatic crop_n_layers 9",
            AUTOMATIC,
            tif(),
            &[("crop_n_layers", "9")],
            400,
            "crop_n_layers",
        ),
        case(
            "automatic points_per_batch 0",
            AUTOMATIC,
            tif(),
            &[("points_per_batch", "0")],
            400,
            "points_per_batch",
        ),
        case(
            "automatic pred_iou_thresh nan",
            AUTOMATIC,
            tif(),
            &[("pred_iou_thresh", "nan")],
            422,
            "pred_iou_thresh",
        ),
        case(
            "automatic box_nms_thresh 2",
            AUTOMATIC,
            tif(),
            &[("box_nms_thresh", "2")],
            400,
            "box_nms_thresh",
        ),
        case(
            "automatic crop_overlap_ratio 1",
            AUTOMATIC,
            tif(),
            &[("crop_overlap_ratio", "1")],
            400,
            "crop_overlap_ratio",
        ),
        case(
            "automatic foreground maybe",
            AUTOMATIC,
            tif(),
            &[("foreground", "maybe")],
            422,
            "foreground",
        ),
        case(
            "automatic valid (points_per_side 4)",
            AUTOMATIC,
            tif(),
            &[("points_per_side", "4")],
            200,
            "",
        ),
        // Text endpoint fields.
        case(
            "text missing prompt",
            TEXT,
            tif(),
            &[],
            422,
            "Field required: prompt",
        ),
        case(
            "text blank prompt",
            TEXT,
            tif(),
            &[("prompt", "   ")],
            422,
            "Field required: prompt",
        ),
        case(
            "text bad backend",
            TEXT,
            tif(),
            &[("prompt", "red"), ("backend", "tensorflow")],
            400,
            "Invalid backend",
        ),
        case(
            "text confidence 2",
            TEXT,
            tif(),
            &[("prompt", "red"), ("confidence_threshold", "2")],
            400,
            "confidence_threshold",
        ),
        case(
            "text model_id wrong",
            TEXT,
            tif(),
            &[("prompt", "red"), ("model_id", "facebook/sam9")],
            400,
            "Invalid model_id",
        ),
        case(
            "text 45000-char prompt",
            TEXT,
            tif(),
            &[("prompt", long_prompt)],
            400,
            "at most 4096",
        ),
        case(
            "text 4000-char prompt (under the limit, truncated to the context)",
            TEXT,
            tif(),
            &[("prompt", &long_prompt[..4000])],
            200,
            "",
        ),
        case(
            "text unicode prompt",
            TEXT,
            tif(),
            &[("prompt", "🔴 красный 赤い \u{0}")],
            200,
            "",
        ),
    ]
}

#[rustfmt::skip]
fn http_cases() -> Vec<Case> {
    vec![
        Case {
            name: "multipart with a broken boundary".into(),
            path: PREDICT,
            body: Body::Raw {
                content_type: "multipart/form-data; boundary=XYZ",
                body: b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.tif\"\r\n\r\nabc".to_vec(),
            },
            status: 400,
            want: "multipart",
        },
        Case {
            name: "JSON body instead of a form".into(),
            path: PREDICT,
            body: Body::Raw { content_type: "application/json", body: b"{\"point_coords\": [[1, 2]]}".to_vec() },
            status: 422,
            want: "Field required: file",
        },
        Case { name: "unknown route".into(), path: "/segment/everything", body: Body::Get, status: 404, want: "Not Found" },
        Case { name: "GET on a POST route".into(), path: PREDICT, body: Body::Get, status: 405, want: "Method Not Allowed" },
    ]
}

/// What a row's response must be: its status, no 5xx, and a `detail` naming the problem.
fn check(server: &Server, c: &Case) -> Result<(), Failed> {
    let response = send(server, c);
    let status = response.status().as_u16();
    let masks = response
        .headers()
        .get("x-samgeo-masks")
        .map(|v| v.to_str().unwrap_or("").to_string());
    let text = response.text().unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_string));
    let shown = match (&detail, status) {
        (Some(d), _) => d.clone(),
        (None, 200) => format!("ok, {} mask(s)", masks.unwrap_or_default()),
        (None, _) => format!(
            "NO JSON DETAIL: {}",
            text.chars().take(120).collect::<String>()
        ),
    };
    eprintln!("| {} | {status} | {} |", c.name, shown.replace('\n', " "));
    if status >= 500 {
        return Err(format!("server error {status}: {shown}").into());
    }
    if status != c.status {
        return Err(format!("expected {}, got {status}: {shown}", c.status).into());
    }
    if status != 200 && !detail.as_deref().is_some_and(|d| d.contains(c.want)) {
        return Err(format!("detail {shown:?} lacks {:?}", c.want).into());
    }
    Ok(())
}

/// The decompression bomb on a server of its own, so that the peak memory around it is its own.
fn bomb_stays_small() -> Result<(), Failed> {
    let server = Server::start();
    let before = peak_rss_kib(server.pid());
    let bomb = generated_file_cases()
        .into_iter()
        .find(|c| c.name.starts_with("decompression bomb"))
        .ok_or("no bomb case")?;
    check(&server, &bomb)?;
    let grown = peak_rss_kib(server.pid()).saturating_sub(before);
    eprintln!("decompression bomb: peak RSS grew by {grown} KiB");
    if grown >= 64 * 1024 {
        return Err(format!("the bomb made the server allocate {grown} KiB").into());
    }
    Ok(())
}

/// Every row is a test of its own (named by the row), against one shared server; the bomb and
/// the `point_crs` check start their own. After the table, the shared server must still answer
/// `/health`.
fn main() {
    let args = Arguments::from_args();
    let server = Arc::new(Server::start());
    let mut cases = generated_file_cases();
    cases.retain(|c| !c.name.starts_with("decompression bomb"));
    cases.extend(real_data_cases());
    cases.extend(field_cases());
    cases.extend(http_cases());
    let mut trials = vec![
        Trial::test(
            "decompression bomb: peak memory stays small",
            bomb_stays_small,
        ),
        Trial::test(
            "point_crs never reads files or fetches URLs",
            point_crs_never_reads_files_or_fetches_urls,
        ),
    ];
    for c in cases {
        let server = Arc::clone(&server);
        trials.push(Trial::test(c.name.clone(), move || check(&server, &c)));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    let health = server.get("/health").status().as_u16();
    drop(server);
    if health != 200 {
        eprintln!("the server stopped answering /health after the table ({health})");
        std::process::exit(101);
    }
    conclusion.exit();
}

/// `point_crs` is a CRS definition, never a file to read or a URL to fetch: GDAL's
/// `SetFromUserInput` would otherwise open paths (and `/vsicurl/` URLs) and fetch `http://`
/// definitions, a server-side request forgery. A loopback listener checks that nothing connects;
/// a WKT file on disk checks that nothing is read.
fn point_crs_never_reads_files_or_fetches_urls() -> Result<(), Failed> {
    use std::io::Read;
    use std::net::TcpListener;

    let server = Server::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let wkt_file = common::temp_dir("crs-file").join("utm.wkt");
    let wkt = gdal::spatial_ref::SpatialRef::from_epsg(32618)
        .unwrap()
        .to_wkt()
        .unwrap();
    std::fs::write(&wkt_file, wkt).unwrap();
    let scene = Scene::red_square();
    let (x, y) = scene.to_map(200.0, 150.0);
    let point = format!("[[{x}, {y}]]");
    let definitions = [
        format!("http://127.0.0.1:{port}/crs.wkt"),
        format!("https://127.0.0.1:{port}/crs.wkt"),
        format!("/vsicurl/http://127.0.0.1:{port}/crs.wkt"),
        format!("/vsicurl_streaming/http://127.0.0.1:{port}/crs.wkt"),
        wkt_file.display().to_string(),
        format!("/vsigzip/{}", wkt_file.display()),
        "/proc/self/environ".to_string(),
        format!("DICT:{},32618", wkt_file.display()),
    ];
    let mut failures = Vec::new();
    // A short client timeout: a server that waits on the URL fails this test quickly.
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    for definition in &definitions {
        let form = Form::new()
            .part("file", Part::bytes(scene.geotiff()).file_name("scene.tif"))
            .text("point_coords", point.clone())
            .text("point_crs", definition.clone());
        let r = match client.post(server.url(PREDICT)).multipart(form).send() {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{definition}: no answer: {e}"));
                continue;
            }
        };
        let (status, d) = common::detail(r);
        eprintln!("| point_crs {definition} | {status} | {d} |");
        if status != 400 || !d.contains("Invalid point_crs") {
            failures.push(format!("{definition}: {status} {d}"));
        }
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 512];
            let n = stream.read(&mut buf).unwrap_or(0);
            failures.push(format!(
                "{definition}: the server connected out: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ));
        }
    }
    // The same WKT given inline works: the refusal is about where it comes from.
    let inline = std::fs::read_to_string(&wkt_file).unwrap();
    let r = server.post_form(
        PREDICT,
        Some(("scene.tif", scene.geotiff())),
        &[("point_coords", &point), ("point_crs", &inline)],
    );
    assert_eq!(
        r.status().as_u16(),
        200,
        "inline WKT: {}",
        r.text().unwrap()
    );
    let _ = std::fs::remove_dir_all(wkt_file.parent().unwrap());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}
