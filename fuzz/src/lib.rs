//! The checks behind the fuzz targets, shared with the corpus replay test (`tests/replay.rs`,
//! which runs on stable). Each takes arbitrary bytes, drives one piece of request handling the
//! way the server does, and asserts what must hold for any input: no panic, errors with the
//! documented status, results within their documented bounds.

use std::sync::Once;

use samgeo_host::http::form::Form;
use samgeo_host::http::forms::{AutomaticForm, PredictForm, TextForm};
use samgeo_host::pipeline::mask_generator::{crops, grid};
use samgeo_host::pipeline::prompts::{Prompts, MAX_BOXES, MAX_POINTS};
use samgeo_host::raster::{BandSelection, OpenRaster, RasterError, RasterLimits};

/// `point_coords`, `point_labels` and `boxes`: the input split at NUL bytes; an absent or empty
/// part is an absent field (as the form reader treats blank fields).
pub fn prompts(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text
        .split('\0')
        .map(|s| (!s.trim().is_empty()).then_some(s));
    let (coords, labels, boxes) = (
        parts.next().flatten(),
        parts.next().flatten(),
        parts.next().flatten(),
    );
    match Prompts::parse(coords, labels, boxes) {
        Ok(p) => {
            assert_eq!(p.points.len(), p.labels.len(), "one label per point");
            assert!(
                !p.points.is_empty() || !p.boxes.is_empty(),
                "a prompt is required"
            );
            assert!(p.points.len() <= MAX_POINTS && p.boxes.len() <= MAX_BOXES);
            assert!(p.labels.iter().all(|&l| l == 0 || l == 1), "{:?}", p.labels);
            assert!(p.points.iter().flatten().all(|v| v.is_finite()));
            for b in &p.boxes {
                assert!(b.iter().all(|v| v.is_finite()));
                assert!(b[0] <= b[2] && b[1] <= b[3], "{b:?}");
            }
        }
        Err(e) => {
            assert_eq!(e.status, 400, "{e}");
            assert!(!e.detail.is_empty());
        }
    }
}

/// Field names the handlers read (and a few they do not).
const FIELDS: [&str; 24] = [
    "model_version",
    "model_id",
    "output_format",
    "point_coords",
    "point_labels",
    "boxes",
    "point_crs",
    "multimask_output",
    "min_size",
    "max_size",
    "foreground",
    "unique",
    "points_per_side",
    "points_per_batch",
    "pred_iou_thresh",
    "stability_score_thresh",
    "stability_score_offset",
    "box_nms_thresh",
    "crop_n_layers",
    "crop_nms_thresh",
    "crop_overlap_ratio",
    "crop_n_points_downscale_factor",
    "bands",
    "confidence_threshold",
];

/// Form fields: the input is lines `key=value` (a line starting with a byte below 0x20 names
/// one of [`FIELDS`] by that byte, so the fuzzer reaches every name cheaply). The fields are
/// parsed into each endpoint's typed form as the handlers do (any error is a 422); then the band
/// selection and the automatic parameters are built from them.
pub fn form_fields(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut pairs = Vec::new();
    for line in text.split('\n') {
        let (key, value) = match line.as_bytes().first() {
            Some(&b) if b < 0x20 => (
                FIELDS[b as usize % FIELDS.len()].to_string(),
                line[1..].to_string(),
            ),
            _ => match line.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => continue,
            },
        };
        pairs.push((key, value));
    }
    let form = Form::from_fields(pairs);
    if let Err(e) = form.parse::<PredictForm>() {
        assert_eq!(e.status, 422, "{e}");
    }
    if let Err(e) = form.parse::<TextForm>() {
        assert_eq!(e.status, 422, "{e}");
    }
    match form.parse::<AutomaticForm>() {
        Ok(automatic) => {
            for v in [
                automatic.pred_iou_thresh,
                automatic.stability_score_thresh,
                automatic.crop_overlap_ratio,
                automatic.confidence_threshold,
            ] {
                assert!(v.is_finite(), "{v}");
            }
            band_selection(automatic.bands.as_deref());
            automatic_params(&automatic);
        }
        Err(e) => assert_eq!(e.status, 422, "{e}"),
    }
}

fn band_selection(field: Option<&str>) {
    let Ok(selection) = BandSelection::parse(field) else {
        return;
    };
    let _ = selection.key();
    for count in 0..=6usize {
        let rgb = (count >= 3).then_some([3, 2, 1]);
        match selection.resolve_with(count, rgb) {
            Ok(bands) => assert!(
                bands.iter().all(|&b| b >= 1 && b <= count),
                "{bands:?} of {count}"
            ),
            Err(RasterError::Invalid(m)) => assert!(!m.is_empty()),
            Err(RasterError::TooLarge(m)) => panic!("band selection cannot be too large: {m}"),
        }
    }
}

/// The automatic generator's settings as `/segment/automatic` builds them; when they validate,
/// the crop boxes and point grids they imply are built for a few image sizes.
fn automatic_params(form: &AutomaticForm) {
    let Ok(params) = form.params(1) else {
        return;
    };
    let grids = grid::layer_grids(
        params.points_per_side,
        params.crop_n_layers,
        params.crop_n_points_downscale_factor,
    );
    assert_eq!(grids.len(), params.crop_n_layers as usize + 1);
    for g in &grids {
        assert!(
            !g.is_empty(),
            "validated settings leave a layer without points"
        );
        assert!(
            g.iter().flatten().all(|v| (0.0..=1.0).contains(v)),
            "grid outside [0, 1]"
        );
    }
    for (w, h) in [(1, 1), (2, 3), (17, 1000), (1024, 768)] {
        for c in crops::crop_boxes(w, h, params.crop_n_layers, params.crop_overlap_ratio) {
            let b = c.crop;
            assert!(b.width() >= 1 && b.height() >= 1, "{b:?} in {w}×{h}");
            assert!(b.x1 <= w && b.y1 <= h, "{b:?} outside {w}×{h}");
            let pts = grid::scale_points(&grids[c.layer as usize], b.width(), b.height());
            assert!(pts
                .iter()
                .all(|p| p[0] <= b.width() as f64 && p[1] <= b.height() as f64));
        }
    }
}

static GDAL: Once = Once::new();

/// Uploaded bytes opened as the server opens them, then read as the model's RGB image (small,
/// to keep each run fast) and as a window.
pub fn raster_decode(data: &[u8]) {
    GDAL.call_once(|| {
        for (k, v) in [
            ("GDAL_PAM_ENABLED", "NO"),
            ("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR"),
            ("GDAL_CACHEMAX", "64"),
            ("CPL_DEBUG", "OFF"),
        ] {
            gdal::config::set_config_option(k, v).unwrap();
        }
        gdal::config::set_error_handler(|_, _, _| {});
    });
    let limits = RasterLimits {
        max_pixels: 1 << 20,
    };
    let raster = match OpenRaster::open(data.to_vec(), limits) {
        Ok(r) => r,
        Err(RasterError::Invalid(m)) | Err(RasterError::TooLarge(m)) => {
            assert!(!m.is_empty());
            return;
        }
    };
    let info = raster.info().clone();
    assert!(info.width >= 1 && info.height >= 1 && info.band_count >= 1);
    assert!(info.width as u64 * info.height as u64 <= limits.max_pixels);
    for bands in [
        BandSelection::default(),
        BandSelection::parse(Some("2")).unwrap(),
    ] {
        if let Ok(rgb) = raster.read_rgb(&bands, 32) {
            assert!(rgb.width >= 1 && rgb.height >= 1 && rgb.width <= 32 && rgb.height <= 32);
            assert!(rgb.width <= info.width && rgb.height <= info.height);
            assert_eq!(
                rgb.pixels.len(),
                rgb.width as usize * rgb.height as usize * 3
            );
        }
    }
    let window = (
        info.width / 3,
        info.height / 4,
        info.width.min(info.width / 3 + 5),
        info.height,
    );
    if let Ok(rgb) = raster.read_rgb_window(&BandSelection::default(), window, 8) {
        assert_eq!(
            rgb.pixels.len(),
            rgb.width as usize * rgb.height as usize * 3
        );
    }
}
