//! Filter plugin `size`: keeps the masks whose pixel area lies in `[min_size, max_size]`.
//!
//! Parameters `min_size` and `max_size` (pixels, integers): absent, empty, `None`/`null`, or
//! `<= 0` means no limit on that side (the seed's form treats `max_size=0` as "none" too).
//! Order and labels are kept.

use samgeo_plugin_sdk::{Filter, Host, Mask, ParamType, PluginInfo, Request};

/// The plugin.
pub struct Size;

impl Filter for Size {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "size",
            "Drops masks smaller than min_size or larger than max_size pixels",
        )
        .param(
            "min_size",
            ParamType::Integer,
            Some("0"),
            "Drop masks with fewer pixels (0: no lower limit)",
        )
        .param(
            "max_size",
            ParamType::Integer,
            None,
            "Drop masks with more pixels (absent or 0: no upper limit)",
        )
    }

    fn apply(req: Request, _host: &dyn Host) -> Result<Vec<Mask>, String> {
        let limit = |key: &str| -> Result<Option<u64>, String> {
            Ok(req
                .params
                .get_i64(key)?
                .filter(|&v| v > 0)
                .map(|v| v as u64))
        };
        let (min, max) = (limit("min_size")?, limit("max_size")?);
        Ok(filter_by_size(req.masks.masks, min, max))
    }
}

/// Keeps masks with `min <= area <= max` (a `None` bound is no limit).
pub fn filter_by_size(masks: Vec<Mask>, min: Option<u64>, max: Option<u64>) -> Vec<Mask> {
    masks
        .into_iter()
        .filter(|m| min.is_none_or(|lo| m.area >= lo) && max.is_none_or(|hi| m.area <= hi))
        .collect()
}

samgeo_plugin_sdk::export_filter!(Size);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::testutil::rect_mask;
    use samgeo_plugin_sdk::{MaskSet, NoHost, Params};

    fn run(p: &[(&str, &str)]) -> Result<Vec<u32>, String> {
        let masks = vec![
            rect_mask(1, 1, 0, 0, 1, 1),   // 1 px
            rect_mask(2, 2, 0, 0, 10, 10), // 100 px
            rect_mask(3, 3, 0, 0, 5, 2),   // 10 px
        ];
        let req = Request {
            masks: MaskSet {
                width: 10,
                height: 10,
                masks,
            },
            params: Params::from_pairs(p),
            ..Default::default()
        };
        Ok(Size::apply(req, &NoHost)?.iter().map(|m| m.id).collect())
    }

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(run(&[("min_size", "10")]).unwrap(), vec![2, 3]);
        assert_eq!(run(&[("max_size", "10")]).unwrap(), vec![1, 3]);
        assert_eq!(
            run(&[("min_size", "2"), ("max_size", "99")]).unwrap(),
            vec![3]
        );
    }

    #[test]
    fn no_limit_spellings() {
        for v in ["", "None", "null", "0", "-5"] {
            assert_eq!(
                run(&[("min_size", v), ("max_size", v)]).unwrap(),
                vec![1, 2, 3]
            );
        }
        assert_eq!(run(&[]).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn bad_value_names_the_key() {
        assert!(run(&[("max_size", "big")])
            .unwrap_err()
            .contains("max_size"));
    }
}
