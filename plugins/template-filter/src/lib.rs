//! Template filter plugin `min-score`: drops masks whose predicted IoU is below `min_score`.
//!
//! `scripts/new-plugin NAME --kind filter` copies this file into a new crate with `NAME` in
//! place of `min-score`. A filter runs when the server's `[plugins] filters` chain lists its
//! file, or when a request names it in the `filters` form field.

use samgeo_plugin_sdk::{Filter, Host, Mask, ParamType, PluginInfo, Request};

/// The name `GET /plugins` shows and requests use in `filters=...`.
pub const NAME: &str = "min-score";

/// The plugin.
pub struct Plugin;

impl Filter for Plugin {
    fn info() -> PluginInfo {
        PluginInfo::new(
            NAME,
            "Drops masks whose score is below min_score (template filter)",
        )
        .param(
            "min_score",
            ParamType::Number,
            Some("0"),
            "Smallest predicted IoU kept",
        )
    }

    /// Returns the masks to keep, in painting order. The host checked that `min_score`, if
    /// given, is a number.
    fn apply(req: Request, _host: &dyn Host) -> Result<Vec<Mask>, String> {
        let min = req.params.get_f64("min_score")?.unwrap_or(0.0);
        Ok(keep_above(req.masks.masks, min))
    }
}

/// The masks scoring at least `min`, in their order.
pub fn keep_above(masks: Vec<Mask>, min: f64) -> Vec<Mask> {
    masks
        .into_iter()
        .filter(|m| f64::from(m.score) >= min)
        .collect()
}

// Exports `Plugin` as the component's filter (compiles to nothing natively).
samgeo_plugin_sdk::export_filter!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::testutil::rect_mask;

    #[test]
    fn keeps_masks_above_the_score() {
        let mut a = rect_mask(1, 1, 0, 0, 2, 2);
        a.score = 0.4;
        let mut b = rect_mask(2, 2, 2, 2, 2, 2);
        b.score = 0.9;
        let kept = keep_above(vec![a, b], 0.5);
        assert_eq!(kept.iter().map(|m| m.id).collect::<Vec<_>>(), vec![2]);
    }
}
