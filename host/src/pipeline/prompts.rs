//! Prompt fields of `/segment/predict`: `point_coords`, `point_labels` and `boxes` as JSON,
//! checked before anything expensive happens.

use serde_json::Value;

use crate::error::AppError;

/// Most points one request may carry.
pub const MAX_POINTS: usize = 1024;
/// Most boxes one request may carry.
pub const MAX_BOXES: usize = 256;

/// Parsed prompts, in the coordinates the client gave (pixels or `point_crs`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prompts {
    /// Points as (x, y).
    pub points: Vec<[f64; 2]>,
    /// One label per point: 1 foreground, 0 background.
    pub labels: Vec<i32>,
    /// Boxes as (xmin, ymin, xmax, ymax).
    pub boxes: Vec<[f64; 4]>,
}

impl Prompts {
    /// Parses the three fields. Malformed JSON → 400 "Invalid JSON in prompt fields: ...";
    /// wrong shapes, counts or values → 400 naming the field.
    pub fn parse(
        point_coords: Option<&str>,
        point_labels: Option<&str>,
        boxes: Option<&str>,
    ) -> Result<Prompts, AppError> {
        if point_coords.is_none() && boxes.is_none() {
            return Err(AppError::bad_request(
                "At least one of point_coords or boxes must be provided.",
            ));
        }
        let json = |text: &str| -> Result<Value, AppError> {
            serde_json::from_str(text)
                .map_err(|e| AppError::bad_request(format!("Invalid JSON in prompt fields: {e}")))
        };
        let coords = point_coords.map(json).transpose()?;
        let labels = point_labels.map(json).transpose()?;
        let boxes_value = boxes.map(json).transpose()?;

        let points = match &coords {
            Some(v) => tuples::<2>(v, "point_coords", "[[x, y], ...]")?,
            None => Vec::new(),
        };
        if points.len() > MAX_POINTS {
            return Err(AppError::bad_request(format!(
                "point_coords has {} points; at most {MAX_POINTS} are allowed",
                points.len()
            )));
        }
        let labels = match &labels {
            Some(v) => parse_labels(v, points.len())?,
            None => vec![1; points.len()],
        };
        let boxes = match &boxes_value {
            Some(v) => tuples::<4>(v, "boxes", "[[xmin, ymin, xmax, ymax], ...]")?,
            None => Vec::new(),
        };
        if boxes.len() > MAX_BOXES {
            return Err(AppError::bad_request(format!(
                "boxes has {} boxes; at most {MAX_BOXES} are allowed",
                boxes.len()
            )));
        }
        for (i, b) in boxes.iter().enumerate() {
            if b[0] > b[2] || b[1] > b[3] {
                return Err(AppError::bad_request(format!(
                    "boxes[{i}] = {b:?}: xmin must not exceed xmax, nor ymin ymax"
                )));
            }
        }
        if points.is_empty() && boxes.is_empty() {
            return Err(AppError::bad_request(
                "At least one of point_coords or boxes must be provided.",
            ));
        }
        Ok(Prompts {
            points,
            labels,
            boxes,
        })
    }
}

/// Reads `[[a, b, ...], ...]` (or a single `[a, b, ...]`) of finite numbers with N items each.
fn tuples<const N: usize>(
    value: &Value,
    field: &str,
    shape: &str,
) -> Result<Vec<[f64; N]>, AppError> {
    let wrong = || AppError::bad_request(format!("Invalid {field}: expected {shape}"));
    let items = value.as_array().ok_or_else(wrong)?;
    let rows: Vec<&Value> = if !items.is_empty() && items.iter().all(Value::is_number) {
        vec![value]
    } else {
        items.iter().collect()
    };
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            let nums = row.as_array().ok_or_else(wrong)?;
            if nums.len() != N {
                return Err(AppError::bad_request(format!(
                    "Invalid {field}[{i}]: expected {N} numbers, got {}",
                    nums.len()
                )));
            }
            let mut out = [0.0; N];
            for (k, n) in nums.iter().enumerate() {
                out[k] = n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                    AppError::bad_request(format!(
                        "Invalid {field}[{i}]: {n} is not a finite number"
                    ))
                })?;
            }
            Ok(out)
        })
        .collect()
}

fn parse_labels(value: &Value, count: usize) -> Result<Vec<i32>, AppError> {
    let wrong = || {
        AppError::bad_request(
            "Invalid point_labels: expected [1, 0, ...] (1 = foreground, 0 = background)",
        )
    };
    let items: Vec<&Value> = match value {
        Value::Array(a) => a.iter().collect(),
        Value::Number(_) => vec![value],
        _ => return Err(wrong()),
    };
    let labels = items
        .iter()
        .map(|v| match v.as_f64() {
            Some(f) if f == 0.0 || f == 1.0 => Ok(f as i32),
            _ => Err(wrong()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if labels.len() != count {
        return Err(AppError::bad_request(format!(
            "point_labels has {} labels but point_coords has {count} points",
            labels.len()
        )));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_with_default_labels() {
        let p = Prompts::parse(Some("[[1, 2], [3.5, 4]]"), None, None).unwrap();
        assert_eq!(p.points, vec![[1.0, 2.0], [3.5, 4.0]]);
        assert_eq!(p.labels, vec![1, 1]);
    }

    #[test]
    fn single_point_and_box_shorthand() {
        let p = Prompts::parse(Some("[5, 6]"), Some("[0]"), Some("[1,2,3,4]")).unwrap();
        assert_eq!(p.points, vec![[5.0, 6.0]]);
        assert_eq!(p.labels, vec![0]);
        assert_eq!(p.boxes, vec![[1.0, 2.0, 3.0, 4.0]]);
    }

    #[test]
    fn errors_name_the_problem() {
        let cases = [
            (Some("[[1,2]"), None, None, "Invalid JSON in prompt fields"),
            (
                Some("[[1,2]]"),
                Some("[1,0]"),
                None,
                "2 labels but point_coords has 1",
            ),
            (Some("[[1,\"a\"]]"), None, None, "not a finite number"),
            (Some("{\"x\":1}"), None, None, "Invalid point_coords"),
            (None, None, Some("[[5,5,1,1]]"), "xmin must not exceed xmax"),
            (Some("[[1,2]]"), Some("[7]"), None, "Invalid point_labels"),
            (None, None, None, "At least one of point_coords or boxes"),
            (
                Some("[]"),
                None,
                None,
                "At least one of point_coords or boxes",
            ),
        ];
        for (c, l, b, want) in cases {
            let e = Prompts::parse(c, l, b).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.detail.contains(want), "{c:?} {l:?} {b:?}: {}", e.detail);
        }
    }

    #[test]
    fn too_many_points() {
        let many: Vec<[i32; 2]> = (0..(MAX_POINTS as i32 + 1)).map(|i| [i, i]).collect();
        let text = serde_json::to_string(&many).unwrap();
        let e = Prompts::parse(Some(&text), None, None).unwrap_err();
        assert!(e.detail.contains("at most"), "{}", e.detail);
    }
}
