//! Filter plugin `unique`: the seed's `unique` option of `save_masks`.
//!
//! Parameter `unique`:
//! * absent: no change (labels stay as the host set them, = id);
//! * `true`: masks sorted by area, largest first (ties keep their order), labelled
//!   `count - index` (largest = count, smallest = 1), and returned in that order, so smaller
//!   masks are painted over larger ones, exactly like the seed;
//! * `false`: one foreground mask, the union of all masks, labelled 255 (the seed's
//!   `mask_multiplier`), id 1, score = the highest score, stability = the lowest stability
//!   (the merged mask is only as stable as its least stable part).

use samgeo_plugin_sdk::rle::{for_each_span, from_bitmap};
use samgeo_plugin_sdk::{BBox, Filter, Host, Mask, ParamType, PluginInfo, Request};

/// The plugin.
pub struct Unique;

impl Filter for Unique {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "unique",
            "unique=true labels masks by area like the seed; unique=false merges them into one 255 mask",
        )
        .param("unique", ParamType::Boolean, Some("true"), "true: distinct labels 1..n; false: every mask labelled 255")
    }

    fn apply(req: Request, _host: &dyn Host) -> Result<Vec<Mask>, String> {
        match req.params.get_bool("unique")? {
            None => Ok(req.masks.masks),
            Some(true) => Ok(label_by_area(req.masks.masks)),
            Some(false) => merge(&req.masks.masks, req.masks.width, req.masks.height),
        }
    }
}

/// Sorts largest first and labels `count - index`.
pub fn label_by_area(mut masks: Vec<Mask>) -> Vec<Mask> {
    masks.sort_by_key(|m| std::cmp::Reverse(m.area));
    let count = masks.len() as u32;
    for (i, m) in masks.iter_mut().enumerate() {
        m.label = count - i as u32;
    }
    masks
}

/// The union of all masks as one mask labelled 255 (none when there are no set pixels).
pub fn merge(masks: &[Mask], width: u32, height: u32) -> Result<Vec<Mask>, String> {
    for m in masks {
        samgeo_plugin_sdk::rle::validate_pixels(m, width, height)?;
    }
    let win = masks
        .iter()
        .fold(BBox::default(), |acc, m| acc.union(&m.bbox));
    if win.is_empty() {
        return Ok(Vec::new());
    }
    let w = win.width as usize;
    let mut bits = vec![0u8; win.pixels() as usize];
    for m in masks {
        let (ox, oy) = ((m.bbox.x - win.x) as usize, (m.bbox.y - win.y) as usize);
        for_each_span(&m.bbox, &m.runs, |row, x0, x1| {
            let base = (oy + row as usize) * w + ox;
            bits[base + x0 as usize..base + x1 as usize].fill(1);
        })?;
    }
    let Some((bbox, runs, area)) = from_bitmap(win.x, win.y, win.width, win.height, &bits) else {
        return Ok(Vec::new());
    };
    let score = masks.iter().map(|m| m.score).fold(f32::MIN, f32::max);
    let stability = masks.iter().map(|m| m.stability).fold(f32::MAX, f32::min);
    Ok(vec![Mask {
        id: 1,
        label: 255,
        score,
        stability,
        area,
        bbox,
        runs,
    }])
}

samgeo_plugin_sdk::export_filter!(Unique);

#[cfg(test)]
mod tests {
    use super::*;
    use samgeo_plugin_sdk::rle::decode;
    use samgeo_plugin_sdk::testutil::rect_mask;
    use samgeo_plugin_sdk::{MaskSet, NoHost, Params};

    fn masks() -> Vec<Mask> {
        let mut a = rect_mask(1, 1, 0, 0, 2, 2); // 4 px
        a.score = 0.5;
        a.stability = 0.8;
        let b = rect_mask(2, 2, 1, 1, 3, 3); // 9 px
        let c = rect_mask(3, 3, 5, 0, 1, 1); // 1 px
        vec![a, b, c]
    }

    fn run(p: &[(&str, &str)]) -> Vec<Mask> {
        let req = Request {
            masks: MaskSet {
                width: 6,
                height: 4,
                masks: masks(),
            },
            params: Params::from_pairs(p),
            ..Default::default()
        };
        Unique::apply(req, &NoHost).unwrap()
    }

    #[test]
    fn absent_is_a_no_op() {
        assert_eq!(run(&[]), masks());
    }

    #[test]
    fn true_labels_like_the_seed() {
        let out = run(&[("unique", "true")]);
        let got: Vec<(u32, u32)> = out.iter().map(|m| (m.id, m.label)).collect();
        assert_eq!(got, vec![(2, 3), (1, 2), (3, 1)]);
    }

    #[test]
    fn false_merges_into_one_255_mask() {
        let out = run(&[("unique", "false")]);
        assert_eq!(out.len(), 1);
        let m = &out[0];
        assert_eq!((m.id, m.label, m.area), (1, 255, 13));
        assert_eq!((m.score, m.stability), (0.9, 0.8));
        assert_eq!(
            m.bbox,
            BBox {
                x: 0,
                y: 0,
                width: 6,
                height: 4
            }
        );
        let bits = decode(&m.bbox, &m.runs).unwrap();
        #[rustfmt::skip]
        assert_eq!(bits, vec![
            1, 1, 0, 0, 0, 1,
            1, 1, 1, 1, 0, 0,
            0, 1, 1, 1, 0, 0,
            0, 1, 1, 1, 0, 0,
        ]);
        samgeo_plugin_sdk::rle::validate(m, 6, 4).unwrap();
    }

    #[test]
    fn false_with_no_masks_is_empty() {
        assert!(merge(&[], 5, 5).unwrap().is_empty());
    }
}
