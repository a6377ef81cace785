//! The forms of `/segment/predict`, `/segment/automatic` and `/segment/text`: one struct each,
//! which the handlers parse (serde, through [`super::fields`]) and `/openapi.json` describes
//! (utoipa), so that the document cannot drift from what is accepted. Defaults live here too, as
//! functions both serde and the schema call. What the type alone cannot say (allowed model
//! versions and ids, installed output formats, the configured default model version) is added to
//! the document from the same constants the handlers check against ([`super::openapi`]).

use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::AppError;
use crate::pipeline::mask_generator::AutomaticParams;

/// The `file` part: read by [`super::form::Form::read`] before the text fields are parsed; here
/// so that the document lists it. (`image_id` and `source` are taken out of the fields before
/// they are parsed too; the forms list them for the document.)
#[derive(Debug, Default, Deserialize)]
pub struct FilePart(#[allow(dead_code)] serde::de::IgnoredAny);

/// Values of `backend` on `/segment/text` (both run the same ONNX export).
pub const BACKENDS: [&str; 2] = ["meta", "transformers"];

/// Default values shared by the parser and the document.
pub mod defaults {
    use super::AutomaticParams;

    /// An `f32` parameter as the `f64` a client writes (0.8, not 0.800000011920929).
    fn decimal(v: f32) -> f64 {
        v.to_string().parse().unwrap_or(v as f64)
    }

    pub fn output_format() -> String {
        "geojson".into()
    }
    pub fn yes() -> bool {
        true
    }
    pub fn tiling() -> String {
        "auto".into()
    }
    pub fn backend() -> String {
        "meta".into()
    }
    pub fn confidence_threshold() -> f64 {
        0.5
    }
    pub fn points_per_side() -> i64 {
        AutomaticParams::default().points_per_side.into()
    }
    pub fn points_per_batch() -> i64 {
        AutomaticParams::default().points_per_batch.into()
    }
    pub fn pred_iou_thresh() -> f64 {
        decimal(AutomaticParams::default().pred_iou_thresh)
    }
    pub fn stability_score_thresh() -> f64 {
        decimal(AutomaticParams::default().stability_score_thresh)
    }
    pub fn stability_score_offset() -> f64 {
        decimal(AutomaticParams::default().stability_score_offset)
    }
    pub fn box_nms_thresh() -> f64 {
        decimal(AutomaticParams::default().box_nms_thresh)
    }
    pub fn crop_n_layers() -> i64 {
        AutomaticParams::default().crop_n_layers.into()
    }
    pub fn crop_nms_thresh() -> f64 {
        decimal(AutomaticParams::default().crop_nms_thresh)
    }
    pub fn crop_overlap_ratio() -> f64 {
        AutomaticParams::default().crop_overlap_ratio
    }
    pub fn crop_n_points_downscale_factor() -> i64 {
        AutomaticParams::default()
            .crop_n_points_downscale_factor
            .into()
    }
    pub fn min_mask_region_area() -> i64 {
        AutomaticParams::default().min_mask_region_area as i64
    }
}

/// Form of `POST /segment/predict`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PredictForm {
    /// The image: GeoTIFF, PNG or JPEG. Give exactly one of `file`, `image_id` and `source`.
    #[serde(default)]
    #[schema(required = false, value_type = String, format = Binary)]
    pub file: FilePart,
    /// Instead of `file`: the id of a raster stored with `POST /images`.
    pub image_id: Option<String>,
    /// Instead of `file`: a path or GDAL virtual path (`/vsicurl/https://...`) read in place,
    /// under one of the server's `[inputs] allowed_sources` prefixes.
    pub source: Option<String>,
    /// sam, sam2 or sam3 (the default is configured: `api.default_model_version_predict`).
    pub model_version: Option<String>,
    /// Model id; the version's default when absent.
    pub model_id: Option<String>,
    /// geojson, geotiff, png, json, detections, or any installed formatter plugin.
    #[serde(default = "defaults::output_format")]
    #[schema(default = defaults::output_format)]
    pub output_format: String,
    /// JSON `[[x, y], ...]`, in pixels or in `point_crs`.
    #[schema(example = "[[4, 4]]")]
    pub point_coords: Option<String>,
    /// JSON `[1, 0, ...]`: 1 foreground, 0 background (default all 1).
    #[schema(example = "[1]")]
    pub point_labels: Option<String>,
    /// JSON `[[xmin, ymin, xmax, ymax], ...]`: one mask per box.
    #[schema(example = "[[1, 1, 6, 6]]")]
    pub boxes: Option<String>,
    /// CRS of the prompt coordinates (points and box corners), e.g. EPSG:4326.
    pub point_crs: Option<String>,
    /// Let the model propose three candidates per prompt and keep the one with the highest
    /// predicted IoU (as the seed does).
    #[serde(default)]
    #[schema(default = false)]
    pub multimask_output: bool,
    /// With `multimask_output`: return every candidate (three per prompt, each with its score)
    /// instead of the best one. Not in the seed.
    #[serde(default)]
    #[schema(default = false)]
    pub all_candidates: bool,
    /// Smallest mask kept, in pixels (0 or more).
    #[serde(default)]
    #[schema(default = 0)]
    pub min_size: i64,
    /// Largest mask kept, in pixels (≤ 0: no limit).
    pub max_size: Option<i64>,
    /// Bands used as R,G,B, 1-based, e.g. "4,3,2" (default: the bands labelled red, green,
    /// blue, else the first three).
    pub bands: Option<String>,
    /// auto, on or off. `on`: the model looks at a window at native resolution around the
    /// prompts (1024 px, prompts at least 128 px inside; prompts farther apart get a window
    /// each); `auto` (default): so for rasters whose longest side exceeds `[tiling]
    /// auto_above_px` or above `server.max_pixels`; `off`: one look at the whole raster,
    /// downsampled (the seed's way). Masks are always in full-raster coordinates.
    #[serde(default = "defaults::tiling")]
    #[schema(default = defaults::tiling)]
    pub tiling: String,
}

/// Form of `POST /segment/automatic`. The generator's knobs beyond the seed's are
/// segment-anything's `SamAutomaticMaskGenerator` arguments, with its defaults.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AutomaticForm {
    /// The image: GeoTIFF, PNG or JPEG. Give exactly one of `file`, `image_id` and `source`.
    #[serde(default)]
    #[schema(required = false, value_type = String, format = Binary)]
    pub file: FilePart,
    /// Instead of `file`: the id of a raster stored with `POST /images`.
    pub image_id: Option<String>,
    /// Instead of `file`: a path or GDAL virtual path (`/vsicurl/https://...`) read in place,
    /// under one of the server's `[inputs] allowed_sources` prefixes.
    pub source: Option<String>,
    /// sam, sam2 or sam3 (the default is configured: `api.default_model_version_automatic`).
    pub model_version: Option<String>,
    /// Model id; the version's default when absent.
    pub model_id: Option<String>,
    /// geojson, geotiff, png, json, detections, or any installed formatter plugin.
    #[serde(default = "defaults::output_format")]
    #[schema(default = defaults::output_format)]
    pub output_format: String,
    /// Keep foreground objects only (drop masks touching most of the border).
    #[serde(default = "defaults::yes")]
    #[schema(default = true)]
    pub foreground: bool,
    /// Give each object its own value (else every mask is 1).
    #[serde(default = "defaults::yes")]
    #[schema(default = true)]
    pub unique: bool,
    /// Smallest mask kept, in pixels (0 or more).
    #[serde(default)]
    #[schema(default = 0)]
    pub min_size: i64,
    /// Largest mask kept, in pixels (≤ 0: no limit).
    pub max_size: Option<i64>,
    /// Points sampled along one side of the image (1 to 256).
    #[serde(default = "defaults::points_per_side")]
    #[schema(default = defaults::points_per_side)]
    pub points_per_side: i64,
    /// Points decoded per model call (1 to 1024).
    #[serde(default = "defaults::points_per_batch")]
    #[schema(default = defaults::points_per_batch)]
    pub points_per_batch: i64,
    /// Masks whose predicted IoU is not above this are dropped (≤ 0: no filter).
    #[serde(default = "defaults::pred_iou_thresh")]
    #[schema(default = defaults::pred_iou_thresh)]
    pub pred_iou_thresh: f64,
    /// Masks whose stability score is below this are dropped (≤ 0: no filter).
    #[serde(default = "defaults::stability_score_thresh")]
    #[schema(default = defaults::stability_score_thresh)]
    pub stability_score_thresh: f64,
    /// Offset of the two thresholds the stability score compares (0 or more).
    #[serde(default = "defaults::stability_score_offset")]
    #[schema(default = defaults::stability_score_offset)]
    pub stability_score_offset: f64,
    /// Box IoU above which NMS drops a duplicate within one crop (0 to 1).
    #[serde(default = "defaults::box_nms_thresh")]
    #[schema(default = defaults::box_nms_thresh)]
    pub box_nms_thresh: f64,
    /// Crop layers beyond the whole image (0 to 4; layer i has 4^i crops).
    #[serde(default = "defaults::crop_n_layers")]
    #[schema(default = defaults::crop_n_layers)]
    pub crop_n_layers: i64,
    /// Box IoU above which NMS drops a duplicate between crops (0 to 1).
    #[serde(default = "defaults::crop_nms_thresh")]
    #[schema(default = defaults::crop_nms_thresh)]
    pub crop_nms_thresh: f64,
    /// Overlap of neighbouring crops, as a fraction of the image's short side (0 to below 1).
    #[serde(default = "defaults::crop_overlap_ratio")]
    #[schema(default = defaults::crop_overlap_ratio)]
    pub crop_overlap_ratio: f64,
    /// Points per side in crop layer i are points_per_side / factor^i (1 or more).
    #[serde(default = "defaults::crop_n_points_downscale_factor")]
    #[schema(default = defaults::crop_n_points_downscale_factor)]
    pub crop_n_points_downscale_factor: i64,
    /// Disconnected regions and holes smaller than this many pixels are removed (0: off).
    #[serde(default = "defaults::min_mask_region_area")]
    #[schema(default = defaults::min_mask_region_area)]
    pub min_mask_region_area: i64,
    /// SAM3 only: detections scoring below this are dropped (0 to 1).
    #[serde(default = "defaults::confidence_threshold")]
    #[schema(default = defaults::confidence_threshold)]
    pub confidence_threshold: f64,
    /// Bands used as R,G,B, 1-based, e.g. "4,3,2".
    pub bands: Option<String>,
}

/// Form of `POST /segment/text` (SAM3).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TextForm {
    /// The image: GeoTIFF, PNG or JPEG. Give exactly one of `file`, `image_id` and `source`.
    #[serde(default)]
    #[schema(required = false, value_type = String, format = Binary)]
    pub file: FilePart,
    /// Instead of `file`: the id of a raster stored with `POST /images`.
    pub image_id: Option<String>,
    /// Instead of `file`: a path or GDAL virtual path (`/vsicurl/https://...`) read in place,
    /// under one of the server's `[inputs] allowed_sources` prefixes.
    pub source: Option<String>,
    /// What to find, e.g. "building".
    #[schema(example = "red")]
    pub prompt: String,
    /// SAM3 model id; facebook/sam3 when absent.
    pub model_id: Option<String>,
    /// meta or transformers: both run the same ONNX export here. facebook/sam3.1 works with meta
    /// only (as in the seed).
    #[serde(default = "defaults::backend")]
    #[schema(default = defaults::backend)]
    pub backend: String,
    /// geojson, geotiff, png, json, detections, or any installed formatter plugin. json and
    /// detections list the detector's boxes and scores.
    #[serde(default = "defaults::output_format")]
    #[schema(default = defaults::output_format)]
    pub output_format: String,
    /// Detections scoring below this are dropped (0 to 1).
    #[serde(default = "defaults::confidence_threshold")]
    #[schema(default = defaults::confidence_threshold)]
    pub confidence_threshold: f64,
    /// Smallest mask kept, in pixels (0 or more).
    #[serde(default)]
    #[schema(default = 0)]
    pub min_size: i64,
    /// Largest mask kept, in pixels (≤ 0: no limit).
    pub max_size: Option<i64>,
    /// Bands used as R,G,B, 1-based, e.g. "4,3,2".
    pub bands: Option<String>,
}

/// `min_size` / `max_size` in pixels: a negative `min_size` is 400; `max_size` ≤ 0 means none.
pub fn size_limits(min_size: i64, max_size: Option<i64>) -> Result<(i64, Option<i64>), AppError> {
    if min_size < 0 {
        return Err(AppError::bad_request(format!(
            "min_size must be 0 or more (got {min_size})"
        )));
    }
    Ok((min_size, max_size.filter(|&m| m > 0)))
}

/// A `confidence_threshold` between 0 and 1, else 400.
pub fn unit_threshold(confidence: f64) -> Result<f32, AppError> {
    if !(0.0..=1.0).contains(&confidence) {
        return Err(AppError::bad_request(format!(
            "confidence_threshold must be between 0 and 1 (got {confidence})"
        )));
    }
    Ok(confidence as f32)
}

impl AutomaticForm {
    /// The generator's settings, checked (400 naming the parameter and its range).
    pub fn params(&self, threads: usize) -> Result<AutomaticParams, AppError> {
        let count = |name: &str, v: i64| -> Result<u32, AppError> {
            u32::try_from(v)
                .map_err(|_| AppError::bad_request(format!("{name} must be 0 or more (got {v})")))
        };
        let params = AutomaticParams {
            points_per_side: count("points_per_side", self.points_per_side)?,
            points_per_batch: count("points_per_batch", self.points_per_batch)?,
            pred_iou_thresh: self.pred_iou_thresh as f32,
            stability_score_thresh: self.stability_score_thresh as f32,
            stability_score_offset: self.stability_score_offset as f32,
            box_nms_thresh: self.box_nms_thresh as f32,
            crop_n_layers: count("crop_n_layers", self.crop_n_layers)?,
            crop_nms_thresh: self.crop_nms_thresh as f32,
            crop_overlap_ratio: self.crop_overlap_ratio,
            crop_n_points_downscale_factor: count(
                "crop_n_points_downscale_factor",
                self.crop_n_points_downscale_factor,
            )?,
            min_mask_region_area: count("min_mask_region_area", self.min_mask_region_area)? as u64,
            threads,
            ..AutomaticParams::default()
        };
        params.validate().map_err(AppError::bad_request)?;
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields::parse;
    use super::*;

    #[test]
    fn defaults_match_the_generator() {
        let f: AutomaticForm = parse([]).unwrap();
        let p = AutomaticParams::default();
        assert_eq!(f.points_per_side, i64::from(p.points_per_side));
        assert_eq!(f.pred_iou_thresh as f32, p.pred_iou_thresh);
        assert_eq!(f.pred_iou_thresh, 0.8);
        assert_eq!(f.stability_score_thresh, 0.95);
        assert_eq!(f.crop_overlap_ratio, p.crop_overlap_ratio);
        assert!(f.foreground && f.unique);
        assert_eq!(f.output_format, "geojson");
    }

    #[test]
    fn text_needs_a_prompt() {
        let e = parse::<TextForm>([]).unwrap_err();
        assert_eq!(e.detail, "Field required: prompt");
        let t: TextForm = parse([("prompt", "roof"), ("confidence_threshold", "0.3")]).unwrap();
        assert_eq!((t.prompt.as_str(), t.confidence_threshold), ("roof", 0.3));
        assert_eq!(t.backend, "meta");
    }

    #[test]
    fn predict_fields() {
        let f: PredictForm = parse([
            ("multimask_output", "true"),
            ("max_size", "None"),
            ("point_coords", "[[1, 2]]"),
        ])
        .unwrap();
        assert!(f.multimask_output && !f.all_candidates);
        assert_eq!(f.max_size, None);
        assert_eq!(f.point_coords.as_deref(), Some("[[1, 2]]"));
        assert_eq!(f.model_version, None);
    }
}
