//! Test filter `misbehave-garbage-filter`: returns masks that break the contract.
//!
//! Parameter `mode`:
//! * `all` (default): one mask whose bbox lies outside the image and whose runs do not add up;
//! * `runs`: bbox inside the image, runs covering more pixels than the bbox;
//! * `bbox`: consistent runs, bbox outside the image;
//! * `area`: consistent runs and bbox, wrong `area`;
//! * `huge`: a bbox of u32::MAX x u32::MAX.

use samgeo_plugin_sdk::{BBox, Filter, Host, Mask, PluginInfo, Request};

/// The plugin.
pub struct GarbageFilter;

impl Filter for GarbageFilter {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "misbehave-garbage-filter",
            "Test plugin: returns masks with inconsistent runs and out-of-image boxes",
        )
    }

    fn apply(req: Request, _host: &dyn Host) -> Result<Vec<Mask>, String> {
        garbage(
            req.params.get("mode").unwrap_or("all"),
            req.masks.width,
            req.masks.height,
        )
    }
}

/// The broken masks for `mode` over a `w` x `h` image.
pub fn garbage(mode: &str, w: u32, h: u32) -> Result<Vec<Mask>, String> {
    let bbox = |x, y, width, height| BBox {
        x,
        y,
        width,
        height,
    };
    let mask = |bbox: BBox, runs: Vec<u32>, area: u64| Mask {
        id: 1,
        label: 1,
        score: 0.5,
        stability: 0.5,
        area,
        bbox,
        runs,
    };
    let m = match mode {
        "all" => mask(bbox(w, h, 10, 10), vec![3, 1000, 7], 1000),
        "runs" => mask(bbox(0, 0, 1, 1), vec![0, 5, 9], 5),
        "bbox" => mask(bbox(w.saturating_sub(1), 0, 4, 1), vec![0, 4], 4),
        "area" => mask(bbox(0, 0, 1, 1), vec![0, 1], 99),
        "huge" => mask(bbox(0, 0, u32::MAX, u32::MAX), vec![0, u32::MAX], 1),
        other => return Err(format!("parameter `mode`: unknown {other:?}")),
    };
    Ok(vec![m])
}

samgeo_plugin_sdk::export_filter!(GarbageFilter);

#[cfg(test)]
mod tests {
    #[test]
    fn every_mode_breaks_validation() {
        for mode in ["all", "runs", "bbox", "area", "huge"] {
            let m = &super::garbage(mode, 8, 8).unwrap()[0];
            assert!(samgeo_plugin_sdk::rle::validate(m, 8, 8).is_err(), "{mode}");
        }
    }
}
