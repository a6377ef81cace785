//! Checks on what plugins return, so garbage never reaches a client or the next filter.

use std::collections::HashSet;

use crate::masks::{FormattedOutput, Mask};

/// Longest accepted file name, in bytes.
const MAX_FILE_NAME: usize = 255;
/// Longest accepted content type, in bytes.
const MAX_CONTENT_TYPE: usize = 255;

/// Checks a formatter's output: the content type is a `type/subtype[; params]` that is a valid
/// HTTP header value, and the file name is a plain, non-empty name that can go into a
/// `Content-Disposition` header.
pub(crate) fn formatted_output(out: &FormattedOutput) -> Result<(), String> {
    content_type(&out.content_type)?;
    file_name(&out.file_name)
}

fn content_type(ct: &str) -> Result<(), String> {
    if ct.is_empty() || ct.len() > MAX_CONTENT_TYPE {
        return Err(format!(
            "content type must be 1 to {MAX_CONTENT_TYPE} bytes, got {}",
            ct.len()
        ));
    }
    if !ct.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "content type {ct:?} is not a valid HTTP header value"
        ));
    }
    let essence = ct.split(';').next().unwrap_or("").trim();
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match essence.split_once('/') {
        Some((t, s)) if is_token(t) && is_token(s) => Ok(()),
        _ => Err(format!(
            "content type {ct:?} is not of the form type/subtype"
        )),
    }
}

fn file_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_FILE_NAME {
        return Err(format!(
            "file name must be 1 to {MAX_FILE_NAME} bytes, got {}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("file name {name:?} is not a file name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || matches!(c, '/' | '\\' | '"'))
    {
        return Err(format!("file name {name:?} contains {c:?}"));
    }
    Ok(())
}

/// Checks a filter's masks against the image: ids unique, labels non-zero, scores finite,
/// bboxes inside the image, runs covering exactly the bbox, area equal to the set pixels.
pub(crate) fn filtered_masks(masks: &[Mask], width: u32, height: u32) -> Result<(), String> {
    let mut ids = HashSet::with_capacity(masks.len());
    for (i, m) in masks.iter().enumerate() {
        let at = || format!("mask #{i} (id {})", m.id);
        if !ids.insert(m.id) {
            return Err(format!("{}: duplicate id", at()));
        }
        if m.label == 0 {
            return Err(format!("{}: label 0 (0 means no mask)", at()));
        }
        if !m.score.is_finite() || !m.stability.is_finite() {
            return Err(format!(
                "{}: score or stability is not a finite number",
                at()
            ));
        }
        // Bbox inside the image, runs covering exactly the bbox, area equal to the set pixels:
        // the SDK's own check, the one plugins run on what they receive.
        samgeo_plugin_sdk::rle::validate(m, width, height)
            .map_err(|e| format!("mask #{i}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::masks::BBox;

    fn out(ct: &str, name: &str) -> FormattedOutput {
        FormattedOutput {
            content_type: ct.into(),
            file_name: name.into(),
            bytes: vec![],
        }
    }

    #[test]
    fn outputs() {
        assert!(formatted_output(&out("application/geo+json", "masks.geojson")).is_ok());
        assert!(formatted_output(&out("image/tiff; application=geotiff", "m.tif")).is_ok());
        assert!(formatted_output(&out("text/plain\r\nX-Evil: 1", "a")).is_err());
        assert!(formatted_output(&out("nonsense", "a")).is_err());
        assert!(formatted_output(&out("", "a")).is_err());
        assert!(formatted_output(&out("a/b", "")).is_err());
        assert!(formatted_output(&out("a/b", "../x")).is_err());
        assert!(formatted_output(&out("a/b", "a\"b")).is_err());
        assert!(formatted_output(&out("a/b", "..")).is_err());
    }

    fn mask(id: u32, label: u32, bbox: (u32, u32, u32, u32), runs: Vec<u32>, area: u64) -> Mask {
        Mask {
            id,
            label,
            score: 0.9,
            stability: 1.0,
            area,
            bbox: BBox {
                x: bbox.0,
                y: bbox.1,
                width: bbox.2,
                height: bbox.3,
            },
            runs,
        }
    }

    #[test]
    fn masks() {
        let good = mask(1, 1, (0, 0, 2, 2), vec![1, 3], 3);
        assert!(filtered_masks(std::slice::from_ref(&good), 2, 2).is_ok());
        assert!(filtered_masks(&[good.clone(), good.clone()], 2, 2).is_err());
        assert!(filtered_masks(&[mask(1, 0, (0, 0, 2, 2), vec![1, 3], 3)], 2, 2).is_err());
        assert!(filtered_masks(&[mask(1, 1, (1, 0, 2, 2), vec![1, 3], 3)], 2, 2).is_err());
        assert!(filtered_masks(&[mask(1, 1, (0, 0, 2, 2), vec![1, 2], 2)], 2, 2).is_err());
        assert!(filtered_masks(&[mask(1, 1, (0, 0, 2, 2), vec![1, 3], 4)], 2, 2).is_err());
        let empty = mask(2, 2, (0, 0, 0, 0), vec![0], 0);
        assert!(filtered_masks(&[empty], 2, 2).is_ok());
        let mut nan = good;
        nan.score = f32::NAN;
        assert!(filtered_masks(&[nan], 2, 2).is_err());
    }
}
