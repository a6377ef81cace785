//! Parameters of automatic mask generation, with segment-anything's defaults (except
//! `pred_iou_thresh`, which follows the API's default of 0.8, as SAM2's generator does).

/// Settings of [`generate`](super::generate). Thresholds are `f32` because the reference
/// compares them against `float32` tensors (so a score of `0.8f32` does not pass `> 0.8`).
#[derive(Debug, Clone, PartialEq)]
pub struct AutomaticParams {
    /// Points sampled along one side of the image (the grid has `points_per_side²` points).
    pub points_per_side: u32,
    /// Points (prompt rows) decoded per model call.
    pub points_per_batch: u32,
    /// Candidates whose predicted IoU is not above this are dropped (no filter when ≤ 0).
    pub pred_iou_thresh: f32,
    /// Candidates whose stability score is below this are dropped (no filter when ≤ 0).
    pub stability_score_thresh: f32,
    /// Offset of the two thresholds the stability score compares.
    pub stability_score_offset: f32,
    /// Box IoU above which NMS drops a duplicate within one crop.
    pub box_nms_thresh: f32,
    /// Crop layers beyond the whole image (layer `i` has `4^i` crops).
    pub crop_n_layers: u32,
    /// Box IoU above which NMS drops a duplicate between crops.
    pub crop_nms_thresh: f32,
    /// Overlap of neighbouring crops in layer 1, as a fraction of the image's short side.
    pub crop_overlap_ratio: f64,
    /// Points per side in layer `i` are `points_per_side / factor^i`.
    pub crop_n_points_downscale_factor: u32,
    /// Disconnected regions and holes smaller than this many pixels are removed (0: off).
    pub min_mask_region_area: u64,
    /// Logit threshold of a mask pixel.
    pub mask_threshold: f32,
    /// Threads for post-processing (upsampling, region clean-up). The result never depends
    /// on it.
    pub threads: usize,
}

impl Default for AutomaticParams {
    fn default() -> Self {
        AutomaticParams {
            points_per_side: 32,
            points_per_batch: 64,
            pred_iou_thresh: 0.8,
            stability_score_thresh: 0.95,
            stability_score_offset: 1.0,
            box_nms_thresh: 0.7,
            crop_n_layers: 0,
            crop_nms_thresh: 0.7,
            crop_overlap_ratio: 512.0 / 1500.0,
            crop_n_points_downscale_factor: 1,
            min_mask_region_area: 0,
            mask_threshold: 0.0,
            threads: 1,
        }
    }
}

/// Largest `points_per_side`.
pub const MAX_POINTS_PER_SIDE: u32 = 256;
/// Largest `points_per_batch`.
pub const MAX_POINTS_PER_BATCH: u32 = 1024;
/// Largest `crop_n_layers`.
pub const MAX_CROP_LAYERS: u32 = 4;
/// Largest `threads`.
pub const MAX_THREADS: usize = 256;

impl AutomaticParams {
    /// Checks every value; the message names the parameter and its allowed range (the HTTP
    /// layer answers 400 with it).
    pub fn validate(&self) -> Result<(), String> {
        let range_u32 = |name: &str, v: u32, lo: u32, hi: u32| {
            if v < lo || v > hi {
                Err(format!("{name} must be between {lo} and {hi}; got {v}"))
            } else {
                Ok(())
            }
        };
        let finite = |name: &str, v: f32| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("{name} must be a finite number; got {v}"))
            }
        };
        let unit = |name: &str, v: f32| {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1; got {v}"))
            }
        };
        range_u32(
            "points_per_side",
            self.points_per_side,
            1,
            MAX_POINTS_PER_SIDE,
        )?;
        range_u32(
            "points_per_batch",
            self.points_per_batch,
            1,
            MAX_POINTS_PER_BATCH,
        )?;
        finite("pred_iou_thresh", self.pred_iou_thresh)?;
        finite("stability_score_thresh", self.stability_score_thresh)?;
        finite("stability_score_offset", self.stability_score_offset)?;
        if self.stability_score_offset < 0.0 {
            return Err(format!(
                "stability_score_offset must not be negative; got {}",
                self.stability_score_offset
            ));
        }
        unit("box_nms_thresh", self.box_nms_thresh)?;
        unit("crop_nms_thresh", self.crop_nms_thresh)?;
        range_u32("crop_n_layers", self.crop_n_layers, 0, MAX_CROP_LAYERS)?;
        if !(self.crop_overlap_ratio.is_finite() && (0.0..1.0).contains(&self.crop_overlap_ratio)) {
            return Err(format!(
                "crop_overlap_ratio must be at least 0 and below 1; got {}",
                self.crop_overlap_ratio
            ));
        }
        range_u32(
            "crop_n_points_downscale_factor",
            self.crop_n_points_downscale_factor,
            1,
            MAX_POINTS_PER_SIDE,
        )?;
        let deepest = super::grid::points_per_side_at(
            self.points_per_side,
            self.crop_n_points_downscale_factor,
            self.crop_n_layers,
        );
        if deepest == 0 {
            return Err(format!(
                "points_per_side {} / crop_n_points_downscale_factor {}^crop_n_layers {} leaves \
                 no point in the last crop layer",
                self.points_per_side, self.crop_n_points_downscale_factor, self.crop_n_layers
            ));
        }
        finite("mask_threshold", self.mask_threshold)?;
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(format!(
                "threads must be between 1 and {MAX_THREADS}; got {}",
                self.threads
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let p = AutomaticParams::default();
        assert_eq!(p.points_per_side, 32);
        assert_eq!(p.pred_iou_thresh, 0.8);
        assert!(p.validate().is_ok());
    }

    #[test]
    fn out_of_range_values_are_named() {
        let bad = |f: &dyn Fn(&mut AutomaticParams), name: &str| {
            let mut p = AutomaticParams::default();
            f(&mut p);
            let e = p.validate().unwrap_err();
            assert!(e.contains(name), "{e}");
        };
        bad(&|p| p.points_per_side = 0, "points_per_side");
        bad(&|p| p.points_per_side = 257, "points_per_side");
        bad(&|p| p.points_per_batch = 0, "points_per_batch");
        bad(&|p| p.pred_iou_thresh = f32::NAN, "pred_iou_thresh");
        bad(
            &|p| p.stability_score_thresh = f32::INFINITY,
            "stability_score_thresh",
        );
        bad(&|p| p.box_nms_thresh = 1.5, "box_nms_thresh");
        bad(&|p| p.crop_nms_thresh = -0.1, "crop_nms_thresh");
        bad(&|p| p.crop_n_layers = 5, "crop_n_layers");
        bad(&|p| p.crop_overlap_ratio = 1.0, "crop_overlap_ratio");
        bad(
            &|p| p.crop_n_points_downscale_factor = 0,
            "crop_n_points_downscale_factor",
        );
        bad(&|p| p.threads = 0, "threads");
        bad(
            &|p| {
                p.points_per_side = 4;
                p.crop_n_layers = 2;
                p.crop_n_points_downscale_factor = 4;
            },
            "last crop layer",
        );
        // Thresholds above 1 are allowed (they simply keep nothing).
        let p = AutomaticParams {
            pred_iou_thresh: 1.01,
            ..AutomaticParams::default()
        };
        assert!(p.validate().is_ok());
    }
}
