//! Filter plugin `foreground`: drops background masks.
//!
//! Parameter `foreground`: absent or `false` keeps every mask; `true` drops background masks.
//! A mask is background when its bbox touches all four image edges **and** it covers more
//! than half of the image's pixels (the seed has no explicit rule; this one removes the
//! "everything else" field SAM tends to return without touching large real objects).

use samgeo_plugin_sdk::{Filter, Host, Mask, ParamType, PluginInfo, Request};

/// The plugin.
pub struct Foreground;

impl Filter for Foreground {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "foreground",
            "foreground=true drops background masks (touching all four edges, over half the image)",
        )
        .param(
            "foreground",
            ParamType::Boolean,
            Some("false"),
            "Drop background masks",
        )
    }

    fn apply(req: Request, _host: &dyn Host) -> Result<Vec<Mask>, String> {
        let on = req.params.get_bool("foreground")?.unwrap_or(false);
        let (w, h) = (req.masks.width, req.masks.height);
        let masks = req.masks.masks;
        if !on {
            return Ok(masks);
        }
        Ok(masks
            .into_iter()
            .filter(|m| !is_background(m, w, h))
            .collect())
    }
}

/// True when the mask's bbox touches all four edges of a `width` x `height` image and the mask
/// covers more than half of it.
pub fn is_background(m: &Mask, width: u32, height: u32) -> bool {
    let b = &m.bbox;
    let touches_all =
        !b.is_empty() && b.x == 0 && b.y == 0 && b.x_end() == width && b.y_end() == height;
    touches_all && m.area * 2 > u64::from(width) * u64::from(height)
}

samgeo_plugin_sdk::export_filter!(Foreground);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::testutil::{mask_from_rows, rect_mask};
    use samgeo_plugin_sdk::{MaskSet, NoHost, Params};

    fn run(p: &[(&str, &str)]) -> Vec<u32> {
        let masks = vec![
            // Background: the whole frame except an object in the middle.
            mask_from_rows(1, 1, 0, 0, &["1111", "1..1", "1..1", "1111"]),
            rect_mask(2, 2, 1, 1, 2, 2),
            // Touches all edges but covers only half: kept.
            mask_from_rows(3, 3, 0, 0, &["11..", "11..", "..11", "..11"]),
        ];
        let req = Request {
            masks: MaskSet {
                width: 4,
                height: 4,
                masks,
            },
            params: Params::from_pairs(p),
            ..Default::default()
        };
        Foreground::apply(req, &NoHost)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect()
    }

    #[test]
    fn drops_only_background_when_asked() {
        assert_eq!(run(&[("foreground", "true")]), vec![2, 3]);
        assert_eq!(run(&[("foreground", "false")]), vec![1, 2, 3]);
        assert_eq!(run(&[]), vec![1, 2, 3]);
    }

    #[test]
    fn rule() {
        let full = rect_mask(1, 1, 0, 0, 4, 4);
        assert!(is_background(&full, 4, 4));
        assert!(!is_background(&full, 5, 4));
        let empty = Mask::default();
        assert!(!is_background(&empty, 0, 0));
    }
}
